"""drbdsetup status --json (DRBD 9)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.backends.drbd import drbd9
from reconciler.core.parse_error import ParseError

# A two-node resource during a resync, in the layout drbdsetup prints (sync details present).
SYNCING = """\
[
{
  "name": "vm100",
  "node-id": 0,
  "role": "Primary",
  "suspended": false,
  "write-ordering": "flush",
  "devices": [
    {
      "volume": 0,
      "minor": 100,
      "disk-state": "UpToDate",
      "client": false,
      "quorum": true,
      "size": 10485760,
      "read": 12,
      "written": 34,
      "al-writes": 1,
      "bm-writes": 2,
      "upper-pending": 0,
      "lower-pending": 0
    } ],
  "connections": [
    {
      "peer-node-id": 1,
      "name": "node2",
      "connection-state": "Connected",
      "congested": false,
      "peer-role": "Secondary",
      "ap-in-flight": 0,
      "rs-in-flight": 4096,
      "peer_devices": [
        {
          "volume": 0,
          "replication-state": "SyncSource",
          "peer-disk-state": "Inconsistent",
          "peer-client": false,
          "resync-suspended": "no",
          "received": 0,
          "sent": 3276800,
          "out-of-sync": 7208960,
          "pending": 0,
          "unacked": 0,
          "has-sync-details": true,
          "has-online-verify-details": false,
          "percent-in-sync": 31.25,
          "rs-total": 20971520,
          "rs-dt-start-ms": 60000,
          "rs-paused-ms": 0,
          "rs-dt0-ms": 1000,
          "rs-db0-sectors": 2048,
          "rs-dt1-ms": 1000,
          "rs-db1-sectors": 204800,
          "rs-failed": 0,
          "rs-same-csum": 0,
          "want": 0.00,
          "db0/dt0 [MiB/s]": 1.00,
          "db1/dt1 [MiB/s]": 100.00,
          "estimated-seconds-to-finish": 70,
          "db/dt [MiB/s]": 53.33,
          "percent-resync-done": 31.25
        } ]
    } ]
}
]
"""


def _resource(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SYNCING)[0]
    data.update(changes)
    return data


def test_argv() -> None:
    assert drbd9.STATUS_ARGV == ("drbdsetup", "status", "--json")


def test_syncing_resource() -> None:
    (res,) = drbd9.parse_status_json(SYNCING)
    assert (res.name, res.role, res.node_id, res.suspended) == ("vm100", "Primary", 0, False)
    (dev,) = res.devices
    assert (dev.volume, dev.minor, dev.disk_state, dev.client, dev.quorum, dev.size_kib) == (
        0, 100, "UpToDate", False, True, 10485760,
    )
    (conn,) = res.connections
    assert (conn.peer_name, conn.peer_node_id, conn.connection_state, conn.peer_role, conn.congested) == (
        "node2", 1, "Connected", "Secondary", False,
    )
    (peer,) = conn.peer_devices
    assert (peer.replication_state, peer.peer_disk_state) == ("SyncSource", "Inconsistent")
    assert peer.out_of_sync_bytes == 7208960 * 1024
    assert peer.resync_percent == 31.25
    assert peer.resync_eta_seconds == 70.0


def test_resync_without_details_uses_percent_in_sync() -> None:
    data = _resource()
    pd = data["connections"][0]["peer_devices"][0]
    for key in list(pd):
        if key.startswith(("rs-", "db", "want", "estimated", "percent-resync")):
            del pd[key]
    pd["has-sync-details"] = False
    (res,) = drbd9.parse_status_json(json.dumps([data]))
    peer = res.connections[0].peer_devices[0]
    assert peer.resync_percent == 31.25
    assert peer.resync_eta_seconds is None


def test_unknown_estimate_is_none() -> None:
    data = _resource()
    data["connections"][0]["peer_devices"][0]["estimated-seconds-to-finish"] = 987654321
    (res,) = drbd9.parse_status_json(json.dumps([data]))
    assert res.connections[0].peer_devices[0].resync_eta_seconds is None


def test_established_has_no_resync_percent() -> None:
    data = _resource()
    pd = data["connections"][0]["peer_devices"][0]
    pd.update({"replication-state": "Established", "peer-disk-state": "UpToDate", "out-of-sync": 0,
               "percent-in-sync": 100.0})
    (res,) = drbd9.parse_status_json(json.dumps([data]))
    peer = res.connections[0].peer_devices[0]
    assert (peer.resync_percent, peer.resync_eta_seconds, peer.out_of_sync_bytes) == (None, None, 0)


def test_missing_optional_and_extra_keys_across_versions() -> None:
    data = _resource(**{"suspended-quorum": True, "force-io-failures": False})
    del data["node-id"]
    del data["write-ordering"]
    dev = data["devices"][0]
    for key in ("size", "read", "written", "quorum"):
        del dev[key]
    dev["open"] = True
    conn = data["connections"][0]
    conn["tls"] = False
    conn["paths"] = [{"this_host": {"address": "10.0.0.1"}, "established": True}]
    del conn["congested"]
    (res,) = drbd9.parse_status_json(json.dumps([data]))
    assert res.node_id is None
    assert res.suspended  # suspended-quorum counts as suspended
    assert (res.devices[0].size_kib, res.devices[0].quorum) == (None, None)
    assert res.connections[0].congested is None


def test_node_id_minus_one_means_unknown() -> None:
    (res,) = drbd9.parse_status_json(json.dumps([_resource(**{"node-id": -1})]))
    assert res.node_id is None


def test_empty_output_and_empty_list_mean_no_resources() -> None:
    assert drbd9.parse_status_json("") == ()
    assert drbd9.parse_status_json("[\n]\n") == ()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(role="Leader"), "unknown role 'Leader'"),
        (lambda d: d["devices"][0].update({"disk-state": "Fine"}), "unknown disk state"),
        (lambda d: d["devices"][0].update(minor="100"), "'minor'"),
        (lambda d: d["devices"][0].pop("volume"), "'volume'"),
        (lambda d: d["connections"][0].update({"connection-state": "Dancing"}), "connection state"),
        (lambda d: d["connections"][0].update({"peer-role": 3}), "'peer-role' is 3"),
        (lambda d: d["connections"][0]["peer_devices"][0].update({"replication-state": "Syncing"}), "replication"),
        (lambda d: d["connections"][0]["peer_devices"][0].update({"out-of-sync": -1}), "negative"),
        (lambda d: d["connections"][0]["peer_devices"][0].update({"percent-resync-done": 120}), "outside 0..100"),
        (lambda d: d["connections"][0].update(peer_devices={}), "a list"),
        (lambda d: d.update(suspended="no"), "true or false"),
        (lambda d: d.pop("name"), "'name'"),
    ],
)
def test_wrong_types_and_unknown_states(mutate: Any, message: str) -> None:
    data = _resource()
    mutate(data)
    with pytest.raises(ParseError, match=message) as caught:
        drbd9.parse_status_json(json.dumps([data]))
    assert caught.value.tool == "drbdsetup status --json"


def test_truncated_json() -> None:
    with pytest.raises(ParseError, match="not JSON") as caught:
        drbd9.parse_status_json(SYNCING[:400])
    assert caught.value.line_no is not None


def test_not_a_list() -> None:
    with pytest.raises(ParseError, match="list of resources"):
        drbd9.parse_status_json('{"name": "vm100"}')


def test_a_verify_reports_its_progress_as_verify_not_resync() -> None:
    data = _resource()
    pd = data["connections"][0]["peer_devices"][0]
    pd.update({"replication-state": "VerifyS", "peer-disk-state": "UpToDate", "out-of-sync": 0,
               "has-online-verify-details": True, "ov-left": 1000})
    (res,) = drbd9.parse_status_json(json.dumps([data]))
    peer = res.connections[0].peer_devices[0]
    assert (peer.replication_state, peer.verify_percent, peer.resync_percent) == ("VerifyS", 31.25, None)

"""drbdsetup events2 lines and folding them into a DrbdState."""

from __future__ import annotations

import pytest

from reconciler.backends.drbd import events2
from reconciler.core.parse_error import ParseError
from reconciler.model.observed import DrbdState

NOW_STATISTICS = "\n".join(
    [
        "exists resource name:vm100 role:Primary suspended:no write-ordering:flush may_promote:no "
        "promotion_score:10102",
        "exists connection name:vm100 peer-node-id:1 conn-name:node2 connection:Connected role:Secondary "
        "congested:no ap-in-flight:0 rs-in-flight:0",
        "exists device name:vm100 volume:0 minor:100 disk:UpToDate client:no quorum:yes size:10485760 read:0 "
        "written:0 al-writes:0 bm-writes:0 upper-pending:0 lower-pending:0 al-suspended:no blocked:no",
        "exists peer-device name:vm100 peer-node-id:1 conn-name:node2 volume:0 replication:SyncSource "
        "peer-disk:Inconsistent peer-client:no resync-suspended:no done:12.50 received:0 sent:0 "
        "out-of-sync:9175040 pending:0 unacked:0 dbdt1:100.00 eta:88",
        "exists path name:vm100 peer-node-id:1 conn-name:node2 local:ipv4:10.0.0.1:7100 peer:ipv4:10.0.0.2:7100 "
        "established:yes",
        "exists -",
        "",
    ]
)


def test_argv() -> None:
    assert events2.EVENTS2_NOW_ARGV == ("drbdsetup", "events2", "--now")
    assert events2.EVENTS2_STREAM_ARGV == ("drbdsetup", "events2")
    assert (*events2.EVENTS2_NOW_ARGV, events2.STATISTICS) == ("drbdsetup", "events2", "--now", "--statistics")


def test_parse_line_with_timestamp() -> None:
    event = events2.parse_event_line(
        "2026-11-27T01:02:03.456789+01:00 change connection name:vm100 peer-node-id:1 conn-name:node2 "
        "connection:Connecting role:Unknown"
    )
    assert event is not None
    assert event.timestamp == "2026-11-27T01:02:03.456789+01:00"
    assert (event.action, event.object, event.name) == ("change", "connection", "vm100")
    assert event.properties == {
        "peer-node-id": "1", "conn-name": "node2", "connection": "Connecting", "role": "Unknown",
    }


def test_end_of_initial_state_marker() -> None:
    event = events2.parse_event_line("exists -")
    assert event is not None
    assert event.is_end_of_initial_state
    other = events2.parse_event_line("exists resource name:a role:Secondary")
    assert other is not None
    assert not other.is_end_of_initial_state


def test_blank_line_is_none_and_values_keep_colons() -> None:
    assert events2.parse_event_line("   \n") is None
    event = events2.parse_event_line("create path name:r peer-node-id:1 conn-name:p local:ipv6:[fe80::1]:7789")
    assert event is not None
    assert event.properties["local"] == "ipv6:[fe80::1]:7789"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("explode resource name:a", "unknown action"),
        ("exists volcano name:a", "unknown object"),
        ("call helper", "without name"),
        ("exists", "expected"),
        ("exists resource name:a role", "key:value"),
        ("exists resource name:a role:Boss", "unknown role state"),
        ("exists device name:a volume:x minor:1", "volume"),
        ("exists device name:a volume:0 minor:1 disk:Happy", "unknown disk state"),
        ("exists connection name:a connection:Confused", "unknown connection state"),
        ("exists peer-device name:a volume:0 replication:Maybe", "unknown replication state"),
        ("exists peer-device name:a volume:0 done:150", "out of range"),
        ("exists peer-device name:a volume:0 eta:soon", "not a number"),
        ("exists device name:a volume:0 minor:1 quorum:perhaps", "neither yes nor no"),
        ("exists resource name:a role:Primary role:Secondary", "twice"),
        ("change - name:a", "'exists -'"),
    ],
)
def test_bad_lines(line: str, message: str) -> None:
    with pytest.raises(ParseError, match=message) as caught:
        events2.parse_event_line(line)
    assert caught.value.tool == "drbdsetup events2"


def test_parse_events_names_the_line() -> None:
    with pytest.raises(ParseError) as caught:
        events2.parse_events("exists resource name:a role:Primary\n\ngarbage here\n")
    assert caught.value.line_no == 3


def test_state_from_now_output() -> None:
    state = events2.state_from_events(NOW_STATISTICS, kernel_version="9.2.12")
    assert state.kernel_version == "9.2.12"
    (res,) = state.resources
    assert (res.name, res.role, res.suspended) == ("vm100", "Primary", False)
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
    assert peer.out_of_sync_bytes == 9175040 * 1024
    assert (peer.resync_percent, peer.resync_eta_seconds) == (12.5, 88.0)


def _apply(state: DrbdState, line: str) -> DrbdState:
    event = events2.parse_event_line(line)
    assert event is not None
    return events2.apply_event(state, event)


def test_live_changes_update_and_destroy() -> None:
    state = events2.state_from_events(NOW_STATISTICS)
    state = _apply(state, "change peer-device name:vm100 peer-node-id:1 conn-name:node2 volume:0 "
                          "replication:Established peer-disk:UpToDate out-of-sync:0")
    peer = state.resources[0].connections[0].peer_devices[0]
    assert (peer.replication_state, peer.peer_disk_state, peer.out_of_sync_bytes) == ("Established", "UpToDate", 0)
    assert (peer.resync_percent, peer.resync_eta_seconds) == (None, None)
    state = _apply(state, "change resource name:vm100 role:Secondary")
    assert state.resources[0].role == "Secondary"
    state = _apply(state, "change connection name:vm100 peer-node-id:1 conn-name:node2 connection:Connecting "
                          "role:Unknown")
    conn = state.resources[0].connections[0]
    assert (conn.connection_state, conn.peer_role) == ("Connecting", "Unknown")
    assert len(conn.peer_devices) == 1  # the peer device survives a connection change
    state = _apply(state, "destroy peer-device name:vm100 peer-node-id:1 conn-name:node2 volume:0")
    assert state.resources[0].connections[0].peer_devices == ()
    state = _apply(state, "destroy connection name:vm100 peer-node-id:1 conn-name:node2")
    assert state.resources[0].connections == ()
    state = _apply(state, "destroy device name:vm100 volume:0")
    assert state.resources[0].devices == ()
    state = _apply(state, "destroy resource name:vm100")
    assert state.resources == ()


def test_helpers_paths_and_marker_change_nothing() -> None:
    state = events2.state_from_events(NOW_STATISTICS)
    for line in (
        "call helper name:vm100 peer-node-id:1 conn-name:node2 volume:0 helper:before-resync-target",
        "response helper name:vm100 peer-node-id:1 conn-name:node2 volume:0 helper:before-resync-target status:0",
        "change path name:vm100 peer-node-id:1 conn-name:node2 local:ipv4:10.0.0.1:7100 established:no",
        "exists -",
    ):
        assert _apply(state, line) == state


def test_change_before_create_builds_the_object() -> None:
    state = _apply(DrbdState(), "change device name:vm7 volume:1 minor:7 disk:Inconsistent")
    (res,) = state.resources
    assert (res.name, res.role) == ("vm7", "Unknown")
    assert [(d.volume, d.minor, d.disk_state) for d in res.devices] == [(1, 7, "Inconsistent")]
    with pytest.raises(ParseError, match="without minor"):
        _apply(DrbdState(), "change device name:vm8 volume:0 disk:UpToDate")


def test_second_connection_is_kept_apart_by_peer_node_id() -> None:
    state = events2.state_from_events(NOW_STATISTICS)
    state = _apply(state, "create connection name:vm100 peer-node-id:2 conn-name:node3 connection:Connecting "
                          "role:Unknown")
    assert [c.peer_name for c in state.resources[0].connections] == ["node2", "node3"]
    state = _apply(state, "change connection name:vm100 peer-node-id:2 conn-name:node3 connection:Connected "
                          "role:Secondary")
    assert [c.connection_state for c in state.resources[0].connections] == ["Connected", "Connected"]


def test_drbd84_lines_without_peer_ids() -> None:
    text = (
        "exists resource name:r0 role:Secondary suspended:no\n"
        "exists connection name:r0 connection:Connected role:Primary\n"
        "exists device name:r0 volume:0 minor:0 disk:UpToDate\n"
        "exists peer-device name:r0 volume:0 replication:Established peer-disk:UpToDate resync-suspended:no\n"
        "exists -\n"
    )
    (res,) = events2.state_from_events(text, "8.4.11").resources
    (conn,) = res.connections
    assert (conn.peer_name, conn.connection_state, conn.peer_role) == ("unknown", "Connected", "Primary")
    assert conn.peer_devices[0].replication_state == "Established"


def test_verify_progress_follows_done_and_clears_after() -> None:
    start = NOW_STATISTICS.replace("replication:SyncSource peer-disk:Inconsistent", "replication:VerifyS "
                                   "peer-disk:UpToDate").replace("out-of-sync:9175040", "out-of-sync:0")
    state = events2.state_from_events(start)
    peer = state.resources[0].connections[0].peer_devices[0]
    assert (peer.replication_state, peer.verify_percent, peer.resync_percent) == ("VerifyS", 12.5, None)
    done = events2.parse_event_line("change peer-device name:vm100 peer-node-id:1 conn-name:node2 volume:0 "
                                    "replication:Established out-of-sync:64")
    assert done is not None
    after = events2.apply_event(state, done).resources[0].connections[0].peer_devices[0]
    assert (after.replication_state, after.verify_percent, after.out_of_sync_bytes) == ("Established", None, 65536)


def test_the_folder_reports_live_changes_only_after_the_initial_dump() -> None:
    folder = events2.EventFolder()
    initial = folder.feed("exists resource name:vm100 role:Primary suspended:no")
    assert initial is not None
    assert not initial.live
    assert folder.feed("exists -") is None
    assert folder.feed("") is None
    change = folder.feed("change resource name:vm100 role:Secondary")
    assert change is not None
    assert (change.live, change.resource, change.what) == (True, "vm100", "resource")
    assert change.state.resources[0].role == "Secondary"
    with pytest.raises(ParseError):
        folder.feed("change nonsense")


def test_a_dump_that_cannot_be_read_is_no_state() -> None:
    assert events2.read_state("exists resource name:vm100 role:Primary\nexists -\n") is not None
    assert events2.read_state("exists resource role:Primary\n") is None

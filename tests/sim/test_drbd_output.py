"""What the simulated DRBD tools print, checked against the project's parsers and the real corpus."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from reconciler.backends.drbd.drbd9 import parse_status_json
from reconciler.backends.drbd.events2 import parse_events, state_from_events
from reconciler.backends.drbd.procdrbd import parse_proc_drbd
from tests.conftest import read_capture
from tests.sim.test_drbd_helpers import DrbdCluster, resource_text


@pytest.fixture
def pair(tmp_path: Path) -> DrbdCluster:
    cluster = DrbdCluster(tmp_path / "cluster")
    cluster.new_pair(sync=False)
    cluster.advance(3)
    return cluster


def _keys(items: list[dict[str, Any]]) -> set[str]:
    return {key for item in items for key in item}


def test_status_json_parses_and_carries_the_resync(pair: DrbdCluster) -> None:
    resources = parse_status_json(pair.ok("erdbeere", "drbdsetup", "status", "--json").stdout)
    assert [r.name for r in resources] == ["vm100"]
    vm100 = resources[0]
    assert vm100.role == "Primary"
    assert vm100.node_id == 0
    peer = vm100.connections[0]
    assert (peer.peer_name, peer.connection_state, peer.peer_role) == ("himbeere", "Connected", "Secondary")
    device = peer.peer_devices[0]
    assert device.replication_state == "SyncSource"
    assert device.resync_percent is not None
    assert 0 < device.resync_percent < 100
    assert device.resync_eta_seconds is not None
    assert device.resync_eta_seconds > 0
    assert device.out_of_sync_bytes is not None
    assert device.out_of_sync_bytes > 0


def test_status_json_has_the_keys_of_real_drbdsetup(pair: DrbdCluster, real_outputs: Path) -> None:
    real = json.loads((real_outputs / "drbd-test-data/ha_cluster_exporter/drbdsetup-status-json.json").read_text())
    pair.advance(20)
    ours = json.loads(pair.ok("erdbeere", "drbdsetup", "status", "--json").stdout)
    assert _keys(ours) == _keys(real)
    assert _keys([d for r in ours for d in r["devices"]]) == _keys([d for r in real for d in r["devices"]])
    ours_conns = [c for r in ours for c in r["connections"]]
    real_conns = [c for r in real for c in r["connections"]]
    assert _keys(ours_conns) == _keys(real_conns)
    assert _keys([p for c in ours_conns for p in c["peer_devices"]]) == _keys(
        [p for c in real_conns for p in c["peer_devices"]])


def test_status_json_prints_percentages_like_drbdsetup(pair: DrbdCluster, real_outputs: Path) -> None:
    name = "drbd9_status_json__salt-shaptools_drbd-9.0.16_utils-9.6.0.json"
    sample = (real_outputs / "public-formats" / name).read_text()
    assert re.search(r'"percent-in-sync": \d+\.\d\d', sample)
    ours = pair.ok("erdbeere", "drbdsetup", "status", "--json").stdout
    assert re.search(r'"percent-in-sync": \d+\.\d\d,?\n', ours)


def test_events2_now_parses_into_the_same_state(pair: DrbdCluster) -> None:
    text = pair.ok("himbeere", "drbdsetup", "events2", "--now", "--statistics").stdout
    assert text.endswith("exists -\n")
    assert parse_events(text)[-1].is_end_of_initial_state
    state = state_from_events(text)
    vm100 = state.resource("vm100")
    assert vm100 is not None
    assert vm100.role == "Secondary"
    assert vm100.devices[0].disk_state == "Inconsistent"
    assert vm100.connections[0].peer_role == "Primary"
    assert vm100.connections[0].peer_devices[0].replication_state == "SyncTarget"


def test_events2_keys_match_drbd_utils(pair: DrbdCluster, real_outputs: Path) -> None:
    expected = (real_outputs / "drbd-test-data/drbd-utils-tests-v9/events2-all-create-change.test").read_text()
    section = expected.split("events2 --statistics; echo $?\n", 1)[1].split("\n$ ", 1)[0]
    real_keys: dict[str, set[str]] = {}
    for line in section.splitlines():
        words = line.split()
        if len(words) > 2 and words[0] == "create":
            real_keys[words[1]] = {w.split(":", 1)[0] for w in words[2:]}
    ours = pair.ok("himbeere", "drbdsetup", "events2", "--now", "--statistics").stdout
    seen: set[str] = set()
    for line in ours.splitlines()[:-1]:
        words = line.split()
        keys = {w.split(":", 1)[0] for w in words[2:]}
        extra = keys - real_keys[words[1]] - {"done", "dbdt1", "eta"}
        assert not extra, f"{words[1]} has keys drbdsetup does not print: {extra}"
        assert real_keys[words[1]] <= keys, f"{words[1]} lacks {real_keys[words[1]] - keys}"
        seen.add(words[1])
    assert seen == set(real_keys)


def test_events2_change_lines_parse(pair: DrbdCluster) -> None:
    from reconciler.sim import drbd

    lines, _ = drbd.events_since(pair.state(), "himbeere", 0)
    assert lines
    events = parse_events("\n".join(lines) + "\n")
    assert {e.action for e in events} <= {"create", "change", "destroy"}
    final = state_from_events("\n".join(lines) + "\n")
    assert final.resource("vm100") is not None


def test_drbdadm_status_matches_the_human_format(pair: DrbdCluster, real_outputs: Path) -> None:
    sample = (real_outputs / "public-formats/drbd9_status_human__opensvc_drbd-9.2.15_sync.txt").read_text()
    during = sample.split("# after sync", 1)[0]
    real_lines = [line for line in during.splitlines() if line and not line.startswith(("#", "root@"))]
    ours = pair.ok("erdbeere", "drbdadm", "status").stdout.splitlines()
    assert len(ours) == len(real_lines) + 1
    assert ours[-1] == ""
    for mine, theirs in zip(ours, real_lines, strict=False):
        shape = re.sub(r"\S+:", "KEY:", re.sub(r":[^ ]+", ":V", theirs))
        mine_shape = re.sub(r"\S+:", "KEY:", re.sub(r":[^ ]+", ":V", mine))
        assert mine_shape == shape.replace("kvm1.demo.vol.drbd4kvm", "vm100").replace(" n2 ", " himbeere ")


def test_proc_drbd_84_during_resync(tmp_path: Path, real_outputs: Path) -> None:
    cluster = DrbdCluster(tmp_path / "c", drbd_version="8.4")
    cluster.new_pair(sync=False)
    cluster.advance(4)
    text = cluster.hosts["erdbeere"].read_file("/proc/drbd")
    assert text is not None
    proc = parse_proc_drbd(text)
    assert proc.version == "8.4.11"
    minor = proc.minors[0]
    assert (minor.connection_state, minor.role, minor.peer_role) == ("SyncSource", "Primary", "Secondary")
    assert (minor.disk_state, minor.peer_disk_state) == ("UpToDate", "Inconsistent")
    assert minor.resync_percent is not None
    assert 30 < minor.resync_percent < 50
    assert minor.resync_eta_seconds is not None
    assert minor.resync_eta_seconds > 0
    real = (real_outputs / "ganeti-test-data/proc_drbd84_sync.txt").read_text().splitlines()
    ours = text.splitlines()
    assert re.sub(r"\d+", "9", ours[0]) == re.sub(r"\d+", "9", real[0])
    real_state = next(line for line in real if "cs:SyncSource" in line)
    assert re.sub(r"ro:\w+/\w+", "ro:X", ours[2]) == " 0" + re.sub(r"ro:\w+/\w+", "ro:X", real_state)[2:].replace(
        " r---n-", " r-----")
    counters = [re.findall(r"([a-z]+):", line) for line in (ours[3], real[real.index(real_state) + 1])]
    assert counters[0] == counters[1]
    assert re.fullmatch(r"\t\[=+>\.+\] sync'ed: *\d+\.\d% \(\d+/\d+\)K", ours[4])
    assert re.fullmatch(r"\tfinish: \d+:\d\d:\d\d speed: [\d,]+ \([\d,]+\) K/sec", ours[5])
    cluster.advance(20)
    settled = parse_proc_drbd(cluster.hosts["erdbeere"].read_file("/proc/drbd") or "").minors[0]
    assert (settled.connection_state, settled.peer_disk_state) == ("Connected", "UpToDate")


def test_proc_drbd_84_standalone_line(tmp_path: Path, real_outputs: Path) -> None:
    cluster = DrbdCluster(tmp_path / "c", drbd_version="8.4")
    cluster.new_pair()
    cluster.ok("erdbeere", "drbdadm", "disconnect", "vm100")
    ours = (cluster.hosts["erdbeere"].read_file("/proc/drbd") or "").splitlines()[2]
    assert ours == " 0: cs:StandAlone ro:Primary/Unknown ds:UpToDate/DUnknown   r-----"
    real = (real_outputs / "ganeti-test-data/proc_drbd84_sync.txt").read_text().splitlines()
    assert " 0: cs:StandAlone ro:Primary/Unknown ds:UpToDate/DUnknown   r-----" in real


def test_proc_drbd_9_shows_only_the_version(pair: DrbdCluster) -> None:
    text = pair.hosts["erdbeere"].read_file("/proc/drbd") or ""
    proc = parse_proc_drbd(text)
    assert proc.is_drbd9
    assert proc.minors == ()


def test_drbdsetup_84_has_no_status_json(tmp_path: Path) -> None:
    cluster = DrbdCluster(tmp_path / "c", drbd_version="8.4")
    result = cluster.run("erdbeere", "drbdsetup", "status", "--json")
    assert (result.returncode, result.stderr) == (20, "status: unrecognized option '--json'\n")


def test_no_module_answers_like_the_capture(tmp_path: Path, real_outputs: Path) -> None:
    _, code, _, err = read_capture(real_outputs / "captured-here/drbdsetup-status-json-no-module.txt")
    cluster = DrbdCluster(tmp_path / "c")
    with cluster.cluster.transaction() as state:
        state["nodes"]["erdbeere"]["drbd_version"] = None
    result = cluster.run("erdbeere", "drbdsetup", "status", "--json")
    assert result.returncode == code
    assert result.stderr.splitlines()[-1] == err.splitlines()[-1]
    assert cluster.hosts["erdbeere"].read_file("/proc/drbd") is None


@pytest.mark.parametrize(("capture", "version", "argv"), [
    ("drbdadm-dry-run-up-erdbeere.txt", "9", ("-d", "up", "vm100")),
    ("drbdadm84-dry-run-up-erdbeere.txt", "8.4", ("-d", "up", "vm100")),
    ("drbdadm-dry-run-create-md.txt", "9", ("-d", "create-md", "vm100")),
    ("drbdadm-dry-run-primary-force.txt", "9", ("-d", "primary", "--force", "vm100")),
])
def test_dry_runs_match_the_captures(tmp_path: Path, real_outputs: Path, capture: str, version: str,
                                     argv: tuple[str, ...]) -> None:
    _, code, stdout, _ = read_capture(real_outputs / "captured-here" / capture)
    cluster = DrbdCluster(tmp_path / "c", drbd_version=version)
    cluster.hosts["erdbeere"].write_file("/etc/drbd.d/vm100.res",
                                         (real_outputs / "captured-here/drbd-vm100.res").read_text())
    result = cluster.run("erdbeere", "drbdadm", *argv)
    assert (result.returncode, result.stdout) == (code, stdout)


def test_show_gi_of_a_new_pair_and_of_one_with_history(tmp_path: Path) -> None:
    cluster = DrbdCluster(tmp_path / "c")
    cluster.prepare(resource_text())
    fresh = cluster.ok("erdbeere", "drbdadm", "show-gi", "vm100").stdout.splitlines()
    assert fresh[6].startswith("0000000000000004:0000000000000000:0000000000000000:0000000000000000:0:0:0:")
    cluster.ok("erdbeere", "drbdadm", "primary", "--force", "vm100")
    cluster.partition("erdbeere", "himbeere")
    cluster.advance(1)
    line = cluster.ok("erdbeere", "drbdadm", "show-gi", "vm100").stdout.splitlines()[6]
    current, bitmap = line.split(":")[:2]
    assert current not in ("0000000000000004", "0000000000000000")
    assert bitmap != "0000000000000000"
    assert line.split(":")[4:7] == ["1", "1", "1"]


@pytest.mark.parametrize(("capture", "version"), [("drbdadm-dump.txt", "9"), ("drbdadm84-dump.txt", "8.4")])
def test_dump_matches_the_capture(tmp_path: Path, real_outputs: Path, capture: str, version: str) -> None:
    # The capture ran on a host called "vm", which the resource does not name.
    _, code, stdout, _ = read_capture(real_outputs / "captured-here" / capture)
    cluster = DrbdCluster(tmp_path / "c", nodes=("vm",), drbd_version=version)
    cluster.hosts["vm"].write_file("/etc/drbd.d/vm100.res", (real_outputs / "captured-here/drbd-vm100.res").read_text())
    result = cluster.run("vm", "drbdadm", "-c", "vm100.res", "dump", "all")
    assert (result.returncode, result.stdout) == (code, stdout.replace("<workdir>", "/etc/drbd.d"))


def test_dump_of_a_resource_not_for_this_host(tmp_path: Path, real_outputs: Path) -> None:
    _, code, _, err = read_capture(real_outputs / "captured-here/drbdadm-dump-wrong-host.txt")
    cluster = DrbdCluster(tmp_path / "c", nodes=("vm",))
    cluster.hosts["vm"].write_file("/etc/drbd.d/vm100.res", (real_outputs / "captured-here/drbd-vm100.res").read_text())
    result = cluster.run("vm", "drbdadm", "-c", "vm100.res", "dump", "vm100")
    assert result.returncode == code
    assert result.stderr.splitlines()[-1] == err.splitlines()[-1]


def test_bad_protocol_matches_the_capture(tmp_path: Path, real_outputs: Path) -> None:
    _, code, _, err = read_capture(real_outputs / "captured-here/drbdadm-dump-bad-protocol.txt")
    cluster = DrbdCluster(tmp_path / "c")
    text = (real_outputs / "captured-here/drbd-vm100.res").read_text().replace("protocol C", "protocol X")
    cluster.hosts["erdbeere"].write_file("/etc/drbd.d/bad.res", text)
    result = cluster.run("erdbeere", "drbdadm", "-c", "bad.res", "dump", "all")
    assert result.returncode == code
    expected = [line for line in err.splitlines() if "modinfo" not in line]
    assert result.stderr.splitlines() == [expected[0].replace("bad.res", "/etc/drbd.d/bad.res"), *expected[1:]]


def test_version_answers_without_the_module(tmp_path: Path) -> None:
    from reconciler.backends.drbd.utils_version import parse_drbdadm_version

    cluster = DrbdCluster(tmp_path / "c")
    text = cluster.ok("erdbeere", "drbdadm", "--version").stdout
    assert parse_drbdadm_version(text) == "9.22.0"
    assert "DRBD_KERNEL_VERSION=9.2.12" in text
    with cluster.cluster.transaction() as state:
        state["nodes"]["erdbeere"]["drbd_version"] = None
    assert "DRBD_KERNEL_VERSION_CODE=0x000000" in cluster.ok("erdbeere", "drbdadm", "--version").stdout

"""The cluster state: its directory, transactions, time, device resolution and the command log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.host.base import Host
from reconciler.sim import state as simstate
from reconciler.sim.host import SimHost
from reconciler.sim.state import (
    SimCluster,
    SimStateError,
    content,
    device_number,
    device_size,
    mapper_name,
    open_count,
    resolve_device,
    split_mapper_name,
)
from tests.sim.storage_helpers import GIB, cluster, ok


def test_init_creates_state_and_log_with_the_documented_layout(tmp_path: Path) -> None:
    SimCluster.init(tmp_path, ["erdbeere", "himbeere"], {"vg-sda": 400 * GIB}, drbd_version="8.4")
    state = SimCluster(tmp_path).read()
    assert (tmp_path / "commands.log").read_text() == ""
    assert state["time"] == 0.0
    assert state["network"] == {"cut": []}
    node = state["nodes"]["himbeere"]
    assert {"up", "boot_id", "vgs", "lvs", "dm", "files", "domains", "mounts", "memory", "drbd",
            "drbd_version"} <= set(node)
    assert node["drbd_version"] == "8.4"
    vg = node["vgs"]["vg-sda"]
    assert vg["pvs"][0]["name"] == "/dev/sda"
    assert vg["pvs"][0]["pe_count"] == (400 * GIB - 1024**2) // (4 * 1024**2)


def test_init_refuses_an_unknown_drbd_version(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="DRBD version"):
        SimCluster.init(tmp_path, ["a"], {}, drbd_version="10")


def test_transaction_saves_on_success_and_discards_on_error(tmp_path: Path) -> None:
    sim = SimCluster(cluster(tmp_path))
    with sim.transaction() as state:
        state["nodes"]["erdbeere"]["files"]["/etc/x"] = {"content": "1", "mode": 420}
    with pytest.raises(RuntimeError, match="boom"):
        _write_then_fail(sim)
    files = SimCluster(tmp_path).read()["nodes"]["erdbeere"]["files"]
    assert "/etc/x" in files
    assert "/etc/y" not in files


def _write_then_fail(sim: SimCluster) -> None:
    with sim.transaction() as state:
        state["nodes"]["erdbeere"]["files"]["/etc/y"] = {"content": "2", "mode": 420}
        raise RuntimeError("boom")


def test_nested_transactions_share_one_state(tmp_path: Path) -> None:
    sim = SimCluster(cluster(tmp_path))
    with sim.transaction() as outer:
        with sim.transaction() as inner:
            assert inner is outer
            inner["time"] = 5.0
        assert outer["time"] == 5.0
    assert SimCluster(tmp_path).read()["time"] == 5.0


def test_a_missing_cluster_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SimStateError, match="reconciler sim init"):
        SimCluster(tmp_path / "nope").read()
    with pytest.raises(SimStateError, match="not part of the simulated cluster"):
        SimHost(cluster(tmp_path), "nobody")


def test_a_directory_without_a_state_is_refused_and_left_untouched(tmp_path: Path) -> None:
    desired = tmp_path / "desired-state"
    desired.mkdir()
    (desired / "cluster.yaml").write_text("nodes: {}\n")
    for use in (lambda: SimCluster(desired).read(), lambda: SimCluster(desired).advance(1.0),
                lambda: SimHost(desired, "erdbeere")):
        with pytest.raises(SimStateError, match=r"has no state\.db"):
            use()
    assert sorted(p.name for p in desired.iterdir()) == ["cluster.yaml"]


def test_advance_moves_time_and_runs_tickers_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, float, float]] = []
    monkeypatch.setattr(simstate, "_tickers", [
        lambda state, dt: seen.append(("first", dt, state["time"])),
        lambda state, dt: seen.append(("second", dt, state["time"])),
    ])
    monkeypatch.setattr(simstate, "load_modules", lambda: None)
    sim = SimCluster(cluster(tmp_path))
    assert sim.advance(2.5) == 2.5
    assert sim.advance(1.0) == 3.5
    assert seen == [("first", 2.5, 2.5), ("second", 2.5, 2.5), ("first", 1.0, 3.5), ("second", 1.0, 3.5)]
    with pytest.raises(ValueError, match="backwards"):
        sim.advance(-1)


def test_sim_host_implements_the_host_seam(tmp_path: Path) -> None:
    host = SimHost(cluster(tmp_path), "erdbeere")
    assert isinstance(host, Host)
    assert host.node == "erdbeere"


def test_files_live_per_node(tmp_path: Path) -> None:
    directory = cluster(tmp_path)
    one, two = SimHost(directory, "erdbeere"), SimHost(directory, "himbeere")
    one.write_file("/etc/xen/vm100.cfg", "name = 'vm100'\n", mode=0o600)
    assert one.read_file("/etc/xen/vm100.cfg") == "name = 'vm100'\n"
    assert two.read_file("/etc/xen/vm100.cfg") is None
    assert one.list_dir("/etc/xen") == ("vm100.cfg", "xl.conf")
    assert one.list_dir("/etc") == ("lvm", "xen")
    one.remove_file("/etc/xen/vm100.cfg")
    one.remove_file("/etc/xen/vm100.cfg")
    assert one.list_dir("/etc/xen") == ("xl.conf",)
    assert one.list_dir("/etc/nothing") == ()


def test_proc_mounts_is_served_from_state(tmp_path: Path) -> None:
    host = SimHost(cluster(tmp_path), "erdbeere")
    mounts = host.read_file("/proc/self/mounts")
    assert mounts is not None
    assert " / ext4 " in mounts
    assert "mounts" in host.list_dir("/proc")


def test_unknown_programs_answer_like_a_shell(tmp_path: Path) -> None:
    result = SimHost(cluster(tmp_path), "erdbeere").run(["frobnicate", "--now"])
    assert (result.returncode, result.not_found) == (127, True)
    assert result.stderr == "frobnicate: command not found\n"


def test_the_command_log_marks_what_changed_something(tmp_path: Path) -> None:
    directory = cluster(tmp_path)
    host = SimHost(directory, "erdbeere")
    ok(host, "lvcreate", "-L", "1G", "-n", "root100", "vg-sda")
    ok(host, "lvs")
    host.run(["lvcreate", "-L", "1G", "-n", "root100", "vg-sda"])
    log = SimCluster(directory).read_log()
    assert [(e["argv"][0], e["exit"], e["mutating"]) for e in log] == [
        ("lvcreate", 0, True), ("lvs", 0, False), ("lvcreate", 5, False)]
    assert all(e["node"] == "erdbeere" for e in log)


def test_a_failed_command_leaves_no_half_done_change(tmp_path: Path) -> None:
    directory = cluster(tmp_path)
    host = SimHost(directory, "erdbeere")
    host.write_file("/etc/xen/vm1.cfg", 'name = "vm1"\nmemory = 512\ndisk = [ "phy:/dev/vg-sda/nope,xvda,w" ]\n')
    before = SimCluster(directory).read()
    result = host.run(["xl", "create", "/etc/xen/vm1.cfg"])
    assert result.returncode == 3
    assert "Domain 1:unable to add disk devices" in result.stderr, "a domain id was handed out, then taken back"
    assert SimCluster(directory).read() == before


def _lv_key(state: dict[str, Any], node: str, vg: str, lv: str) -> str:
    return "lv:" + state["nodes"][node]["vgs"][vg]["lvs"][lv]["uuid"]


def test_resolve_device_names_lvs_mapper_paths_and_dm_numbers(tmp_path: Path) -> None:
    directory = cluster(tmp_path)
    host = SimHost(directory, "erdbeere")
    ok(host, "lvcreate", "-L", "1G", "-n", "root-100", "vg-sda")
    state = SimCluster(directory).read()
    key = _lv_key(state, "erdbeere", "vg-sda", "root-100")
    assert resolve_device(state, "erdbeere", "/dev/vg-sda/root-100") == key
    assert resolve_device(state, "erdbeere", "/dev/mapper/vg--sda-root--100") == key
    assert resolve_device(state, "erdbeere", "/dev/dm-0") == key
    assert resolve_device(state, "himbeere", "/dev/vg-sda/root-100") is None
    assert resolve_device(state, "erdbeere", "/dev/sda") == "pv:erdbeere:/dev/sda"
    assert device_number(state, "erdbeere", "/dev/vg-sda/root-100") == "253:0"
    assert device_number(state, "erdbeere", "/dev/sdb") == "8:16"
    assert device_size(state, "erdbeere", "/dev/mapper/vg--sda-root--100") == GIB


def test_mapper_names_double_dashes() -> None:
    assert mapper_name("vg-sda", "root-100") == "vg--sda-root--100"
    assert split_mapper_name("vg--sda-root--100") == ("vg-sda", "root-100")
    assert split_mapper_name("root100") is None


def test_a_stripe_finds_its_content_again_after_it_is_recreated(tmp_path: Path) -> None:
    directory = cluster(tmp_path)
    host = SimHost(directory, "erdbeere")
    for vg in ("vg-sda", "vg-sdb"):
        ok(host, "lvcreate", "-L", "1G", "-n", "root100", vg)
    table = "0 4194304 striped 2 128 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0\n"
    ok(host, "dmsetup", "create", "root100", "--uuid", "RECONCILER-root100", stdin=table)
    ok(host, "mkfs.xfs", "-q", "/dev/mapper/root100")
    with SimCluster(directory).transaction() as state:
        key = resolve_device(state, "erdbeere", "/dev/mapper/root100")
        assert key is not None
        assert key.startswith("striped:128:lv:")
        content(state, key)["drbd_md"] = {"device_uuid": "0123456789ABCDEF"}
        uuid = content(state, key)["signature"]["uuid"]
    ok(host, "dmsetup", "remove", "root100")
    ok(host, "dmsetup", "create", "root100", "--uuid", "RECONCILER-root100", stdin=table)
    state = SimCluster(directory).read()
    again = resolve_device(state, "erdbeere", "/dev/mapper/root100")
    assert again == key
    assert content(state, key)["signature"]["uuid"] == uuid
    assert content(state, key)["drbd_md"] == {"device_uuid": "0123456789ABCDEF"}


def test_open_count_sees_dm_legs_mounts_and_domains(tmp_path: Path) -> None:
    directory = cluster(tmp_path)
    host = SimHost(directory, "erdbeere")
    ok(host, "lvcreate", "-L", "1G", "-n", "root100", "vg-sda")
    state = SimCluster(directory).read()
    assert open_count(state, "erdbeere", "/dev/vg-sda/root100") == 0
    ok(host, "dmsetup", "create", "x", stdin="0 2097152 linear 253:0 0\n")
    state = SimCluster(directory).read()
    assert open_count(state, "erdbeere", "/dev/vg-sda/root100") == 1
    assert open_count(state, "erdbeere", "/dev/mapper/x") == 0


def test_snapshot_is_reused_until_the_state_changes(tmp_path: Path) -> None:
    cluster = SimCluster.init(tmp_path / "c", ["erdbeere", "himbeere"], {"vg-sda": 400 * GIB})
    first = cluster.snapshot()
    assert cluster.snapshot() is first  # unchanged state: no second parse
    host = SimHost(str(tmp_path / "c"), "erdbeere")
    host.write_file("/etc/xen/vm100.cfg", "name = 'vm100'\n")
    # Another process's (here: another object's) write is seen at once, read as a change of that one row.
    assert cluster.snapshot()["nodes"]["erdbeere"]["files"]["/etc/xen/vm100.cfg"]["content"] == "name = 'vm100'\n"
    assert SimHost(str(tmp_path / "c"), "erdbeere").read_file("/etc/xen/vm100.cfg") == "name = 'vm100'\n"
    assert host.read_file("/etc/xen/vm100.cfg") == "name = 'vm100'\n"

"""Injected faults: failing and hanging commands, crashes, reboots, partitions and failed disks."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.sim import faults
from reconciler.sim.host import SimHost
from reconciler.sim.state import SimCluster, can_talk, content, resolve_device
from tests.sim.storage_helpers import cluster, ok


@pytest.fixture
def sim(tmp_path: Path) -> Path:
    return cluster(tmp_path, vgs=("vg-sda", "vg-sdb"))


def _add(sim: Path, kind: str, **kwargs: object) -> None:
    with SimCluster(sim).transaction() as state:
        faults.add_fault(state, kind, **kwargs)  # type: ignore[arg-type]


def test_transient_count_fails_the_next_calls_then_recovers(sim: Path) -> None:
    _add(sim, "transient", node="erdbeere", prefix=["lvcreate"], count=2)
    host = SimHost(sim, "erdbeere")
    argv = ["lvcreate", "-L", "1G", "-n", "root100", "vg-sda"]
    first, second = host.run(argv), host.run(argv)
    assert (first.returncode, second.returncode) == (5, 5)
    assert "Resource temporarily unavailable" in first.stderr
    ok(host, *argv)
    ok(SimHost(sim, "himbeere"), *argv)


def test_transient_rate_is_reproducible_with_its_seed(tmp_path: Path) -> None:
    outcomes = []
    for attempt in ("a", "b"):
        directory = cluster(tmp_path / attempt, nodes=("erdbeere",), vgs=("vg-sda",))
        _add(directory, "transient", prefix=["lvs"], rate=0.5, seed=7)
        host = SimHost(directory, "erdbeere")
        outcomes.append([host.run(["lvs"]).returncode for _ in range(40)])
    assert outcomes[0] == outcomes[1]
    assert 5 < outcomes[0].count(5) < 35


def test_permanent_fault_with_a_custom_message_and_a_regex(sim: Path) -> None:
    _add(sim, "permanent", regex=r"^drbdadm primary", exit_code=11, message="vm100: State change failed")
    host = SimHost(sim, "himbeere")
    for _ in range(3):
        result = host.run(["drbdadm", "primary", "vm100"])
        assert (result.returncode, result.stderr) == (11, "vm100: State change failed\n")
    assert host.run(["drbdadm", "secondary", "vm100"]).stderr != "vm100: State change failed\n"


def test_a_hang_charges_the_callers_timeout_to_simulated_time(sim: Path) -> None:
    _add(sim, "hang", node="erdbeere", prefix=["xl", "list"])
    host = SimHost(sim, "erdbeere")
    result = host.run(["xl", "list"], timeout=30)
    assert (result.returncode, result.timed_out) == (124, True)
    assert SimCluster(sim).read()["time"] == 30.0
    assert ok(host, "xl", "info").stdout.startswith("host ")


def test_faulted_commands_change_nothing_and_are_logged(sim: Path) -> None:
    _add(sim, "permanent", prefix=["lvcreate"])
    SimHost(sim, "erdbeere").run(["lvcreate", "-L", "1G", "-n", "x", "vg-sda"])
    state = SimCluster(sim).read()
    assert state["nodes"]["erdbeere"]["vgs"]["vg-sda"]["lvs"] == {}
    assert state["faults"][0]["fired"] == 1
    assert SimCluster(sim).read_log()[-1]["exit"] == 5


def test_bad_fault_definitions_are_refused(sim: Path) -> None:
    with SimCluster(sim).transaction() as state:
        with pytest.raises(faults.FaultError, match="--count N or --rate R"):
            faults.add_fault(state, "transient", prefix=["lvs"])
        with pytest.raises(faults.FaultError, match="prefix or a regex"):
            faults.add_fault(state, "permanent")
        with pytest.raises(faults.FaultError, match="not part of the simulated cluster"):
            faults.add_fault(state, "hang", node="nobody", prefix=["lvs"])
        with pytest.raises(faults.FaultError, match="invalid regex"):
            faults.add_fault(state, "hang", regex="(")


def test_crash_loses_runtime_state_and_keeps_disks(sim: Path) -> None:
    host = SimHost(sim, "erdbeere")
    for vg in ("vg-sda", "vg-sdb"):
        ok(host, "lvcreate", "-L", "1G", "-n", "root100", vg)
    ok(host, "dmsetup", "create", "root100", stdin="0 4194304 striped 2 128 /dev/vg-sda/root100 0 "
                                                   "/dev/vg-sdb/root100 0\n")
    ok(host, "mkfs.xfs", "-q", "/dev/mapper/root100")
    ok(host, "mount", "/dev/mapper/root100", "/mnt")
    host.write_file("/etc/xen/vm1.cfg", 'name = "vm1"\nmemory = 512\n')
    ok(host, "xl", "create", "/etc/xen/vm1.cfg")
    boot_id = SimCluster(sim).read()["nodes"]["erdbeere"]["boot_id"]
    with SimCluster(sim).transaction() as state:
        faults.crash(state, "erdbeere")
    down = host.run(["lvs"])
    assert (down.returncode, down.stderr) == (255, "erdbeere: node is down (simulated crash)\n")
    with SimCluster(sim).transaction() as state:
        faults.boot(state, "erdbeere")
    node = SimCluster(sim).read()["nodes"]["erdbeere"]
    assert node["boot_id"] != boot_id
    assert (node["dm"], node["domains"], node["mounts"]) == ({}, {}, [])
    assert set(node["vgs"]["vg-sda"]["lvs"]) == {"root100"}
    assert host.read_file("/etc/xen/vm1.cfg") == 'name = "vm1"\nmemory = 512\n'
    ok(host, "dmsetup", "create", "root100", stdin="0 4194304 striped 2 128 /dev/vg-sda/root100 0 "
                                                   "/dev/vg-sdb/root100 0\n")
    assert "TYPE=xfs" in ok(host, "blkid", "-p", "-o", "export", "/dev/mapper/root100").stdout


def test_reboot_hooks_run_at_a_crash(sim: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.sim import state as simstate

    seen: list[str] = []
    monkeypatch.setattr(simstate, "_reboot_hooks", [lambda state, node: seen.append(node)])
    with SimCluster(sim).transaction() as state:
        faults.reboot(state, "himbeere")
        assert state["nodes"]["himbeere"]["up"]
    assert seen == ["himbeere"]


def test_partition_and_heal(sim: Path) -> None:
    with SimCluster(sim).transaction() as state:
        faults.partition(state, "himbeere", "erdbeere")
        faults.partition(state, "erdbeere", "himbeere")
        assert state["network"]["cut"] == [["erdbeere", "himbeere"]]
        assert not can_talk(state, "erdbeere", "himbeere")
        faults.heal(state, "himbeere", "erdbeere")
        assert can_talk(state, "erdbeere", "himbeere")
        faults.partition(state, "erdbeere", "himbeere")
        faults.clear(state)
        assert can_talk(state, "erdbeere", "himbeere")
        faults.crash(state, "himbeere")
        assert not can_talk(state, "erdbeere", "himbeere")


def test_disk_failure_marks_the_content_and_calls_the_hooks(sim: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.sim import state as simstate

    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(simstate, "_disk_failure_hooks", [lambda state, node, key: seen.append((node, key))])
    ok(SimHost(sim, "erdbeere"), "lvcreate", "-L", "1G", "-n", "root100", "vg-sda")
    with SimCluster(sim).transaction() as state:
        key = faults.disk_fail(state, "erdbeere", "vg-sda/root100")
        assert content(state, key)["failed"] is True
        assert resolve_device(state, "erdbeere", "/dev/vg-sda/root100") == key
        with pytest.raises(faults.FaultError, match="no device"):
            faults.disk_fail(state, "erdbeere", "vg-sda/nope")
    assert seen == [("erdbeere", key)]


def test_boot_renumbers_lv_minors_vg_by_vg(sim: Path) -> None:
    host = SimHost(sim, "erdbeere")
    ok(host, "lvcreate", "-L", "1G", "-n", "zz", "vg-sdb")
    ok(host, "lvcreate", "-L", "1G", "-n", "aa", "vg-sda")
    ok(host, "dmsetup", "create", "x", stdin="0 2097152 linear /dev/vg-sdb/zz 0\n")
    assert ok(host, "dmsetup", "table", "x").stdout == "0 2097152 linear 253:0 0\n"
    with SimCluster(sim).transaction() as state:
        faults.reboot(state, "erdbeere")
    ok(host, "dmsetup", "create", "x", stdin="0 2097152 linear /dev/vg-sdb/zz 0\n")
    assert ok(host, "dmsetup", "table", "x").stdout == "0 2097152 linear 253:1 0\n"
    assert ok(host, "dmsetup", "info", "-c", "--noheadings", "-o", "name,minor", "x").stdout == "x      2\n"


@pytest.mark.parametrize("code", [0, 256, 999, -1])
def test_an_exit_code_no_process_can_return_is_refused(sim: Path, code: int) -> None:
    with SimCluster(sim).transaction() as state, pytest.raises(faults.FaultError, match="exit code must be 1 to 255"):
        faults.add_fault(state, "permanent", prefix=["lvs"], exit_code=code)
    assert SimCluster(sim).read().get("faults", []) == []

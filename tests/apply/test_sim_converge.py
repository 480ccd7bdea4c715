"""Integration on the simulator with the example desired state: bring-up, idempotence, faults."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.observe.observer import MAX_COMMANDS_PER_PASS
from reconciler.sim import faults, oracle
from reconciler.sim.state import SimCluster
from tests.apply.simlab import GIB, NODES, SimLab, edit_vm, init_cluster
from tests.conftest import EXAMPLE_DIR


@pytest.fixture
def lab(tmp_path: Path) -> SimLab:
    init_cluster(tmp_path / "sim")
    return SimLab(tmp_path / "sim")


def _mutating_since(lab: SimLab, mark: int) -> list[dict[str, object]]:
    return [e for e in lab.log()[mark:] if e.get("mutating")]


def test_both_nodes_converge_and_a_second_pass_runs_no_mutating_command(lab: SimLab) -> None:
    last = lab.converge()
    for node in NODES:
        assert last[node].plan.is_empty, (node, [a.id for a in last[node].plan.actions])
    state = lab.cluster.read()
    running = {node: set(state["nodes"][node]["domains"]) for node in NODES}
    assert running == {"erdbeere": {"vm100"}, "himbeere": {"vm101"}}
    assert oracle.check(state) == []
    mark = len(lab.log())
    for node in NODES:
        step = lab.apply(node)
        assert step.plan.is_empty
        assert step.result is not None
        assert step.result.outcome == "converged"
        assert step.observed.commands_run <= MAX_COMMANDS_PER_PASS
    assert _mutating_since(lab, mark) == []


def test_transient_fault_is_retried_and_converges(lab: SimLab) -> None:
    with lab.cluster.transaction() as state:
        faults.add_fault(state, "transient", node="erdbeere", prefix=["lvcreate"], count=2)
    step = lab.apply("erdbeere")
    assert step.result is not None
    first = step.result.actions[0]
    assert first.kind == "create-lv"
    assert first.result == "ok"
    assert first.attempts == 3
    assert step.result.retries >= 2
    assert len(lab.sleeps) >= 2  # waited on the injected clock, never for real
    last = lab.converge()
    assert all(s.plan.is_empty for s in last.values())


def test_permanent_fault_skips_dependents_and_the_other_vm_converges(lab: SimLab) -> None:
    with lab.cluster.transaction() as state:
        faults.add_fault(state, "permanent", node="erdbeere", prefix=["dmsetup", "create", "root100"])
    step = lab.apply("erdbeere")
    assert step.result is not None
    records = {(r.kind, r.vm): r for r in step.result.actions}
    assert records[("create-stripe", "vm100")].result == "failed"
    assert records[("create-md", "vm100")].result == "skipped"
    assert "create-stripe@dm:root100 failed" in records[("drbd-up", "vm100")].message
    assert records[("drbd-up", "vm101")].result == "ok"
    assert step.result.outcome == "failed"
    for _ in range(3):
        lab.apply("himbeere")
        lab.apply("erdbeere")
        lab.cluster.advance(3600)
    state = lab.cluster.read()
    assert "vm101" in state["nodes"]["himbeere"]["domains"]
    assert "vm100" not in state["nodes"]["erdbeere"]["domains"]
    status = {r.key: r.phase for r in lab.apply("erdbeere").result.resources}  # type: ignore[union-attr]
    assert status["dm:root100"] == "failed"
    assert status["drbd:vm101"] == "ready"


def _drbd84_lab(tmp_path: Path) -> SimLab:
    """The example desired state on a simulated DRBD 8.4 pair."""
    desired = tmp_path / "desired"
    shutil.copytree(EXAMPLE_DIR, desired)
    cluster = desired / "cluster.yaml"
    cluster.write_text(cluster.read_text().replace('drbd_version: "9"', 'drbd_version: "8.4"'))
    SimCluster.init(tmp_path / "sim", list(NODES), dict.fromkeys(("vg-sda", "vg-sdb", "vg-sdc"), 400 * GIB),
                    drbd_version="8.4")
    return SimLab(tmp_path / "sim", desired_dir=desired)


def test_drbd_84_cluster_converges_too(tmp_path: Path) -> None:
    lab = _drbd84_lab(tmp_path)
    last = lab.converge()
    assert all(s.plan.is_empty for s in last.values())
    state = lab.cluster.read()
    assert {node: set(state["nodes"][node]["domains"]) for node in NODES} == {"erdbeere": {"vm100"},
                                                                              "himbeere": {"vm101"}}
    assert oracle.check(state) == []


def test_drbd_84_growth_reaches_drbd_through_the_sysfs_size(tmp_path: Path) -> None:
    # /proc/drbd of 8.4 has no sizes: without the sysfs size a grown stripe was "converged" while DRBD kept
    # its old size (found on real DRBD 8.4 in the lab, scenario 3).
    lab = _drbd84_lab(tmp_path)
    lab.converge()
    sizes = {node: lab.host(node).read_file("/sys/devices/virtual/block/drbd0/size") for node in NODES}
    assert all(sizes.values()), sizes
    edit_vm(lab, "vm100", r"^  size: 100G", "  size: 120G")
    mark = len(lab.log())
    last = lab.converge()
    assert all(s.plan.is_empty for s in last.values())
    resizes = [(e["node"], e["argv"]) for e in lab.log()[mark:] if e["argv"][:2] == ["drbdadm", "resize"]]
    assert resizes == [("erdbeere", ["drbdadm", "resize", "vm100"])]
    grown = {node: lab.host(node).read_file("/sys/devices/virtual/block/drbd0/size") for node in NODES}
    for node in NODES:
        assert int(grown[node] or 0) > int(sizes[node] or 0) + 50 * GIB // 512, (sizes, grown)

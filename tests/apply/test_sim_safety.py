"""The safety classes on the simulator with the example desired state, end to end through the real
command builders, parsers, planner and executor: each was once a path the simulator's leniency hid."""

from __future__ import annotations

import pytest

from reconciler.sim import faults
from reconciler.sim.host import SimHost
from tests.apply.simlab import SimLab, edit_vm


@pytest.fixture
def lab(converged_lab: SimLab) -> SimLab:
    return converged_lab


def _run(lab: SimLab, node: str, *argv: str) -> None:
    result = SimHost(lab.directory, node).run(list(argv), timeout=30)
    assert result.ok, result.describe()


def _mutating(lab: SimLab, mark: int, node: str) -> list[list[str]]:
    return [e["argv"] for e in lab.log()[mark:] if e["node"] == node and e.get("mutating")]


def test_split_brain_is_reported_on_both_nodes_and_nothing_is_adjusted_or_reconnected(lab: SimLab) -> None:
    with lab.cluster.transaction() as state:
        faults.partition(state, "erdbeere", "himbeere")
    lab.cluster.advance(10)
    # An operator promotes the cut-off secondary by hand and starts the VM there too; both sides write.
    _run(lab, "himbeere", "drbdadm", "primary", "--force", "vm100")
    _run(lab, "himbeere", "xl", "create", "/etc/xen/vm100.cfg")
    lab.cluster.advance(10)
    with lab.cluster.transaction() as state:
        faults.heal(state)
    lab.cluster.advance(10)
    mark = len(lab.log())
    for _ in range(3):  # every pass, not only the first one
        for node in ("erdbeere", "himbeere"):
            step = lab.apply(node)
            assert step.result is not None
            res = step.observed.drbd.resource("vm100")
            assert res is not None
            assert res.split_brain, f"{node} does not see the split brain"
            assert step.result.outcome != "converged"
            drbd = next(r for r in step.result.resources if r.key == "drbd:vm100")
            assert drbd.phase == "degraded"
            assert "split brain" in drbd.reason
            assert "--discard-my-data" in drbd.reason
    for node in ("erdbeere", "himbeere"):
        ran = _mutating(lab, mark, node)
        assert not [a for a in ran if a[:2] in (["drbdadm", "adjust"], ["drbdadm", "connect"])], ran


def test_a_failed_backing_disk_on_the_primary_is_not_converged(lab: SimLab) -> None:
    """on-io-error detach: the primary goes Diskless and writes through the peer; that is not healthy."""
    with lab.cluster.transaction() as state:
        faults.disk_fail(state, "erdbeere", "/dev/vg-sdb/root100")
    lab.cluster.advance(5)
    for _ in range(2):
        step = lab.apply("erdbeere")
        assert step.result is not None
        res = step.observed.drbd.resource("vm100")
        assert res is not None
        assert step.result.outcome != "converged", [d.disk_state for d in res.devices]
        drbd = next(r for r in step.result.resources if r.key == "drbd:vm100")
        assert drbd.phase != "ready"


def test_a_layout_change_of_a_running_vm_is_refused_and_survives_a_reboot(lab: SimLab) -> None:
    before = (lab.desired_dir / "vms" / "vm100.yaml").read_text()
    edit_vm(lab, "vm100", r"^  layout: dm-striped", "  layout: linear")
    edit_vm(lab, "vm100", r"^  volume_groups: \[vg-sda, vg-sdb, vg-sdc\]\n  stripes: 3", "  volume_groups: [vg-sda]")
    edit_vm(lab, "vm100", r"^  chunk_sectors: 64\n", "")
    edit_vm(lab, "vm100", r"^  size: 100G", "  size: 300G")
    assert (lab.desired_dir / "vms" / "vm100.yaml").read_text() != before
    mark = len(lab.log())
    step = lab.apply("erdbeere")
    assert step.result is not None
    assert [r.vm for r in step.plan.refused_vms] == ["vm100"]
    assert "backing device would change" in step.plan.refused_vms[0].reason
    with lab.cluster.transaction() as state:
        faults.reboot(state, "erdbeere")
    for _ in range(2):
        step = lab.apply("erdbeere")
        assert [r.vm for r in step.plan.refused_vms] == ["vm100"]
    ran = _mutating(lab, mark, "erdbeere")
    assert not [a for a in ran if "create-md" in a or a[0] in ("mkfs.xfs", "wipefs")], ran
    assert not any(a[:2] == ["drbdadm", "adjust"] for a in ran)

"""The safety classes on the simulator with the example desired state, end to end through the real
command builders, parsers, planner and executor: each was once a path the simulator's leniency hid."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.sim import faults
from reconciler.sim.host import SimHost
from tests.apply.simlab import SimLab, edit_vm, init_cluster, run_on


@pytest.fixture
def lab(converged_lab: SimLab) -> SimLab:
    return converged_lab


def _mutating(lab: SimLab, mark: int, node: str) -> list[list[str]]:
    return [e["argv"] for e in lab.log()[mark:] if e["node"] == node and e.get("mutating")]


def test_split_brain_is_reported_on_both_nodes_and_nothing_is_adjusted_or_reconnected(lab: SimLab) -> None:
    with lab.cluster.transaction() as state:
        faults.partition(state, "erdbeere", "himbeere")
    lab.cluster.advance(10)
    # An operator promotes the cut-off secondary by hand and starts the VM there too; both sides write.
    run_on(lab, "himbeere", "drbdadm", "primary", "--force", "vm100")
    run_on(lab, "himbeere", "xl", "create", "/etc/xen/vm100.cfg")
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


def test_an_id_change_keeping_minor_and_port_never_brings_a_second_resource_up(lab: SimLab) -> None:
    """The VM file keeps its minor and port but gets another id: every name changes (vm105, root105), and the
    old resource vm100 still runs on minor 0. The new one is refused; nothing is created for it."""
    old = lab.desired_dir / "vms" / "vm100.yaml"
    new = lab.desired_dir / "vms" / "vm105.yaml"
    new.write_text(old.read_text().replace("id: 100", "id: 105").replace('"00:16:3e:00:01:00"', '"00:16:3e:00:01:05"'))
    old.unlink()
    mark = len(lab.log())
    for node in ("erdbeere", "himbeere"):
        step = lab.apply(node)
        refused = {r.vm: r.reason for r in step.plan.refused_vms}
        assert "minor 0 (/dev/drbd0) is held by resource vm100" in refused["vm105"], refused
        assert not [a for a in step.plan.actions if a.vm == "vm105"]
        ran = _mutating(lab, mark, node)
        assert not [a for a in ran if any("105" in w for w in a)], ran
    assert lab.cluster.read()["nodes"]["erdbeere"]["domains"]["vm100"]["state"] == "running"


def test_lvs_made_by_hand_with_a_filesystem_on_a_leg_are_never_written_over(tmp_path: Path) -> None:
    """Someone made the LVs under vm100's names before its first bring-up; one leg holds a filesystem.
    Untagged, the VM is refused outright; tagged as ours (an operator handing them over), the leg probe
    before create-md refuses, because a signature on leg 1 is invisible through the stripe."""
    def made_by_hand(directory: Path, *tag: str) -> SimLab:
        init_cluster(directory)
        lab = SimLab(directory)
        for vg in ("vg-sda", "vg-sdb", "vg-sdc"):
            run_on(lab, "erdbeere", "lvcreate", "--yes", *tag, "-L", "100G", "-n", "root100", vg)
        run_on(lab, "erdbeere", "mkfs.xfs", "/dev/vg-sdb/root100")
        return lab

    untagged = made_by_hand(tmp_path / "untagged")
    step = untagged.apply("erdbeere")
    assert "was not created by this project" in {r.vm: r.reason for r in step.plan.refused_vms}["vm100"]
    lab = made_by_hand(tmp_path / "tagged", "--addtag", "reconciler")
    mark = len(lab.log())
    for _ in range(2):
        step = lab.apply("erdbeere")
        assert step.result is not None
        md = next(r for r in step.result.actions if r.kind == "create-md")
        assert md.result == "refused"
        assert "/dev/vg-sdb/root100 beneath /dev/mapper/root100 carries a xfs signature" in md.message
    ran = _mutating(lab, mark, "erdbeere")
    vm100 = ("vm100", "/dev/drbd0", "/dev/mapper/root100", "/dev/vg-sda/root100", "/dev/vg-sdb/root100",
             "/dev/vg-sdc/root100")
    assert not [a for a in ran if ("create-md" in a or a[0] in ("mkfs.xfs", "wipefs")) and a[-1] in vm100], ran
    assert ["drbdadm", "create-md", "--force", "vm101"] in ran  # the rest of the revision still converges
    probe = SimHost(lab.directory, "erdbeere").run(["blkid", "-p", "-o", "export", "/dev/vg-sdb/root100"], timeout=30)
    assert "TYPE=xfs" in probe.stdout


def test_the_mass_deletion_guard_holds_the_vms_it_covers_whole(lab: SimLab) -> None:
    edit_vm(lab, "vm100", r"^lifecycle: present", "lifecycle: deleted\nconfirm_delete: vm100\n#")
    edit_vm(lab, "vm101", r"^primary: himbeere$", "primary: himbeere\nlifecycle: deleted\nconfirm_delete: vm101")
    mark = len(lab.log())
    for node in ("erdbeere", "himbeere"):
        step = lab.apply(node)
        assert step.result is not None
        assert {r.result for r in step.result.actions} <= {"refused", "skipped"}
        assert _mutating(lab, mark, node) == []
    domains = {n: set(lab.cluster.read()["nodes"][n]["domains"]) for n in ("erdbeere", "himbeere")}
    assert "vm100" in domains["erdbeere"]
    assert "vm101" in domains["himbeere"]

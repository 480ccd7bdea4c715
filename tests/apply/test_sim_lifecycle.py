"""Growth, reboot and deletion on the simulator, with the example desired state."""

from __future__ import annotations

import pytest

from reconciler.sim import faults, oracle
from tests.apply.simlab import NODES, SimLab, edit_vm


@pytest.fixture
def lab(converged_lab: SimLab) -> SimLab:
    return converged_lab


def commands_since(lab: SimLab, mark: int, node: str) -> list[list[str]]:
    return [e["argv"] for e in lab.log()[mark:] if e["node"] == node and e.get("mutating")]


def test_growth_extends_reloads_and_resizes_once_both_nodes_grew(lab: SimLab) -> None:
    edit_vm(lab, "vm100", r"^  size: 100G", "  size: 120G")
    mark = len(lab.log())
    first = lab.apply("erdbeere")
    kinds = [a.kind for a in first.plan.actions]
    assert kinds.count("extend-lv") == 3
    assert "reload-stripe" in kinds
    resize = next(a for a in first.plan.actions if a.kind == "drbd-resize")
    assert "has not grown" in resize.waiting
    ran = commands_since(lab, mark, "erdbeere")
    assert [a[:2] for a in ran if a[0] == "dmsetup"] == [["dmsetup", "reload"], ["dmsetup", "resume"]]
    assert not any(a[:2] == ["drbdadm", "resize"] for a in ran)
    second = lab.apply("himbeere")
    assert second.result is not None
    waiting = next(a for a in second.plan.actions if a.kind == "drbd-resize")
    assert "the designated primary erdbeere resizes it" in waiting.waiting
    assert not any(a[:2] == ["drbdadm", "resize"] for a in commands_since(lab, mark, "himbeere"))
    third = lab.apply("erdbeere")
    assert third.result is not None
    assert "drbd-resize" in [r.kind for r in third.result.actions if r.result == "ok"]
    assert any(n.kind == "filesystem-growth" for n in third.plan.notes)
    resizes = [a for node in NODES for a in commands_since(lab, mark, node) if a[:2] == ["drbdadm", "resize"]]
    assert len(resizes) == 1
    for node in NODES:
        assert lab.apply(node).plan.is_empty, node


def test_reboot_recreates_stripes_never_metadata_and_restarts_the_domain(lab: SimLab) -> None:
    with lab.cluster.transaction() as state:
        faults.reboot(state, "erdbeere")
    assert "vm100" not in lab.cluster.read()["nodes"]["erdbeere"]["domains"]
    mark = len(lab.log())
    last = lab.converge()
    assert all(s.plan.is_empty for s in last.values())
    ran = commands_since(lab, mark, "erdbeere")
    assert ["dmsetup", "create", "root100", "--uuid", "RECONCILER-root100"] in ran
    assert not any("create-md" in a for a in ran)
    assert not any(a[0] in ("mkfs.xfs", "mkswap", "lvcreate") for a in ran)
    assert ["xl", "create", "/etc/xen/vm100.cfg"] in ran
    assert oracle.check(lab.cluster.read()) == []


def test_deleted_vm_is_torn_down_in_order_on_both_nodes(lab: SimLab) -> None:
    edit_vm(lab, "vm101", r"^primary: himbeere$", "primary: himbeere\nlifecycle: deleted\nconfirm_delete: vm101")
    mark = len(lab.log())
    for _ in range(3):
        for node in ("himbeere", "erdbeere"):
            lab.apply(node)
    for node in NODES:
        ran = commands_since(lab, mark, node)
        state = lab.cluster.read()["nodes"][node]
        assert "vm101" not in state["domains"]
        assert "root101" not in state["vgs"]["vg-sdb"]["lvs"]
        assert "/etc/drbd.d/vm101.res" not in state["files"]
        down = ran.index(["drbdadm", "down", "vm101"])
        removes = [i for i, a in enumerate(ran) if a[0] == "lvremove"]
        assert removes
        assert min(removes) > down
        assert lab.apply(node).plan.is_empty
    assert ["xl", "shutdown", "-w", "vm101"] in commands_since(lab, mark, "himbeere")
    # vm100 was never touched.
    assert "vm100" in lab.cluster.read()["nodes"]["erdbeere"]["domains"]


def test_vanished_vm_file_is_reported_as_orphan_and_left_alone(lab: SimLab) -> None:
    (lab.desired_dir / "vms" / "vm101.yaml").unlink()
    mark = len(lab.log())
    step = lab.apply("himbeere")
    assert step.plan.is_empty
    assert {"drbd:vm101", "domain:vm101"} <= {n.key for n in step.plan.notes if n.kind == "orphan"}
    assert commands_since(lab, mark, "himbeere") == []


def test_domain_is_not_started_while_dom0_has_its_filesystem_mounted(lab: SimLab) -> None:
    host = lab.host("erdbeere")
    assert host.run(["xl", "shutdown", "-w", "vm100"]).ok
    assert host.run(["mount", "/dev/drbd0", "/mnt"]).ok
    step = lab.apply("erdbeere")
    assert step.result is not None
    start = next(r for r in step.result.actions if r.kind == "start-domain")
    assert start.result == "refused"
    assert "/dev/drbd0 is mounted in dom0" in start.message
    assert "vm100" not in lab.cluster.read()["nodes"]["erdbeere"]["domains"]
    assert host.run(["umount", "/mnt"]).ok
    lab.apply("erdbeere")
    assert "vm100" in lab.cluster.read()["nodes"]["erdbeere"]["domains"]


@pytest.mark.parametrize(("vm", "old", "new"), [("vm100", "erdbeere", "himbeere"), ("vm101", "himbeere", "erdbeere")])
def test_moving_the_primary_hands_over_without_two_primaries(lab: SimLab, vm: str, old: str, new: str) -> None:
    # A VM that allows live migration is moved live, by the daemons only (test_live_migration_sim.py).
    path = lab.desired_dir / "vms" / f"{vm}.yaml"
    path.write_text(path.read_text().replace("  live_migration: true", "  live_migration: false"))
    edit_vm(lab, vm, rf"^primary: {old}$", f"primary: {new}")
    early = lab.apply(new)
    assert early.result is not None
    promote = next(r for r in early.result.actions if r.kind == "promote")
    assert promote.result == "waiting"
    assert "Primary" in promote.message
    handed = lab.apply(old)
    assert [a.kind for a in handed.plan.actions] == ["shutdown-domain", "demote"]
    lab.apply(new)
    state = lab.cluster.read()
    assert vm in state["nodes"][new]["domains"]
    assert vm not in state["nodes"][old]["domains"]
    assert oracle.check(state) == []
    for node in NODES:
        assert lab.apply(node).plan.is_empty, node


def test_a_one_shot_apply_never_moves_a_vm_that_allows_live_migration_cold(lab: SimLab) -> None:
    assert "  live_migration: true" in (lab.desired_dir / "vms" / "vm101.yaml").read_text()
    edit_vm(lab, "vm101", r"^primary: himbeere$", "primary: erdbeere")
    mark = len(lab.log())
    for _ in range(2):
        for node in NODES:
            step = lab.apply(node)
    assert step.result is not None
    waiting = [r for r in lab.apply("himbeere").result.actions if r.kind == "open-migration-window"]  # type: ignore[union-attr]
    assert waiting
    assert waiting[0].result == "waiting"
    assert "RECONCILER_MIGRATE_TRANSPORT" in waiting[0].message
    assert commands_since(lab, mark, "himbeere") == []
    assert "vm101" in lab.cluster.read()["nodes"]["himbeere"]["domains"]


def test_deep_check_finds_runtime_options_the_observation_cannot_see(lab: SimLab) -> None:
    from reconciler.apply.oneshot import observe_and_plan
    from reconciler.desired.expand import expand_node
    from reconciler.desired.load import load_cluster

    host = lab.host("erdbeere")
    assert host.run(["drbdadm", "net-options", "--protocol=A", "vm100"]).ok
    desired = expand_node(load_cluster(str(lab.desired_dir)), "erdbeere")
    assert observe_and_plan(host, desired).plan.is_empty  # invisible to the normal pass
    deep = observe_and_plan(host, desired, deep=True).plan
    assert [a.kind for a in deep.actions] == ["drbd-adjust"]
    assert "protocol=C" in deep.actions[0].reason
    mark = len(lab.log())
    lab.apply("erdbeere")  # the normal pass does not repair it...
    assert not any(e["argv"][:2] == ["drbdadm", "adjust"] for e in lab.log()[mark:])
    from reconciler.apply.oneshot import converge_once

    step = converge_once(host, desired, deep=True)
    assert step.result is not None
    assert [(r.kind, r.result) for r in step.result.actions] == [("drbd-adjust", "ok")]
    assert observe_and_plan(host, desired, deep=True).plan.is_empty
    again = converge_once(host, desired, deep=True)
    assert again.result is not None
    assert again.result.converged

"""The pure planner on hand-built desired and observed values."""

from __future__ import annotations

from reconciler.core.action_registry import spec
from reconciler.core.peer_view import PeerView
from reconciler.core.plan_model import Plan
from reconciler.model.observed import (
    DmDevice,
    DmTarget,
    DomainState,
    DrbdState,
    ObservedNode,
    OwnedFile,
    ToolStatus,
)
from reconciler.plan.diff import plan_node
from tests.plan.factories import GIB, converged, empty_observed, make_node, make_vm


def kinds(plan: Plan) -> list[str]:
    return [a.kind for a in plan.actions]


def test_converged_node_plans_nothing() -> None:
    desired = make_node(make_vm(100), make_vm(101))
    plan = plan_node(desired, converged(desired))
    assert plan.is_empty
    assert plan.notes == ()


def test_converged_secondary_plans_nothing() -> None:
    desired = make_node(make_vm(100, node="himbeere"), node="himbeere")
    plan = plan_node(desired, converged(desired))
    assert plan.is_empty, [a.id for a in plan.actions]


def test_fresh_node_creates_everything_in_dependency_order() -> None:
    desired = make_node(make_vm(100))
    plan = plan_node(desired, empty_observed())
    order = kinds(plan)
    assert order.count("create-lv") == 4
    for before, after in [("create-lv", "create-stripe"), ("create-stripe", "create-md"),
                          ("write-drbd-config", "create-md"), ("create-md", "drbd-up"),
                          ("drbd-up", "promote"), ("make-fs", "start-domain"), ("write-xen-config", "start-domain")]:
        assert max(i for i, k in enumerate(order) if k == before) < order.index(after), (before, after)
    positions = {a.id: i for i, a in enumerate(plan.actions)}
    for action in plan.actions:
        assert all(positions[d] < positions[action.id] for d in action.depends_on)
    lv = plan.actions[0]
    assert lv.argvs[0] == ("lvcreate", "--yes", "--wipesignatures", "y", "--zero", "y", "--addtag", "reconciler",
                           "-L", f"{10 * GIB}b", "-n", "root100", "vg-sda")
    stripe = next(a for a in plan.actions if a.kind == "create-stripe")
    assert stripe.commands[0].argv == ("dmsetup", "create", "root100", "--uuid", "RECONCILER-root100")
    assert stripe.commands[0].stdin == f"0 {3 * 10 * GIB // 512} striped 3 128 /dev/vg-sda/root100 0 " \
                                       "/dev/vg-sdb/root100 0 /dev/vg-sdc/root100 0\n"
    md = next(a for a in plan.actions if a.kind == "create-md")
    assert md.probe_before == ("/dev/mapper/root100",)
    assert md.destructive
    fs = next(a for a in plan.actions if a.kind == "make-fs")
    assert fs.argvs == (("mkfs.xfs", "/dev/drbd0"),)
    assert fs.probe_before == ("/dev/drbd0",)
    # Promotion is decided from DRBD's state once it is up: waiting, not guessed.
    assert next(a for a in plan.actions if a.kind == "promote").waiting


def test_secondary_node_never_makes_the_filesystem_or_starts_the_domain() -> None:
    desired = make_node(make_vm(100, node="himbeere"), node="himbeere")
    plan = plan_node(desired, empty_observed("himbeere"))
    assert "make-fs" not in kinds(plan)
    assert "start-domain" not in kinds(plan)
    assert "promote" not in kinds(plan)
    assert "promote-force-initial" not in kinds(plan)


def _new_pair(connected: bool = True) -> tuple[Plan, Plan]:
    desired = make_node(make_vm(100))
    obs = converged(desired, role="Secondary", disk="Inconsistent", peer_disk="Inconsistent", peer_role="Secondary",
                    conn="Connected" if connected else "Connecting")
    obs = obs.model_copy(update={"domains": ()})
    return plan_node(desired, obs), plan_node(make_node(make_vm(100, node="himbeere"), node="himbeere"),
                                              obs.model_copy(update={"node": "himbeere"}))


def test_brand_new_connected_pair_is_force_promoted_on_the_designated_primary_only() -> None:
    primary, secondary = _new_pair()
    force = next(a for a in primary.actions if a.kind == "promote-force-initial")
    assert force.argvs == (("drbdadm", "primary", "--force", "vm100"),)
    assert not force.waiting
    assert not force.refused
    assert spec(force.kind).prechecks == ("forced-promotion",)
    assert "make-fs" in kinds(primary)
    assert not any(a.kind.startswith("promote") for a in secondary.actions)


def test_forced_promotion_never_while_disconnected() -> None:
    primary, _ = _new_pair(connected=False)
    force = next(a for a in primary.actions if a.kind == "promote-force-initial")
    assert "disconnected" in force.waiting
    start = next(a for a in primary.actions if a.kind == "start-domain")
    assert force.id in start.depends_on


def test_lv_growth_extends_every_leg_then_reloads_stripe() -> None:
    old = make_node(make_vm(100, leg_gib=10))
    new = make_node(make_vm(100, leg_gib=12))
    plan = plan_node(new, converged(old))
    assert kinds(plan).count("extend-lv") == 3
    reload = next(a for a in plan.actions if a.kind == "reload-stripe")
    assert [c.argv[:2] for c in reload.commands] == [("dmsetup", "reload"), ("dmsetup", "resume")]
    assert len(reload.depends_on) == 3
    extend = next(a for a in plan.actions if a.kind == "extend-lv")
    assert extend.argvs == (("lvextend", "-L", f"{12 * GIB}b", "vg-sda/root100"),)


def test_drbd_resize_waits_for_the_peer_then_runs_once_both_grew() -> None:
    old = make_node(make_vm(100, leg_gib=10))
    new = make_node(make_vm(100, leg_gib=12))
    grown = converged(new).model_copy(update={"drbd": converged(old).drbd})
    waiting = plan_node(new, grown)
    resize = next(a for a in waiting.actions if a.kind == "drbd-resize")
    assert resize.waiting
    assert "peer" in resize.waiting
    lagging = plan_node(new, grown, peer=PeerView(node="himbeere", backing_bytes={"vm100": 30 * GIB}))
    assert "has not grown" in next(a for a in lagging.actions if a.kind == "drbd-resize").waiting
    ready = plan_node(new, grown, peer=PeerView(node="himbeere", backing_bytes={"vm100": 36 * GIB}))
    resize = next(a for a in ready.actions if a.kind == "drbd-resize")
    assert not resize.waiting
    assert resize.argvs == (("drbdadm", "resize", "vm100"),)
    assert any(n.kind == "filesystem-growth" for n in ready.notes)
    # Once DRBD shows the new size, nothing is repeated.
    assert plan_node(new, converged(new), peer=PeerView(node="himbeere", backing_bytes={"vm100": 36 * GIB})).is_empty


def test_resize_runs_once_from_the_designated_primary() -> None:
    # One `drbdadm resize` grows both connected nodes; the other node waits for it instead of repeating it.
    old = make_node(make_vm(100, leg_gib=10, node="himbeere"), node="himbeere")
    new = make_node(make_vm(100, leg_gib=12, node="himbeere"), node="himbeere")
    grown = converged(new).model_copy(update={"drbd": converged(old).drbd})
    plan = plan_node(new, grown, peer=PeerView(node="erdbeere", backing_bytes={"vm100": 36 * GIB}))
    resize = next(a for a in plan.actions if a.kind == "drbd-resize")
    assert resize.waiting == "the designated primary erdbeere resizes it (DRBD grows both nodes at once)"
    assert resize.wait_for == "peer-state"
    assert not any(n.kind == "filesystem-growth" for n in plan.notes)


def test_resize_waits_while_disconnected() -> None:
    old = make_node(make_vm(100, leg_gib=10))
    new = make_node(make_vm(100, leg_gib=12))
    grown = converged(new).model_copy(update={"drbd": converged(old, conn="Connecting").drbd})
    plan = plan_node(new, grown, peer=PeerView(node="himbeere", backing_bytes={"vm100": 36 * GIB}))
    assert "not connected" in next(a for a in plan.actions if a.kind == "drbd-resize").waiting


def test_hand_edited_drbd_config_is_reported_rewritten_and_adjusted() -> None:
    desired = make_node(make_vm(100))
    obs = converged(desired)
    files = tuple(OwnedFile(path=f.path, content="# edited\n" if f.path.endswith(".res") else f.content)
                  for f in obs.files)
    plan = plan_node(desired, obs.model_copy(update={"files": files}))
    assert kinds(plan) == ["write-drbd-config", "drbd-adjust"]
    assert plan.actions[0].symbol == "~"
    assert plan.actions[0].file_content == desired.vms[0].drbd.config_text
    assert plan.actions[1].depends_on == (plan.actions[0].id,)
    assert any(n.kind == "drift" for n in plan.notes)


def test_drbd_runtime_drift_is_adjusted() -> None:
    desired = make_node(make_vm(100))
    plan = plan_node(desired, converged(desired, conn="StandAlone"))
    assert kinds(plan) == ["drbd-adjust"]
    assert plan.actions[0].argvs == (("drbdadm", "adjust", "vm100"),)
    detached = plan_node(desired, converged(desired, disk="Diskless"))
    assert "Diskless" in detached.actions[0].reason


def test_memory_change_within_max_is_live_beyond_max_needs_restart() -> None:
    desired = make_node(make_vm(100, memory=1536, vcpus=3))
    obs = converged(make_node(make_vm(100)))
    obs = obs.model_copy(update={"files": converged(desired).files})
    plan = plan_node(desired, obs)
    assert [a.argvs[0] for a in plan.actions] == [("xl", "mem-set", "vm100", "1536m"), ("xl", "vcpu-set", "vm100", "3")]
    too_big = make_node(make_vm(100, memory=4096))
    plan = plan_node(too_big, obs.model_copy(update={"files": converged(too_big).files}))
    assert plan.is_empty
    assert any(n.kind == "restart-needed" for n in plan.notes)
    allowed = make_node(make_vm(100, memory=4096, allow_restart=True))
    plan = plan_node(allowed, obs.model_copy(update={"files": converged(allowed).files}))
    assert kinds(plan) == ["shutdown-domain", "start-domain"] or kinds(plan)[:1] == ["shutdown-domain"]
    start = next(a for a in plan.actions if a.kind == "start-domain")
    assert plan.actions[0].id in start.depends_on


def test_after_reboot_stripes_are_recreated_and_metadata_only_probed() -> None:
    desired = make_node(make_vm(100))
    before = converged(desired)
    rebooted = before.model_copy(update={"dm_devices": (), "drbd": DrbdState(kernel_version="9.2.12"), "domains": ()})
    plan = plan_node(desired, rebooted)
    assert "create-lv" not in kinds(plan)
    assert kinds(plan)[:3] == ["create-stripe", "create-md", "drbd-up"]
    md = next(a for a in plan.actions if a.kind == "create-md")
    assert md.probe_before
    assert md.reason == "after-reboot"
    assert next(a for a in plan.actions if a.kind == "promote").waiting


def test_after_reboot_start_waits_until_the_peer_is_seen_secondary() -> None:
    desired = make_node(make_vm(100))
    obs = converged(desired, role="Secondary", conn="Connecting", peer_role="Unknown", peer_disk="DUnknown")
    obs = obs.model_copy(update={"domains": ()})
    plan = plan_node(desired, obs)
    promote = next(a for a in plan.actions if a.kind == "promote")
    assert "unreachable proves nothing" in promote.waiting
    seen = converged(desired, role="Secondary").model_copy(update={"domains": ()})
    plan = plan_node(desired, seen)
    promote = next(a for a in plan.actions if a.kind == "promote")
    assert not promote.waiting
    assert promote.argvs == (("drbdadm", "primary", "vm100"),)
    assert promote.id in next(a for a in plan.actions if a.kind == "start-domain").depends_on
    outdated = converged(desired, role="Secondary", conn="Connecting", peer_role="Unknown", peer_disk="Outdated")
    plan = plan_node(desired, outdated.model_copy(update={"domains": ()}))
    assert not next(a for a in plan.actions if a.kind == "promote").waiting


def test_promotion_waits_while_the_peer_is_primary() -> None:
    desired = make_node(make_vm(100))
    obs = converged(desired, role="Secondary", peer_role="Primary").model_copy(update={"domains": ()})
    promote = next(a for a in plan_node(desired, obs).actions if a.kind == "promote")
    assert "Primary" in promote.waiting


def test_moved_primary_shuts_down_then_demotes() -> None:
    desired = make_node(make_vm(100, primary="himbeere"))
    obs = converged(make_node(make_vm(100)))
    plan = plan_node(desired, obs)
    assert kinds(plan) == ["shutdown-domain", "demote"]
    assert plan.actions[1].depends_on == (plan.actions[0].id,)


def test_deletion_tears_down_in_order() -> None:
    present = make_node(make_vm(100))
    deleted = make_node(make_vm(100, lifecycle="deleted"))
    plan = plan_node(deleted, converged(present))
    order = kinds(plan)
    assert order.index("shutdown-domain") < order.index("demote") < order.index("drbd-down")
    assert order.index("drbd-down") < order.index("remove-drbd-config")
    assert order.index("drbd-down") < order.index("remove-stripe") < order.index("remove-lv")
    assert order.count("remove-lv") == 4
    assert all(a.symbol == "-" for a in plan.actions)
    assert ("lvremove", "-y", "vg-sda/root100") in [a.argvs[0] for a in plan.actions if a.argvs]
    assert ("dmsetup", "remove", "root100") in [a.argvs[0] for a in plan.actions if a.argvs]
    # Finished deletion: nothing left, nothing reported.
    assert plan_node(deleted, empty_observed()).is_empty


def test_absent_stops_the_domain_and_keeps_the_data() -> None:
    plan = plan_node(make_node(make_vm(100, lifecycle="absent")), converged(make_node(make_vm(100))))
    assert kinds(plan) == ["shutdown-domain", "demote"]


def test_vanished_vm_file_is_an_orphan_left_alone() -> None:
    plan = plan_node(make_node(), converged(make_node(make_vm(100))))
    assert plan.is_empty
    orphans = {n.key for n in plan.notes if n.kind == "orphan"}
    assert {"lv:vg-sda/root100", "lv:vg-sda/swap100", "dm:root100", "drbd:vm100", "domain:vm100",
            "file:/etc/drbd.d/vm100.res", "file:/etc/xen/vm100.cfg"} <= orphans


def test_foreign_lvs_and_dom0_are_not_orphans() -> None:
    obs = converged(make_node(make_vm(100))).model_copy(update={"logical_volumes": (), "dm_devices": (
        DmDevice(name="vg--sda-home", uuid="LVM-abc", targets=(DmTarget(start=0, length=8, target="linear",
                                                                         args="8:0 0"),)),),
        "domains": (DomainState(name="Domain-0", domid=0, state="running", memory_mib=1024),)})
    notes = plan_node(make_node(), obs).notes
    assert not any(n.key in ("dm:vg--sda-home", "domain:Domain-0") for n in notes)


def test_suspended_vm_is_not_planned() -> None:
    desired = make_node(make_vm(100, suspended=True))
    plan = plan_node(desired, empty_observed())
    assert plan.is_empty
    assert plan.resources
    assert all(r.suspended for r in plan.resources)


def test_resources_cover_each_desired_resource() -> None:
    plan = plan_node(make_node(make_vm(100)), empty_observed())
    assert {r.kind for r in plan.resources} == {"lv", "stripe", "drbd", "filesystem", "swap", "domain"}


def _with_stripe(obs: ObservedNode, **changes: object) -> ObservedNode:
    dm = obs.dm_devices[0].model_copy(update=changes)
    return obs.model_copy(update={"dm_devices": (dm,)})


def test_suspended_stripe_with_the_right_table_is_only_resumed() -> None:
    desired = make_node(make_vm(100))
    plan = plan_node(desired, _with_stripe(converged(desired), suspended=True))
    assert kinds(plan) == ["resume-stripe"]
    assert plan.actions[0].argvs == (("dmsetup", "resume", "root100"),)


def test_foreign_dm_device_and_changed_layout_are_refused() -> None:
    desired = make_node(make_vm(100))
    foreign = plan_node(desired, _with_stripe(converged(desired), uuid="LVM-xyz"))
    assert not foreign.actions
    assert "uuid LVM-xyz, not RECONCILER-root100" in foreign.refused_vms[0].reason
    obs = converged(desired)
    target = obs.dm_devices[0].targets[0]
    rechunked = target.model_copy(update={"args": target.args.replace(" 128 ", " 256 ", 1)})
    changed = plan_node(desired, _with_stripe(obs, targets=(rechunked,)))
    assert not changed.actions
    assert "would change from 3 legs with chunk 256" in changed.refused_vms[0].reason


def test_missing_volume_group_refuses_only_that_lv() -> None:
    desired = make_node(make_vm(100))
    obs = empty_observed().model_copy(update={"volume_groups": empty_observed().volume_groups[:2]})
    plan = plan_node(desired, obs)
    refused = [a for a in plan.actions if a.refused]
    assert [a.key for a in refused] == ["lv:vg-sdc/root100"]
    assert "does not exist" in refused[0].refused


def test_lv_shrink_is_refused_in_the_plan() -> None:
    plan = plan_node(make_node(make_vm(100, leg_gib=8)), converged(make_node(make_vm(100, leg_gib=10))))
    assert {a.kind for a in plan.refused} == {"extend-lv", "reload-stripe"}
    assert all(not a.commands for a in plan.refused)


def test_swap_is_made_before_the_domain_starts() -> None:
    desired = make_node(make_vm(100))
    obs = converged(desired, role="Secondary").model_copy(update={"domains": ()})
    plan = plan_node(desired, obs)
    swap = next(a for a in plan.actions if a.kind == "make-swap")
    assert swap.argvs == (("mkswap", "/dev/vg-sda/swap100"),)
    assert swap.probe_before == ("/dev/vg-sda/swap100",)
    assert swap.id in next(a for a in plan.actions if a.kind == "start-domain").depends_on


def test_every_argv_is_a_list_of_safe_words() -> None:
    plan = plan_node(make_node(make_vm(100), make_vm(101, lifecycle="deleted")),
                     converged(make_node(make_vm(100), make_vm(101))))
    for action in plan.actions:
        for command in action.commands:
            assert all(isinstance(word, str) and word for word in command.argv)
            assert command.timeout_s > 0


def test_nothing_is_planned_on_a_layer_that_could_not_be_observed() -> None:
    desired = make_node(make_vm(100))
    obs = converged(desired).model_copy(update={
        "logical_volumes": (), "tools": (ToolStatus(name="lvm", state="failed", detail="lvs: exit 5"),
                                         ToolStatus(name="drbd", state="available"))})
    plan = plan_node(desired, obs)
    creates = [a for a in plan.actions if a.kind == "create-lv"]
    assert creates
    assert all("lvm could not be observed (failed: lvs: exit 5)" in a.refused for a in creates)



def test_a_layer_that_could_not_be_observed_is_the_reason_even_where_it_looks_missing() -> None:
    # Seen on a loaded real node: `vgs` timed out, so no volume group was seen either. The refusal must say that
    # LVM could not be read, not that the volume groups do not exist.
    desired = make_node(make_vm(100))
    obs = converged(desired).model_copy(update={
        "volume_groups": (), "logical_volumes": (),
        "tools": (ToolStatus(name="lvm", state="failed", detail="vgs: timed out after 40 s"),
                  ToolStatus(name="drbd", state="available"))})
    plan = plan_node(desired, obs)
    creates = [a for a in plan.actions if a.kind == "create-lv"]
    assert creates
    for action in creates:
        assert action.refused.startswith("lvm could not be observed (failed: vgs: timed out after 40 s)"), action
        assert "does not exist" not in action.refused, action

def test_mass_delete_needs_explicit_permission() -> None:
    deleted = make_node(make_vm(100, lifecycle="deleted"), make_vm(101, lifecycle="deleted"))
    observed = converged(make_node(make_vm(100), make_vm(101)))
    refused = plan_node(deleted, observed)
    # The guard holds everything of the VMs it covers: no removal, and no shutdown or demotion either.
    assert {a.kind for a in refused.refused} == {"shutdown-domain", "demote", "drbd-down", "remove-drbd-config",
                                                 "remove-stripe", "remove-lv", "remove-xen-config"}
    assert refused.refused == refused.actions
    allowed = plan_node(deleted, observed, allow_mass_delete=True)
    assert allowed.refused == ()
    raised = make_node(make_vm(100, lifecycle="deleted"), make_vm(101, lifecycle="deleted"), max_removals=2)
    assert plan_node(raised, observed).refused == ()


def test_deep_check_result_turns_into_an_adjust() -> None:
    desired = make_node(make_vm(100))
    plan = plan_node(desired, converged(desired), drbd_changes={"vm100": "drbdsetup net-options vm100 1 --protocol=C"})
    assert kinds(plan) == ["drbd-adjust"]
    assert "would run: drbdsetup net-options" in plan.actions[0].reason


def test_hand_failover_is_left_running_while_the_designated_primary_cannot_take_over() -> None:
    # The primary died; the operator promoted vm100 here and started it by hand. A one-shot plan does not
    # know whether a revision moved it: the stop waits (it is never refused with advice to stop it by hand).
    desired = make_node(make_vm(100, primary="himbeere"))
    obs = converged(make_node(make_vm(100)), conn="Connecting", peer_role="Unknown", peer_disk="DUnknown")
    plan = plan_node(desired, obs)
    stop = next(a for a in plan.actions if a.kind == "shutdown-domain")
    assert not stop.refused
    assert "waits until it can take over (Connected with UpToDate data; now himbeere Connecting/DUnknown)" in \
        stop.waiting
    assert "primary: erdbeere" in stop.waiting
    assert not [a for a in plan.actions if a.kind == "demote" and not a.refused and stop.id not in a.depends_on]


def test_a_move_by_revision_waits_for_the_designated_primary_never_refuses() -> None:
    desired = make_node(make_vm(100, primary="himbeere"))
    resync = converged(make_node(make_vm(100)), peer_disk="Inconsistent", resync=40.0)
    stop = next(a for a in plan_node(desired, resync, moved_away=("vm100",)).actions if a.kind == "shutdown-domain")
    assert not stop.refused
    assert "himbeere Connected/Inconsistent" in stop.waiting
    assert "record that" not in stop.waiting


def test_domain_not_moved_by_any_revision_is_left_running_by_the_daemon() -> None:
    desired = make_node(make_vm(100, primary="himbeere"))
    obs = converged(make_node(make_vm(100)))
    kept = plan_node(desired, obs, moved_away=())
    stop = next(a for a in kept.actions if a.kind == "shutdown-domain")
    assert "no revision moved it away" in stop.refused
    moved = plan_node(desired, obs, moved_away=("vm100",))
    assert kinds(moved) == ["shutdown-domain", "demote"]
    assert not any(a.refused for a in moved.actions)


def test_explicit_absent_stops_even_when_the_peer_is_down() -> None:
    obs = converged(make_node(make_vm(100)), conn="Connecting", peer_role="Unknown", peer_disk="DUnknown")
    plan = plan_node(make_node(make_vm(100, lifecycle="absent")), obs, moved_away=())
    assert kinds(plan) == ["shutdown-domain", "demote"]
    assert not any(a.refused for a in plan.actions)

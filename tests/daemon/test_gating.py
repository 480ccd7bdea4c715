"""The daemon's gates on top of the plan: the peer at the same revision, the boot gate, one-shot runs, suspension.
Pure functions on plans built by the real planner from hand-made observations."""

from __future__ import annotations

from reconciler.core.actions import Action
from reconciler.core.plan_model import Plan
from reconciler.daemon.loop.gating import (
    BOOT_GATED,
    NEEDS_PEER_AT_REVISION,
    ONE_SHOT_NO_PEER,
    BootGate,
    hold_for_boot,
    hold_for_one_shot,
    hold_for_peer_revision,
    without_vms,
)
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode
from reconciler.model.status import PeerStatus
from reconciler.plan.diff import plan_node
from tests.plan.factories import converged, drbd_state, make_node, make_vm

REV = "b" * 40
OLD = "a" * 40


def _promotion_world(**drbd: object) -> tuple[DesiredNode, ObservedNode, Plan]:
    """vm100 designated here, Secondary now, domain not running: the plan promotes and starts it."""
    desired = make_node(make_vm(100))
    observed = converged(desired, role="Secondary", **drbd).model_copy(update={"domains": ()})
    plan = plan_node(desired, observed)
    assert {"promote", "start-domain"} <= {a.kind for a in plan.actions}
    return desired, observed, plan


def _by_kind(plan: Plan) -> dict[str, Action]:
    return {a.kind: a for a in plan.actions}


def test_the_registry_decides_which_kinds_are_gated() -> None:
    # A live migration's window, its promotion and the migration itself: never decided from a cached revision
    # after a start, and only with both nodes at one revision; closing the window is neither.
    migration = {"open-migration-window", "promote-for-migration", "migrate-domain"}
    assert {"promote", "promote-force-initial", "demote", "provision-fs", "start-domain", "shutdown-domain",
            "discard-my-data", *migration} == BOOT_GATED
    assert {"drbd-adjust", "drbd-resize", "drbd-down", "remove-lv", "remove-stripe",
            "remove-drbd-config", *migration} == NEEDS_PEER_AT_REVISION


def test_boot_gate_stays_shut_before_the_first_fetch_even_when_drbd_shows_the_peer_cannot_write() -> None:
    # The peer is a connected Secondary: DRBD proves it cannot write. Still, a cached revision is never acted on
    # before the repository was fetched once since the start (it may have moved the VM away meanwhile).
    desired, observed, plan = _promotion_world()
    gate = BootGate(fetched=False, fetch_deadline_passed=False, peers_seen=frozenset({"himbeere"}))
    held, reason = hold_for_boot(plan, gate, desired, observed)
    assert reason == "boot gate: waiting for the first fetch of the repository since start"
    steps = _by_kind(held)
    for kind in ("promote", "start-domain"):
        assert steps[kind].waiting == reason
        assert steps[kind].wait_for == "boot-gate"
    assert not gate.fetch_done


def test_boot_gate_opens_after_the_fetch_deadline_once_drbd_shows_the_peer_cannot_write() -> None:
    desired, observed, plan = _promotion_world()
    gate = BootGate(fetched=False, fetch_deadline_passed=True, peers_seen=frozenset())
    assert gate.fetch_done
    held, reason = hold_for_boot(plan, gate, desired, observed)
    assert reason == ""
    assert not any(a.waiting for a in held.actions)


def test_boot_gate_waits_for_an_unseen_peer_that_drbd_cannot_vouch_for() -> None:
    desired, observed, plan = _promotion_world(conn="Connecting", peer_role="Unknown", peer_disk="DUnknown")
    gate = BootGate(fetched=True, fetch_deadline_passed=False, peers_seen=frozenset({"someone-else"}))
    held, reason = hold_for_boot(plan, gate, desired, observed)
    assert reason == "boot gate: waiting to see peer himbeere (an unreachable peer proves nothing)"
    # The planner already holds the promotion (the peer is not proven harmless); the start waits for the gate.
    steps = _by_kind(held)
    assert steps["promote"].waiting.startswith("cannot prove the peer is not writing")
    assert steps["start-domain"].waiting == reason
    assert steps["start-domain"].wait_for == "boot-gate"
    # Actions that are not boot-gated are untouched.
    assert all(not a.waiting for a in held.actions if a.kind not in BOOT_GATED)
    seen = BootGate(fetched=True, fetch_deadline_passed=False, peers_seen=frozenset({"himbeere"}))
    assert hold_for_boot(plan, seen, desired, observed) == (plan, "")


def test_quorum_opens_the_boot_gate_only_for_a_resource_that_uses_quorum() -> None:
    desired, observed, plan = _promotion_world(conn="Connecting", peer_role="Unknown", peer_disk="DUnknown")
    res = observed.drbd.resources[0]
    with_quorum = res.model_copy(update={"connections": (), "devices": tuple(
        d.model_copy(update={"quorum": True}) for d in res.devices)})
    observed = observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": (with_quorum,)})})
    gate = BootGate(fetched=True, fetch_deadline_passed=True, peers_seen=frozenset())
    # vm100 uses fencing, not quorum: quorum proves nothing for it.
    assert hold_for_boot(plan, gate, desired, observed)[1].startswith("boot gate: waiting to see peer himbeere")
    vm = desired.vms[0]
    quorum_vm = vm.model_copy(update={"drbd": vm.drbd.model_copy(update={"safety": "quorum"})})  # type: ignore[union-attr]
    quorum_desired = desired.model_copy(update={"vms": (quorum_vm,)})
    assert hold_for_boot(plan, gate, quorum_desired, observed)[1] == ""


def test_an_already_refused_or_waiting_action_keeps_its_own_reason() -> None:
    desired, observed, plan = _promotion_world()
    marked = plan.model_copy(update={"actions": tuple(
        a.with_(refused="refused for its own reason") if a.kind == "promote" else
        a.with_(waiting="waits for its own reason", wait_for="local-state") if a.kind == "start-domain" else a
        for a in plan.actions)})
    gate = BootGate(fetched=False, fetch_deadline_passed=False, peers_seen=frozenset())
    held, reason = hold_for_boot(marked, gate, desired, observed)
    steps = _by_kind(held)
    assert steps["promote"].refused == "refused for its own reason"
    assert not steps["promote"].waiting
    assert steps["start-domain"].waiting == "waits for its own reason"
    assert steps["start-domain"].wait_for == "local-state"
    assert reason == ""


def _resize_plan() -> tuple[DesiredNode, Plan]:
    desired = make_node(make_vm(100), make_vm(101))
    observed = converged(desired)
    plan = plan_node(desired, observed)
    assert plan.is_empty
    # Two steps that both DRBD sides must agree on, and one that is local only.
    template = Action(id="x", kind="drbd-resize", key="drbd:vm100", vm="vm100", change="change", description="x")
    actions = (template.with_(id="drbd-resize@drbd:vm100"),
               template.with_(id="drbd-adjust@drbd:vm101", kind="drbd-adjust", key="drbd:vm101", vm="vm101"),
               template.with_(id="extend-lv@lv:vg-sda/root100", kind="extend-lv", key="lv:vg-sda/root100"))
    return desired, plan.model_copy(update={"actions": actions})


def test_two_node_steps_wait_for_the_peer_to_apply_the_same_revision() -> None:
    desired, plan = _resize_plan()
    held = hold_for_peer_revision(plan, REV, desired, [PeerStatus(node="himbeere", reachable=True,
                                                                    applied_revision=OLD)])
    steps = {a.id: a for a in held.actions}
    expected = "waiting for peer himbeere to apply revision bbbbbbbbbbbb (it has aaaaaaaaaaaa)"
    assert steps["drbd-resize@drbd:vm100"].waiting == expected
    assert steps["drbd-resize@drbd:vm100"].wait_for == "peer-revision"
    assert steps["drbd-adjust@drbd:vm101"].waiting == expected
    assert steps["extend-lv@lv:vg-sda/root100"].waiting == ""
    caught_up = hold_for_peer_revision(plan, REV, desired, [PeerStatus(node="himbeere", reachable=True,
                                                                         applied_revision=REV)])
    assert not any(a.waiting for a in caught_up.actions)


def test_a_peer_that_applied_nothing_or_cannot_be_reached_holds_two_node_steps() -> None:
    desired, plan = _resize_plan()
    fresh = hold_for_peer_revision(plan, REV, desired, [PeerStatus(node="himbeere", reachable=True)])
    assert fresh.actions[0].waiting == "waiting for peer himbeere to apply revision bbbbbbbbbbbb (it has none)"
    down = hold_for_peer_revision(plan, REV, desired, [PeerStatus(node="himbeere", reachable=False,
                                                                    error="connection refused", applied_revision=REV)])
    assert down.actions[0].waiting == ("waiting for peer himbeere to apply revision bbbbbbbbbbbb: peer status "
                                       "unknown (connection refused)")
    silent = hold_for_peer_revision(plan, REV, desired, [PeerStatus(node="himbeere", reachable=False)])
    assert silent.actions[0].waiting == ("waiting for peer himbeere to apply revision bbbbbbbbbbbb: peer status "
                                         "unknown")
    unknown = hold_for_peer_revision(plan, REV, desired, [])
    assert unknown.actions[0].waiting.endswith(": peer status unknown")
    assert unknown.actions[0].wait_for == "peer-revision"


def test_one_shot_apply_holds_two_node_steps_and_role_changes_it_cannot_prove_safe() -> None:
    desired, plan = _resize_plan()
    observed = converged(desired)
    held, _ = hold_for_one_shot(plan, desired, observed)
    steps = {a.id: a for a in held.actions}
    assert steps["drbd-resize@drbd:vm100"].waiting == ONE_SHOT_NO_PEER
    assert steps["drbd-resize@drbd:vm100"].wait_for == "one-shot"
    assert steps["drbd-adjust@drbd:vm101"].waiting == ONE_SHOT_NO_PEER
    assert steps["extend-lv@lv:vg-sda/root100"].waiting == ""

    # A promotion with a connected Secondary peer is proven safe by DRBD; with an unknown peer it waits.
    desired, observed, promo = _promotion_world()
    assert hold_for_one_shot(promo, desired, observed) == (promo, "")
    desired, observed, promo = _promotion_world(conn="Connecting", peer_role="Unknown", peer_disk="DUnknown")
    held, reason = hold_for_one_shot(promo, desired, observed)
    assert reason == ("a one-shot apply does not see peer himbeere and DRBD does not show that it cannot write; "
                      "left to `reconciler run`, which sees the peer")
    assert _by_kind(held)["start-domain"].waiting == reason
    assert _by_kind(held)["start-domain"].wait_for == "one-shot"


def test_one_shot_leaves_a_single_node_vm_and_an_already_waiting_step_alone() -> None:
    desired, plan = _resize_plan()
    lonely = desired.vms[0].model_copy(update={"nodes": ("erdbeere",)})
    assert lonely.peers == ()
    single = desired.model_copy(update={"vms": (lonely, desired.vms[1])})
    observed = converged(desired)
    held, _ = hold_for_one_shot(plan, single, observed)
    steps = {a.id: a for a in held.actions}
    assert steps["drbd-resize@drbd:vm100"].waiting == ""
    assert steps["drbd-adjust@drbd:vm101"].waiting == ONE_SHOT_NO_PEER
    waiting = plan.model_copy(update={"actions": tuple(a.with_(waiting="own", wait_for="local-state")
                                                       for a in plan.actions)})
    again, _ = hold_for_one_shot(waiting, desired, observed)
    assert all(a.waiting == "own" and a.wait_for == "local-state" for a in again.actions)
    refused = plan.model_copy(update={"actions": tuple(a.with_(refused="own") for a in plan.actions)})
    assert all(not a.waiting for a in hold_for_one_shot(refused, desired, observed)[0].actions)


def test_suspended_vms_get_no_actions() -> None:
    _desired, plan = _resize_plan()
    assert [a.vm for a in without_vms(plan, frozenset({"vm100"})).actions] == ["vm101"]
    assert without_vms(plan, frozenset()) is plan


def test_a_drbd_state_for_another_resource_proves_nothing() -> None:
    desired, observed, plan = _promotion_world(conn="Connecting", peer_role="Unknown", peer_disk="DUnknown")
    other = drbd_state("vm999", 9, role="Secondary")
    observed = observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": (other,)})})
    gate = BootGate(fetched=True, fetch_deadline_passed=True, peers_seen=frozenset())
    assert hold_for_boot(plan, gate, desired, observed)[1].startswith("boot gate: waiting to see peer himbeere")


def test_every_peer_behind_or_unseen_is_named() -> None:
    gate = BootGate(fetched=True, fetch_deadline_passed=False, peers_seen=frozenset({"erdbeere"}))
    assert gate.reason(["himbeere", "kiwi"]) == ("boot gate: waiting to see peer himbeere, kiwi (an unreachable "
                                                 "peer proves nothing)")
    one_shot = BootGate(fetched=True, fetch_deadline_passed=True, peers_seen=frozenset(), one_shot=True)
    assert one_shot.reason(["himbeere", "kiwi"]).startswith("a one-shot apply does not see peer himbeere, kiwi and ")
    desired, plan = _resize_plan()
    three = desired.vms[0].model_copy(update={"nodes": ("erdbeere", "himbeere", "kiwi")})
    assert three.peers == ("himbeere", "kiwi")
    desired = desired.model_copy(update={"vms": (three, desired.vms[1])})
    held = hold_for_peer_revision(plan, REV, desired, [PeerStatus(node="himbeere", reachable=True,
                                                                    applied_revision=OLD)])
    assert held.actions[0].waiting == ("waiting for peer himbeere to apply revision bbbbbbbbbbbb (it has "
                                       "aaaaaaaaaaaa); waiting for peer kiwi to apply revision bbbbbbbbbbbb: peer "
                                       "status unknown")


def test_a_changed_drbd_config_is_written_only_together_with_the_adjust_that_applies_it() -> None:
    # Written alone, the file would match the desired state while the kernel still ran the old settings, and
    # the next pass would find nothing to do and call the node converged (seen in the lab, scenario 8).
    from reconciler.core.own_mark import OWN_MARK

    desired = make_node(make_vm(100))
    (vm,) = desired.vms
    assert vm.drbd is not None
    ours = vm.drbd.model_copy(update={"config_text": f"# {OWN_MARK}\n{vm.drbd.config_text}"})
    observed = converged(desired.model_copy(update={"vms": (vm.model_copy(update={"drbd": ours}),)}))
    changed = ours.model_copy(update={"config_text": ours.config_text + "# fencing changed\n"})
    desired = desired.model_copy(update={"vms": (vm.model_copy(update={"drbd": changed}),)})
    plan = plan_node(desired, observed)
    assert {"write-drbd-config", "drbd-adjust"} <= set(_by_kind(plan))
    behind = [PeerStatus(node="himbeere", reachable=True, applied_revision=OLD)]
    held = _by_kind(hold_for_peer_revision(plan, REV, desired, behind))
    assert held["drbd-adjust"].wait_for == held["write-drbd-config"].wait_for == "peer-revision"
    assert held["write-drbd-config"].waiting.startswith("waiting for peer himbeere to apply revision bbbbbbbbbbbb")
    caught_up = [PeerStatus(node="himbeere", reachable=True, applied_revision=REV)]
    assert not any(a.waiting for a in hold_for_peer_revision(plan, REV, desired, caught_up).actions)

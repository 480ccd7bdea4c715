"""Split brain resolved by commit, in the planner: how an incident is named, what a statement for it plans on
each node, and what it does (nothing, with a note) when it names no incident that persists."""

from __future__ import annotations

from reconciler.backends.drbd.splitbrain_markers import incident_id
from reconciler.core.peer_view import PeerView
from reconciler.core.plan_model import Plan
from reconciler.core.safety import split_brain_recovery_refusal
from reconciler.model.desired import DesiredNode, SplitBrainRecovery
from reconciler.model.observed import ObservedNode
from reconciler.plan.diff import plan_node
from tests.plan.factories import converged, drbd_state, make_node, make_vm

HERE = "8C5E0D1F2A3B4C5D:6E7F8091A2B3C4D4:0000000000000000:0000000000000000"
THERE = "19A0B1C2D3E4F506:6E7F8091A2B3C4D4:0000000000000000:0000000000000000"
INCIDENT = incident_id("vm100", HERE, THERE)
assert INCIDENT is not None
PEER = PeerView(node="himbeere", split_brain={"vm100": THERE})


def _node(discard: str, incident: str = INCIDENT, *, node: str = "erdbeere") -> DesiredNode:
    vm = make_vm(100, node=node).model_copy(
        update={"split_brain_recovery": SplitBrainRecovery(incident=incident, discard=discard)})
    return make_node(vm, node=node)


def _observed(desired: DesiredNode, *, split: bool = True, record: str = HERE, running: bool = True) -> ObservedNode:
    observed = converged(desired)
    res = drbd_state("vm100", 0, conn="StandAlone" if split else "Connected", peer_role="Unknown",
                     peer_disk="DUnknown")
    res = res.model_copy(update={"split_brain": split, "split_brain_record": record})
    update: dict[str, object] = {"drbd": observed.drbd.model_copy(update={"resources": (res,)})}
    if not running:
        update["domains"] = ()
    return observed.model_copy(update=update)


def _kinds(plan: Plan) -> list[str]:
    return [a.kind for a in plan.actions]


def test_the_incident_id_is_the_same_on_both_nodes_and_names_one_split_brain_only() -> None:
    assert incident_id("vm100", THERE, HERE) == INCIDENT
    assert INCIDENT.startswith("sb-")
    assert len(INCIDENT) == 15
    # Bit 0 of the current identifier only says Primary: a demotion between two detections changes nothing.
    assert incident_id("vm100", "8C5E0D1F2A3B4C5C" + HERE[16:], THERE) == INCIDENT
    assert incident_id("vm101", HERE, THERE) != INCIDENT
    assert incident_id("vm100", HERE, "2" * 16 + THERE[16:]) != INCIDENT
    assert incident_id("vm100", HERE, "") is None
    assert incident_id("vm100", "garbage", THERE) is None


def test_the_discarding_node_stops_its_domain_then_demotes_and_discards_and_plans_nothing_else() -> None:
    desired = _node(discard="erdbeere")
    plan = plan_node(desired, _observed(desired), peer=PEER)
    assert _kinds(plan) == ["shutdown-domain", "discard-my-data"]
    discard = plan.actions[1]
    # No `disconnect`: the side is StandAlone, where DRBD 8.4 has no connection to drop (exit 10).
    assert discard.argvs == (("drbdadm", "secondary", "vm100"), ("drbdadm", "connect", "--discard-my-data", "vm100"))
    assert discard.depends_on == (plan.actions[0].id,)
    assert discard.destructive
    assert not discard.waiting
    assert not discard.refused
    assert discard.identity == f"{INCIDENT} {THERE} {HERE}"
    split = next(c for c in plan.conditions if c.kind == "split-brain")
    assert f"incident {INCIDENT}" in split.message
    assert f"generation identifiers at detection: erdbeere {HERE}, himbeere {THERE}" in split.message
    assert "being resolved by commit: erdbeere's changes are discarded" in split.message


def test_the_survivor_only_connects() -> None:
    desired = _node(discard="himbeere")
    plan = plan_node(desired, _observed(desired), peer=PEER)
    assert _kinds(plan) == ["split-brain-connect"]
    assert plan.actions[0].argvs == (("drbdadm", "connect", "vm100"),)


def test_without_the_peers_record_the_incident_has_no_name_and_the_recovery_waits() -> None:
    desired = _node(discard="erdbeere")
    for peer in (None, PeerView(node="himbeere")):
        plan = plan_node(desired, _observed(desired), peer=peer)
        assert _kinds(plan) == ["shutdown-domain", "discard-my-data"]
        assert all(a.waiting for a in plan.actions)
        assert "the peer's record of it is unknown" in plan.actions[1].waiting
        split = next(c for c in plan.conditions if c.kind == "split-brain")
        assert "incident not named yet" in split.message


def test_a_statement_for_another_incident_or_without_a_split_brain_plans_nothing_and_says_so() -> None:
    other = "sb-000000000000"
    for desired, observed, why in (
            (_node(discard="erdbeere", incident=other), None, f"is in split brain incident {INCIDENT}, not {other}"),
            (_node(discard="erdbeere"), False, "is not in split brain on this node now")):
        state = _observed(desired, split=observed is not False)
        plan = plan_node(desired, state, peer=PEER)
        assert not [a for a in plan.actions if a.kind in ("discard-my-data", "split-brain-connect", "shutdown-domain")]
        note = next(n.message for n in plan.notes if "split_brain_recovery" in n.message)
        assert why in note, note
        assert "the statement can be removed" in note


def test_after_the_discard_and_before_the_resync_the_discarding_node_is_neither_promoted_nor_started() -> None:
    """Connecting again with its condemned data still UpToDate: even where quorum alone would allow a promotion,
    the designated primary waits for the survivor's data."""
    desired = _node(discard="erdbeere")
    observed = converged(desired)
    res = drbd_state("vm100", 0, role="Secondary", conn="Connecting", peer_role="Unknown", peer_disk="DUnknown")
    res = res.model_copy(update={"split_brain_record": HERE})
    quorum = desired.model_copy(update={"vms": tuple(
        vm.model_copy(update={"drbd": vm.drbd.model_copy(update={"safety": "quorum"}) if vm.drbd else None})
        for vm in desired.vms)})
    observed = observed.model_copy(update={"domains": (), "drbd": observed.drbd.model_copy(update={"resources": (
        res.model_copy(update={"devices": tuple(d.model_copy(update={"quorum": True}) for d in res.devices)}),)})})
    for peer in (PEER, None):
        plan = plan_node(quorum, observed, peer=peer)
        assert not plan.actions
        assert any("has not resynced from himbeere yet" in n.message for n in plan.notes)
    # A statement for an earlier incident holds nothing once the peer's record names another one.
    stale = quorum.model_copy(update={"vms": tuple(v.model_copy(update={"split_brain_recovery": SplitBrainRecovery(
        incident="sb-000000000000", discard="erdbeere")}) for v in quorum.vms)})
    assert "promote" in _kinds(plan_node(stale, observed, peer=PEER))
    # Without the statement, quorum would have promoted it and started the domain.
    plain = quorum.model_copy(update={"vms": tuple(v.model_copy(update={"split_brain_recovery": None})
                                                   for v in quorum.vms)})
    assert {"promote", "start-domain"} <= set(_kinds(plan_node(plain, observed, peer=PEER)))


def test_the_gate_names_each_reason_to_refuse() -> None:
    assert split_brain_recovery_refusal("vm100", wanted=INCIDENT, split=True, incident=INCIDENT) is None
    assert "not in split brain" in (split_brain_recovery_refusal("vm100", wanted=INCIDENT, split=False,
                                                                 incident=None) or "")
    assert "again since the plan" in (split_brain_recovery_refusal("vm100", wanted=INCIDENT, split=True,
                                                                   incident=INCIDENT, redetected=True) or "")
    assert "cannot be named" in (split_brain_recovery_refusal("vm100", wanted=INCIDENT, split=True,
                                                              incident=None) or "")
    assert "never applies to another" in (split_brain_recovery_refusal("vm100", wanted=INCIDENT, split=True,
                                                                       incident="sb-111111111111") or "")

"""Converged means healthy: what keeps a resource from being Ready although nothing is left to do."""

from __future__ import annotations

from reconciler.apply.result import pass_outcome, resource_statuses
from reconciler.core.plan_model import Plan
from reconciler.model.observed import DomainState, ObservedNode
from reconciler.plan.diff import plan_node
from tests.plan.factories import converged, drbd_state, make_node, make_vm


def _kinds(plan: Plan) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for condition in plan.conditions:
        found.setdefault(condition.key, set()).add(condition.kind)
    return found


def _with_drbd(observed: ObservedNode, **state: object) -> ObservedNode:
    res = drbd_state("vm100", 0, **state)  # type: ignore[arg-type]
    return observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": (res,)})})


def test_a_converged_healthy_node_has_no_condition_and_is_converged() -> None:
    desired = make_node(make_vm(100))
    plan = plan_node(desired, converged(desired))
    assert plan.conditions == ()
    statuses = resource_statuses(plan, ())
    assert {s.phase for s in statuses} == {"ready"}
    assert pass_outcome((), statuses) == "converged"


def test_split_brain_is_degraded_never_adjusted_and_names_the_recovery() -> None:
    desired = make_node(make_vm(100))
    observed = _with_drbd(converged(desired), conn="StandAlone", peer_role="Unknown", peer_disk="DUnknown")
    res = observed.drbd.resources[0].model_copy(update={"split_brain": True,
                                                         "split_brain_detail": "detected with himbeere"})
    observed = observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": (res,)})})
    plan = plan_node(desired, observed)
    assert not any(a.kind == "drbd-adjust" for a in plan.actions), "adjust would reconnect into the split brain"
    assert "split-brain" in _kinds(plan)["drbd:vm100"]
    message = next(c.message for c in plan.conditions if c.kind == "split-brain")
    assert "connect --discard-my-data vm100" in message
    assert "detected with himbeere" in message
    statuses = resource_statuses(plan, ())
    assert next(s for s in statuses if s.key == "drbd:vm100").phase == "degraded"
    assert pass_outcome((), statuses) == "degraded"


def test_even_a_rewritten_config_is_not_adjusted_during_a_split_brain() -> None:
    desired = make_node(make_vm(100))
    observed = _with_drbd(converged(desired), conn="StandAlone", peer_role="Unknown", peer_disk="DUnknown")
    res = observed.drbd.resources[0].model_copy(update={"split_brain": True})
    files = tuple(f.model_copy(update={"content": "edited by hand"}) if f.path.endswith(".res") else f
                  for f in observed.files)
    observed = observed.model_copy(update={"files": files,
                                           "drbd": observed.drbd.model_copy(update={"resources": (res,)})})
    assert not any(a.kind == "drbd-adjust" for a in plan_node(desired, observed).actions)


def test_a_failed_disk_on_the_primary_is_degraded() -> None:
    desired = make_node(make_vm(100))
    plan = plan_node(desired, _with_drbd(converged(desired), disk="Diskless"))
    message = next(c.message for c in plan.conditions if c.kind == "disk")
    assert "Diskless" in message
    assert "writes go to the peer only" in message
    assert pass_outcome((), resource_statuses(plan, ())) == "degraded"


def test_an_unknown_or_stale_peer_is_degraded() -> None:
    desired = make_node(make_vm(100))
    for state in ({"conn": "Connecting", "peer_role": "Unknown", "peer_disk": "DUnknown"},
                  {"peer_disk": "Outdated"}, {"peer_disk": "Inconsistent", "resync": 40.0}):
        plan = plan_node(desired, _with_drbd(converged(desired), **state))
        assert "peer-disk" in _kinds(plan)["drbd:vm100"], state


def test_a_domain_away_from_its_designated_node_or_on_both_is_degraded() -> None:
    here = make_node(make_vm(100))
    both = _with_drbd(converged(here), peer_role="Primary")
    assert "domain-on-both" in _kinds(plan_node(here, both))["domain:vm100"]
    elsewhere = make_node(make_vm(100, node="himbeere"), node="himbeere")
    running = converged(elsewhere).model_copy(update={"domains": (
        DomainState(name="vm100", domid=3, state="running", memory_mib=1024, maxmem_mib=2048, vcpus=2),)})
    # Failed over here by hand: this node is Primary, the designated one Secondary.
    failed_over = _with_drbd(running, role="Primary", peer="erdbeere", peer_role="Secondary")
    assert _kinds(plan_node(elsewhere, failed_over, moved_away=()))["domain:vm100"] == {"domain-away"}
    stopped_here = converged(here).model_copy(update={"domains": ()})
    assert "domain-away" in _kinds(plan_node(here, _with_drbd(stopped_here, role="Secondary",
                                                              peer_role="Primary")))["domain:vm100"]


def test_a_restart_the_desired_state_did_not_allow_is_degraded_until_it_happens() -> None:
    old = make_node(make_vm(100, vcpus=2))
    new = make_node(make_vm(100, vcpus=4))  # maxvcpus 4, but vcpus of a running domain ... see factories
    observed = converged(old).model_copy(update={"domains": (
        DomainState(name="vm100", domid=3, state="running", memory_mib=1024, maxmem_mib=1024, vcpus=2),)})
    plan = plan_node(new, observed)
    assert "restart-needed" in _kinds(plan)["domain:vm100"]
    statuses = resource_statuses(plan, ())
    assert next(s for s in statuses if s.key == "domain:vm100").phase == "degraded"

"""The designated primary back after an automatic failover away from it, with failback manual: the peer reports that
it keeps the VM, DRBD shows it Primary, and nothing here waits for a demotion nobody is going to make; the pass is
degraded with the failover and the operator's two choices. Anything less than all of that plans as before."""

from __future__ import annotations

from typing import Literal

import pytest

from reconciler.apply.result import pass_outcome, resource_statuses
from reconciler.core.peer_view import PeerView
from reconciler.core.plan_model import Plan
from reconciler.model.desired import DesiredFailover, DesiredNode, Takeover
from reconciler.model.observed import DomainState, ObservedNode
from reconciler.model.status import ActionRecord, PeerTakeover
from reconciler.plan.diff import plan_node
from tests.plan.factories import converged, drbd_state, make_node, make_vm

pytestmark = pytest.mark.timeout(30)

FO = "fo-0123456789ab"
TAKEN = PeerTakeover(vm="vm100", id=FO, from_node="erdbeere")
HOLDING = PeerView(node="himbeere", takeovers=(TAKEN,))
STARTING = {"promote", "promote-force-initial", "start-domain", "make-fs", "make-swap"}


def _designated(failback: Literal["manual", "automatic"] = "manual") -> DesiredNode:
    """erdbeere, vm100's designated primary, under automatic failover."""
    vm = make_vm(100).model_copy(update={"failover": DesiredFailover(mode="automatic", failback=failback)})
    return make_node(vm)


def _back(desired: DesiredNode, *, peer_role: str = "Primary", domains: tuple[DomainState, ...] = ()) -> ObservedNode:
    """erdbeere returned: Secondary and UpToDate, connected to himbeere, the domain not here."""
    res = drbd_state("vm100", 0, role="Secondary", peer_role=peer_role)
    observed = converged(desired)
    return observed.model_copy(update={"domains": domains,
                                       "drbd": observed.drbd.model_copy(update={"resources": (res,)})})


def _outcome(plan: Plan) -> str:
    """What the pass would end as, every action of the plan left waiting or refused as planned."""
    records = tuple(ActionRecord(kind=a.kind, key=a.key, vm=a.vm, result="refused" if a.refused else "waiting",
                                 message=a.refused or a.waiting) for a in plan.actions if a.waiting or a.refused)
    return pass_outcome(records, resource_statuses(plan, records))


def test_the_designated_node_plans_no_promotion_and_reports_the_failover_degraded() -> None:
    desired = _designated()
    plan = plan_node(desired, _back(desired), peer=HOLDING)
    assert not [a for a in plan.actions if a.kind in STARTING], plan.actions
    assert plan.waiting == ()
    (condition,) = [c for c in plan.conditions if c.vm == "vm100"]
    assert condition.kind == "failed-over-away"
    assert condition.key == "domain:vm100"
    assert condition.message == (
        f"vm100 runs on himbeere after automatic failover {FO} away from this node, its designated primary, and "
        "stays there (failback: manual); decide by commit: `primary: himbeere` in vms/vm100.yaml keeps it there, "
        "`failover: {failback: automatic}` moves it back here once this node is UpToDate")
    statuses = {s.key: s for s in resource_statuses(plan, ())}
    assert statuses["domain:vm100"].phase == "degraded"
    assert statuses["domain:vm100"].conditions == ("failed-over-away",)
    assert statuses["drbd:vm100"].phase == "ready"
    assert _outcome(plan) == "degraded"


def _as_before(plan: Plan) -> None:
    """The behaviour without the peer's report: promotion and start wait for the peer to demote."""
    promote = next(a for a in plan.actions if a.kind == "promote")
    assert promote.waiting.startswith("peer himbeere is Primary; promotion waits until it demotes")
    assert any(a.kind == "start-domain" for a in plan.actions)
    assert {c.kind for c in plan.conditions if c.vm == "vm100"} == {"domain-away"}
    assert _outcome(plan) == "progressing"


def test_without_the_peers_report_the_designated_node_waits_as_before() -> None:
    desired = _designated()
    observed = _back(desired)
    _as_before(plan_node(desired, observed))  # no peer status at all
    _as_before(plan_node(desired, observed, peer=PeerView(node="himbeere")))  # a peer of an older version
    # A report about another VM, or about a VM taken from some other node, says nothing about this one.
    _as_before(plan_node(desired, observed, peer=PeerView(node="himbeere", takeovers=(
        TAKEN.model_copy(update={"vm": "vm101"}), TAKEN.model_copy(update={"from_node": "kiwi"})))))


def test_with_failback_automatic_the_designated_node_waits_for_the_peer_to_give_the_vm_back() -> None:
    # The survivor ends its record and demotes once this node is back and UpToDate; then this node promotes.
    desired = _designated(failback="automatic")
    _as_before(plan_node(desired, _back(desired), peer=HOLDING))


def test_the_report_alone_never_holds_back_a_promotion_drbd_allows() -> None:
    # DRBD shows the peer Secondary (it gave the VM up since its last report): the promotion goes ahead.
    desired = _designated()
    plan = plan_node(desired, _back(desired, peer_role="Secondary"), peer=HOLDING)
    promote = next(a for a in plan.actions if a.kind == "promote")
    assert promote.waiting == ""
    assert any(a.kind == "start-domain" for a in plan.actions)
    assert not [c for c in plan.conditions if c.kind == "failed-over-away"]


def test_a_domain_here_while_the_peer_is_primary_is_reported_as_before() -> None:
    desired = _designated()
    running = DomainState(name="vm100", domid=7, state="running", memory_mib=1024, maxmem_mib=2048, vcpus=2)
    plan = plan_node(desired, _back(desired, domains=(running,)), peer=HOLDING)
    assert "domain-on-both" in {c.kind for c in plan.conditions}
    assert "failed-over-away" not in {c.kind for c in plan.conditions}


def test_the_survivor_plans_its_takeover_as_before_whatever_its_peer_reports() -> None:
    # himbeere runs vm100 after the failover (its view names itself primary); a report from erdbeere about the
    # same VM (which erdbeere would never send) changes nothing there.
    vm = make_vm(100, node="himbeere").model_copy(update={"primary_node": "himbeere"})
    desired = make_node(vm, node="himbeere")
    observed = converged(desired)
    plan = plan_node(desired, observed, peer=PeerView(node="erdbeere", takeovers=(
        TAKEN.model_copy(update={"from_node": "himbeere"}),)))
    assert plan.actions == ()
    assert plan.conditions == ()


def test_a_node_that_is_primary_itself_is_never_held_or_demoted_by_the_report() -> None:
    # Both sides Primary is a state of its own (reported as such); the peer's report must not turn it into a
    # demotion here.
    desired = _designated()
    observed = _back(desired)
    res = drbd_state("vm100", 0, role="Primary", peer_role="Primary")
    observed = observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": (res,)})})
    plan = plan_node(desired, observed, peer=HOLDING)
    assert not [a for a in plan.actions if a.kind == "demote"], plan.actions
    assert "failed-over-away" not in {c.kind for c in plan.conditions}


def test_a_diskless_tiebreaker_shown_primary_is_not_the_peer_that_holds_the_vm() -> None:
    desired = _designated()
    vm = desired.vms[0]
    assert vm.drbd is not None
    hosts = tuple(h.model_copy(update={"diskless": True}) if h.name == "himbeere" else h for h in vm.drbd.hosts)
    vm = vm.model_copy(update={"drbd": vm.drbd.model_copy(update={"hosts": hosts})})
    desired = desired.model_copy(update={"vms": (vm,)})
    plan = plan_node(desired, _back(desired), peer=HOLDING)
    assert "failed-over-away" not in {c.kind for c in plan.conditions}
    assert any(a.kind == "promote" for a in plan.actions)


def test_a_node_taking_its_own_vm_back_is_not_held() -> None:
    # This node's own failover record (it took its VM back from a lost peer) decides here, not the peer's report.
    desired = _designated()
    own = Takeover(id="fo-ba9876543210", from_node="himbeere", decided_at=1.0, designated="erdbeere")
    desired = desired.model_copy(update={"vms": (desired.vms[0].model_copy(update={"takeover": own}),)})
    plan = plan_node(desired, _back(desired), peer=HOLDING)
    assert "failed-over-away" not in {c.kind for c in plan.conditions}
    assert any(a.kind == "promote" for a in plan.actions)

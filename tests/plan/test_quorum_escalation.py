"""A Primary that lost quorum and cannot be stopped: the plain demotion, then a forced one, then a reboot (as the
VM's ``on_demote_failure`` says), and the last look that never reboots a node whose resource has quorum again
or has been demoted meanwhile."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reconciler.apply.executor import ApplyOptions, apply_plan
from reconciler.apply.retry import RetryPolicy
from reconciler.core.actions import Action
from reconciler.core.plan_model import Plan
from reconciler.host.base import CommandResult
from reconciler.model.desired import DemoteEscalation, DemoteFailureAction, DesiredNode, DesiredVm
from reconciler.model.observed import DrbdResourceState, ObservedNode
from reconciler.plan.diff import plan_node
from tests.apply.fakes import FakeHost, fail
from tests.plan.factories import converged, make_node, make_vm

pytestmark = pytest.mark.timeout(30)


def _vm(escalation: DemoteEscalation | None = None, action: DemoteFailureAction = "reboot-force") -> DesiredVm:
    vm = make_vm(100)
    assert vm.drbd is not None
    drbd = vm.drbd.model_copy(update={"safety": "quorum", "on_demote_failure": action})
    return vm.model_copy(update={"drbd": drbd, "escalation": escalation})


def _without_quorum(observed: ObservedNode, *, role: str = "Primary", quorum: bool = False) -> ObservedNode:
    def lost(res: DrbdResourceState) -> DrbdResourceState:
        devices = tuple(d.model_copy(update={"quorum": quorum}) for d in res.devices)
        return res.model_copy(update={"role": role, "connections": (), "devices": devices})
    drbd = observed.drbd.model_copy(update={"resources": tuple(lost(r) for r in observed.drbd.resources)})
    return observed.model_copy(update={"drbd": drbd})


def _plan(vm: DesiredVm, *, domain: bool = True) -> tuple[DesiredNode, ObservedNode, Plan]:
    desired = make_node(vm)
    observed = _without_quorum(converged(desired))
    if not domain:
        observed = observed.model_copy(update={"domains": ()})
    return desired, observed, plan_node(desired, observed)


def _argvs(plan: Plan, kind: str) -> list[tuple[str, ...]]:
    return [c.argv for a in plan.actions if a.kind == kind for c in a.commands]


def test_the_first_attempt_destroys_the_domain_and_demotes_plainly() -> None:
    _, _, plan = _plan(_vm())
    assert [a.kind for a in plan.actions] == ["destroy-domain", "quorum-demote"]
    assert _argvs(plan, "quorum-demote") == [("drbdadm", "secondary", "vm100")]


def test_after_a_failure_the_demotion_is_forced_and_no_reboot_is_planned_before_it_is_due() -> None:
    _, _, plan = _plan(_vm(DemoteEscalation(failures=3)))
    assert [a.kind for a in plan.actions] == ["destroy-domain", "quorum-demote"]
    assert _argvs(plan, "quorum-demote") == [("drbdsetup", "secondary", "--force", "vm100")]
    # Forced, it no longer waits for the destroy: a domain that cannot die is what holds the device open.
    assert plan.actions[1].depends_on == ()
    _, _, first = _plan(_vm())
    assert first.actions[1].depends_on == (first.actions[0].id,)


@pytest.mark.parametrize(("action", "argv"), [
    ("reboot", ("systemctl", "reboot")),
    ("reboot-force", ("systemctl", "reboot", "--force")),
    ("reboot-immediate", ("systemctl", "reboot", "--force", "--force")),
])
def test_a_due_reboot_follows_the_forced_demotion_of_the_same_pass(action: DemoteFailureAction,
                                                                   argv: tuple[str, ...]) -> None:
    _, _, plan = _plan(_vm(DemoteEscalation(failures=2, reboot_due=True), action))
    assert [a.kind for a in plan.actions] == ["destroy-domain", "quorum-demote", "reboot-node"]
    assert _argvs(plan, "quorum-demote") == [("drbdsetup", "secondary", "--force", "vm100")]
    assert _argvs(plan, "reboot-node") == [argv]
    reboot = plan.actions[-1]
    # Not dependent on the demotion: it must run when the demotion failed; its last look decides.
    assert reboot.depends_on == ()
    assert not reboot.refused


def test_with_none_the_node_keeps_forcing_the_demotion_and_never_reboots() -> None:
    _, _, plan = _plan(_vm(DemoteEscalation(failures=5, reboot_due=True), "none"), domain=False)
    assert [a.kind for a in plan.actions] == ["quorum-demote"]
    assert _argvs(plan, "quorum-demote") == [("drbdsetup", "secondary", "--force", "vm100")]


def test_a_held_reboot_is_refused_and_the_forced_demotion_goes_on() -> None:
    held = "this node already rebooted itself for lost quorum"
    _, _, plan = _plan(_vm(DemoteEscalation(failures=2, reboot_due=True, reboot_held=held)), domain=False)
    assert [a.kind for a in plan.actions] == ["quorum-demote", "reboot-node"]
    assert _argvs(plan, "quorum-demote") == [("drbdsetup", "secondary", "--force", "vm100")]
    assert plan.actions[1].refused == held


def _apply(plan: Plan, now: ObservedNode, failing: tuple[str, ...] = (),
           before_run: Callable[[Action], str] = lambda action: "") -> tuple[dict[str, str], list[tuple[str, ...]]]:
    def refuse(argv: tuple[str, ...]) -> CommandResult | None:
        return fail(argv, 11, "vm100: State change failed: (-12) Device is held open by someone") \
            if argv == failing else None
    host = FakeHost(responders=[refuse], drbd=now.drbd.resources)
    options = ApplyOptions(policy=RetryPolicy(attempts=1, initial_s=1.0, max_s=1.0, jitter_s=0.0),
                           sleep=lambda _s: None, clock=lambda: 1000.0, before_run=before_run)
    result = apply_plan(host, plan, options=options)
    return {r.kind: r.result for r in result.actions}, list(host.calls)


def test_the_last_look_reboots_only_a_node_still_primary_without_quorum() -> None:
    desired, observed, plan = _plan(_vm(DemoteEscalation(failures=2, reboot_due=True)), domain=False)
    refusing = ("drbdsetup", "secondary", "--force", "vm100")
    results, calls = _apply(plan, observed, failing=refusing)
    # DRBD's "held open" is a precondition to the executor (waiting), which is how a real refusal looks.
    assert results == {"quorum-demote": "waiting", "reboot-node": "ok"}
    assert calls.index(("systemctl", "reboot", "--force")) > calls.index(refusing)

    for now in (_without_quorum(converged(desired), quorum=True),
                _without_quorum(converged(desired), role="Secondary")):
        results, calls = _apply(plan, now)
        assert results["reboot-node"] == "waiting"
        assert not any(c[0] == "systemctl" for c in calls)


def test_a_reboot_the_daemon_cannot_record_is_refused_before_its_command() -> None:
    _, observed, plan = _plan(_vm(DemoteEscalation(failures=2, reboot_due=True)), domain=False)
    refusal = "the reboot is not run: its record cannot be written"
    results, calls = _apply(plan, observed, before_run=lambda a: refusal if a.kind == "reboot-node" else "")
    assert results["reboot-node"] == "refused"
    assert not any(c[0] == "systemctl" for c in calls)

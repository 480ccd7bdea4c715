"""The daemon's count of failed attempts to stop a Primary without quorum, the reboot record that outlives the
reboot, and the hour in which a second reboot for the same VM is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli.cmd_status import render
from reconciler.daemon.escalation import REBOOT_HOLD_SECONDS, EscalationKeeper
from reconciler.model.desired import DesiredNode, DesiredVm
from reconciler.model.observed import DrbdResourceState, ObservedNode
from reconciler.model.status import ActionRecord, EscalationStatus, NodeStatus
from tests.plan.factories import converged, make_node, make_vm

pytestmark = pytest.mark.timeout(30)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _desired() -> DesiredNode:
    vm = make_vm(100)
    assert vm.drbd is not None
    return make_node(vm.model_copy(update={"drbd": vm.drbd.model_copy(update={"safety": "quorum"})}))


def _observed(desired: DesiredNode, *, quorum: bool = False, role: str = "Primary") -> ObservedNode:
    observed = converged(desired)

    def lost(res: DrbdResourceState) -> DrbdResourceState:
        devices = tuple(d.model_copy(update={"quorum": quorum}) for d in res.devices)
        return res.model_copy(update={"role": role, "connections": (), "devices": devices})
    return observed.model_copy(update={"drbd": observed.drbd.model_copy(
        update={"resources": tuple(lost(r) for r in observed.drbd.resources)})})


def _vm(node: DesiredNode) -> DesiredVm:
    (vm,) = node.vms
    return vm


def _failed(kind: str, *, ran: bool = True, result: str = "failed") -> ActionRecord:
    return ActionRecord(kind=kind, key="drbd:vm100", vm="vm100", result=result, ran=ran)  # type: ignore[arg-type]


def test_failed_attempts_are_counted_until_a_reboot_is_decided_once(tmp_path: Path) -> None:
    clock = Clock()
    keeper = EscalationKeeper(tmp_path, "erdbeere", clock)
    desired, observed = _desired(), _observed(_desired())
    assert _vm(keeper.view(desired, observed)).escalation is None
    keeper.after_apply([_failed("destroy-domain", ran=False, result="waiting")])  # the last look stopped it
    assert _vm(keeper.view(desired, observed)).escalation is None
    keeper.after_apply([_failed("demote", result="waiting")])  # "held open" is waiting to the executor
    escalation = _vm(keeper.view(desired, observed)).escalation
    assert escalation is not None
    assert escalation.failures == 1
    assert keeper.statuses() == ()
    keeper.after_apply([_failed("demote")])
    escalation = _vm(keeper.view(desired, observed)).escalation
    assert escalation is not None
    assert (escalation.failures, escalation.reboot_held) == (2, "")
    (record,) = keeper.statuses()
    assert (record.vm, record.state, record.action, record.failures) == ("vm100", "decided", "reboot-force", 2)

    # A restart (the reboot) forgets the count but keeps the record: two more failures, and the reboot is held.
    clock.now += 120
    keeper = EscalationKeeper(tmp_path, "erdbeere", clock)
    for _ in range(2):
        keeper.view(desired, observed)
        keeper.after_apply([_failed("demote")])
    escalation = _vm(keeper.view(desired, observed)).escalation
    assert escalation is not None
    assert escalation.reboot_held.startswith("a reboot for vm100 was already decided 120 s ago (decided)")
    assert keeper.statuses()[0].decided_at == 1_000_000.0

    clock.now += REBOOT_HOLD_SECONDS
    escalation = _vm(keeper.view(desired, observed)).escalation
    assert escalation is not None
    assert escalation.reboot_held == ""
    assert keeper.statuses()[0].decided_at == clock.now


def test_a_reboot_the_last_look_stopped_leaves_no_record_and_one_that_ran_says_how_it_went(tmp_path: Path) -> None:
    clock = Clock()
    keeper = EscalationKeeper(tmp_path, "erdbeere", clock)
    desired, observed = _desired(), _observed(_desired())
    for _ in range(2):
        keeper.view(desired, observed)
        keeper.after_apply([_failed("demote")])
    keeper.view(desired, observed)
    assert len(keeper.statuses()) == 1
    keeper.after_apply([_failed("reboot-node", ran=False, result="waiting")])
    assert keeper.statuses() == ()

    keeper.view(desired, observed)
    keeper.after_apply([ActionRecord(kind="reboot-node", key="drbd:vm100", vm="vm100", result="failed", ran=True,
                                     message="`systemctl reboot --force` (exit 1): Failed to connect to bus")])
    (record,) = keeper.statuses()
    assert record.state == "failed"
    assert "Failed to connect to bus" in record.message


def test_quorum_back_or_a_demotion_resets_the_count(tmp_path: Path) -> None:
    keeper = EscalationKeeper(tmp_path, "erdbeere", Clock())
    desired = _desired()
    keeper.view(desired, _observed(desired))
    keeper.after_apply([_failed("demote")])
    for healed in (_observed(desired, quorum=True), _observed(desired, role="Secondary")):
        assert _vm(keeper.view(desired, healed)).escalation is None
        keeper.after_apply([_failed("demote")])  # not counted: nothing was being stopped
        assert _vm(keeper.view(desired, _observed(desired))).escalation is None


def test_status_shows_the_reboot() -> None:
    status = NodeStatus(node="erdbeere", escalations=(EscalationStatus(
        vm="vm100", resource="vm100", action="reboot-force", state="requested", decided_at=40.0, updated_at=41.0,
        failures=2, reason="vm100 is still Primary without quorum after 2 failed attempts to stop it"),))
    text = render(status, now=100.0)
    assert "reboots after a failed demotion without quorum:" in text
    assert "vm100: reboot-force decided 60s ago: REQUESTED" in text
    assert "why: vm100 is still Primary without quorum after 2 failed attempts to stop it" in text

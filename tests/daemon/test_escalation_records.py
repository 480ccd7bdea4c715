"""The daemon's count of failed attempts to stop a Primary without quorum, the reboot record that outlives the
reboot, and the hour in which a second reboot for the same VM is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli.cmd_status import render
from reconciler.core.actions import Action, Command
from reconciler.daemon.loop.escalation import (
    FAILED_REBOOT_HOLD_SECONDS,
    REBOOT_AFTER_SECONDS,
    REBOOT_HOLD_SECONDS,
    EscalationKeeper,
)
from reconciler.model.desired import DemoteEscalation, DesiredNode, DesiredVm
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


def _failed(kind: str = "quorum-demote", *, forced: bool = False, ran: bool = True, result: str = "failed",
            vm: str = "vm100") -> ActionRecord:
    argv = (("drbdsetup", "secondary", "--force", vm),) if forced else (("drbdadm", "secondary", vm),)
    return ActionRecord(kind=kind, key=f"drbd:{vm}", vm=vm, result=result, ran=ran, argv=argv)  # type: ignore[arg-type]


def _reboot(vm: str = "vm100") -> Action:
    return Action(id=f"reboot-node@drbd:{vm}", kind="reboot-node", key=f"drbd:{vm}", vm=vm, change="change",
                  description="reboot", commands=(Command(argv=("systemctl", "reboot", "--force")),))


def _escalation(keeper: EscalationKeeper, desired: DesiredNode, observed: ObservedNode) -> DemoteEscalation | None:
    return _vm(keeper.view(desired, observed)).escalation


def test_a_reboot_is_due_only_after_a_forced_demotion_failed_and_30_s_after_the_first_failure(tmp_path: Path) -> None:
    clock = Clock()
    keeper = EscalationKeeper(tmp_path, "erdbeere", clock)
    desired, observed = _desired(), _observed(_desired())
    assert _escalation(keeper, desired, observed) is None
    keeper.after_apply([_failed("destroy-domain", ran=False, result="waiting")])  # the last look stopped it
    assert _escalation(keeper, desired, observed) is None
    keeper.after_apply([_failed(result="waiting")])  # "held open" is waiting to the executor
    clock.now += 5
    assert _escalation(keeper, desired, observed) == DemoteEscalation(failures=1)
    keeper.after_apply([_failed(forced=True)])
    clock.now += 5
    assert _escalation(keeper, desired, observed) == DemoteEscalation(failures=2)  # 10 s after the first failure
    keeper.after_apply([_failed(forced=True)])
    clock.now += REBOOT_AFTER_SECONDS
    assert _escalation(keeper, desired, observed) == DemoteEscalation(failures=3, reboot_due=True)
    assert keeper.statuses() == ()  # nothing is recorded before a reboot command really runs


def test_destroy_failures_alone_never_make_a_reboot_due_without_a_failed_forced_demotion(tmp_path: Path) -> None:
    clock = Clock()
    keeper = EscalationKeeper(tmp_path, "erdbeere", clock)
    desired, observed = _desired(), _observed(_desired())
    for _ in range(10):
        keeper.view(desired, observed)
        keeper.after_apply([_failed("destroy-domain"), _failed(ran=False, result="skipped")])
        clock.now += 10
    escalation = _escalation(keeper, desired, observed)
    assert escalation is not None
    assert (escalation.failures, escalation.reboot_due) == (10, False)


def _due(keeper: EscalationKeeper, clock: Clock, desired: DesiredNode, observed: ObservedNode) -> DemoteEscalation:
    keeper.view(desired, observed)
    keeper.after_apply([_failed(forced=True)])
    clock.now += REBOOT_AFTER_SECONDS
    escalation = _escalation(keeper, desired, observed)
    assert escalation is not None
    assert escalation.reboot_due
    return escalation


def _two_vms() -> DesiredNode:
    vm101 = make_vm(101)
    assert vm101.drbd is not None
    return make_node(_vm(_desired()), vm101.model_copy(update={
        "drbd": vm101.drbd.model_copy(update={"safety": "quorum"})}))


def test_the_record_is_written_when_the_command_starts_and_holds_every_reboot_of_the_node_for_an_hour(
        tmp_path: Path) -> None:
    clock = Clock()
    keeper = EscalationKeeper(tmp_path, "erdbeere", clock)
    desired, observed = _desired(), _observed(_desired())
    assert _due(keeper, clock, desired, observed).reboot_held == ""
    assert keeper.reboot_starting(_reboot()) == ""
    (record,) = keeper.statuses()
    assert (record.vm, record.state, record.action, record.failures) == (
        "vm100", "started", "systemctl reboot --force", 1)

    # The node comes back (the daemon starts anew: the count is gone, the record is not); another VM of the
    # node gets stuck: its reboot is held for the hour.
    clock.now += 120
    keeper = EscalationKeeper(tmp_path, "erdbeere", clock)
    desired = _two_vms()
    observed = _observed(desired)
    keeper.view(desired, observed)
    keeper.after_apply([_failed(forced=True, vm="vm101")])
    clock.now += REBOOT_AFTER_SECONDS
    held = {vm.name: vm.escalation for vm in keeper.view(desired, observed).vms}
    assert held["vm100"] is None
    escalation = held["vm101"]
    assert escalation is not None
    assert escalation.reboot_held.startswith("this node already rebooted itself for lost quorum 150 s ago (vm100, "
                                             "started)")
    clock.now += REBOOT_HOLD_SECONDS
    escalation = {vm.name: vm.escalation for vm in keeper.view(desired, observed).vms}["vm101"]
    assert escalation is not None
    assert escalation.reboot_held == ""


def test_a_failed_reboot_command_is_tried_again_after_five_minutes(tmp_path: Path) -> None:
    clock = Clock()
    keeper = EscalationKeeper(tmp_path, "erdbeere", clock)
    desired, observed = _desired(), _observed(_desired())
    _due(keeper, clock, desired, observed)
    assert keeper.reboot_starting(_reboot()) == ""
    keeper.after_apply([ActionRecord(kind="reboot-node", key="drbd:vm100", vm="vm100", result="failed", ran=True,
                                     message="`systemctl reboot --force` (exit 1): Failed to connect to bus")])
    (record,) = keeper.statuses()
    assert record.state == "failed"
    assert "Failed to connect to bus" in record.message
    clock.now += 60
    escalation = _escalation(keeper, desired, observed)
    assert escalation is not None
    assert escalation.reboot_held.startswith("the reboot command failed 60 s ago")
    clock.now += FAILED_REBOOT_HOLD_SECONDS
    escalation = _escalation(keeper, desired, observed)
    assert escalation is not None
    assert escalation.reboot_held == ""


def test_an_outcome_that_cannot_be_recorded_keeps_the_started_record_and_the_pass_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    keeper = EscalationKeeper(tmp_path, "erdbeere", clock)
    desired, observed = _desired(), _observed(_desired())
    _due(keeper, clock, desired, observed)
    assert keeper.reboot_starting(_reboot()) == ""
    records, moved = tmp_path / "escalations", tmp_path / "escalations.kept"
    records.rename(moved)  # root ignores modes: a file where the directory was makes the write fail
    try:
        records.write_text("not a directory")
        keeper.after_apply([ActionRecord(kind="reboot-node", key="drbd:vm100", vm="vm100", result="failed",
                                         ran=True, message="exit 1")])
    finally:
        records.unlink()
        moved.rename(records)
    assert "escalation.record_failed" in caplog.text
    (record,) = keeper.statuses()
    assert record.state == "started"  # holds the next reboot for the hour
    clock.now += FAILED_REBOOT_HOLD_SECONDS + 1
    escalation = _escalation(keeper, desired, observed)
    assert escalation is not None
    assert escalation.reboot_held.startswith("this node already rebooted itself for lost quorum")


def test_a_reboot_that_cannot_be_recorded_is_refused(tmp_path: Path) -> None:
    clock = Clock()
    (tmp_path / "escalations").write_text("not a directory")
    keeper = EscalationKeeper(tmp_path, "erdbeere", clock)
    desired, observed = _desired(), _observed(_desired())
    _due(keeper, clock, desired, observed)
    assert keeper.reboot_starting(_reboot()).startswith("the reboot is not run: its record cannot be written")


def test_quorum_back_or_a_demotion_resets_the_count(tmp_path: Path) -> None:
    keeper = EscalationKeeper(tmp_path, "erdbeere", Clock())
    desired = _desired()
    keeper.view(desired, _observed(desired))
    keeper.after_apply([_failed()])
    for healed in (_observed(desired, quorum=True), _observed(desired, role="Secondary")):
        assert _escalation(keeper, desired, healed) is None
        keeper.after_apply([_failed()])  # not counted: nothing was being stopped
        assert _escalation(keeper, desired, _observed(desired)) is None


def test_a_demotion_for_another_reason_is_not_counted(tmp_path: Path) -> None:
    keeper = EscalationKeeper(tmp_path, "erdbeere", Clock())
    desired = _desired()
    keeper.view(desired, _observed(desired))
    keeper.after_apply([_failed("demote")])  # a deletion's or a switchover's demotion
    assert _escalation(keeper, desired, _observed(desired)) is None


def test_status_shows_the_reboot() -> None:
    status = NodeStatus(node="erdbeere", escalations=(EscalationStatus(
        vm="vm100", resource="vm100", action="systemctl reboot --force", state="requested", decided_at=40.0,
        updated_at=41.0,
        failures=2, reason="vm100 is still Primary without quorum after 2 failed attempts to stop it"),))
    text = render(status, now=100.0)
    assert "reboots after a failed demotion without quorum:" in text
    assert "vm100: `systemctl reboot --force` 60s ago: REQUESTED" in text
    assert "why: vm100 is still Primary without quorum after 2 failed attempts to stop it" in text

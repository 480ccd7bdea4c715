"""What one pass of the executor reports as a whole: progress in order, durations on the executor's clock, the
errors and notes of the pass, a refused VM, the observer it was given, and what its crash journal keeps."""

from __future__ import annotations

import json

import pytest

from reconciler.apply.executor import apply_plan
from reconciler.apply.journal import DEFAULT_JOURNAL_PATH
from reconciler.core.actions import Action
from reconciler.core.plan_model import Note, Plan
from reconciler.host.base import CommandResult
from reconciler.model.observed import DmDevice, ToolStatus
from reconciler.model.status import ActionRecord
from reconciler.observe.observer import Observer
from reconciler.plan.diff import plan_node
from tests.apply.fakes import FakeHost, Killed, fail
from tests.apply.test_executor import VirtualClock, fresh_plan, options, start_host, start_plan
from tests.plan.factories import converged, make_node, make_vm


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, int, int]] = []
        self.closed = False

    def started(self, action: Action, index: int, total: int) -> None:
        self.events.append(("started", action.id, index, total))

    def finished(self, action: Action, record: ActionRecord) -> None:
        self.events.append(("finished", action.id, 0, 0))
        assert record.kind == action.kind

    def resync(self, resource: str, peer: str, percent: float) -> None:
        """Not reported by these passes."""

    def close(self) -> None:
        self.closed = True


def test_progress_is_told_each_step_in_order_counted_from_one() -> None:
    plan = fresh_plan(100)
    progress = _Recorder()
    apply_plan(FakeHost(), plan, options=options(VirtualClock()), progress=progress)
    total = len(plan.actions)
    expected = [e for i, a in enumerate(plan.actions, start=1)
                for e in (("started", a.id, i, total), ("finished", a.id, 0, 0))]
    assert progress.events == expected
    assert progress.closed


def test_durations_are_measured_on_the_executors_clock() -> None:
    failures = {"n": 0}

    def flaky(argv: tuple[str, ...]) -> CommandResult | None:
        if argv[0] == "lvcreate" and failures["n"] < 2:
            failures["n"] += 1
            return fail(argv, 5, "  Resource temporarily unavailable\n")
        return None

    clock = VirtualClock()
    result = apply_plan(FakeHost(responders=[flaky]), fresh_plan(100), options=options(clock))
    first = result.actions[0]
    assert first.duration_s == pytest.approx(sum(clock.sleeps))
    assert first.duration_s > 1.0
    assert all(r.duration_s == 0.0 for r in result.actions[1:])
    assert result.started_at == 1000.0
    assert result.finished_at == clock.now


def test_a_stop_request_says_why_the_rest_waits() -> None:
    opts = options(VirtualClock())
    opts.should_stop = lambda: True
    result = apply_plan(FakeHost(), fresh_plan(100), options=opts)
    assert {r.message for r in result.actions} == {"pass stopped before this action (shutdown requested)"}


def test_errors_list_failed_and_refused_steps_and_refused_vms_and_the_notes_come_along() -> None:
    vm = make_vm(100)
    assert vm.drbd is not None
    moved = vm.model_copy(update={"drbd": vm.drbd.model_copy(update={"minor": 7})})
    plan = plan_node(make_node(moved, make_vm(101)), converged(make_node(vm)))
    assert plan.refused_vms
    note = Note(key="vm:vm101", vm="vm101", kind="info", message="a note for the operator")
    plan = plan.model_copy(update={"notes": (*plan.notes, note)})
    host = FakeHost(responders=[lambda argv: fail(argv, 5, "  Volume group not found\n") if argv[0] == "lvcreate"
                                else None])
    result = apply_plan(host, plan, options=options(VirtualClock()))
    assert result.errors[0].startswith("vm100: vm100: its DRBD minor would change from 0 to 7")
    failed = [r for r in result.actions if r.result == "failed"]
    assert failed
    assert f"{failed[0].key}: {failed[0].message}" in result.errors
    assert note in result.notes
    assert result.outcome == "failed"


def test_a_refused_vm_alone_makes_the_pass_failed() -> None:
    vm = make_vm(100)
    assert vm.drbd is not None
    moved = vm.model_copy(update={"drbd": vm.drbd.model_copy(update={"minor": 7})})
    plan = plan_node(make_node(moved), converged(make_node(vm)))
    assert plan.actions == ()
    result = apply_plan(FakeHost(), plan, options=options(VirtualClock()))
    assert result.outcome == "failed"
    assert len(result.errors) == 1


def test_a_refused_step_is_listed_in_the_errors() -> None:
    host = start_host(signatures={"/dev/drbd0": "ext4"})
    result = apply_plan(host, start_plan(), options=options(VirtualClock()))
    refused = next(r for r in result.actions if r.result == "refused")
    assert f"{refused.key}: {refused.message}" in result.errors


class _CountingObserver(Observer):
    def __init__(self, host: FakeHost) -> None:
        super().__init__(host)
        self.dm_reads = 0

    def observe_dm(self) -> tuple[ToolStatus, tuple[DmDevice, ...]]:
        self.dm_reads += 1
        return super().observe_dm()


def test_the_last_look_reads_through_the_observer_it_was_given() -> None:
    plan = plan_node(make_node(make_vm(100, lifecycle="deleted")), converged(make_node(make_vm(100))))
    host = FakeHost()
    observer = _CountingObserver(host)
    apply_plan(host, plan, options=options(VirtualClock()), observer=observer)
    assert observer.dm_reads == 1


def _md_plan() -> Plan:
    desired = make_node(make_vm(100))
    observed = converged(desired)
    return plan_node(desired, observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": ()}),
                                                          "domains": ()}))


def _journal_ids(host: FakeHost) -> list[str]:
    text = host.files.get(DEFAULT_JOURNAL_PATH)
    return [e["action_id"] for e in json.loads(text)["in_flight"]] if text else []


def test_the_journal_forgets_a_step_found_done_and_keeps_one_that_still_waits() -> None:
    # create-md took effect, then the node died: the next pass finds the metadata (done) and forgets the entry.
    host = FakeHost(kill_after=("drbdadm", "create-md"))
    with pytest.raises(Killed):
        apply_plan(host, _md_plan(), options=options(VirtualClock()))
    assert _journal_ids(host) == ["create-md@drbd:vm100"]
    host.kill_after = None
    host.signatures["/dev/mapper/root100"] = "drbd"
    result = apply_plan(host, _md_plan(), options=options(VirtualClock()))
    assert next(r for r in result.actions if r.kind == "create-md").result == "unchanged"
    assert _journal_ids(host) == []

    # mkfs was cut short; the next pass cannot get to it yet (the promotion waits): the entry stays.
    host = start_host(kill_after=("mkfs.xfs",))
    with pytest.raises(Killed):
        apply_plan(host, start_plan(), options=options(VirtualClock()))
    host.kill_after = None
    host.drbd = ()  # DRBD went down: the promotion, and so the mkfs after it, wait
    result = apply_plan(host, start_plan(), options=options(VirtualClock()))
    assert next(r for r in result.actions if r.kind == "make-fs").result == "waiting"
    assert _journal_ids(host) == ["make-fs@fs:/dev/drbd0"]


def test_a_wait_down_a_chain_names_the_root_cause_once() -> None:
    first = Action(id="drbd-adjust@drbd:vm100", kind="drbd-adjust", key="drbd:vm100", vm="vm100", change="change",
                   description="adjust", waiting="waiting for peer himbeere to apply revision bbbbbbbbbbbb")
    second = Action(id="drbd-resize@drbd:vm100", kind="drbd-resize", key="drbd:vm100", vm="vm100", change="change",
                    description="resize", depends_on=(first.id,))
    third = Action(id="extend-lv@lv:vg-sda/root100", kind="extend-lv", key="lv:vg-sda/root100", vm="vm100",
                   change="change", description="extend", depends_on=(second.id,))
    plan = Plan(node="erdbeere", actions=(first, second, third))
    host = FakeHost()
    records = apply_plan(host, plan, options=options(VirtualClock())).actions
    expected = "waits for drbd-adjust@drbd:vm100: waiting for peer himbeere to apply revision bbbbbbbbbbbb"
    assert [r.message for r in records] == [first.waiting, expected, expected]
    assert [r.result for r in records] == ["waiting"] * 3
    assert host.calls == []

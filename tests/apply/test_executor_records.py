"""What the executor records about each step (attempts, retries, the commands that ran, the message) and what
its crash journal holds at each command of a step: the action log and the next pass rely on both."""

from __future__ import annotations

import json

import pytest

from reconciler.apply.executor import apply_plan
from reconciler.apply.journal import DEFAULT_JOURNAL_PATH
from reconciler.core.plan_model import Plan
from reconciler.host.base import CommandResult, HostFileError
from reconciler.model.status import ActionRecord
from reconciler.plan.diff import plan_node
from tests.apply.fakes import FakeHost, Killed, Responder, fail
from tests.apply.test_executor import (
    LEG_UUIDS,
    VirtualClock,
    _lvs,
    _xfs_db,
    fresh_plan,
    options,
    start_host,
    start_plan,
)
from tests.plan.factories import converged, make_node, make_vm

WIPE = ("wipefs", "-a", "/dev/drbd0")
MKFS = ("mkfs.xfs", "/dev/drbd0")


def _by_kind(records: tuple[ActionRecord, ...]) -> dict[str, ActionRecord]:
    return {r.kind: r for r in records}


def _interrupted_mkfs() -> FakeHost:
    """A host whose journal says our mkfs on /dev/drbd0 was cut short, and xfs_db agrees: the next pass redoes it
    (wipefs, mkfs)."""
    host = start_host(responders=[_lvs(LEG_UUIDS), _xfs_db(1)], kill_after=("mkfs.xfs",))
    with pytest.raises(Killed):
        apply_plan(host, start_plan(), options=options(VirtualClock()))
    host.kill_after = None
    host.calls.clear()
    return host


def _answer(prefix: tuple[str, ...], *results: CommandResult | None) -> Responder:
    """Answer the commands starting with ``prefix`` with ``results`` in turn, then as the host would."""
    queue = list(results)

    def answer(argv: tuple[str, ...]) -> CommandResult | None:
        if argv[: len(prefix)] == prefix and queue:
            return queue.pop(0)
        return None
    return answer


def test_a_clean_pass_counts_one_attempt_per_command_and_no_retry() -> None:
    plan = fresh_plan(100)
    result = apply_plan(FakeHost(), plan, options=options(VirtualClock()))
    assert result.retries == 0
    for record in result.actions:
        if record.result == "ok":
            action = plan.action(f"{record.kind}@{record.key}")
            assert action is not None
            assert record.attempts == len(action.commands) + (action.file_path is not None), record.kind
            assert record.argv == action.argvs


def test_a_failed_redo_records_both_commands_and_a_plain_message() -> None:
    host = _interrupted_mkfs()
    host.responders.insert(0, _answer(("mkfs.xfs",), fail(MKFS, 1, "mkfs.xfs: pwrite failed: Input/output error")))
    record = _by_kind(apply_plan(host, start_plan(), options=options(VirtualClock())).actions)["make-fs"]
    assert record.result == "failed"
    assert record.argv == (WIPE, MKFS)
    assert record.attempts == 2
    assert record.message == "permanent: `mkfs.xfs /dev/drbd0` (exit 1): mkfs.xfs: pwrite failed: Input/output error"


def test_a_redo_that_must_wait_records_only_what_ran() -> None:
    host = _interrupted_mkfs()
    host.responders.insert(0, _answer(("wipefs",), fail(WIPE, 1, "wipefs: error: /dev/drbd0: Device is held open "
                                                                  "by someone")))
    record = _by_kind(apply_plan(host, start_plan(), options=options(VirtualClock())).actions)["make-fs"]
    assert record.result == "waiting"
    assert record.argv == (WIPE,)
    assert MKFS not in host.calls


def test_retries_are_counted_over_every_command_of_a_step() -> None:
    host = _interrupted_mkfs()
    host.responders.insert(0, _answer(("wipefs",), fail(WIPE, 1, "wipefs: Resource temporarily unavailable")))
    result = apply_plan(host, start_plan(), options=options(VirtualClock()))
    record = _by_kind(result.actions)["make-fs"]
    assert record.result == "ok"
    assert record.attempts == 3  # wipefs twice, mkfs once
    assert result.retries == 1


def test_exhausted_retries_say_how_many_attempts_were_made() -> None:
    busy = fail(("lvcreate",), 5, "  Resource temporarily unavailable\n")
    host = FakeHost(responders=[_answer(("lvcreate",), busy, busy)])
    result = apply_plan(host, fresh_plan(100), options=options(VirtualClock(), attempts=2))
    first = result.actions[0]
    assert first.result == "failed"
    assert first.attempts == 2
    assert first.message.endswith(" after 2 attempts")
    assert result.retries == 1


def test_a_permanent_failure_message_has_no_attempt_count() -> None:
    host = FakeHost(responders=[_answer(("lvcreate",), fail(("lvcreate",), 5, "  Volume group not found\n"))])
    first = apply_plan(host, fresh_plan(100), options=options(VirtualClock())).actions[0]
    assert first.result == "failed"
    assert first.message == "permanent: `lvcreate` (exit 5): Volume group not found"


class _ModeHost(FakeHost):
    modes: dict[str, int]

    def write_file(self, path: str, content: str, mode: int = 0o600) -> None:
        self.modes[path] = mode
        super().write_file(path, content, mode)


def test_configuration_files_are_written_world_readable() -> None:
    host = _ModeHost()
    host.modes = {}
    apply_plan(host, fresh_plan(100), options=options(VirtualClock()))
    assert host.modes["/etc/drbd.d/vm100.res"] == 0o644


def test_steps_stopped_before_any_command_count_no_attempt_but_a_last_look_counts_one() -> None:
    host = start_host(signatures={"/dev/drbd0": "ext4", "/dev/vg-sda/swap100": "swap"},
                      files={"/proc/self/mounts": "/dev/vg-sda/swap100 none swap sw 0 0\n"})
    records = _by_kind(apply_plan(host, start_plan(), options=options(VirtualClock())).actions)
    assert records["make-fs"].result == "refused"
    assert records["make-fs"].attempts == 0
    assert records["make-fs"].message.startswith("/dev/drbd0 carries a ext4 signature; mkfs.xfs would destroy it")
    assert records["make-swap"].result == "unchanged"
    assert records["make-swap"].attempts == 0
    assert records["make-swap"].argv == ()
    # The start is blocked by the refused mkfs; a last-look stop is what the start of a new pass would see.
    assert records["start-domain"].result == "skipped"
    leg_host = start_host(signatures={"/dev/vg-sdb/root100": "xfs"})
    fresh = apply_plan(leg_host, _fresh_md_plan(), options=options(VirtualClock()))
    md = _by_kind(fresh.actions)["create-md"]
    assert md.result == "refused"
    assert md.attempts == 0
    stale = start_host()
    stale.drbd = ()  # the resource went down after planning: the last look stops the promotion
    promote = _by_kind(apply_plan(stale, start_plan(), options=options(VirtualClock())).actions)["promote"]
    assert promote.result == "waiting"
    assert promote.attempts == 1


def _fresh_md_plan() -> Plan:
    desired = make_node(make_vm(100))
    observed = converged(desired)
    return plan_node(desired, observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": ()}),
                                                          "domains": ()}))


def test_the_journal_names_the_step_its_start_time_and_no_identity_for_a_step_that_probes_nothing() -> None:
    host = FakeHost(kill_after=("lvcreate",))
    with pytest.raises(Killed):
        apply_plan(host, fresh_plan(100), options=options(VirtualClock()))
    entry = json.loads(host.files[DEFAULT_JOURNAL_PATH])["in_flight"][0]
    assert entry["kind"] == "create-lv"
    assert entry["identity"] == ""
    assert entry["started_at"] == 1000.0
    assert entry["step"] == 0


def test_the_journal_follows_a_redo_to_its_second_command() -> None:
    host = _interrupted_mkfs()
    host.kill_before = ("mkfs.xfs",)
    with pytest.raises(Killed):
        apply_plan(host, start_plan(), options=options(VirtualClock()))
    assert WIPE in host.calls
    entry = json.loads(host.files[DEFAULT_JOURNAL_PATH])["in_flight"][0]
    assert entry["kind"] == "make-fs"
    assert entry["step"] == 1


def test_a_successful_redo_records_the_wipe_too_and_no_message() -> None:
    host = _interrupted_mkfs()
    record = _by_kind(apply_plan(host, start_plan(), options=options(VirtualClock())).actions)["make-fs"]
    assert record.result == "ok"
    assert record.argv == (WIPE, MKFS)
    assert record.message == ""


class _ReadOnlyHost(FakeHost):
    def write_file(self, path: str, content: str, mode: int = 0o600) -> None:
        if path.startswith("/etc/drbd.d/"):
            raise HostFileError(f"cannot write {path}: Read-only file system")
        super().write_file(path, content, mode)


def test_a_config_file_that_cannot_be_written_fails_its_step_with_the_reason() -> None:
    result = apply_plan(_ReadOnlyHost(), fresh_plan(100), options=options(VirtualClock()))
    record = _by_kind(result.actions)["write-drbd-config"]
    assert record.result == "failed"
    assert record.message == ("permanent: /etc/drbd.d/vm100.res: cannot write /etc/drbd.d/vm100.res: Read-only file "
                              "system")
    assert record.attempts == 1
    assert record.argv == ()
    assert result.retries == 0
    assert _by_kind(result.actions)["create-md"].result == "skipped"


def test_a_skipped_step_names_the_failed_dependency_and_its_reason() -> None:
    said = "device-mapper: create ioctl on root100 failed: Invalid argument"
    host = FakeHost(responders=[_answer(("dmsetup", "create"), fail(("dmsetup", "create"), 1, said))])
    records = _by_kind(apply_plan(host, fresh_plan(100), options=options(VirtualClock())).actions)
    assert records["create-md"].result == "skipped"
    assert records["create-md"].message == (
        "skipped: create-stripe@dm:root100 failed: permanent: `dmsetup create` (exit 1): device-mapper: create ioctl "
        "on root100 failed: Invalid argument")


def test_a_wait_is_told_once_down_a_chain_of_steps() -> None:
    records = apply_plan(FakeHost(), fresh_plan(100), options=options(VirtualClock())).actions
    waiting = [r for r in records if r.result == "waiting"]
    assert {r.kind for r in waiting} >= {"promote", "make-fs", "start-domain"}
    dependents = [r for r in waiting if r.kind != "promote"]
    assert all(r.message.startswith("waits for promote@drbd:vm100: ") for r in dependents)
    assert all(r.message.count("waits for") == 1 for r in dependents)


def test_the_journal_lives_where_the_options_say() -> None:
    opts = options(VirtualClock())
    opts.journal_path = "/var/lib/elsewhere/journal.json"
    host = FakeHost(kill_after=("lvcreate",))
    with pytest.raises(Killed):
        apply_plan(host, fresh_plan(100), options=opts)
    assert "/var/lib/elsewhere/journal.json" in host.files
    assert DEFAULT_JOURNAL_PATH not in host.files


def test_a_pass_with_nothing_to_do_leaves_the_crash_journal_alone() -> None:
    host = _interrupted_mkfs()
    before = host.files[DEFAULT_JOURNAL_PATH]
    empty = start_plan().model_copy(update={"actions": ()})
    apply_plan(host, empty, options=options(VirtualClock()))
    assert host.files[DEFAULT_JOURNAL_PATH] == before

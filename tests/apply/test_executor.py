"""apply on a scripted host: order, retries on a virtual clock, waiting, skipping, gate checks, journal."""

from __future__ import annotations

import json

import pytest

from reconciler.apply.executor import ApplyOptions, apply_plan
from reconciler.apply.journal import DEFAULT_JOURNAL_PATH
from reconciler.apply.retry import RetryPolicy
from reconciler.core.plan_model import Plan
from reconciler.plan.diff import plan_node
from tests.apply.fakes import FakeHost, Killed, fail, lvs_report, ok
from tests.plan.factories import converged, drbd_state, empty_observed, make_node, make_vm


class VirtualClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def time(self) -> float:
        return self.now


def options(clock: VirtualClock, attempts: int = 5) -> ApplyOptions:
    return ApplyOptions(policy=RetryPolicy(attempts=attempts, initial_s=1.0, max_s=4.0, jitter_s=0.5),
                        sleep=clock.sleep, clock=clock.time)


def fresh_plan(*vids: int) -> Plan:
    return plan_node(make_node(*(make_vm(v) for v in vids)), empty_observed())


START_DRBD = (drbd_state("vm100", 0, role="Secondary"),)


def start_host(**kwargs: object) -> FakeHost:
    """A host whose DRBD, read afresh before the promotion, shows what start_plan planned from."""
    return FakeHost(drbd=START_DRBD, **kwargs)  # type: ignore[arg-type]


def start_plan(**drbd: object) -> Plan:
    """Both nodes up and Secondary, the domain not running: promote, make fs/swap, start."""
    desired = make_node(make_vm(100))
    obs = converged(desired, role="Secondary", **drbd).model_copy(update={"domains": ()})
    return plan_node(desired, obs)


def test_actions_run_in_plan_order_and_waiting_propagates() -> None:
    host, clock = FakeHost(), VirtualClock()
    plan = fresh_plan(100)
    result = apply_plan(host, plan, options=options(clock))
    ran = [c for c in host.calls if c[0] not in ("blkid", "lvs")]
    expected = [argv for a in plan.actions if not a.waiting for argv in a.argvs
                if a.kind not in ("make-fs", "start-domain")]
    assert ran == expected
    by_kind = {r.kind: r for r in result.actions}
    assert by_kind["promote"].result == "waiting"
    assert by_kind["make-fs"].result == "waiting"
    assert "promote@drbd:vm100" in by_kind["make-fs"].message
    assert by_kind["start-domain"].result == "waiting"
    assert result.outcome == "progressing"
    assert host.files["/etc/drbd.d/vm100.res"] == plan.action("write-drbd-config@drbd:vm100").file_content  # type: ignore[union-attr]
    assert DEFAULT_JOURNAL_PATH not in host.files  # finished actions leave no journal behind
    assert clock.sleeps == []


def test_transient_failure_is_retried_with_capped_backoff_on_a_virtual_clock() -> None:
    failures = {"n": 0}

    def flaky(argv: tuple[str, ...]) -> object:
        if argv[0] == "lvcreate" and argv[-1] == "vg-sda" and failures["n"] < 4:
            failures["n"] += 1
            return fail(argv, 5, "  Resource temporarily unavailable\n")
        return None

    host, clock = FakeHost(responders=[flaky]), VirtualClock()  # type: ignore[list-item]
    result = apply_plan(host, fresh_plan(100), options=options(clock))
    first = result.actions[0]
    assert first.result == "ok"
    assert first.attempts == 5
    assert result.retries >= 4
    assert len(clock.sleeps) >= 4
    assert all(0 < s <= 4.5 for s in clock.sleeps)  # capped at max_s plus jitter
    assert clock.sleeps[1] >= 2.0
    assert clock.sleeps[3] >= 4.0


def test_exhausted_retries_fail_and_skip_dependents_while_other_vm_converges() -> None:
    def broken(argv: tuple[str, ...]) -> object:
        if argv[:2] == ("dmsetup", "create") and argv[2] == "root100":
            return fail(argv, 1, "device-mapper: reload ioctl on root100 failed: Device or resource busy\n")
        return None

    host, clock = FakeHost(responders=[broken]), VirtualClock()  # type: ignore[list-item]
    result = apply_plan(host, fresh_plan(100, 101), options=options(clock, attempts=3))
    by_id = {(r.kind, r.vm): r for r in result.actions}
    stripe = by_id[("create-stripe", "vm100")]
    assert stripe.result == "failed"
    assert stripe.attempts == 3
    assert "after 3 attempts" in stripe.message
    assert by_id[("create-md", "vm100")].result == "skipped"
    assert "create-stripe@dm:root100 failed" in by_id[("drbd-up", "vm100")].message
    assert by_id[("drbd-up", "vm101")].result == "ok"
    assert result.outcome == "failed"
    assert ("dmsetup", "create", "root101", "--uuid", "RECONCILER-root101") in host.calls
    status = {r.key: r for r in result.resources}
    assert status["dm:root100"].phase == "failed"
    assert status["dm:root101"].phase == "progressing"  # made in this pass; Ready once a pass confirms it


def test_permanent_failure_is_not_retried() -> None:
    def no_space(argv: tuple[str, ...]) -> object:
        if argv[0] == "lvcreate" and "root100" in argv:
            said = '  Volume group "vg-sda" has insufficient free space (1279 extents): 25600 required.\n'
            return fail(argv, 5, said)
        return None

    host, clock = FakeHost(responders=[no_space]), VirtualClock()  # type: ignore[list-item]
    result = apply_plan(host, fresh_plan(100), options=options(clock))
    assert result.actions[0].result == "failed"
    assert result.actions[0].attempts == 1
    assert clock.sleeps == []
    assert "insufficient free space" in result.actions[0].message


def test_precondition_failure_waits_without_counting_as_failure() -> None:
    def peer_primary(argv: tuple[str, ...]) -> object:
        if argv[:2] == ("drbdadm", "primary"):
            return fail(argv, 11, "vm100: State change failed: (-1) Multiple primaries not allowed by config\n")
        return None

    host, clock = start_host(responders=[peer_primary]), VirtualClock()  # type: ignore[list-item]
    result = apply_plan(host, start_plan(), options=options(clock))
    by_kind = {r.kind: r for r in result.actions}
    assert by_kind["promote"].result == "waiting"
    assert by_kind["promote"].attempts == 1
    assert by_kind["start-domain"].result == "waiting"
    assert result.outcome == "progressing"
    assert result.errors == ()


def test_mkfs_skipped_when_the_device_already_has_xfs_and_refused_over_foreign_data() -> None:
    host, clock = start_host(signatures={"/dev/drbd0": "xfs"}), VirtualClock()
    result = apply_plan(host, start_plan(), options=options(clock))
    assert not any(c[0] == "mkfs.xfs" for c in host.calls)
    # Nothing ran: counted as unchanged, not as an ok run, and no command is recorded for it.
    make_fs = next(r for r in result.actions if r.kind == "make-fs")
    assert (make_fs.result, make_fs.argv, make_fs.attempts) == ("unchanged", (), 0)
    assert ("xl", "create", "/etc/xen/vm100.cfg") in host.calls
    host = start_host(signatures={"/dev/drbd0": "ext4"})
    result = apply_plan(host, start_plan(), options=options(clock))
    by_kind = {r.kind: r for r in result.actions}
    assert by_kind["make-fs"].result == "refused"
    assert "ext4" in by_kind["make-fs"].message
    assert by_kind["start-domain"].result == "skipped"
    assert not any(c[0] in ("mkfs.xfs", "xl") for c in host.calls)


def test_mkswap_never_runs_over_an_xfs_signature() -> None:
    host = start_host(signatures={"/dev/vg-sda/swap100": "xfs"})
    result = apply_plan(host, start_plan(), options=options(VirtualClock()))
    swap = next(r for r in result.actions if r.kind == "make-swap")
    assert swap.result == "refused"
    assert "mkswap would destroy it" in swap.message
    assert not any(c[0] == "mkswap" for c in host.calls)


def test_unreadable_probe_refuses_the_write() -> None:
    def no_blkid(argv: tuple[str, ...]) -> object:
        return fail(argv, 127, "blkid: not found") if argv[0] == "blkid" else None

    host = start_host(responders=[no_blkid])  # type: ignore[list-item]
    result = apply_plan(host, start_plan(), options=options(VirtualClock()))
    assert {r.kind: r.result for r in result.actions}["make-fs"] == "refused"


NEW_PAIR = (drbd_state("vm100", 0, role="Secondary", disk="Inconsistent", peer_disk="Inconsistent"),)


def _forced_plan() -> Plan:
    desired = make_node(make_vm(100))
    obs = converged(desired, role="Secondary", disk="Inconsistent", peer_disk="Inconsistent")
    return plan_node(desired, obs.model_copy(update={"domains": ()}))


@pytest.mark.parametrize(("gi", "allowed"), [
    ("0000000000000004:0000000000000000:0000000000000000:0000000000000000:0:0:0:0:0:0:0:0\n", True),
    ("7D0A5D3C6D93AB0E:0000000000000000:6A4C9D3E5B1F2C10:0000000000000000:1:1:0:0:0:0:0:0\n", False),
    ("garbage\n", False),
])
def test_forced_promotion_checks_generation_identifiers_first(gi: str, allowed: bool) -> None:
    def show_gi(argv: tuple[str, ...]) -> object:
        return ok(argv, gi) if argv[:2] == ("drbdadm", "show-gi") else None

    host = FakeHost(responders=[show_gi], drbd=NEW_PAIR)  # type: ignore[list-item]
    result = apply_plan(host, _forced_plan(), options=options(VirtualClock()))
    force = next(r for r in result.actions if r.kind == "promote-force-initial")
    assert (("drbdadm", "primary", "--force", "vm100") in host.calls) is allowed
    assert force.result == ("ok" if allowed else "refused")


def test_domain_start_refused_while_dom0_has_its_device_mounted() -> None:
    host = start_host(signatures={"/dev/drbd0": "xfs", "/dev/vg-sda/swap100": "swap"})
    host.files["/proc/self/mounts"] = "/dev/sda1 / ext4 rw 0 0\n/dev/drbd0 /mnt xfs rw 0 0\n"
    result = apply_plan(host, start_plan(), options=options(VirtualClock()))
    start = next(r for r in result.actions if r.kind == "start-domain")
    assert start.result == "refused"
    assert "/dev/drbd0 is mounted in dom0" in start.message
    assert not any(c[:2] == ("xl", "create") for c in host.calls)


def test_command_timeouts_are_longer_for_mkfs() -> None:
    host = start_host()
    apply_plan(host, start_plan(), options=options(VirtualClock()))
    timeouts = dict(zip(host.calls, host.timeouts, strict=True))
    assert timeouts[("mkfs.xfs", "/dev/drbd0")] >= 600
    assert timeouts[("drbdadm", "primary", "vm100")] <= 60


LEG_UUIDS = (("vg-sda", "root100", "U-a"), ("vg-sdb", "root100", "U-b"), ("vg-sdc", "root100", "U-c"),
             ("vg-sda", "swap100", "U-s"))


def _lvs(uuids: tuple[tuple[str, str, str], ...]) -> object:
    def answer(argv: tuple[str, ...]) -> object:
        return ok(argv, lvs_report(*uuids)) if argv[0] == "lvs" else None
    return answer


def _xfs_db(inprogress: int | None) -> object:
    """xfs_db's answer for /dev/drbd0: ``inprogress`` (a failure for None) until a second mkfs.xfs has run, then 0:
    the first is the one a kill cuts short (``_killed_during_mkfs``), the second the redo that finishes."""
    flag = {"inprogress": inprogress}
    made = [0]

    def answer(argv: tuple[str, ...]) -> object:
        if argv[0] == "mkfs.xfs":
            made[0] += 1
            if made[0] > 1:
                flag["inprogress"] = 0
            return None
        if argv[0] != "xfs_db":
            return None
        if flag["inprogress"] is None:
            return fail(argv, 1, "xfs_db: /dev/drbd0: Input/output error\n")
        return ok(argv, f"inprogress = {flag['inprogress']}\n")
    return answer


def _killed_during_mkfs(inprogress: int | None) -> FakeHost:
    host = start_host(responders=[_lvs(LEG_UUIDS), _xfs_db(inprogress)],  # type: ignore[list-item]
                      kill_after=("mkfs.xfs",))
    with pytest.raises(Killed):
        apply_plan(host, start_plan(), options=options(VirtualClock()))
    journal = json.loads(host.files[DEFAULT_JOURNAL_PATH])
    entry = journal["in_flight"][0]
    assert entry["kind"] == "make-fs"
    assert entry["devices"] == ["/dev/drbd0"]
    assert entry["identity"] == "U-a,U-b,U-c"
    host.kill_after = None
    host.calls.clear()
    return host


def test_interrupted_mkfs_is_redone_only_on_the_very_device_the_journal_names() -> None:
    host = _killed_during_mkfs(inprogress=1)
    # The device shows xfs, the journal names it and xfs_db shows mkfs.xfs never finished: ours to redo.
    result = apply_plan(host, start_plan(), options=options(VirtualClock()))
    assert ("xfs_db", "-r", "-c", "sb 0", "-c", "print inprogress", "/dev/drbd0") in host.calls
    assert [c for c in host.calls if c[0] in ("wipefs", "mkfs.xfs")] == [("wipefs", "-a", "/dev/drbd0"),
                                                                         ("mkfs.xfs", "/dev/drbd0")]
    assert result.outcome == "progressing"  # work was done: the next pass confirms
    assert not [r for r in result.actions if r.result != "ok"]
    assert DEFAULT_JOURNAL_PATH not in host.files
    # Without the journal, the finished filesystem is done: nothing is redone.
    host.calls.clear()
    apply_plan(host, start_plan(), options=options(VirtualClock()))
    assert not any(c[0] in ("wipefs", "mkfs.xfs") for c in host.calls)


def test_an_unfinished_filesystem_is_made_again_without_the_journal() -> None:
    # The peer after a failover, say: its journal never named the device, but the kernel would not mount it.
    host = start_host(signatures={"/dev/drbd0": "xfs"}, responders=[_xfs_db(1)])  # type: ignore[list-item]
    result = apply_plan(host, start_plan(), options=options(VirtualClock()))
    assert [c for c in host.calls if c[0] in ("wipefs", "mkfs.xfs")] == [("wipefs", "-a", "/dev/drbd0"),
                                                                         ("mkfs.xfs", "/dev/drbd0")]
    make_fs = next(r for r in result.actions if r.kind == "make-fs")
    assert make_fs.result == "ok"
    assert next(r for r in result.actions if r.kind == "start-domain").result == "ok"


def test_a_mkfs_that_finished_before_the_kill_is_kept() -> None:
    host = _killed_during_mkfs(inprogress=0)
    result = apply_plan(host, start_plan(), options=options(VirtualClock()))
    assert not any(c[0] in ("wipefs", "mkfs.xfs") for c in host.calls)
    make_fs = next(r for r in result.actions if r.kind == "make-fs")
    assert (make_fs.result, make_fs.message) == ("unchanged", "/dev/drbd0 already carries a xfs signature")
    assert DEFAULT_JOURNAL_PATH not in host.files


def test_our_own_mkfs_is_not_redone_when_xfs_db_cannot_tell() -> None:
    host = _killed_during_mkfs(inprogress=None)
    result = apply_plan(host, start_plan(), options=options(VirtualClock()))
    assert not any(c[0] in ("wipefs", "mkfs.xfs") for c in host.calls)
    make_fs = next(r for r in result.actions if r.kind == "make-fs")
    assert make_fs.result == "refused"
    assert "xfs_db could not tell whether mkfs.xfs finished" in make_fs.message


def test_journal_for_another_incarnation_of_the_device_does_not_allow_a_redo() -> None:
    host = start_host(responders=[_lvs(LEG_UUIDS)], kill_after=("mkfs.xfs",))  # type: ignore[list-item]
    with pytest.raises(Killed):
        apply_plan(host, start_plan(), options=options(VirtualClock()))
    recreated = tuple((vg, name, uuid + "-new") for vg, name, uuid in LEG_UUIDS)
    host.responders = [_lvs(recreated)]  # type: ignore[list-item]
    host.kill_after = None
    host.signatures["/dev/drbd0"] = "xfs"
    host.calls.clear()
    result = apply_plan(host, start_plan(), options=options(VirtualClock()))
    assert not any(c[0] in ("wipefs", "mkfs.xfs") for c in host.calls)
    assert "already carries" in next(r for r in result.actions if r.kind == "make-fs").message


def test_stop_request_requeues_the_rest_of_the_pass() -> None:
    host, clock = FakeHost(), VirtualClock()
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    opts = options(clock)
    opts.should_stop = stop
    result = apply_plan(host, fresh_plan(100), options=opts)
    assert [r.result for r in result.actions[:2]] == ["ok", "ok"]
    assert all(r.result == "waiting" for r in result.actions[2:])
    assert len([c for c in host.calls if c[0] == "lvcreate"]) == 2


def test_refused_plan_actions_are_reported_and_never_run() -> None:
    deleted = make_node(make_vm(100, lifecycle="deleted"), make_vm(101, lifecycle="deleted"))
    plan = plan_node(deleted, converged(make_node(make_vm(100), make_vm(101))))
    host = FakeHost()
    result = apply_plan(host, plan, options=options(VirtualClock()))
    refused = [r for r in result.actions if r.result == "refused"]
    assert refused
    assert all("more than the limit" in r.message for r in refused)
    # The guard holds the whole VM: nothing is removed, and nothing is shut down or demoted either.
    assert {r.result for r in result.actions} <= {"refused", "skipped"}
    assert host.calls == []

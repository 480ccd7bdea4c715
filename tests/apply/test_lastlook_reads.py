"""The gate's last word when the fresh read itself fails or shows something new: a step whose facts cannot be
re-read never runs, an ownership refusal names the device, and a promotion follows DRBD's state right now."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from reconciler.apply.executor import ApplyOptions, apply_plan
from reconciler.apply.lastlook import MOUNTS_FILE, LastLook
from reconciler.apply.retry import RetryPolicy
from reconciler.core.actions import Action
from reconciler.core.plan_model import Plan
from reconciler.host.base import CommandResult, HostFileError
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import DrbdResourceState
from reconciler.names import UnsafeNameError
from reconciler.observe.observer import Observer
from reconciler.plan.diff import plan_node
from tests.apply.fakes import FakeHost, Responder, fail, lvs_report, ok
from tests.plan.factories import converged, drbd_state, make_node, make_vm

LVS = (("vg-sda", "root100", "uuid-vg-sda-root100"), ("vg-sdb", "root100", "uuid-vg-sdb-root100"),
       ("vg-sdc", "root100", "uuid-vg-sdc-root100"), ("vg-sda", "swap100", "uuid-vg-sda-swap100"))


def _options() -> ApplyOptions:
    return ApplyOptions(policy=RetryPolicy(attempts=1, initial_s=1.0, max_s=1.0, jitter_s=0.0),
                        sleep=lambda _s: None, clock=lambda: 1000.0)


def _deletion_plan() -> Plan:
    return plan_node(make_node(make_vm(100, lifecycle="deleted")), converged(make_node(make_vm(100))))


def _outcomes(host: FakeHost, plan: Plan) -> dict[str, tuple[str, str]]:
    result = apply_plan(host, plan, options=_options())
    return {f"{r.kind}@{r.key}": (r.result, r.message) for r in result.actions}


def _dm(uuid: str) -> Responder:
    def answer(argv: tuple[str, ...]) -> CommandResult | None:
        if argv[:2] == ("dmsetup", "info"):
            return ok(argv, f"root100/253/100/L--w/0/{uuid}\n")
        if argv[:2] == ("dmsetup", "table"):
            return ok(argv, "root100: 0 62914560 striped 3 128 8:0 0 8:1 0 8:2 0\n")
        return None
    return answer


def _lvs(tags: str) -> Responder:
    def answer(argv: tuple[str, ...]) -> CommandResult | None:
        return ok(argv, lvs_report(*LVS, tags=tags)) if argv[0] == "lvs" else None
    return answer


def _failing(tool: str) -> Responder:
    def answer(argv: tuple[str, ...]) -> CommandResult | None:
        return fail(argv, 5, f"{tool}: cannot talk to the kernel") if argv[0] == tool else None
    return answer


def test_a_stripe_is_not_removed_when_device_mapper_cannot_be_read_again() -> None:
    host = FakeHost(responders=[_failing("dmsetup"), _lvs("reconciler")])
    outcome, message = _outcomes(host, _deletion_plan())["remove-stripe@dm:root100"]
    assert outcome == "refused"
    assert message.startswith("cannot re-read device-mapper right before the step (failed: ")
    assert "cannot talk to the kernel" in message
    assert ("dmsetup", "remove", "root100") not in host.calls


def test_a_foreign_stripe_refusal_names_the_device_and_its_uuid() -> None:
    host = FakeHost(responders=[_dm("CRYPT-someone"), _lvs("reconciler")])
    outcome, message = _outcomes(host, _deletion_plan())["remove-stripe@dm:root100"]
    assert outcome == "refused"
    assert message == ("dm device root100 has uuid CRYPT-someone, not RECONCILER-root100: it was not made by this "
                       "project and is left alone")


def test_a_vanished_stripe_is_not_removed_again() -> None:
    def gone(argv: tuple[str, ...]) -> CommandResult | None:
        return ok(argv, "") if argv[0] == "dmsetup" else None
    host = FakeHost(responders=[gone, _lvs("reconciler")])
    outcome, message = _outcomes(host, _deletion_plan())["remove-stripe@dm:root100"]
    assert outcome == "refused"
    assert message == "dm device root100 is gone; nothing to change"


def test_lvs_are_not_removed_when_lvm_cannot_be_read_again() -> None:
    host = FakeHost(responders=[_dm("RECONCILER-root100"), _failing("lvs")])
    outcomes = _outcomes(host, _deletion_plan())
    swap = outcomes["remove-lv@lv:vg-sda/swap100"]
    assert swap[0] == "refused"
    assert swap[1].startswith("cannot re-read LVM right before the step (failed: ")
    assert not any(c[0] == "lvremove" for c in host.calls)


def test_an_untagged_lv_refusal_names_the_volume_group_and_the_lv() -> None:
    host = FakeHost(responders=[_dm("RECONCILER-root100"), _lvs("")])
    outcome, message = _outcomes(host, _deletion_plan())["remove-lv@lv:vg-sdb/root100"]
    assert outcome == "refused"
    assert message.startswith("LV vg-sdb/root100 does not carry the tag 'reconciler'")
    assert "lvchange --addtag reconciler vg-sdb/root100" in message


def _promotion_plan(desired: DesiredNode, **drbd: object) -> Plan:
    plan = plan_node(desired, converged(desired, role="Secondary", **drbd).model_copy(update={"domains": ()}))
    promote = next(a for a in plan.actions if a.kind == "promote")
    assert not promote.waiting
    return plan


def _with_quorum(res: DrbdResourceState) -> DrbdResourceState:
    return res.model_copy(update={"connections": (), "devices": tuple(d.model_copy(update={"quorum": True})
                                                                      for d in res.devices)})


def test_a_node_that_is_already_primary_runs_the_no_op_promotion_and_starts_its_domain() -> None:
    # Between planning and the step this node became Primary (an earlier pass's promotion landed); the peer is not
    # connected right now. `drbdadm primary` is a no-op then, and the domain must not be held back by it.
    plan = _promotion_plan(make_node(make_vm(100)))
    now = (drbd_state("vm100", 0, role="Primary", conn="Connecting", peer_role="Unknown", peer_disk="DUnknown"),)
    host = FakeHost(drbd=now)
    outcomes = _outcomes(host, plan)
    assert outcomes["promote@drbd:vm100"][0] == "ok"
    assert outcomes["start-domain@domain:vm100"][0] == "ok"


def test_quorum_proves_the_disconnected_peer_harmless_only_for_a_resource_that_uses_quorum() -> None:
    now = (_with_quorum(drbd_state("vm100", 0, role="Secondary")),)
    fencing = make_node(make_vm(100))
    host = FakeHost(drbd=now)
    outcome, message = _outcomes(host, _promotion_plan(fencing))["promote@drbd:vm100"]
    assert outcome == "waiting"
    assert message.startswith("cannot prove the peer is not writing")
    assert ("drbdadm", "primary", "vm100") not in host.calls

    vm = make_vm(100)
    quorum = make_node(vm.model_copy(update={"drbd": vm.drbd.model_copy(update={"safety": "quorum"})}))  # type: ignore[union-attr]
    plan = _promotion_plan(quorum)
    assert next(a for a in plan.actions if a.kind == "promote").safety == "quorum"
    host = FakeHost(drbd=now)
    assert _outcomes(host, plan)["promote@drbd:vm100"][0] == "ok"
    assert ("drbdadm", "primary", "vm100") in host.calls


def test_a_promotion_that_now_faces_a_brand_new_pair_waits_for_the_next_pass() -> None:
    plan = _promotion_plan(make_node(make_vm(100)))
    now = (drbd_state("vm100", 0, role="Secondary", disk="Inconsistent", peer_disk="Inconsistent"),)
    host = FakeHost(drbd=now)
    outcome, message = _outcomes(host, plan)["promote@drbd:vm100"]
    assert outcome == "waiting"
    assert message == "DRBD now shows a brand-new pair; the next pass decides the initial promotion"
    assert not any(c[:2] == ("drbdadm", "primary") for c in host.calls)


FRESH_GI = "0000000000000004:0000000000000000:0000000000000000:0000000000000000:0:0:0:0\n"
NEW_PAIR_NOW = (drbd_state("vm100", 0, role="Secondary", disk="Inconsistent", peer_disk="Inconsistent"),)


def _new_pair_plan() -> Plan:
    desired = make_node(make_vm(100))
    observed = converged(desired, role="Secondary", disk="Inconsistent", peer_disk="Inconsistent")
    plan = plan_node(desired, observed.model_copy(update={"domains": ()}))
    assert any(a.kind == "promote-force-initial" and not a.waiting for a in plan.actions)
    return plan


def _show_gi(stdout: str, code: int = 0) -> Responder:
    def answer(argv: tuple[str, ...]) -> CommandResult | None:
        if argv[:2] == ("drbdadm", "show-gi"):
            return CommandResult(argv, code, stdout, "" if code == 0 else "drbdadm: command failed")
        return None
    return answer


def _forced(host: FakeHost) -> tuple[str, str]:
    return _outcomes(host, _new_pair_plan())["promote-force-initial@drbd:vm100"]


def test_forced_promotion_reads_the_generation_identifiers_with_a_bounded_timeout() -> None:
    host = FakeHost(responders=[_show_gi(FRESH_GI)], drbd=NEW_PAIR_NOW)
    assert _forced(host)[0] == "ok"
    index = host.calls.index(("drbdadm", "show-gi", "vm100"))
    assert host.timeouts[index] == 30.0


def test_forced_promotion_never_trusts_a_failed_read_of_the_generation_identifiers() -> None:
    # drbdadm failed, yet its output holds a line that looks like a fresh pair: a failed read proves nothing.
    host = FakeHost(responders=[_show_gi(FRESH_GI, code=10)], drbd=NEW_PAIR_NOW)
    outcome, message = _forced(host)
    assert outcome == "refused"
    assert message.startswith("forced promotion refused: cannot read generation identifiers (")
    assert ("drbdadm", "primary", "--force", "vm100") not in host.calls


def test_forced_promotion_is_refused_when_the_generation_identifiers_show_history() -> None:
    host = FakeHost(responders=[_show_gi("0000000000000004:0000000000000000:6A4C9D3E5B1F2C10:0\n")],
                    drbd=NEW_PAIR_NOW)
    assert _forced(host) == ("refused", "forced promotion refused: generation identifiers show history; this is "
                                        "not a new pair")


def test_forced_promotion_is_refused_when_drbd_cannot_be_read_or_the_resource_is_gone() -> None:
    blind = FakeHost(responders=[_show_gi(FRESH_GI)])  # no DRBD module loaded any more
    outcome, message = _forced(blind)
    assert outcome == "refused"
    assert message.startswith("forced promotion refused: cannot re-read DRBD's state right before the step (")
    gone = FakeHost(responders=[_show_gi(FRESH_GI)], drbd=())
    assert _forced(gone) == ("refused", "forced promotion refused: DRBD resource vm100 is not up any more")
    assert not any(c[:2] == ("drbdadm", "primary") for c in blind.calls + gone.calls)


def test_forced_promotion_is_refused_once_the_pair_has_synced_and_waits_while_it_is_disconnected() -> None:
    synced = FakeHost(responders=[_show_gi(FRESH_GI)], drbd=(drbd_state("vm100", 0, role="Secondary"),))
    assert _forced(synced) == ("refused", "forced promotion refused: DRBD no longer shows a brand-new pair (a normal "
                                          "promotion applies)")
    cut = FakeHost(responders=[_show_gi(FRESH_GI)], drbd=(drbd_state(
        "vm100", 0, role="Secondary", disk="Inconsistent", conn="Connecting", peer_role="Unknown",
        peer_disk="DUnknown"),))
    assert _forced(cut) == ("waiting", "brand-new pair: waiting for the peer to connect (never forced while "
                                       "disconnected)")
    assert not any(c[:2] == ("drbdadm", "primary") for c in synced.calls + cut.calls)


def test_a_promotion_waits_while_its_resource_is_not_up() -> None:
    plan = _promotion_plan(make_node(make_vm(100)))
    host = FakeHost(drbd=())
    assert _outcomes(host, plan)["promote@drbd:vm100"] == (
        "waiting", "promotion waits: DRBD resource vm100 is not up any more")


def test_a_forced_promotion_refused_for_a_synced_pair_says_whether_the_peer_is_proven_harmless() -> None:
    # Synced meanwhile, the peer gone, this node holding quorum: a normal promotion applies only where quorum is
    # the safety mechanism; with fencing the peer is not proven harmless. Either way nothing is forced.
    now = (_with_quorum(drbd_state("vm100", 0, role="Secondary")),)
    fencing = FakeHost(responders=[_show_gi(FRESH_GI)], drbd=now)
    outcome, message = _forced(fencing)
    assert outcome == "refused"
    assert message.startswith("forced promotion refused: DRBD no longer shows a brand-new pair (cannot prove the "
                              "peer is not writing")
    vm = make_vm(100)
    desired = make_node(vm.model_copy(update={"drbd": vm.drbd.model_copy(update={"safety": "quorum"})}))  # type: ignore[union-attr]
    observed = converged(desired, role="Secondary", disk="Inconsistent", peer_disk="Inconsistent")
    plan = plan_node(desired, observed.model_copy(update={"domains": ()}))
    quorum = FakeHost(responders=[_show_gi(FRESH_GI)], drbd=now)
    assert _outcomes(quorum, plan)["promote-force-initial@drbd:vm100"] == (
        "refused", "forced promotion refused: DRBD no longer shows a brand-new pair (a normal promotion applies)")
    assert not any(c[:2] == ("drbdadm", "primary") for c in fencing.calls + quorum.calls)


def test_a_step_whose_resource_name_is_unsafe_never_reaches_drbdadm() -> None:
    plan = _promotion_plan(make_node(make_vm(100)))
    promote = next(a for a in plan.actions if a.kind == "promote")
    forged = promote.with_(key="drbd:vm100;reboot")
    host = FakeHost(drbd=(drbd_state("vm100", 0, role="Secondary"),))
    with pytest.raises(UnsafeNameError, match=r"^DRBD resource 'vm100;reboot' is not a safe name"):
        LastLook(host, Observer(host)).check(forged)
    assert not any(c[:2] == ("drbdadm", "primary") for c in host.calls)


def test_a_domain_start_refusal_names_the_domain_and_the_mounted_device() -> None:
    plan = _promotion_plan(make_node(make_vm(100)))
    host = FakeHost(drbd=(drbd_state("vm100", 0, role="Secondary"),),
                    signatures={"/dev/drbd0": "xfs", "/dev/vg-sda/swap100": "swap"},
                    files={"/proc/self/mounts": "/dev/drbd0 /mnt/rescue xfs rw 0 0\n"})
    assert _outcomes(host, plan)["start-domain@domain:vm100"] == (
        "refused", "starting vm100 refused: /dev/drbd0 is mounted in dom0")
    assert not any(c[:2] == ("xl", "create") for c in host.calls)


@dataclass
class _UnreadableMounts(FakeHost):
    """A node where dom0's mount table cannot be read (a hardened /proc, a confined service, a node gone down)."""

    error: HostFileError = field(default_factory=lambda: HostFileError(13, "Permission denied"))

    def read_file(self, path: str) -> str | None:
        if path == MOUNTS_FILE:
            raise self.error
        return super().read_file(path)


@pytest.mark.parametrize(("error", "problem"), [
    # The real host names the path in its error; the simulator's crashed node does not.
    (HostFileError(13, "cannot read /proc/self/mounts: Permission denied"),
     "cannot read /proc/self/mounts: Permission denied"),
    (HostFileError(0, "erdbeere: node is down (simulated crash)"),
     "cannot read /proc/self/mounts: erdbeere: node is down (simulated crash)"),
])
def test_a_domain_never_starts_when_dom0s_mount_table_cannot_be_read(error: HostFileError, problem: str) -> None:
    # Fail closed: the rule is "no disk of the domain is mounted in dom0", and an unread table proves nothing.
    plan = _promotion_plan(make_node(make_vm(100)))
    host = _UnreadableMounts(drbd=(drbd_state("vm100", 0, role="Secondary"),),
                             signatures={"/dev/drbd0": "xfs", "/dev/vg-sda/swap100": "swap"}, error=error)
    assert _outcomes(host, plan)["start-domain@domain:vm100"] == (
        "refused", f"starting vm100 refused: cannot prove that its disks are not mounted in dom0 ({problem})")
    assert not any(c[:2] == ("xl", "create") for c in host.calls)


def test_a_domain_never_starts_when_dom0_shows_no_mount_table() -> None:
    plan = _promotion_plan(make_node(make_vm(100)))
    host = FakeHost(drbd=(drbd_state("vm100", 0, role="Secondary"),),
                    signatures={"/dev/drbd0": "xfs", "/dev/vg-sda/swap100": "swap"})
    del host.files[MOUNTS_FILE]
    assert _outcomes(host, plan)["start-domain@domain:vm100"] == (
        "refused", "starting vm100 refused: cannot prove that its disks are not mounted in dom0 "
                   "(/proc/self/mounts does not exist)")
    assert not any(c[:2] == ("xl", "create") for c in host.calls)


def test_a_domain_starts_when_dom0_mounts_only_other_devices() -> None:
    plan = _promotion_plan(make_node(make_vm(100)))
    host = FakeHost(drbd=(drbd_state("vm100", 0, role="Secondary"),),
                    signatures={"/dev/drbd0": "xfs", "/dev/vg-sda/swap100": "swap"},
                    files={MOUNTS_FILE: "/dev/sda1 / ext4 rw 0 0\n/dev/drbd1 /mnt/other xfs rw 0 0\n"})
    assert _outcomes(host, plan)["start-domain@domain:vm100"][0] == "ok"
    assert ("xl", "create", "/etc/xen/vm100.cfg") in host.calls


def test_a_start_is_refused_when_drbd_cannot_be_read_again() -> None:
    # Without DRBD's state nothing proves that the peer is not Primary (running the domain inside a window).
    host = FakeHost(responders=[_failing("drbdsetup"), _failing("drbdadm")])
    start = Action(id="start-domain@domain:vm100", kind="start-domain", key="domain:vm100", vm="vm100",
                   change="create", description="start domain vm100", resource="vm100")
    stop = LastLook(host, Observer(host)).check(start)
    assert stop is not None
    assert stop.result == "refused"
    assert stop.reason.startswith("starting vm100 refused: cannot re-read DRBD's state of vm100")
    assert "refused to be safe" in stop.reason


def _xl_list(answer: CommandResult | str) -> Responder:
    def respond(argv: tuple[str, ...]) -> CommandResult | None:
        if argv != ("xl", "list"):
            return None
        return answer if isinstance(answer, CommandResult) else ok(argv, answer)
    return respond


UNLISTED = fail(("xl", "list"), 1, "libxl: cannot connect to xenstored")
UNREADABLE = "Name  ID  Mem\nvm100 x\n"


@pytest.mark.parametrize(("answer", "reason"), [
    (UNLISTED, "starting vm100 refused: cannot list the domains to prove that no live migration of it is under way "
               f"here ({UNLISTED.describe()}); refused to be safe"),
    (UNREADABLE, "starting vm100 refused: cannot read the domain list ("),
])
def test_a_start_is_refused_when_the_domains_cannot_be_listed_or_read(answer: CommandResult | str,
                                                                     reason: str) -> None:
    host = FakeHost(responders=[_xl_list(answer)])
    start = Action(id="start-domain@domain:vm100", kind="start-domain", key="domain:vm100", vm="vm100",
                   change="create", description="start domain vm100")
    stop = LastLook(host, Observer(host)).check(start)
    assert stop is not None
    assert stop.result == "refused"
    assert stop.reason.startswith(reason)
    assert stop.reason.endswith("; refused to be safe")


@pytest.mark.parametrize(("answer", "reason"), [
    (UNLISTED, f"provisioning /dev/drbd0 refused: cannot prove that vm100 is not running ({UNLISTED.describe()})"),
    (UNREADABLE, "provisioning /dev/drbd0 refused: cannot read the domain list ("),
])
def test_provisioning_is_refused_when_the_domains_cannot_be_listed_or_read(answer: CommandResult | str,
                                                                           reason: str) -> None:
    host = FakeHost(responders=[_xl_list(answer)], drbd=(drbd_state("vm100", 0),))
    provision = Action(id="provision-fs@vm100", kind="provision-fs", key="provision:vm100", vm="vm100",
                       change="create", description="provision vm100", devices=("/dev/drbd0",))
    stop = LastLook(host, Observer(host)).check(provision)
    assert stop is not None
    assert stop.result == "refused"
    assert stop.reason.startswith(reason)
    assert not stop.reason.endswith("refused to be safe")
    if isinstance(answer, str):
        assert stop.reason.endswith(")")


def test_a_peer_primary_refuses_the_start_and_the_provisioning_alike() -> None:
    host = FakeHost(drbd=(drbd_state("vm100", 0, peer_role="Primary"),))
    start = Action(id="start-domain@domain:vm100", kind="start-domain", key="domain:vm100", vm="vm100",
                   change="create", description="start domain vm100", resource="vm100")
    provision = Action(id="provision-fs@vm100", kind="provision-fs", key="provision:vm100", vm="vm100",
                       change="create", description="provision vm100", devices=("/dev/drbd0",))
    look = LastLook(host, Observer(host))
    started, provisioned = look.check(start), look.check(provision)
    assert started is not None
    assert provisioned is not None
    assert started.reason == "starting vm100 refused: peer himbeere is Primary for vm100 (the domain may run there)"
    assert provisioned.reason == ("provisioning /dev/drbd0 refused: peer himbeere is Primary too (the domain may "
                                  "run there)")

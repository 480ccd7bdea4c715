"""The gate's last word: each risky step re-reads what it depends on right before it runs, and the same rules
as the planner's decide again. A plan made from a state that has changed since never runs its step."""

from __future__ import annotations

from reconciler.apply.executor import ApplyOptions, apply_plan
from reconciler.apply.retry import RetryPolicy
from reconciler.core.plan_model import Plan
from reconciler.host.base import CommandResult
from reconciler.plan.diff import plan_node
from tests.apply.fakes import FakeHost, lvs_report, ok
from tests.plan.factories import converged, drbd_state, make_node, make_vm


def _options() -> ApplyOptions:
    return ApplyOptions(policy=RetryPolicy(attempts=2, initial_s=1.0, max_s=1.0, jitter_s=0.0),
                        sleep=lambda _s: None, clock=lambda: 1000.0)


def _plan_from(**drbd: object) -> Plan:
    desired = make_node(make_vm(100))
    return plan_node(desired, converged(desired, role="Secondary", **drbd).model_copy(update={"domains": ()}))


FRESH_GI = "0000000000000004:0000000000000000:0000000000000000:0000000000000000:0:0:0:0\n"


def _gi(argv: tuple[str, ...]) -> CommandResult | None:
    return ok(argv, FRESH_GI) if argv[:2] == ("drbdadm", "show-gi") else None


def _result(result_actions: object, kind: str) -> tuple[str, str]:
    record = next(r for r in result_actions if r.kind == kind)  # type: ignore[attr-defined]
    return record.result, record.message


def test_forced_promotion_planned_for_a_new_pair_is_refused_when_the_node_became_a_resync_target() -> None:
    plan = _plan_from(disk="Inconsistent", peer_disk="Inconsistent")
    assert any(a.kind == "promote-force-initial" and not a.waiting for a in plan.actions)
    # Meanwhile the peer was promoted by hand and this node syncs from it: forcing now would make the stale side
    # the sync source and overwrite the peer's data.
    now = (drbd_state("vm100", 0, role="Secondary", disk="Inconsistent", peer_disk="UpToDate",
                      peer_role="Primary"),)
    host = FakeHost(responders=[_gi], drbd=now)
    result = apply_plan(host, plan, options=_options())
    outcome, message = _result(result.actions, "promote-force-initial")
    assert outcome == "refused"
    assert "no longer shows a brand-new pair" in message
    assert ("drbdadm", "primary", "--force", "vm100") not in host.calls


def test_forced_promotion_runs_when_the_fresh_state_still_shows_a_new_pair() -> None:
    plan = _plan_from(disk="Inconsistent", peer_disk="Inconsistent")
    now = (drbd_state("vm100", 0, role="Secondary", disk="Inconsistent", peer_disk="Inconsistent"),)
    host = FakeHost(responders=[_gi], drbd=now)
    result = apply_plan(host, plan, options=_options())
    assert _result(result.actions, "promote-force-initial")[0] == "ok"
    assert ("drbdadm", "primary", "--force", "vm100") in host.calls


def test_promotion_waits_when_the_peer_became_primary_after_planning() -> None:
    plan = _plan_from()
    assert any(a.kind == "promote" and not a.waiting for a in plan.actions)
    now = (drbd_state("vm100", 0, role="Secondary", peer_role="Primary"),)
    host = FakeHost(drbd=now)
    result = apply_plan(host, plan, options=_options())
    outcome, message = _result(result.actions, "promote")
    assert outcome == "waiting"
    assert "is Primary" in message
    assert ("drbdadm", "primary", "vm100") not in host.calls
    assert not any(c[:2] == ("xl", "create") for c in host.calls)


def test_promotion_waits_when_drbd_cannot_be_read_again() -> None:
    host = FakeHost()  # no /proc/drbd: no module loaded any more
    result = apply_plan(host, _plan_from(), options=_options())
    assert _result(result.actions, "promote")[0] == "waiting"
    assert ("drbdadm", "primary", "vm100") not in host.calls


def _deletion_plan() -> Plan:
    return plan_node(make_node(make_vm(100, lifecycle="deleted")), converged(make_node(make_vm(100))))


def _dm_info(uuid: str) -> object:
    def answer(argv: tuple[str, ...]) -> CommandResult | None:
        if argv[:2] == ("dmsetup", "info"):
            return ok(argv, f"root100/253/100/L--w/0/{uuid}\n")
        if argv[:2] == ("dmsetup", "table"):
            return ok(argv, "root100: 0 62914560 striped 3 128 8:0 0 8:1 0 8:2 0\n")
        return None
    return answer


def test_stripe_is_not_removed_when_its_uuid_is_no_longer_ours() -> None:
    host = FakeHost(responders=[_dm_info("")])  # type: ignore[list-item]
    result = apply_plan(host, _deletion_plan(), options=_options())
    outcome, message = _result(result.actions, "remove-stripe")
    assert outcome == "refused"
    assert "not made by this project" in message
    assert ("dmsetup", "remove", "root100") not in host.calls
    assert not any(c[0] == "lvremove" and "root100" in c[-1] for c in host.calls)


def test_stripe_is_removed_while_it_carries_our_uuid() -> None:
    host = FakeHost(responders=[_dm_info("RECONCILER-root100")])  # type: ignore[list-item]
    result = apply_plan(host, _deletion_plan(), options=_options())
    assert _result(result.actions, "remove-stripe")[0] == "ok"
    assert ("dmsetup", "remove", "root100") in host.calls


LVS = (("vg-sda", "root100", "uuid-vg-sda-root100"), ("vg-sdb", "root100", "uuid-vg-sdb-root100"),
       ("vg-sdc", "root100", "uuid-vg-sdc-root100"), ("vg-sda", "swap100", "uuid-vg-sda-swap100"))


def _lvs(tags: str, uuids: tuple[tuple[str, str, str], ...] = LVS) -> object:
    def answer(argv: tuple[str, ...]) -> CommandResult | None:
        return ok(argv, lvs_report(*uuids, tags=tags)) if argv[0] == "lvs" else None
    return answer


def test_lv_is_not_removed_without_the_project_tag() -> None:
    host = FakeHost(responders=[_dm_info("RECONCILER-root100"), _lvs("")])  # type: ignore[list-item]
    result = apply_plan(host, _deletion_plan(), options=_options())
    refused = [r for r in result.actions if r.kind == "remove-lv"]
    assert refused
    assert all(r.result == "refused" and "does not carry the tag" in r.message for r in refused)
    assert not any(c[0] == "lvremove" for c in host.calls)


def test_lv_is_not_removed_when_it_is_another_lv_than_planned() -> None:
    recreated = tuple((vg, name, uuid + "-new") for vg, name, uuid in LVS)
    host = FakeHost(responders=[_dm_info("RECONCILER-root100"), _lvs("reconciler", recreated)])  # type: ignore[list-item]
    result = apply_plan(host, _deletion_plan(), options=_options())
    assert all(r.result == "refused" for r in result.actions if r.kind == "remove-lv")
    assert not any(c[0] == "lvremove" for c in host.calls)


def test_tagged_lvs_of_a_deleted_vm_are_removed() -> None:
    host = FakeHost(responders=[_dm_info("RECONCILER-root100"), _lvs("reconciler")])  # type: ignore[list-item]
    result = apply_plan(host, _deletion_plan(), options=_options())
    assert all(r.result == "ok" for r in result.actions if r.kind == "remove-lv")
    assert ("lvremove", "-y", "vg-sdb/root100") in host.calls


def _fresh_metadata_plan() -> Plan:
    desired = make_node(make_vm(100))
    observed = converged(desired)
    observed = observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": ()}),
                                           "domains": ()})
    return plan_node(desired, observed)


def test_metadata_is_not_created_over_a_stripe_whose_leg_carries_a_filesystem() -> None:
    plan = _fresh_metadata_plan()
    md = next(a for a in plan.actions if a.kind == "create-md")
    assert md.probe_beneath == ("/dev/vg-sda/root100", "/dev/vg-sdb/root100", "/dev/vg-sdc/root100")
    # XFS on the second leg is invisible through the stripe: only leg 0's start lines up with the stripe's.
    host = FakeHost(signatures={"/dev/vg-sdb/root100": "xfs"})
    result = apply_plan(host, plan, options=_options())
    outcome, message = _result(result.actions, "create-md")
    assert outcome == "refused"
    assert "/dev/vg-sdb/root100 beneath /dev/mapper/root100 carries a xfs signature" in message
    assert not any("create-md" in c for c in host.calls)
    assert ("blkid", "-p", "-o", "export", "/dev/vg-sdb/root100") in host.calls


def test_metadata_is_created_when_the_stripe_and_every_leg_are_blank() -> None:
    host = FakeHost()
    result = apply_plan(host, _fresh_metadata_plan(), options=_options())
    assert _result(result.actions, "create-md")[0] == "ok"
    assert ("drbdadm", "create-md", "--force", "vm100") in host.calls

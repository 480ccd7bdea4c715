"""Deleting and parking a VM: only what carries the project's identity is removed, and each removal waits for
the step that releases it (a failed shutdown leaves DRBD, its config and every byte of data in place)."""

from __future__ import annotations

from reconciler.apply.executor import ApplyOptions, apply_plan
from reconciler.apply.retry import RetryPolicy
from reconciler.core.actions import Action
from reconciler.core.plan_model import Plan
from reconciler.host.base import CommandResult
from reconciler.model.observed import ObservedNode
from reconciler.plan.diff import plan_node
from tests.apply.fakes import FakeHost, Responder, fail, lvs_report, ok
from tests.plan.factories import converged, make_node, make_vm

PRESENT = make_node(make_vm(100))
DELETED = make_node(make_vm(100, lifecycle="deleted"))
ABSENT = make_node(make_vm(100, lifecycle="absent"))


def _options() -> ApplyOptions:
    return ApplyOptions(policy=RetryPolicy(attempts=1, initial_s=1.0, max_s=1.0, jitter_s=0.0),
                        sleep=lambda _s: None, clock=lambda: 1000.0)


def _by_kind(plan: Plan) -> dict[str, list[Action]]:
    out: dict[str, list[Action]] = {}
    for a in plan.actions:
        out.setdefault(a.kind, []).append(a)
    return out


def _observed(**changes: object) -> ObservedNode:
    return converged(PRESENT).model_copy(update=changes)


def test_a_stripe_without_the_projects_uuid_is_refused_in_the_plan_and_its_data_lvs_stay() -> None:
    obs = converged(PRESENT)
    foreign = tuple(d.model_copy(update={"uuid": "CRYPT-LUKS2-someone-else"}) for d in obs.dm_devices)
    plan = plan_node(DELETED, obs.model_copy(update={"dm_devices": foreign}))
    stripe = next(a for a in plan.actions if a.kind == "remove-stripe")
    assert stripe.refused
    assert stripe.refused.startswith("dm device root100 has uuid CRYPT-LUKS2-someone-else, not RECONCILER-root100")
    assert "not made by this project" in stripe.refused
    assert stripe.symbol == "!"
    # The data legs wait for the stripe on top of them; the swap LV only for the domain to stop.
    data = [a for a in plan.actions if a.kind == "remove-lv" and "root100" in a.key]
    swap = next(a for a in plan.actions if a.kind == "remove-lv" and "swap100" in a.key)
    assert len(data) == 3
    assert all(stripe.id in a.depends_on for a in data)
    assert stripe.id not in swap.depends_on
    assert "shutdown-domain@domain:vm100" in swap.depends_on

    # Applied without any fresh read answering otherwise, the refusal holds: the stripe and its legs stay.
    host = FakeHost(responders=[_lvs("reconciler")])
    result = apply_plan(host, plan, options=_options())
    outcomes = {r.key: r.result for r in result.actions}
    assert outcomes["dm:root100"] == "refused"
    assert all(outcomes[f"lv:{vg}/root100"] == "skipped" for vg in ("vg-sda", "vg-sdb", "vg-sdc"))
    assert outcomes["lv:vg-sda/swap100"] == "ok"
    assert ("dmsetup", "remove", "root100") not in host.calls
    assert not any(c[0] == "lvremove" and c[-1].endswith("/root100") for c in host.calls)


def test_an_lv_without_the_projects_tag_is_refused_in_the_plan() -> None:
    obs = converged(PRESENT)
    untagged = tuple(lv.model_copy(update={"tags": ()}) if lv.name == "swap100" else lv
                     for lv in obs.logical_volumes)
    plan = plan_node(DELETED, obs.model_copy(update={"logical_volumes": untagged}))
    removals = {a.key: a for a in plan.actions if a.kind == "remove-lv"}
    assert "does not carry the tag 'reconciler'" in removals["lv:vg-sda/swap100"].refused
    assert "vg-sda/swap100" in removals["lv:vg-sda/swap100"].refused
    assert not any(removals[f"lv:{vg}/root100"].refused for vg in ("vg-sda", "vg-sdb", "vg-sdc"))
    # The planned uuid travels with the step, so the executor can tell a recreated LV from the planned one.
    assert removals["lv:vg-sdb/root100"].identity == "uuid-vg-sdb-root100"


def test_every_removal_is_marked_destructive_and_nothing_else_is() -> None:
    plan = plan_node(DELETED, converged(PRESENT))
    destructive = {a.kind for a in plan.actions if a.destructive}
    assert destructive == {"remove-xen-config", "drbd-down", "remove-drbd-config", "remove-stripe", "remove-lv"}
    assert all(a.description for a in plan.actions)
    assert all(a.change == "delete" for a in plan.actions)


def test_a_failed_shutdown_leaves_drbd_its_configs_and_all_data_in_place() -> None:
    plan = plan_node(DELETED, converged(PRESENT))

    def shutdown_fails(argv: tuple[str, ...]) -> CommandResult | None:
        if argv[:2] == ("xl", "shutdown"):
            return fail(argv, 1, "libxl: error: domain did not shut down")
        return None

    host = FakeHost(responders=[shutdown_fails, _lvs("reconciler")],
                    files={"/etc/xen/vm100.cfg": "name = 'vm100'\n", "/etc/drbd.d/vm100.res": "resource vm100 {}\n"})
    result = apply_plan(host, plan, options=_options())
    outcomes = {r.kind + "@" + r.key: r.result for r in result.actions}
    assert outcomes["shutdown-domain@domain:vm100"] == "failed"
    assert all(v == "skipped" for k, v in outcomes.items() if not k.startswith("shutdown-domain"))
    assert host.files.keys() >= {"/etc/xen/vm100.cfg", "/etc/drbd.d/vm100.res"}
    assert [c for c in host.mutating_calls() if c[0] != "xl"] == []
    assert ("drbdadm", "secondary", "vm100") not in host.calls
    assert ("drbdadm", "down", "vm100") not in host.calls


def test_drbd_is_taken_down_only_after_the_demotion_and_its_config_goes_last() -> None:
    plan = plan_node(DELETED, converged(PRESENT))
    steps = _by_kind(plan)
    demote = steps["demote"][0]
    down = steps["drbd-down"][0]
    config = steps["remove-drbd-config"][0]
    assert demote.argvs == (("drbdadm", "secondary", "vm100"),)
    assert "shutdown-domain@domain:vm100" in demote.depends_on
    assert {demote.id, "shutdown-domain@domain:vm100"} <= set(down.depends_on)
    assert config.depends_on == (down.id,)
    xen = steps["remove-xen-config"][0]
    assert xen.depends_on == ("shutdown-domain@domain:vm100",)
    assert steps["shutdown-domain"][0].reason == "VM deleted"

    def demote_fails(argv: tuple[str, ...]) -> CommandResult | None:
        if argv[:2] == ("drbdadm", "secondary"):
            return fail(argv, 11, "State change failed: (-12) Device is held open by someone")
        return None

    host = FakeHost(responders=[demote_fails, _lvs("reconciler")],
                    files={"/etc/drbd.d/vm100.res": "resource vm100 {}\n"})
    result = apply_plan(host, plan, options=_options())
    outcomes = {r.kind: r.result for r in result.actions}
    assert outcomes["demote"] == "waiting"  # held open: a precondition, retried next pass
    assert outcomes["drbd-down"] == outcomes["remove-drbd-config"] == outcomes["remove-stripe"] == "waiting"
    assert "/etc/drbd.d/vm100.res" in host.files
    assert ("drbdadm", "down", "vm100") not in host.calls


def test_a_secondary_resource_is_taken_down_without_a_demotion() -> None:
    plan = plan_node(DELETED, converged(PRESENT, role="Secondary", peer_role="Secondary"))
    kinds = [a.kind for a in plan.actions]
    assert "demote" not in kinds
    assert "drbd-down" in kinds


def test_absent_stops_a_running_domain_before_the_demotion_and_keeps_everything() -> None:
    plan = plan_node(ABSENT, converged(PRESENT))
    shutdown, demote = plan.actions
    assert (shutdown.kind, demote.kind) == ("shutdown-domain", "demote")
    assert shutdown.reason == "VM marked absent"
    assert shutdown.change == demote.change == "change"
    assert demote.key == "drbd:vm100"
    assert demote.description == "demote vm100 to Secondary"
    assert demote.argvs == (("drbdadm", "secondary", "vm100"),)
    assert demote.depends_on == (shutdown.id,)


def test_absent_with_the_domain_already_stopped_only_demotes() -> None:
    plan = plan_node(ABSENT, _observed(domains=()))
    assert [a.kind for a in plan.actions] == ["demote"]
    assert plan.actions[0].depends_on == ()


def test_absent_and_already_secondary_plans_nothing() -> None:
    assert plan_node(ABSENT, converged(PRESENT, role="Secondary").model_copy(update={"domains": ()})).is_empty


def _lvs(tags: str) -> Responder:
    lvs = (("vg-sda", "root100", "uuid-vg-sda-root100"), ("vg-sdb", "root100", "uuid-vg-sdb-root100"),
           ("vg-sdc", "root100", "uuid-vg-sdc-root100"), ("vg-sda", "swap100", "uuid-vg-sda-swap100"))

    def answer(argv: tuple[str, ...]) -> CommandResult | None:
        return ok(argv, lvs_report(*lvs, tags=tags)) if argv[0] == "lvs" else None
    return answer


def test_after_a_reboot_the_config_goes_without_waiting_for_a_resource_that_is_not_up() -> None:
    observed = converged(PRESENT)
    rebooted = observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": ()}),
                                           "dm_devices": (), "domains": ()})
    plan = plan_node(DELETED, rebooted)
    steps = _by_kind(plan)
    assert "drbd-down" not in steps
    assert "remove-stripe" not in steps
    assert steps["remove-drbd-config"][0].depends_on == ()
    assert all(a.depends_on == () for a in steps["remove-lv"])


def test_lvs_already_gone_are_skipped_and_the_rest_are_still_removed() -> None:
    observed = converged(PRESENT)
    partial = tuple(lv for lv in observed.logical_volumes if lv.vg != "vg-sda")
    plan = plan_node(DELETED, observed.model_copy(update={"logical_volumes": partial}))
    assert {a.key for a in plan.actions if a.kind == "remove-lv"} == {"lv:vg-sdb/root100", "lv:vg-sdc/root100"}


def test_a_tagged_lv_whose_uuid_lvm_did_not_report_is_removed_on_its_tag() -> None:
    observed = converged(PRESENT)
    no_uuid = tuple(lv.model_copy(update={"uuid": None}) for lv in observed.logical_volumes)
    plan = plan_node(DELETED, observed.model_copy(update={"logical_volumes": no_uuid}))
    removals = [a for a in plan.actions if a.kind == "remove-lv"]
    assert len(removals) == 4
    assert all(not a.refused and a.identity == "" for a in removals)

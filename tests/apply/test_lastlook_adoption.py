"""The last look before taking over what was built by hand: device-mapper and LVM are read again right before
`dmsetup rename --setuuid` and `lvchange --addtag`, and the planner's rules decide again. Whatever changed since
the plan (the device gone, a uuid set by another tool, a reload typed by hand, an LV replaced, resized or tagged)
stops the step, and the operator is told what was seen."""

from __future__ import annotations

import json
from collections.abc import Iterable

from reconciler.apply.executor import ApplyOptions, apply_plan
from reconciler.apply.retry import RetryPolicy
from reconciler.core.plan_model import Plan
from reconciler.host.base import CommandResult
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import DmDevice, DmTarget, LogicalVolume
from reconciler.plan.diff import plan_node
from tests.apply.fakes import FakeHost, Responder, ok
from tests.plan.factories import GIB, converged, make_node, make_vm

MIB = 1024**2
STRIPE = "0 62914560 striped 3 128 253:1 0 253:2 0 253:3 0"
SETUUID = ("dmsetup", "rename", "root100", "--setuuid", "RECONCILER-root100")


def _legs() -> list[tuple[str, int]]:
    """The data LVs' own dm devices as lvm names them (every '-' of the VG name doubled) and their minors."""
    return [(f"vg--{disk}-root100", i + 1) for i, disk in enumerate(("sda", "sdb", "sdc"))]


def _untagged(desired: DesiredNode, *, uuids: bool = True, sizes: dict[str, int] | None = None,
              changes: dict[str, dict[str, object]] | None = None) -> tuple[LogicalVolume, ...]:
    """The LVs as made by hand (no tag; ``sizes`` by LV name), with ``changes`` (by ``vg/name``) made later."""
    found = [lv.model_copy(update={"tags": (), "uuid": lv.uuid if uuids else None,
                                   "size_bytes": (sizes or {}).get(lv.name, lv.size_bytes)})
             for lv in converged(desired).logical_volumes]
    return tuple(lv.model_copy(update=(changes or {}).get(f"{lv.vg}/{lv.name}", {})) for lv in found)


def _by_hand(desired: DesiredNode, *, uuids: bool = True, extent: int = 4 * MIB,
             sizes: dict[str, int] | None = None) -> Plan:
    """The plan for a node built by hand: a stripe without uuid over the legs, LVs without the project's tag."""
    observed = converged(desired)
    legs = tuple(DmDevice(name=name, uuid=f"LVM-{name}", major=253, minor=minor) for name, minor in _legs())
    stripe = DmDevice(name="root100", uuid="", major=253, minor=100, live_table=True, inactive_table=False,
                      targets=(DmTarget(start=0, length=62914560, target="striped", args=STRIPE.split(" ", 3)[3]),))
    vgs = tuple(vg.model_copy(update={"extent_size_bytes": extent}) for vg in observed.volume_groups)
    plan = plan_node(desired, observed.model_copy(update={
        "dm_devices": (*legs, stripe), "logical_volumes": _untagged(desired, uuids=uuids, sizes=sizes),
        "volume_groups": vgs, "files": (), "domains": (), "drbd": observed.drbd.model_copy(update={"resources": ()})}))
    assert not plan.refused_vms
    return plan


def _dm(*, stripe: str = STRIPE, attr: str = "L--w", uuid: str = "", present: bool = True) -> Responder:
    """`dmsetup info` and `dmsetup table` as they answer right before the step."""
    info = [f"{name}/253/{minor}/L--w/1/LVM-{name}" for name, minor in _legs()]
    table = [f"{name}: 0 20971520 linear 8:{16 * minor} 2048" for name, minor in _legs()]
    if present:
        info.append(f"root100/253/100/{attr}/0/{uuid}")
        table.append(f"root100: {stripe}")

    def answer(argv: tuple[str, ...]) -> CommandResult | None:
        if argv[:2] == ("dmsetup", "info"):
            return ok(argv, "\n".join(info) + "\n")
        if argv[:2] == ("dmsetup", "table"):
            return ok(argv, "\n".join(table) + "\n")
        return None
    return answer


def _lvs(volumes: Iterable[LogicalVolume]) -> Responder:
    """`lvs` as it answers right before the step."""
    rows = [{"lv_name": lv.name, "vg_name": lv.vg, "lv_size": str(lv.size_bytes), "lv_attr": "-wi-ao----",
             "lv_uuid": lv.uuid or "", "segtype": "linear", "stripes": str(lv.stripes or 1), "stripe_size": "0",
             "devices": "/dev/sda(0)", "lv_tags": ",".join(lv.tags)} for lv in volumes]
    report = json.dumps({"report": [{"lv": rows}]})

    def answer(argv: tuple[str, ...]) -> CommandResult | None:
        return ok(argv, report) if argv[0] == "lvs" else None
    return answer


def _apply(host: FakeHost, plan: Plan) -> dict[str, tuple[str, str]]:
    options = ApplyOptions(policy=RetryPolicy(attempts=1, initial_s=1.0, max_s=1.0, jitter_s=0.0),
                           sleep=lambda _s: None, clock=lambda: 1000.0)
    result = apply_plan(host, plan, options=options)
    return {f"{r.kind}@{r.key}": (r.result, r.message) for r in result.actions}


DESIRED = make_node(make_vm(100))


def test_a_stripe_still_as_planned_is_taken_over_and_its_lvs_tagged() -> None:
    host = FakeHost(responders=[_dm(), _lvs(_untagged(DESIRED))])
    outcome = _apply(host, _by_hand(DESIRED))
    assert outcome["adopt-stripe@dm:root100"][0] == "ok"
    assert SETUUID in host.calls
    assert [outcome[f"adopt-lv@lv:{lv.vg}/{lv.name}"][0] for lv in DESIRED.vms[0].lvs] == ["ok"] * 4
    assert ("lvchange", "--addtag", "reconciler", "vg-sdb/root100") in host.calls


def test_a_stripe_gone_before_its_step_is_not_taken_over() -> None:
    host = FakeHost(responders=[_dm(present=False), _lvs(_untagged(DESIRED))])
    outcome = _apply(host, _by_hand(DESIRED))
    assert outcome["adopt-stripe@dm:root100"] == ("refused", "dm device root100 is gone; nothing to take over")
    assert SETUUID not in host.calls


def test_a_stripe_given_a_uuid_by_another_tool_meanwhile_is_not_taken_over() -> None:
    host = FakeHost(responders=[_dm(uuid="CRYPT-LUKS2-root100"), _lvs(_untagged(DESIRED))])
    outcome = _apply(host, _by_hand(DESIRED))
    assert outcome["adopt-stripe@dm:root100"] == (
        "refused", "dm device root100 has uuid CRYPT-LUKS2-root100; device-mapper sets a uuid only once, so it "
                   "cannot become RECONCILER-root100 (it was made by another tool; see docs/import.md)")
    assert not any(c[:2] == ("dmsetup", "rename") for c in host.calls)


def test_a_stripe_being_reloaded_or_suspended_by_hand_is_not_taken_over() -> None:
    # `dmsetup reload` loaded an inactive table (attr I), or `dmsetup suspend` ran (attr s), and no resume yet.
    for attr in ("LI-w", "L-sw"):
        host = FakeHost(responders=[_dm(attr=attr), _lvs(_untagged(DESIRED))])
        outcome = _apply(host, _by_hand(DESIRED))
        assert outcome["adopt-stripe@dm:root100"] == (
            "refused", "dm device root100 is suspended or has an inactive table loaded; it is taken over only when "
                       "idle"), attr
        assert SETUUID not in host.calls


def test_a_stripe_that_now_points_at_other_lvs_is_not_taken_over() -> None:
    # Someone rebuilt the stripe by hand with its third leg on another LV (253:9) after the plan was made.
    moved = STRIPE.replace("253:3", "253:9")
    host = FakeHost(responders=[_dm(stripe=moved), _lvs(_untagged(DESIRED))])
    outcome = _apply(host, _by_hand(DESIRED))
    result, message = outcome["adopt-stripe@dm:root100"]
    assert result == "refused"
    assert message.startswith(f"dm device root100 shows the table {moved!r}, not the desired '0 62914560 striped 3 "
                              "128 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0 /dev/vg-sdc/root100 0': it is taken "
                              "over only when both are equal")
    assert SETUUID not in host.calls


def test_an_lv_replaced_after_planning_is_not_tagged() -> None:
    # lvremove + lvcreate under the same name and size: another LV (new uuid), possibly someone else's data.
    now = _untagged(DESIRED, changes={"vg-sda/root100": {"uuid": "NEW-uuid"}})
    host = FakeHost(responders=[_dm(), _lvs(now)])
    outcome = _apply(host, _by_hand(DESIRED))
    assert outcome["adopt-lv@lv:vg-sda/root100"] == (
        "refused", "LV vg-sda/root100 is now a different LV (uuid NEW-uuid, planned for uuid-vg-sda-root100); not "
                   "taken over")
    assert ("lvchange", "--addtag", "reconciler", "vg-sda/root100") not in host.calls
    assert outcome["adopt-lv@lv:vg-sdb/root100"][0] == "ok"


def test_an_lv_tagged_by_hand_meanwhile_is_not_tagged_again() -> None:
    now = _untagged(DESIRED, changes={"vg-sdc/root100": {"tags": ("reconciler",)}})
    host = FakeHost(responders=[_dm(), _lvs(now)])
    outcome = _apply(host, _by_hand(DESIRED))
    assert outcome["adopt-lv@lv:vg-sdc/root100"] == (
        "refused", "LV vg-sdc/root100 already carries the tag 'reconciler'")
    assert ("lvchange", "--addtag", "reconciler", "vg-sdc/root100") not in host.calls


def test_an_lv_grown_by_hand_meanwhile_is_not_tagged() -> None:
    now = _untagged(DESIRED, changes={"vg-sda/swap100": {"size_bytes": 2 * GIB}})
    host = FakeHost(responders=[_dm(), _lvs(now)])
    outcome = _apply(host, _by_hand(DESIRED))
    assert outcome["adopt-lv@lv:vg-sda/swap100"] == (
        "refused", "LV vg-sda/swap100 is 2GiB, not the desired 1GiB: it is taken over only when the sizes match; "
                   "change the desired size (a difference to resolve by commit)")


def test_an_lv_in_a_vg_with_large_extents_is_compared_at_the_size_lvcreate_made() -> None:
    # `vgcreate -s 32M`, then `lvcreate -L 1000M`: LVM rounds up to 32 extents, 1 GiB. The desired 1000M matches.
    vm = make_vm(100)
    odd = make_node(vm.model_copy(update={"lvs": tuple(
        lv.model_copy(update={"size_bytes": 1000 * MIB}) if lv.purpose == "swap" else lv for lv in vm.lvs)}))
    plan = _by_hand(odd, extent=32 * MIB, sizes={"swap100": GIB})
    assert plan.action("adopt-lv@lv:vg-sda/swap100").identity.endswith(f" {1000 * MIB} 1 {32 * MIB}")  # type: ignore[union-attr]
    host = FakeHost(responders=[_dm(), _lvs(_untagged(odd, sizes={"swap100": GIB}))])
    outcome = _apply(host, plan)
    assert outcome["adopt-lv@lv:vg-sda/swap100"][0] == "ok"
    assert ("lvchange", "--addtag", "reconciler", "vg-sda/swap100") in host.calls


def test_an_lv_that_lvs_showed_without_uuid_is_compared_by_size_stripes_and_tag() -> None:
    # Without a uuid in the plan ('-' in the action) there is nothing to compare it with; the other checks decide.
    plan = _by_hand(DESIRED, uuids=False)
    assert plan.action("adopt-lv@lv:vg-sda/root100").identity.startswith("- ")  # type: ignore[union-attr]
    host = FakeHost(responders=[_dm(), _lvs(_untagged(DESIRED, uuids=False))])
    outcome = _apply(host, plan)
    assert [outcome[f"adopt-lv@lv:{lv.vg}/{lv.name}"][0] for lv in DESIRED.vms[0].lvs] == ["ok"] * 4
    assert ("lvchange", "--addtag", "reconciler", "vg-sda/root100") in host.calls

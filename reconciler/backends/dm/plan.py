"""The device-mapper stripe of one VM over its data LVs: create, take over, grow, recreate after reboot;
never shrink."""

from __future__ import annotations

from reconciler.backends.dm import commands as dm
from reconciler.core.observed_index import ObservedIndex
from reconciler.core.safety import (
    dm_adoption_refusal,
    lvm_dm_name,
    stripe_shrink_refusal,
)
from reconciler.core.seams import PlanBuilder
from reconciler.model.base import Frozen
from reconciler.model.desired import DesiredStripe
from reconciler.model.observed import DmDevice
from reconciler.ownership import dm_uuid


class StripeTable(Frozen):
    length: int
    stripes: int
    chunk: int
    legs: tuple[str, ...]


def parse_striped(dev: DmDevice) -> StripeTable | None:
    if len(dev.targets) != 1 or dev.targets[0].target != "striped" or dev.targets[0].start != 0:
        return None
    words = dev.targets[0].args.split()
    try:
        stripes, chunk = int(words[0]), int(words[1])
    except (IndexError, ValueError):
        return None
    # Each leg is a device and an offset: a table with another number of words is not one this project wrote.
    if stripes < 1 or len(words) != 2 + 2 * stripes:
        return None
    legs = tuple(words[2::2])
    return StripeTable(length=dev.targets[0].length, stripes=stripes, chunk=chunk, legs=legs)


def leg_matches(desired_leg: str, observed_leg: str, observed: ObservedIndex) -> bool:
    """Tables show legs as ``major:minor``; resolve the desired path through the LV's own dm device."""
    if desired_leg == observed_leg:
        return True
    name = lvm_dm_name(desired_leg)
    dev = observed.dm(name) if name else None
    if dev is not None and dev.major is not None:
        return observed_leg == f"{dev.major}:{dev.minor}"
    # The leg cannot be resolved (LVs not activated through dm here); the count and order already match.
    return ":" in observed_leg


def plan_stripe(b: PlanBuilder, stripe: DesiredStripe) -> None:
    leg_keys = [lv.key for lv in b.vm.lvs if lv.path in stripe.legs]
    leg_actions = b.ids_for(*leg_keys)
    dev = b.observed.dm(stripe.name)
    table = stripe.table
    if dev is None:
        b.add("create-stripe", stripe.key, "create", f"create stripe {stripe.name} over {len(stripe.legs)} LVs",
              commands=(dm.dmsetup_create(stripe.name, table),), depends_on=leg_actions)
        return
    if not dev.uuid:
        refused = dm_adoption_refusal(stripe.name, dev, uuid=dm_uuid(stripe.name), table=table,
                                      devices=b.observed.observed.dm_devices) or ""
        b.add("adopt-stripe", stripe.key, "change",
              f"take over dm device {stripe.name} (made without uuid; it keeps its name, gets the project's uuid)",
              commands=(dm.dmsetup_setuuid(stripe.name),), refused=refused, identity=table)
        return
    if dev.uuid != dm_uuid(stripe.name):
        b.add("reload-stripe", stripe.key, "change", f"manage stripe {stripe.name}",
              refused=f"dm device {stripe.name} exists with uuid {dev.uuid or '(none)'}, not {dm_uuid(stripe.name)}: "
                      "it is not ours to change")
        return
    seen = parse_striped(dev)
    same_layout = (seen is not None and seen.stripes == len(stripe.legs) and seen.chunk == stripe.chunk_sectors
                   and len(seen.legs) == len(stripe.legs)
                   and all(leg_matches(d, o, b.observed) for d, o in zip(stripe.legs, seen.legs, strict=True)))
    if seen is None or not same_layout:
        b.add("reload-stripe", stripe.key, "change", f"change stripe {stripe.name}",
              refused=f"stripe {stripe.name} has a different layout ({dev.table!r}); changing legs or chunk size "
                      "would scramble its data")
        return
    refusal = stripe_shrink_refusal(stripe.name, stripe.length_sectors, seen.length)
    if refusal:
        b.add("reload-stripe", stripe.key, "change", f"shrink stripe {stripe.name}", refused=refusal)
        return
    if seen.length < stripe.length_sectors:
        b.add("reload-stripe", stripe.key, "change",
              f"grow stripe {stripe.name} {seen.length} -> {stripe.length_sectors} sectors (reload, then resume)",
              commands=(dm.dmsetup_reload(stripe.name, table), dm.dmsetup_resume(stripe.name)), depends_on=leg_actions)
    elif dev.suspended:
        # Interrupted between reload and resume: finishing the resume is the whole repair.
        b.add("resume-stripe", stripe.key, "change", f"resume suspended stripe {stripe.name}",
              commands=(dm.dmsetup_resume(stripe.name),))

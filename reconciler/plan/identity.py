"""Identities of existing resources never change in place, and nothing is created on what another holds.

A VM's storage layout, volume groups, stripe geometry, backing device, DRBD minor and device path, and its
id (from which every name derives) are what its data is: DRBD metadata sits at the end of the backing
device, the filesystem's blocks are spread over the legs by the chunk size. A revision that changes one of
them for a VM whose resources exist would point DRBD at a different device (and, after a reboot, create
metadata there) or scramble the data, so it is refused for that VM with the way to do it; the rest of the
revision still converges.

Before anything is created, what the node already has is checked: a minor, port, device path, dm name or
LV name that something else holds (another resource, an orphan left by a removed VM file, something made
by hand) is a refusal, never a second user. Pure: desired + observation in, a reason or None out.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property

from reconciler.backends.dm.plan import leg_matches, parse_striped
from reconciler.core.observed_index import ObservedIndex
from reconciler.core.safety import dm_adoption_refusal
from reconciler.core.seams import ReplicaIdentity, Replicator
from reconciler.model.desired import DesiredVm
from reconciler.ownership import LV_TAG, dm_uuid

HOW = ("identities of an existing VM never change in place: to move its data, create a new VM and copy the data "
       "over, or delete this one first (lifecycle: deleted, then a new file)")


class Holders:
    """Who holds which minor, port and name on this node, from the replication's runtime state and the
    replicator's config files (DRBD's ``.res`` files)."""

    def __init__(self, observed: ObservedIndex, replicator: Replicator) -> None:
        self.observed = observed
        self.replicator = replicator

    @cached_property
    def configs(self) -> tuple[Mapping[str, ReplicaIdentity], str]:
        """Identities from every readable config file of the replicator, and what could not be read."""
        return self.replicator.config_identities(self.observed.observed.files, self.observed.node)

    @cached_property
    def minors(self) -> dict[int, str]:
        held = {c.minor: name for name, c in self.configs[0].items() if c.minor is not None}
        for res in self.observed.observed.drbd.resources:
            held.update({d.minor: res.name for d in res.devices})
        return held

    @cached_property
    def ports(self) -> dict[int, str]:
        return {c.port: name for name, c in self.configs[0].items() if c.port is not None}


def identity_refusal(vm: DesiredVm, observed: ObservedIndex, holders: Holders) -> str | None:
    """Why this revision must not touch ``vm`` on this node, or None."""
    if vm.lifecycle == "deleted":
        return None
    changed = _changed_identity(vm, observed, holders)
    if changed:
        return f"{vm.name}: {changed}; {HOW}"
    return _collision(vm, observed, holders)


def _changed_identity(vm: DesiredVm, observed: ObservedIndex, holders: Holders) -> str:
    data_lvs = [lv for lv in vm.lvs if lv.purpose == "data"]
    if vm.drbd is not None:
        drbd = vm.drbd
        config = holders.configs[0].get(drbd.name)
        res = observed.resource(drbd.name)
        if config is not None and config.disk is not None and config.disk != drbd.backing_device:
            return (f"its DRBD backing device would change from {config.disk} to {drbd.backing_device} "
                    f"({config.source} names the device its metadata lives on)")
        if config is not None and config.minor is not None and config.minor != drbd.minor:
            return f"its DRBD minor would change from {config.minor} to {drbd.minor} ({config.source})"
        running = sorted({d.minor for d in res.devices}) if res is not None else []
        if running and running != [drbd.minor]:
            return (f"its DRBD minor would change from {'/'.join(map(str, running))} (running now) to "
                    f"{drbd.minor}")
    if vm.stripe is None:
        for lv in data_lvs:
            dev = observed.dm(lv.name)
            if dev is not None and dev.uuid == dm_uuid(lv.name):
                return (f"its storage layout would change from dm-striped (the stripe {lv.name} exists) to "
                        f"{vm.layout}")
    else:
        dev = observed.dm(vm.stripe.name)
        seen = parse_striped(dev) if dev is not None and dev.uuid == dm_uuid(vm.stripe.name) else None
        if dev is not None and dev.uuid == dm_uuid(vm.stripe.name):
            if seen is None:
                return f"the stripe {vm.stripe.name} has a table this project did not write ({dev.table!r})"
            if seen.stripes != len(vm.stripe.legs) or seen.chunk != vm.stripe.chunk_sectors:
                return (f"its stripe {vm.stripe.name} would change from {seen.stripes} legs with chunk {seen.chunk} "
                        f"to {len(vm.stripe.legs)} legs with chunk {vm.stripe.chunk_sectors} sectors")
            if not all(leg_matches(d, o, observed) for d, o in zip(vm.stripe.legs, seen.legs, strict=True)):
                return (f"the legs of its stripe {vm.stripe.name} would change (volume groups "
                        f"{', '.join(lv.vg for lv in data_lvs)}; the live table is {dev.table!r})")
    for lv in data_lvs:
        found = observed.lv(lv.vg, lv.name)
        if found is None or found.stripes is None:
            continue
        if found.stripes != lv.stripes or (lv.stripes > 1 and lv.stripe_size_bytes is not None
                                           and found.stripe_size_bytes not in (None, lv.stripe_size_bytes)):
            return (f"its LV {lv.vg}/{lv.name} would change from {found.stripes} stripes to {lv.stripes} "
                    "(LVM does not restripe in place)")
    return ""


def _exists(vm: DesiredVm, observed: ObservedIndex, holders: Holders) -> bool:
    """Any trace of this VM on the node: then it is not created but converged, and its LVs are its own."""
    if vm.drbd is not None and (vm.drbd.name in holders.configs[0] or observed.resource(vm.drbd.name) is not None):
        return True
    return vm.stripe is not None and observed.dm(vm.stripe.name) is not None


def _collision(vm: DesiredVm, observed: ObservedIndex, holders: Holders) -> str | None:
    configs, problem = holders.configs
    # Once this VM's resource is up on its minor, nothing else can be; the check guards bringing it up.
    if vm.drbd is not None and observed.resource(vm.drbd.name) is None:
        drbd = vm.drbd
        if problem:
            return (f"{vm.name}: the DRBD configuration on this node cannot be read ({problem}), so it cannot be "
                    "checked that minor and port are free; fix or remove the file")
        holder = holders.minors.get(drbd.minor)
        if holder is not None and holder != drbd.name:
            where = configs[holder].source if holder in configs else "running"
            return (f"{vm.name}: DRBD minor {drbd.minor} ({drbd.device}) is held by resource {holder} ({where}); "
                    "two resources never share a minor: choose a free minor, or delete the other VM first")
        holder = holders.ports.get(drbd.port)
        if holder is not None and holder != drbd.name:
            return (f"{vm.name}: port {drbd.port} is used by resource {holder} ({configs[holder].source}); "
                    "choose a free port, or delete the other VM first")
    if vm.stripe is not None:
        dev = observed.dm(vm.stripe.name)
        if dev is not None and not dev.uuid and vm.lifecycle == "present":
            # Made by hand without uuid: taken over (adopt-stripe) only when its table is the desired one.
            refusal = dm_adoption_refusal(vm.stripe.name, dev, uuid=dm_uuid(vm.stripe.name), table=vm.stripe.table,
                                          devices=observed.observed.dm_devices)
            return f"{vm.name}: {refusal}" if refusal else None
        if dev is not None and dev.uuid != dm_uuid(vm.stripe.name):
            return (f"{vm.name}: a dm device named {vm.stripe.name} exists with uuid {dev.uuid or '(none)'}, not "
                    f"{dm_uuid(vm.stripe.name)}: it was made by hand or by another tool and is not taken over "
                    f"implicitly (if nothing uses it, `dmsetup remove {vm.stripe.name}` frees the name)")
    if not _exists(vm, observed, holders):
        for lv in vm.lvs:
            found = observed.lv(lv.vg, lv.name)
            if found is not None and LV_TAG not in found.tags:
                return (f"{vm.name}: LV {lv.vg}/{lv.name} already exists and was not created by this project (no "
                        f"{LV_TAG!r} tag); it is not taken over implicitly: check that it holds nothing, then "
                        f"`lvchange --addtag {LV_TAG} {lv.vg}/{lv.name}`, or remove it")
    return None

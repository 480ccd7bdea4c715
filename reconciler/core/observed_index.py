"""Dictionary lookups over an observation: the planner asks per resource, so linear scans would make a
plan quadratic in the number of VMs."""

from __future__ import annotations

from reconciler.model.observed import (
    DmDevice,
    DomainState,
    DrbdResourceState,
    LogicalVolume,
    ObservedNode,
    VolumeGroup,
)


class ObservedIndex:
    def __init__(self, observed: ObservedNode) -> None:
        self.observed = observed
        self.node = observed.node
        self._lvs = {(lv.vg, lv.name): lv for lv in observed.logical_volumes}
        self._vgs = {vg.name: vg for vg in observed.volume_groups}
        self._dms = {dm.name: dm for dm in observed.dm_devices}
        self._domains = {d.name: d for d in observed.domains if d.state != "dying"}
        self._files = {f.path: f.content for f in observed.files}
        self._resources = {r.name: r for r in observed.drbd.resources}

    def lv(self, vg: str, name: str) -> LogicalVolume | None:
        return self._lvs.get((vg, name))

    def vg(self, name: str) -> VolumeGroup | None:
        return self._vgs.get(name)

    def dm(self, name: str) -> DmDevice | None:
        return self._dms.get(name)

    def domain(self, name: str) -> DomainState | None:
        return self._domains.get(name)

    def file(self, path: str) -> str | None:
        return self._files.get(path)

    def resource(self, name: str) -> DrbdResourceState | None:
        return self._resources.get(name)

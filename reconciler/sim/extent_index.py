"""The extents in use on each PV of a VG, kept as an index over the VG's LVs (see :mod:`reconciler.sim.entry_index`).

``lvcreate``, ``lvextend`` and the free-space columns ask for a VG's free ranges; walking every segment of
every LV for that made a command cost grow with the number of LVs. The index keeps each LV's areas, and per
PV a sorted list of the ranges in use, updated by the LVs that change.
"""

from __future__ import annotations

import bisect
from typing import Any

from reconciler.sim.entry_index import EntryIndex, index_of

Area = tuple[str, int, int]  # PV name, first extent, length


class ExtentIndex(EntryIndex[tuple[Area, ...]]):
    def __init__(self) -> None:
        super().__init__()
        self.used: dict[str, list[tuple[int, int]]] = {}  # PV name -> sorted (start, length), one per area
        self.version = 0  # bumped at every change of ``used``
        self.free: tuple[int, tuple[tuple[str, int], ...], dict[str, list[tuple[int, int]]]] | None = None

    def compute(self, entry: Any) -> tuple[Area, ...]:
        areas: list[Area] = []
        for seg in entry["segments"]:
            per_area = int(seg["extents"]) // len(seg["areas"])
            for pv_name, start in seg["areas"]:
                areas.append((pv_name, int(start), per_area))
        return tuple(areas)

    def added(self, key: str, value: tuple[Area, ...]) -> None:
        for pv_name, start, length in value:
            bisect.insort(self.used.setdefault(pv_name, []), (start, length))
        self.version += 1

    def removed(self, key: str, value: tuple[Area, ...]) -> None:
        for pv_name, start, length in value:
            ranges = self.used[pv_name]
            del ranges[bisect.bisect_left(ranges, (start, length))]
            if not ranges:
                del self.used[pv_name]
        self.version += 1


def extent_index(vg: dict[str, Any]) -> ExtentIndex | None:
    """The index of ``vg``'s LVs; None when the VG is not part of a store's tree or an LV is malformed (the
    caller walks, and meets the same error as before), or an LV lies on a PV the VG does not list."""
    lvs = vg.get("lvs")
    found = index_of(lvs, "extents", ExtentIndex) if lvs else None
    if found is None:
        return None
    names = {pv["name"] for pv in vg["pvs"]}
    return found if names.issuperset(found.used) else None

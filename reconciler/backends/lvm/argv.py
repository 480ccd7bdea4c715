"""The LVM report command lines of an observation pass (``vgs``, ``lvs``, ``pvs``).

Kept apart from the parsers so that a fresh command can start these reports before it imports the rest
(see reconciler.host.prefetch): this module imports nothing.
"""

from __future__ import annotations

_REPORT = ("--reportformat", "json", "--units", "b", "--nosuffix")
VGS_ARGV: tuple[str, ...] = ("vgs", *_REPORT, "-o", "vg_name,vg_size,vg_free,vg_extent_size,pv_count")
LVS_ARGV: tuple[str, ...] = (
    "lvs",
    *_REPORT,
    "-o",
    "lv_name,vg_name,lv_size,lv_attr,lv_uuid,segtype,stripes,stripe_size,devices,lv_tags",
)
PVS_ARGV: tuple[str, ...] = ("pvs", *_REPORT, "-o", "pv_name,vg_name,pv_size,pv_free")

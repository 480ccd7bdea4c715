"""Which incarnation of a device an action writes to: the uuids of the LVs beneath it.

A device path is reused when a VM is deleted and recreated; the LV uuids are not. One ``lvs`` report
(the observer's own command line) answers for all LVs at once, and it runs only before a destructive
write is journaled.
"""

from __future__ import annotations

from reconciler.backends.lvm import parse as lvm
from reconciler.core.parse_error import ParseError
from reconciler.host.base import Host

IDENTITY_TIMEOUT = 30.0


def resolve_identity(host: Host, lv_paths: str) -> str:
    """``/dev/vg/lv,...`` -> ``uuid,...``; empty when any LV is missing or lvs fails (then nothing is 'ours')."""
    paths = [p for p in lv_paths.split(",") if p]
    if not paths:
        return ""
    result = host.run(lvm.LVS_ARGV, timeout=IDENTITY_TIMEOUT)
    if not result.ok:
        return ""
    try:
        lvs = lvm.parse_lvs(result.stdout)
    except ParseError:
        return ""
    by_path = {lv.path: lv.uuid for lv in lvs}
    uuids = [by_path.get(p) for p in paths]
    if any(u is None for u in uuids):
        return ""
    return ",".join(u for u in uuids if u)

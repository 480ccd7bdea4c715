"""Which incarnation of a device an action writes to: the uuids of the LVs beneath it.

A device path is reused when a VM is deleted and recreated; the LV uuids are not. One ``lvs VG/LV ...``
report of exactly those LVs answers (its cost does not grow with the node's other LVs), and it runs only
before a destructive write is journaled, so it always sees the LVs as they are right then.
"""

from __future__ import annotations

from reconciler.backends.lvm import facts as lvm_facts
from reconciler.core.facts import CommandRunner
from reconciler.host.base import Host
from reconciler.names import name_problem

IDENTITY_TIMEOUT = 30.0


def _vg_lv(path: str) -> tuple[str, str] | None:
    """``/dev/VG/LV`` -> (VG, LV) when both are safe names; None for any other path (then it is not an LV)."""
    parts = path.split("/")
    if len(parts) != 4 or parts[0] or parts[1] != "dev" or parts[2] == "mapper":
        return None
    if name_problem(parts[2]) is not None or name_problem(parts[3]) is not None:
        return None
    return parts[2], parts[3]


def resolve_identity(host: Host, lv_paths: str) -> str:
    """``/dev/vg/lv,...`` -> ``uuid,...``; empty when any LV is missing or lvs fails (then nothing is 'ours')."""
    paths = [p for p in lv_paths.split(",") if p]
    if not paths:
        return ""
    names = [_vg_lv(p) for p in paths]
    if any(n is None for n in names):
        return ""
    wanted = tuple(n for n in names if n is not None)
    status, lvs = lvm_facts.observe_named_lvs(CommandRunner(host, IDENTITY_TIMEOUT), None, tuple(dict.fromkeys(wanted)))
    if status.state != "available":
        return ""
    by_name = {(lv.vg, lv.name): lv.uuid for lv in lvs}
    uuids = [by_name.get(n) for n in wanted]
    if any(not u for u in uuids):
        return ""
    return ",".join(u for u in uuids if u)

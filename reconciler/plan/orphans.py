"""Things on the node that look like ours but that no VM file describes: reported, never touched.

A VM file that disappears from the repository is not a deletion (only ``lifecycle: deleted`` is), so
what it left behind is recognised by the project's conventions and reported.
"""

from __future__ import annotations

import re

from reconciler.core.plan_model import Note
from reconciler.core.seams import Hypervisor
from reconciler.model.desired import DATA_LV_PREFIX, SWAP_LV_PREFIX, VM_NAME_PREFIX, DesiredNode
from reconciler.model.observed import ObservedNode
from reconciler.ownership import is_our_dm_uuid

_OUR_LV = re.compile(rf"^({DATA_LV_PREFIX}|{SWAP_LV_PREFIX})(\d+)(?:[-_].*)?$")
_OWNED_FILE = re.compile(r"^/etc/(drbd\.d/[^/]+\.res|xen/[^/]+\.cfg)$")
_DOM0 = "Domain-0"


def _vm_of(name: str) -> str:
    digits = re.search(r"(\d+)", name)
    return f"{VM_NAME_PREFIX}{digits.group(1)}" if digits else name


def find_orphans(desired: DesiredNode, observed: ObservedNode, hypervisor: Hypervisor) -> tuple[Note, ...]:
    lvs: set[tuple[str, str]] = set()
    dms: set[str] = set()
    resources: set[str] = set()
    domains: set[str] = set()
    files: set[str] = set()
    for vm in desired.vms:
        lvs.update((lv.vg, lv.name) for lv in vm.lvs)
        if vm.stripe is not None:
            dms.add(vm.stripe.name)
        if vm.drbd is not None:
            resources.add(vm.drbd.name)
            files.add(vm.drbd.config_path)
        if vm.domain is not None:
            domains.add(vm.domain.name)
            domains.update(hypervisor.migration_names(vm.domain.name))  # the VM itself, in a live migration
            files.add(vm.domain.config_path)
    notes: list[Note] = []

    def orphan(key: str, name: str, what: str) -> None:
        notes.append(Note(key=key, vm=_vm_of(name), kind="orphan",
                          message=f"{what} is not described by any VM file; left alone (mark the VM "
                                  "lifecycle: deleted to remove it)"))

    for lv in observed.logical_volumes:
        if (lv.vg, lv.name) not in lvs and _OUR_LV.match(lv.name):
            orphan(f"lv:{lv.vg}/{lv.name}", lv.name, f"LV {lv.vg}/{lv.name}")
    for dm in observed.dm_devices:
        if is_our_dm_uuid(dm.uuid) and dm.name not in dms:
            orphan(f"dm:{dm.name}", dm.name, f"stripe {dm.name}")
    for res in observed.drbd.resources:
        if res.name not in resources:
            orphan(f"drbd:{res.name}", res.name, f"DRBD resource {res.name}")
    for dom in observed.domains:
        if dom.name != _DOM0 and dom.name not in domains and dom.state != "dying":
            orphan(f"domain:{dom.name}", dom.name, f"domain {dom.name}")
    for f in observed.files:
        if f.content is not None and f.path not in files and _OWNED_FILE.match(f.path):
            orphan(f"file:{f.path}", f.path.rsplit("/", 1)[-1].split(".")[0], f"file {f.path}")
    return tuple(notes)

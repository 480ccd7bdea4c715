"""Tear down a VM whose file says ``lifecycle: deleted``: stop, demote, down, then remove, in that order."""

from __future__ import annotations

from reconciler.backends.dm import commands as dm
from reconciler.backends.lvm import commands as lvm
from reconciler.core.domain_steps import plan_shutdown
from reconciler.core.safety import dm_ownership_refusal, lv_ownership_refusal
from reconciler.core.vm_builder import VmBuilder
from reconciler.ownership import LV_TAG, dm_uuid


def plan_deletion(b: VmBuilder) -> None:
    vm, observed = b.vm, b.observed
    stop = None
    if vm.domain is not None:
        if observed.domain(vm.domain.name) is not None:
            stop = plan_shutdown(b, vm.domain, "VM deleted")
        if observed.file(vm.domain.config_path) is not None:
            b.add("remove-xen-config", vm.domain.key, "delete", f"remove {vm.domain.config_path}",
                  file_path=vm.domain.config_path, depends_on=(stop,), destructive=True)
    down = None
    if vm.drbd is not None:
        drbd = vm.drbd
        res = observed.resource(drbd.name)
        if res is not None:
            demote = None
            if res.role == "Primary":
                demote = b.add("demote", drbd.key, "delete", f"demote {drbd.name} to Secondary",
                               commands=(b.command(b.replicator.demote_argv(drbd.name)),), depends_on=(stop,))
            down = b.add("drbd-down", drbd.key, "delete", f"take down DRBD resource {drbd.name}",
                         commands=(b.command(b.replicator.down_argv(drbd.name)),), depends_on=(demote, stop),
                         destructive=True)
        if observed.file(drbd.config_path) is not None:
            # The config goes only after `down`: drbdadm needs it to take the resource down.
            b.add("remove-drbd-config", drbd.key, "delete", f"remove {drbd.config_path}",
                  file_path=drbd.config_path, depends_on=(down,), destructive=True)
    unstripe = None
    dev = observed.dm(vm.stripe.name) if vm.stripe is not None else None
    if vm.stripe is not None and dev is not None:
        unstripe = b.add("remove-stripe", vm.stripe.key, "delete", f"remove stripe {vm.stripe.name}",
                         commands=(dm.dmsetup_remove(vm.stripe.name),), depends_on=(down,), destructive=True,
                         refused=dm_ownership_refusal(vm.stripe.name, dev, dm_uuid(vm.stripe.name)) or "")
    for lv in vm.lvs:
        found = observed.lv(lv.vg, lv.name)
        if found is None:
            continue
        after = (unstripe, down) if lv.purpose == "data" else (stop,)
        refused = lv_ownership_refusal(lv.vg, lv.name, found, uuid=found.uuid or "", tag=LV_TAG) or ""
        b.add("remove-lv", lv.key, "delete", f"remove LV {lv.vg}/{lv.name} and its data",
              commands=(lvm.lvremove(lv.vg, lv.name),), depends_on=after, destructive=True, identity=found.uuid or "",
              refused=refused)


def plan_absent(b: VmBuilder) -> None:
    """Stop the domain and release the Primary role; keep every byte of data."""
    vm, observed = b.vm, b.observed
    stop = None
    if vm.domain is not None and observed.domain(vm.domain.name) is not None:
        stop = plan_shutdown(b, vm.domain, "VM marked absent")
    if vm.drbd is not None:
        res = observed.resource(vm.drbd.name)
        if res is not None and res.role == "Primary":
            b.add("demote", vm.drbd.key, "change", f"demote {vm.drbd.name} to Secondary",
                  commands=(b.command(b.replicator.demote_argv(vm.drbd.name)),), depends_on=(stop,))

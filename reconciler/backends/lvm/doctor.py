"""LVM's part of ``reconciler doctor``: lvm2, the device filter that keeps the replicated data out of dom0's
scan, and the declared volume groups (:class:`reconciler.core.doctor.BackendDoctor`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from reconciler.backends.lvm import parse as lvm
from reconciler.core.doctor import NO_DESIRED, TIMEOUT, BackendDoctor, Check, DaemonSettings, ToolCheck
from reconciler.core.parse_error import ParseError
from reconciler.host.base import Host
from reconciler.model.desired import DesiredNode


def lvm_filter_accepts(patterns: Iterable[str], device: str) -> bool:
    """LVM's rule: the first pattern that matches decides (a=accept, r=reject); no match accepts."""
    for pattern in patterns:
        if len(pattern) < 3 or pattern[0] not in "ar":
            continue
        delimiter = pattern[1]
        regex = pattern[2:pattern.rfind(delimiter)] if pattern.rfind(delimiter) > 1 else pattern[2:]
        try:
            if re.search(regex, device):
                return pattern[0] == "a"
        except re.error:
            continue
    return True


def _lvm_list(text: str, key: str) -> list[str] | None:
    match = re.search(rf"^\s*{key}\s*=\s*\[(.*)\]\s*$", text, re.MULTILINE)
    if match is None:
        return None
    return re.findall(r'"((?:[^"\\]|\\.)*)"', match.group(1))


def check_lvm_filter(host: Host, desired: DesiredNode | None) -> Check:
    result = host.run(("lvmconfig", "--type", "full", "devices/global_filter", "devices/filter",
                       "devices/use_devicesfile"), timeout=TIMEOUT)
    if result.not_found:
        return Check("LVM filter", "skip", "lvmconfig is not installed")
    if not result.ok:
        return Check("LVM filter", "fail", f"cannot read the LVM configuration: {result.describe()}")
    if re.search(r"^\s*use_devicesfile\s*=\s*1", result.stdout, re.MULTILINE):
        return Check("LVM filter", "ok", "LVM uses a devices file: it scans only the devices listed there")
    devices = ["/dev/drbd0"]
    if desired is not None:
        devices += [vm.stripe.path for vm in desired.vms if vm.stripe is not None]
        devices += [vm.drbd.device for vm in desired.vms if vm.drbd is not None]
    else:
        devices.append("/dev/mapper/root100")
    # A device is scanned only when both global_filter and filter accept it.
    filters = [_lvm_list(result.stdout, key) or [] for key in ("global_filter", "filter")]
    scanned = [d for d in dict.fromkeys(devices) if all(lvm_filter_accepts(f, d) for f in filters)]
    if scanned:
        shown = ", ".join(scanned[:4]) + (" ..." if len(scanned) > 4 else "")
        return Check("LVM filter", "fail",
                     f"LVM would scan {shown}: the replicated data (a guest's own PVs) could be activated in dom0. "
                     'Add e.g. global_filter = [ "r|^/dev/drbd|", "r|^/dev/mapper/root|", "a|.*|" ] to lvm.conf')
    return Check("LVM filter", "ok", "DRBD devices and stripe devices are rejected")


def check_volume_groups(host: Host, desired: DesiredNode | None) -> Check:
    """Each declared volume group exists, with as many PVs as the widest LVM stripe asked of it."""
    if desired is None:
        return Check("volume groups", "skip", NO_DESIRED)
    result = host.run(lvm.VGS_ARGV, timeout=TIMEOUT)
    if result.not_found:
        return Check("volume groups", "skip", "vgs is not installed")
    try:
        groups = {vg.name: vg for vg in lvm.parse_vgs(result.stdout)} if result.ok else None
    except ParseError as exc:
        return Check("volume groups", "fail", f"cannot read `vgs`: {exc}")
    if groups is None:
        return Check("volume groups", "fail", f"`vgs` failed: {result.describe()}")
    wanted = set(desired.volume_groups) | {lv.vg for vm in desired.vms for lv in vm.lvs}
    problems = [f"{name} does not exist" for name in sorted(wanted - set(groups))]
    for vm in desired.vms:
        for lv in vm.lvs:
            vg = groups.get(lv.vg)
            if vg is not None and lv.stripes > 1 and vg.pv_count is not None and vg.pv_count < lv.stripes:
                problems.append(f"{vm.name} stripes {lv.vg}/{lv.name} over {lv.stripes} PVs, but {lv.vg} has "
                                f"{vg.pv_count}")
    if problems:
        return Check("volume groups", "fail", "; ".join(problems) + " (create them, or fix cluster.yaml)")
    return Check("volume groups", "ok", ", ".join(sorted(wanted)) or "none declared")


def _filter(host: Host, desired: DesiredNode | None, settings: DaemonSettings) -> list[Check]:
    return [check_lvm_filter(host, desired)]


def _storage(host: Host, desired: DesiredNode | None, settings: DaemonSettings) -> list[Check]:
    return [check_volume_groups(host, desired)]


DOCTOR = BackendDoctor(
    tools=(ToolCheck("lvm2", ("lvm", "version"), r"LVM version:\s*(\S+)"),),
    checks={"filter": (_filter,), "storage": (_storage,)},
)

"""Xen ``xl`` domain configs. Every value written here passed the name, path or command-line validators."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.desired.resolve import Vm
from reconciler.names import check_name

CONFIG_DIR = "/etc/xen"
_MAX_DISKS = 26


def config_path(domain: str) -> str:
    return f"{CONFIG_DIR}/{check_name(domain, 'domain')}.cfg"


def disk_specs(devices: Sequence[str]) -> tuple[str, ...]:
    """``phy:`` specs: the first device is xvda (the root), the others follow in order."""
    if len(devices) > _MAX_DISKS:
        raise ValueError(f"{len(devices)} disks exceed the {_MAX_DISKS} xvd letters")
    return tuple(f"phy:{device},xvd{chr(ord('a') + i)},w" for i, device in enumerate(devices))


def _list(items: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


def render_xen(vm: Vm, devices: Sequence[str]) -> str:
    """The text of ``/etc/xen/<domain>.cfg``."""
    domain = vm.domain
    lines = [
        f"# {vm.name}: written by the reconciler from {vm.source}; local changes are overwritten.",
        f'name = "{vm.name}"',
        f'type = "{domain.type}"',
        f"memory = {domain.memory_mib}",
        f"maxmem = {domain.maxmem_mib}",
        f"vcpus = {domain.vcpus}",
        f"maxvcpus = {domain.maxvcpus}",
    ]
    if domain.bootloader is not None:
        lines.append(f'bootloader = "{domain.bootloader}"')
    if domain.kernel is not None:
        lines.append(f'kernel = "{domain.kernel}"')
    if domain.ramdisk is not None:
        lines.append(f'ramdisk = "{domain.ramdisk}"')
    if domain.extra is not None:
        lines.append(f'extra = "{domain.extra}"')
    lines.append(f"disk = {_list(disk_specs(devices))}")
    lines.append(f"vif = {_list([f'mac={v.mac},bridge={v.bridge}' for v in domain.vifs])}")
    # After a crash the reconciler, not xl, decides whether and where the domain starts again.
    lines += ['on_poweroff = "destroy"', 'on_reboot = "restart"', 'on_crash = "destroy"']
    return "\n".join(lines) + "\n"

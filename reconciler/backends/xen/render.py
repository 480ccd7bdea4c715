"""Xen ``xl`` domain configs. Every value written here passed the name, path or command-line validators.

The settings come as a :class:`~reconciler.core.render_settings.DomainFileSettings` the desired state's
expansion fills from the VM and hands to the node's hypervisor (``XenHypervisor.render_config``), so this
backend knows nothing of the files the desired state is read from.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.core.render_settings import DomainFileSettings

_MAX_DISKS = 26


def disk_specs(devices: Sequence[str]) -> tuple[str, ...]:
    """``phy:`` specs: the first device is xvda (the root), the others follow in order."""
    if len(devices) > _MAX_DISKS:
        raise ValueError(f"{len(devices)} disks exceed the {_MAX_DISKS} xvd letters")
    return tuple(f"phy:{device},xvd{chr(ord('a') + i)},w" for i, device in enumerate(devices))


def _list(items: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


def render_xen(domain: DomainFileSettings, devices: Sequence[str]) -> str:
    """The text of ``/etc/xen/<domain>.cfg``."""
    lines = [
        f"# {domain.name}: written by the reconciler from {domain.source}; local changes are overwritten.",
        f'name = "{domain.name}"',
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

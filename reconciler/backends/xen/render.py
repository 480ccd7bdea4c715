"""Xen ``xl`` domain configs. Every value written here passed the name, path or command-line validators.

The settings come as a :class:`DomainFileSettings` the desired state's expansion fills from the VM, so this
backend knows nothing of the files the desired state is read from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

_MAX_DISKS = 26


@dataclass(frozen=True)
class Vif:
    mac: str
    bridge: str


@dataclass(frozen=True)
class DomainFileSettings:
    """What one domain config says beyond its disks, every value validated by the desired state already."""

    name: str
    source: str  # the VM file, named in the header
    type: str
    memory_mib: int
    maxmem_mib: int
    vcpus: int
    maxvcpus: int
    bootloader: str | None
    kernel: str | None
    ramdisk: str | None
    extra: str | None
    vifs: tuple[Vif, ...]


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

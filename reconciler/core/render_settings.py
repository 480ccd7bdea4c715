"""The typed settings the desired state's expansion fills from a VM and a backend's renderer reads: what a
domain config says beyond its disks (:class:`DomainFileSettings`, for the node's hypervisor) and what a
replicated resource's file says beyond its hosts (:class:`ResourceFileSettings`, for its replicator).

They stand between ``desired`` and the backends, so that a backend knows nothing of the files the desired
state is read from and the expansion names no backend: it hands them to the node's
:class:`~reconciler.core.seams.Hypervisor` and :class:`~reconciler.core.seams.Replicator` (``render_config``).
Every value was validated by the desired state already.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.model.desired import DesiredVerify, DrbdProtocol, SafetyMechanism


@dataclass(frozen=True)
class Vif:
    mac: str
    bridge: str


@dataclass(frozen=True)
class DomainFileSettings:
    """What one domain config says beyond its disks."""

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


# Extra options as the desired state gives them: section -> ((option, value), ...), in the file's order.
ExtraOptions = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]


@dataclass(frozen=True)
class ResourceFileSettings:
    """What one resource file says beyond its hosts."""

    vm: str
    source: str  # the VM file, named in the header
    resource: str
    protocol: DrbdProtocol
    on_io_error: str
    al_extents: int | None
    mechanism: SafetyMechanism
    fencing_policy: str
    fence_peer_handler: str | None
    unfence_peer_handler: str | None
    on_no_quorum: str
    verify: DesiredVerify | None
    extra_options: ExtraOptions
    wfc_timeout: int | None
    degr_wfc_timeout: int | None

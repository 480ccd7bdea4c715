"""Tool versions, probed once per observer: they change only when packages do, not between passes.

Xen's version comes with ``xl info`` and DRBD's kernel version with ``/proc/drbd``, both read on every
pass anyway; lvm2, device-mapper and drbd-utils need a command each, once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from reconciler.backends.lvm import parse as lvm
from reconciler.core.facts import ToolVersions
from reconciler.core.parse_error import ParseError
from reconciler.host.base import CommandResult
from reconciler.model.observed import ToolStatus

LVM_VERSION_ARGV = lvm.VERSION_ARGV
DMSETUP_VERSION_ARGV = ("dmsetup", "version")
DRBDADM_VERSION_ARGV = ("drbdadm", "--version")
VERSION_PROBES = (LVM_VERSION_ARGV, DMSETUP_VERSION_ARGV, DRBDADM_VERSION_ARGV)

_DM_LIBRARY_RE = re.compile(r"^Library version:\s*(\S+)", re.MULTILINE)
_DM_DRIVER_RE = re.compile(r"^Driver version:\s*(\S+)", re.MULTILINE)
_DRBDADM_RE = re.compile(r"^DRBDADM_VERSION=(\S+)\s*$", re.MULTILINE)


def parse_dmsetup_version(text: str) -> str | None:
    """``dmsetup version``: the library version, with the kernel driver's when the driver answered."""
    library = _DM_LIBRARY_RE.search(text)
    if library is None:
        return None
    driver = _DM_DRIVER_RE.search(text)
    return f"{library.group(1)} (driver {driver.group(1)})" if driver else library.group(1)


def parse_drbdadm_version(text: str) -> str | None:
    """``drbdadm --version`` prints shell assignments; ``DRBDADM_VERSION=9.22.0`` is the utils' release."""
    match = _DRBDADM_RE.search(text)
    return match.group(1) if match else None


def _lvm_version(result: CommandResult) -> str | None:
    if result.not_found or result.timed_out:
        return None
    try:
        return lvm.parse_lvm_version(result.stdout)
    except ParseError:
        return None


def _drbd_utils(result: CommandResult) -> ToolStatus:
    """drbd-utils are useful without the kernel module (``drbdadm --version`` answers anyway)."""
    if result.not_found:
        return ToolStatus(name="drbdadm", state="missing", detail="drbdadm is not installed")
    version = None if result.timed_out else parse_drbdadm_version(result.stdout)
    if version is None:
        return ToolStatus(name="drbdadm", state="failed", detail=result.describe())
    return ToolStatus(name="drbdadm", state="available", version=version)


def probe_versions(run: Callable[[Sequence[str]], CommandResult]) -> ToolVersions:
    """Ask lvm2, dmsetup and drbdadm for their versions. A version that cannot be read is None, never an
    error: without device-mapper in the kernel ``dmsetup version`` exits 1 yet still names its library."""
    lvm_result = run(LVM_VERSION_ARGV)
    dm_result = run(DMSETUP_VERSION_ARGV)
    drbdadm_result = run(DRBDADM_VERSION_ARGV)
    dm_version = None if dm_result.not_found else parse_dmsetup_version(dm_result.stdout)
    return ToolVersions(lvm=_lvm_version(lvm_result), dmsetup=dm_version, drbd_utils=_drbd_utils(drbdadm_result))

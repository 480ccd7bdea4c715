"""drbd-utils' version, probed once per observer: ``drbdadm --version`` answers without the kernel module."""

from __future__ import annotations

import re

from reconciler.core.facts import VersionProbe
from reconciler.host.base import CommandResult
from reconciler.model.observed import ToolStatus

VERSION_ARGV: tuple[str, ...] = ("drbdadm", "--version")
# What the facts report when nothing was probed (a pass given no versions).
NOT_PROBED = ToolStatus(name="drbdadm", state="missing", detail="not probed")
_DRBDADM_RE = re.compile(r"^DRBDADM_VERSION=(\S+)\s*$", re.MULTILINE)


def parse_drbdadm_version(text: str) -> str | None:
    """``drbdadm --version`` prints shell assignments; ``DRBDADM_VERSION=9.22.0`` is the utils' release."""
    match = _DRBDADM_RE.search(text)
    return match.group(1) if match else None


def _read_version(result: CommandResult) -> ToolStatus:
    """drbd-utils are useful without the kernel module (``drbdadm --version`` answers anyway)."""
    if result.not_found:
        return ToolStatus(name="drbdadm", state="missing", detail="drbdadm is not installed")
    version = None if result.timed_out else parse_drbdadm_version(result.stdout)
    if version is None:
        return ToolStatus(name="drbdadm", state="failed", detail=result.describe())
    return ToolStatus(name="drbdadm", state="available", version=version)


VERSION_PROBE = VersionProbe(name="drbd_utils", binary="drbdadm", argv=VERSION_ARGV, read=_read_version)

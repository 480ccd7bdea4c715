"""``/proc/drbd``: the kernel's DRBD version and, on DRBD 8.x, the state of every minor.

DRBD 9 prints only its version there (state comes from ``drbdsetup``). DRBD 8.3 and 8.4 print one
block per minor: ``cs:`` connection state, ``ro:`` local/peer role, ``ds:`` local/peer disk state,
protocol and flags, a counters line ending in ``oos:`` (out of sync, KiB) and, while syncing, a progress
bar with ``sync'ed:`` and a ``finish:`` estimate. DRBD 8.0 writes ``st:`` instead of ``ro:`` and has
no ``oos:``. Versions before 8.0 are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from reconciler.backends.drbd.drbd9 import DISK_STATES, KIB, ROLES, VERIFY_STATES
from reconciler.core.parse_error import ParseError
from reconciler.model.base import Frozen
from reconciler.model.observed import (
    DrbdConnectionState,
    DrbdDeviceState,
    DrbdPeerDeviceState,
    DrbdResourceState,
    DrbdState,
)

PROC_DRBD_PATH = "/proc/drbd"
TOOL = "/proc/drbd"

# 8.x connection states; the replication-related ones map onto DRBD 9's replication states.
_NETWORK_STATES = {
    "StandAlone": "StandAlone",
    "Disconnecting": "Disconnecting",
    "Unconnected": "Unconnected",
    "Timeout": "Timeout",
    "BrokenPipe": "BrokenPipe",
    "NetworkFailure": "NetworkFailure",
    "ProtocolError": "ProtocolError",
    "TearDown": "TearDown",
    "WFConnection": "Connecting",
    "WFReportParams": "Connecting",
}
_REPLICATION_STATES = frozenset(
    {
        "StartingSyncS",
        "StartingSyncT",
        "WFBitMapS",
        "WFBitMapT",
        "WFSyncUUID",
        "SyncSource",
        "SyncTarget",
        "VerifyS",
        "VerifyT",
        "PausedSyncS",
        "PausedSyncT",
        "Ahead",
        "Behind",
    }
)
UNCONFIGURED = "Unconfigured"
CONNECTION_STATES_8 = frozenset(_NETWORK_STATES) | _REPLICATION_STATES | {"Connected", UNCONFIGURED}
_SYNCING = frozenset({"SyncSource", "SyncTarget", "PausedSyncS", "PausedSyncT"})

_VERSION = re.compile(r"version:\s*([0-9]+\.[0-9]+\.[0-9]+(?:[-.][0-9A-Za-z.]+)?)\s*(?:\((.*)\))?\s*")
_VERSION_ANY = re.compile(r"version:\s*(\S*).*")
_MINOR = re.compile(
    r"([0-9]+):\s+cs:([A-Za-z]+)"
    r"(?:\s+(?:ro|st):([A-Za-z]+)/([A-Za-z]+)\s+ds:([A-Za-z]+)/([A-Za-z]+)(?:\s+([ABC]))?(?:\s+(\S+))?)?"
)
_COUNTER = re.compile(r"([a-z]+):(\S+)")
_PROGRESS = re.compile(
    r"\[[=>.]*\]\s+(sync'ed|verified):\s*([0-9]+(?:\.[0-9]+)?)%\s*\(([0-9]+)/([0-9]+)\)([KMG])"
    r"(?:\s*delay_probe:\s*[0-9]+)?(?:\s*(finish:.*))?"
)
_FINISH = re.compile(r"finish:\s*([0-9]+):([0-9][0-9]):([0-9][0-9])\s+speed:.*")
_META_PREFIXES = ("GIT-hash:", "srcversion:", "Transports", "built-in")
_IGNORED_PREFIXES = ("resync:", "act_log:")
_SECTOR_POS = re.compile(r"[0-9]+%\s+sector pos:\s*[0-9]+/[0-9]+")


class ProcMinor(Frozen):
    minor: int
    connection_state: str
    role: str | None = None
    peer_role: str | None = None
    disk_state: str | None = None
    peer_disk_state: str | None = None
    protocol: str | None = None
    flags: str | None = None
    out_of_sync_kib: int | None = None
    resync_percent: float | None = None
    resync_eta_seconds: int | None = None

    @property
    def configured(self) -> bool:
        return self.connection_state != UNCONFIGURED

    @property
    def suspended(self) -> bool:
        # The first flag is 's' while I/O is suspended, 'r' while it runs.
        return self.flags is not None and self.flags.startswith("s")


class ProcDrbd(Frozen):
    version: str | None = None
    api: str | None = None
    minors: tuple[ProcMinor, ...] = ()

    @property
    def is_drbd9(self) -> bool:
        return self.version is not None and self.version.startswith("9.")


def parse_version(text: str) -> str | None:
    """The module version from the ``version:`` line ('8.4.11', '9.2.12'); None when there is none."""
    for line_no, line in enumerate(text.replace("\0", "").splitlines(), start=1):
        stripped = line.strip()
        if not stripped.startswith("version:"):
            continue
        match = _VERSION.fullmatch(stripped)
        if match is None:
            raise ParseError(TOOL, "unreadable version line", line_no, line)
        return match.group(1)
    return None


def _check_version(version: str, line_no: int, line: str) -> None:
    major_minor = tuple(int(part) for part in version.split(".")[:2])
    if major_minor < (8, 0):
        raise ParseError(TOOL, f"DRBD {version} is older than 8.0 and not supported", line_no, line)


def _minor_line(match: re.Match[str], line_no: int, line: str) -> ProcMinor:
    cs = match.group(2)
    if cs not in CONNECTION_STATES_8:
        raise ParseError(TOOL, f"unknown connection state {cs!r}", line_no, line)
    if cs == UNCONFIGURED:
        if match.group(3) is not None:
            raise ParseError(TOOL, "an unconfigured minor with a state", line_no, line)
        return ProcMinor(minor=int(match.group(1)), connection_state=cs)
    if match.group(3) is None:
        raise ParseError(TOOL, "a configured minor without ro:/ds:", line_no, line)
    role, peer_role, disk, peer_disk = match.group(3, 4, 5, 6)
    for value, allowed, what in (
        (role, ROLES, "role"),
        (peer_role, ROLES, "peer role"),
        (disk, DISK_STATES, "disk state"),
        (peer_disk, DISK_STATES, "peer disk state"),
    ):
        if value not in allowed:
            raise ParseError(TOOL, f"unknown {what} {value!r}", line_no, line)
    return ProcMinor(
        minor=int(match.group(1)),
        connection_state=cs,
        role=role,
        peer_role=peer_role,
        disk_state=disk,
        peer_disk_state=peer_disk,
        protocol=match.group(7),
        flags=match.group(8),
    )


def _eta(text: str, line_no: int, line: str) -> int | None:
    if text.strip() == "stalled":
        return None
    match = _FINISH.fullmatch(text.strip())
    if match is None:
        raise ParseError(TOOL, "unreadable finish: estimate", line_no, line)
    hours, minutes, seconds = (int(part) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_proc_drbd(text: str) -> ProcDrbd:
    version: str | None = None
    api: str | None = None
    minors: list[ProcMinor] = []
    seen: set[int] = set()
    current: ProcMinor | None = None

    def update(line_no: int, line: str, **values: object) -> None:
        nonlocal current
        if current is None or not current.configured:
            raise ParseError(TOOL, "detail line outside a configured minor", line_no, line)
        current = current.model_copy(update=values)
        minors[-1] = current

    # Some 8.3 kernels end lines with a NUL byte.
    for line_no, line in enumerate(text.replace("\0", "").splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("version:"):
            if version is not None or minors:
                raise ParseError(TOOL, "a version line after the first version line or after minors", line_no, line)
            match = _VERSION.fullmatch(stripped)
            if match is None:
                found = _VERSION_ANY.fullmatch(stripped)
                shown = found.group(1) if found else "?"
                raise ParseError(TOOL, f"unsupported DRBD version {shown!r}", line_no, line)
            version = match.group(1)
            _check_version(version, line_no, line)
            api = match.group(2)
            continue
        if stripped.startswith(_META_PREFIXES) or stripped.startswith(_IGNORED_PREFIXES):
            continue
        minor = _MINOR.fullmatch(stripped)
        if minor is not None:
            current = _minor_line(minor, line_no, line)
            if current.minor in seen:
                raise ParseError(TOOL, f"minor {current.minor} listed twice", line_no, line)
            seen.add(current.minor)
            minors.append(current)
            continue
        if stripped.startswith("ns:"):
            counters = dict(_COUNTER.findall(stripped))
            oos = counters.get("oos")
            if oos is not None and not re.fullmatch(r"[0-9]+", oos):
                raise ParseError(TOOL, f"oos {oos!r} is not a number", line_no, line)
            update(line_no, line, out_of_sync_kib=int(oos) if oos is not None else None)
            continue
        progress = _PROGRESS.fullmatch(stripped)
        if progress is not None:
            percent = float(progress.group(2))
            if percent > 100.0:
                raise ParseError(TOOL, f"progress {percent}% above 100", line_no, line)
            values: dict[str, object] = {"resync_percent": percent}
            if progress.group(6):
                # Kernels around 2.6.39 print the finish estimate on the same line.
                values["resync_eta_seconds"] = _eta(progress.group(6), line_no, line)
            update(line_no, line, **values)
            continue
        if stripped.startswith("finish:") or stripped == "stalled":
            update(line_no, line, resync_eta_seconds=_eta(stripped, line_no, line))
            continue
        if _SECTOR_POS.fullmatch(stripped):
            continue
        raise ParseError(TOOL, "unrecognised line", line_no, line)
    if version is not None and version.startswith("9.") and minors:
        raise ParseError(TOOL, f"DRBD {version} lists minors here; expected none")
    return ProcDrbd(version=version, api=api, minors=tuple(minors))


def _peer_device(minor: ProcMinor, volume: int) -> DrbdPeerDeviceState:
    cs = minor.connection_state
    syncing = cs in _SYNCING
    return DrbdPeerDeviceState(
        volume=volume,
        replication_state=cs if cs in _REPLICATION_STATES else ("Established" if cs == "Connected" else "Off"),
        peer_disk_state=minor.peer_disk_state or "DUnknown",
        out_of_sync_bytes=minor.out_of_sync_kib * KIB if minor.out_of_sync_kib is not None else None,
        resync_percent=minor.resync_percent if syncing else None,
        resync_eta_seconds=float(minor.resync_eta_seconds)
        if syncing and minor.resync_eta_seconds is not None
        else None,
        # While verifying, the progress line says "verified:" and counts what was compared so far.
        verify_percent=minor.resync_percent if cs in VERIFY_STATES else None,
    )


def to_drbd_state(
    proc: ProcDrbd,
    minor_to_resource: Mapping[int, str],
    peer_names: Mapping[str, str] | None = None,
) -> DrbdState:
    """DRBD 8.x minors grouped into resources. Volumes are numbered in minor order within a resource;
    a configured minor no mapping names appears as resource ``minor-<N>`` so it is not lost."""
    grouped: dict[str, list[ProcMinor]] = {}
    for minor in sorted(proc.minors, key=lambda m: m.minor):
        if not minor.configured:
            continue
        name = minor_to_resource.get(minor.minor, f"minor-{minor.minor}")
        grouped.setdefault(name, []).append(minor)
    resources = []
    for name, members in grouped.items():
        first = members[0]
        cs = first.connection_state
        connection_state = _NETWORK_STATES.get(cs, "Connected")
        devices = tuple(
            DrbdDeviceState(volume=volume, minor=m.minor, disk_state=m.disk_state or "DUnknown")
            for volume, m in enumerate(members)
        )
        connection = DrbdConnectionState(
            peer_name=(peer_names or {}).get(name, "unknown"),
            connection_state=connection_state,
            peer_role=first.peer_role or "Unknown",
            peer_devices=tuple(_peer_device(m, volume) for volume, m in enumerate(members)),
        )
        resources.append(
            DrbdResourceState(
                name=name,
                role=first.role or "Unknown",
                suspended=any(m.suspended for m in members),
                devices=devices,
                connections=(connection,),
            )
        )
    return DrbdState(kernel_version=proc.version, resources=tuple(resources))


def sysfs_size_path(minor: int) -> str:
    return f"/sys/devices/virtual/block/drbd{minor}/size"


def parse_sysfs_size(text: str, path: str) -> int:
    """A block device's size in 512-byte sectors, as sysfs prints it (one decimal number)."""
    value = text.strip()
    if not value.isdigit() or len(value) > 20:
        raise ParseError(path, "expected a number of 512-byte sectors", 1, value[:40])
    return int(value)

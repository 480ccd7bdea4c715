"""The Observer: one pass over a node with a fixed handful of commands, whatever its size.

A pass runs at most :data:`MAX_COMMANDS_PER_PASS` commands (vgs, lvs, dmsetup info, dmsetup table,
drbdsetup status on DRBD 9, xl list, xl list -l, xl info) and reads ``/proc/drbd`` and the files the
reconciler owns. Per-device signature probes (``blkid -p``) run only through :meth:`Observer.probe`,
for devices an action is about to write to.

Every tool ends up in ``ObservedNode.tools`` as ``available``, ``missing`` (not installed, or no kernel
module) or ``failed`` (it ran and failed, or printed what its parser could not read). A tool that is
not ``available`` contributes nothing else to the observation: an empty list from it means "unknown",
never "none".
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field

from reconciler.host.base import CommandResult, Host, HostFileError
from reconciler.host.replay import ReplayError
from reconciler.model.observed import (
    DmDevice,
    DomainState,
    DrbdState,
    HostInfo,
    LogicalVolume,
    ObservedNode,
    OwnedFile,
    Signature,
    ToolStatus,
    VolumeGroup,
)
from reconciler.names import check_device_path, name_problem
from reconciler.observe import blkid, dmsetup, drbd9, lvm, procdrbd, splitbrain, xl
from reconciler.observe.argv import OBSERVE_TIMEOUT
from reconciler.observe.drbdconf import drbd_layout
from reconciler.observe.errors import ParseError
from reconciler.observe.versions import ToolVersions, probe_versions

DEFAULT_OWNED_DIRS = ("/etc/drbd.d", "/etc/xen")
OWNED_SUFFIXES = (".res", ".cfg")
DRBD_TOP_CONFIG = "/etc/drbd.conf"
PROBE_TIMEOUT = 30.0
MAX_COMMANDS_PER_PASS = 8


class ProbeError(RuntimeError):
    """A signature probe that could not tell what is on a device; never write to it on this basis."""


@dataclass
class _Runner:
    """Runs the pass's commands through the host and counts them."""

    host: Host
    timeout: float
    argvs: list[tuple[str, ...]] = field(default_factory=list)

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        self.argvs.append(tuple(argv))
        return self.host.run(argv, timeout=self.timeout)


def _failure(result: CommandResult) -> str:
    """``describe()`` names the last line; device-mapper and DRBD say the cause on the first one."""
    text = result.describe()
    lines = [line.strip() for line in result.stderr.strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0] not in text:
        text += f" ({lines[0]})"
    return text


def _file_problem(exc: HostFileError, action: str, path: str) -> str:
    message = exc.strerror or str(exc)
    return message if path in message else f"cannot {action} {path}: {message}"


def _missing(name: str, result: CommandResult, version: str | None = None) -> ToolStatus:
    return ToolStatus(name=name, state="missing", version=version, detail=f"{result.argv[0]} is not installed")


@dataclass(frozen=True)
class _Lvm:
    status: ToolStatus
    volume_groups: tuple[VolumeGroup, ...] = ()
    logical_volumes: tuple[LogicalVolume, ...] = ()


def _observe_lvm(run: _Runner, version: str | None) -> _Lvm:
    vgs = run(lvm.VGS_ARGV)
    if vgs.not_found:
        return _Lvm(_missing("lvm", vgs, version))
    if not vgs.ok:
        return _Lvm(ToolStatus(name="lvm", state="failed", version=version, detail=_failure(vgs)))
    lvs = run(lvm.LVS_ARGV)
    if not lvs.ok:
        return _Lvm(ToolStatus(name="lvm", state="failed", version=version, detail=_failure(lvs)))
    try:
        groups = lvm.parse_vgs(vgs.stdout)
        volumes = lvm.parse_lvs(lvs.stdout)
    except ParseError as exc:
        return _Lvm(ToolStatus(name="lvm", state="failed", version=version, detail=str(exc)))
    return _Lvm(ToolStatus(name="lvm", state="available", version=version), groups, volumes)


def _observe_dm(run: _Runner, version: str | None) -> tuple[ToolStatus, tuple[DmDevice, ...]]:
    info = run(dmsetup.INFO_ARGV)
    if info.not_found:
        return _missing("dmsetup", info, version), ()
    if not info.ok:
        return ToolStatus(name="dmsetup", state="failed", version=version, detail=_failure(info)), ()
    table = run(dmsetup.TABLE_ARGV)
    if not table.ok:
        return ToolStatus(name="dmsetup", state="failed", version=version, detail=_failure(table)), ()
    try:
        devices = dmsetup.merge(dmsetup.parse_info(info.stdout), dmsetup.parse_table(table.stdout))
    except ParseError as exc:
        return ToolStatus(name="dmsetup", state="failed", version=version, detail=str(exc)), ()
    return ToolStatus(name="dmsetup", state="available", version=version), tuple(devices)


def _observe_drbd(run: _Runner, host: Host, files: tuple[OwnedFile, ...]) -> tuple[ToolStatus, DrbdState]:
    try:
        proc = host.read_file(procdrbd.PROC_DRBD_PATH)
    except HostFileError as exc:
        return ToolStatus(name="drbd", state="failed", detail=_file_problem(exc, "read", procdrbd.PROC_DRBD_PATH)), \
            DrbdState()
    if proc is None:
        return ToolStatus(name="drbd", state="missing",
                          detail=f"no DRBD kernel module loaded ({procdrbd.PROC_DRBD_PATH} is absent)"), DrbdState()
    try:
        version = procdrbd.parse_version(proc)
    except ParseError as exc:
        return ToolStatus(name="drbd", state="failed", detail=str(exc)), DrbdState()
    if version is None:
        return ToolStatus(name="drbd", state="failed",
                          detail=f"{procdrbd.PROC_DRBD_PATH} has no 'version:' line"), DrbdState()
    if not version.startswith("9."):
        return _observe_drbd84(proc, version, host, files)
    status = run(drbd9.STATUS_ARGV)
    if status.not_found:
        return _missing("drbd", status, version), DrbdState(kernel_version=version)
    if not status.ok:
        return ToolStatus(name="drbd", state="failed", version=version, detail=_failure(status)), \
            DrbdState(kernel_version=version)
    try:
        resources = drbd9.parse_status_json(status.stdout)
    except ParseError as exc:
        return ToolStatus(name="drbd", state="failed", version=version, detail=str(exc)), \
            DrbdState(kernel_version=version)
    return ToolStatus(name="drbd", state="available", version=version), \
        DrbdState(kernel_version=version, resources=tuple(resources))


def _observe_drbd84(proc: str, version: str, host: Host,
                    files: tuple[OwnedFile, ...]) -> tuple[ToolStatus, DrbdState]:
    """DRBD 8.4 shows minors only; the owned ``.res`` files name them (no command needed). /proc/drbd has no
    sizes: each device's size comes from sysfs (a file read, not a command)."""
    configs = [(f.path, f.content) for f in files
               if (f.path.endswith(".res") or f.path == DRBD_TOP_CONFIG) and f.content is not None]
    try:
        layout = drbd_layout(configs, host.node)
        peers = {resource: ",".join(names) for resource, names in layout.peer_names.items() if names}
        state = procdrbd.to_drbd_state(procdrbd.parse_proc_drbd(proc), layout.minor_to_resource, peers)
    except ParseError as exc:
        return ToolStatus(name="drbd", state="failed", version=version, detail=str(exc)), \
            DrbdState(kernel_version=version)
    problems: list[str] = []
    resources = tuple(res.model_copy(update={"devices": tuple(
        dev.model_copy(update={"size_kib": _drbd84_size_kib(host, dev.minor, problems)}) for dev in res.devices)})
        for res in state.resources)
    status = ToolStatus(name="drbd", state="available", version=version, detail="; ".join(problems) or None)
    return status, state.model_copy(update={"resources": resources})


def _drbd84_size_kib(host: Host, minor: int, problems: list[str]) -> int | None:
    """The device's size from ``/sys/devices/virtual/block/drbdN/size`` (512-byte sectors); None when unknown.

    The real path, not /sys/block/drbdN: that is a symlink, and the host seam never follows one."""
    path = procdrbd.sysfs_size_path(minor)
    try:
        text = host.read_file(path)
    except HostFileError as exc:
        problems.append(_file_problem(exc, "read", path))
        return None
    if text is None:
        return None
    try:
        return procdrbd.parse_sysfs_size(text, path) // 2
    except ParseError as exc:
        problems.append(str(exc))
        return None


@dataclass(frozen=True)
class _Xen:
    status: ToolStatus
    domains: tuple[DomainState, ...] = ()
    host: HostInfo = field(default_factory=HostInfo)


def _observe_xen(run: _Runner) -> _Xen:
    listing = run(xl.XL_LIST_ARGV)
    if listing.not_found:
        return _Xen(_missing("xl", listing))
    if not listing.ok:
        return _Xen(ToolStatus(name="xl", state="failed", detail=_failure(listing)))
    long_listing = run(xl.XL_LIST_LONG_ARGV)
    if not long_listing.ok:
        return _Xen(ToolStatus(name="xl", state="failed", detail=_failure(long_listing)))
    info = run(xl.XL_INFO_ARGV)
    if not info.ok:
        return _Xen(ToolStatus(name="xl", state="failed", detail=_failure(info)))
    try:
        domains = xl.merge_domains(xl.parse_xl_list(listing.stdout), xl.parse_xl_list_long(long_listing.stdout))
        host_info = xl.parse_xl_info(info.stdout)
    except ParseError as exc:
        return _Xen(ToolStatus(name="xl", state="failed", detail=str(exc)))
    return _Xen(ToolStatus(name="xl", state="available", version=host_info.xen_version), tuple(domains), host_info)


def _is_owned(name: str) -> bool:
    stem, suffix = posixpath.splitext(name)
    return suffix in OWNED_SUFFIXES and name_problem(stem) is None


def _read_owned(host: Host, directories: Sequence[str]) -> tuple[ToolStatus, tuple[OwnedFile, ...]]:
    files: list[OwnedFile] = []
    problems: list[str] = []
    for directory in directories:
        try:
            names = host.list_dir(directory)
        except HostFileError as exc:
            problems.append(_file_problem(exc, "list", directory))
            continue
        for name in names:
            if not _is_owned(name):
                continue
            path = posixpath.join(directory, name)
            try:
                files.append(OwnedFile(path=path, content=host.read_file(path)))
            except HostFileError as exc:
                problems.append(_file_problem(exc, "read", path))
    if "/etc/drbd.d" in directories:
        # Not the reconciler's, but what drbdadm reads first: a resource an old hand-written drbd.conf defines
        # is taken over with it, and must not be defined a second time by a rendered file.
        try:
            top = host.read_file(DRBD_TOP_CONFIG)
        except HostFileError as exc:
            problems.append(_file_problem(exc, "read", DRBD_TOP_CONFIG))
        except ReplayError:
            top = None  # a capture made before this file was read: replayed as absent, as it was then
        else:
            if top is not None:
                files.append(OwnedFile(path=DRBD_TOP_CONFIG, content=top))
    if problems:
        return ToolStatus(name="files", state="failed", detail="; ".join(problems)), tuple(files)
    return ToolStatus(name="files", state="available", detail=f"{len(files)} owned files read"), tuple(files)


def _read_split_brain_markers(host: Host) -> tuple[tuple[splitbrain.SplitBrainMarker, ...], list[str]]:
    """The markers DRBD's split-brain handler left (files, no command); an unreadable one is reported."""
    markers: list[splitbrain.SplitBrainMarker] = []
    problems: list[str] = []
    try:
        names = host.list_dir(splitbrain.MARKER_DIR)
    except HostFileError as exc:
        return (), [_file_problem(exc, "list", splitbrain.MARKER_DIR)]
    for name in names:
        if not name.endswith(splitbrain.MARKER_SUFFIX):
            continue
        path = posixpath.join(splitbrain.MARKER_DIR, name)
        try:
            text = host.read_file(path)
            if text is not None:
                markers.append(splitbrain.parse_marker(text, path))
        except (HostFileError, ParseError, ValueError) as exc:
            problems.append(f"unreadable split-brain marker: {exc}")
    return tuple(markers), problems


class Observer:
    """Observes one node through ``host``. Reuse one instance: tool versions are probed once per instance."""

    def __init__(self, host: Host, *, owned_dirs: Sequence[str] = DEFAULT_OWNED_DIRS,
                 timeout: float = OBSERVE_TIMEOUT, versions: ToolVersions | None = None) -> None:
        """``versions``: tool versions already known (e.g. remembered by an earlier command); not probed then."""
        self.host = host
        self.owned_dirs = tuple(owned_dirs)
        self.timeout = timeout
        self._versions: ToolVersions | None = versions
        self.version_commands_run = 0
        self.last_pass_argvs: tuple[tuple[str, ...], ...] = ()

    @property
    def versions(self) -> ToolVersions:
        """lvm2, device-mapper and drbd-utils versions, asked for on first use only (three commands, once).

        Asked again on a later use only while no probe has answered at all (the node was down)."""
        if self._versions is None or not self._versions.answered:
            runner = _Runner(self.host, self.timeout)
            self._versions = probe_versions(runner)
            self.version_commands_run += len(runner.argvs)
        return self._versions

    def observe(self) -> ObservedNode:
        """One pass. ``commands_run`` counts this pass's commands, not the one-time version probes."""
        versions = self.versions
        run = _Runner(self.host, self.timeout)
        files_status, files = _read_owned(self.host, self.owned_dirs)
        lvm_part = _observe_lvm(run, versions.lvm)
        dm_status, dm_devices = _observe_dm(run, versions.dmsetup)
        drbd_status, drbd_state = _observe_drbd(run, self.host, files)
        # Markers only matter for a connection DRBD dropped to StandAlone; a healthy node reads none.
        if any(c.connection_state == "StandAlone" for r in drbd_state.resources for c in r.connections):
            markers, marker_problems = _read_split_brain_markers(self.host)
            drbd_state = splitbrain.apply_markers(drbd_state, markers)
            if marker_problems:
                drbd_status = drbd_status.model_copy(update={"detail": "; ".join(marker_problems)})
        xen = _observe_xen(run)
        self.last_pass_argvs = tuple(run.argvs)
        return ObservedNode(
            node=self.host.node,
            volume_groups=lvm_part.volume_groups,
            logical_volumes=lvm_part.logical_volumes,
            dm_devices=dm_devices,
            drbd=drbd_state,
            domains=xen.domains,
            host=xen.host,
            tools=(lvm_part.status, dm_status, drbd_status, versions.drbd_utils, xen.status, files_status),
            files=files,
            commands_run=len(run.argvs),
        )

    def observe_drbd(self) -> tuple[ToolStatus, DrbdState]:
        """DRBD's state alone, read afresh (the owned files too: DRBD 8.4 names its minors there)."""
        _, files = _read_owned(self.host, self.owned_dirs)
        return _observe_drbd(_Runner(self.host, self.timeout), self.host, files)

    def observe_dm(self) -> tuple[ToolStatus, tuple[DmDevice, ...]]:
        return _observe_dm(_Runner(self.host, self.timeout), self.versions.dmsetup)

    def observe_lvs(self) -> tuple[ToolStatus, tuple[LogicalVolume, ...]]:
        """The LVs alone (one ``lvs``), read afresh."""
        version = self.versions.lvm
        lvs = _Runner(self.host, self.timeout)(lvm.LVS_ARGV)
        if lvs.not_found:
            return _missing("lvm", lvs, version), ()
        if not lvs.ok:
            return ToolStatus(name="lvm", state="failed", version=version, detail=_failure(lvs)), ()
        try:
            volumes = lvm.parse_lvs(lvs.stdout)
        except ParseError as exc:
            return ToolStatus(name="lvm", state="failed", version=version, detail=str(exc)), ()
        return ToolStatus(name="lvm", state="available", version=version), volumes

    def probe(self, device: str) -> Signature:
        """What ``blkid -p`` finds on ``device`` (probing the device, not blkid's cache).

        Raises :class:`ProbeError` when blkid is missing or fails: an unknown answer must stop a write.
        """
        check_device_path(device)
        result = self.host.run(blkid.blkid_argv(device), timeout=PROBE_TIMEOUT)
        if result.not_found or result.timed_out:
            raise ProbeError(f"cannot probe {device} for signatures: {_failure(result)}")
        try:
            return blkid.parse_blkid_export(result.stdout, device, result.returncode)
        except ParseError as exc:
            raise ProbeError(f"cannot probe {device} for signatures: {exc} ({_failure(result)})") from exc

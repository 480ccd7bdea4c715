"""The Observer: one pass over a node with a fixed handful of commands, whatever its size.

A pass runs at most :data:`MAX_COMMANDS_PER_PASS` commands (vgs, lvs, dmsetup info, dmsetup table,
drbdsetup status on DRBD 9, xl list, xl list -l, xl info) and reads ``/proc/drbd`` and the files the
reconciler owns. Per-device signature probes (``blkid -p``) run only through :meth:`Observer.probe`,
for devices an action is about to write to.

The observer reads the owned files, then runs the registered fact providers in order
(:data:`~reconciler.backends.providers.FACT_PROVIDERS`: LVM, device-mapper, DRBD, Xen); each runs its own
commands and fills its part of the observation (:mod:`reconciler.core.facts`).

Every tool ends up in ``ObservedNode.tools`` as ``available``, ``missing`` (not installed, or no kernel
module) or ``failed`` (it ran and failed, or printed what its parser could not read). A tool that is
not ``available`` contributes nothing else to the observation: an empty list from it means "unknown",
never "none".
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from typing import TypeVar

from reconciler.backends.dm import facts as dm_facts
from reconciler.backends.dm.facts import observe_dm
from reconciler.backends.drbd import paths as drbd_paths
from reconciler.backends.drbd.facts import observe_drbd, observe_drbd_resource, with_split_brain_markers
from reconciler.backends.lvm import facts as lvm_facts
from reconciler.backends.providers import FACT_PROVIDERS
from reconciler.backends.xen import paths as xen_paths
from reconciler.core.facts import (
    CommandRunner,
    FactProvider,
    NodeFacts,
    PassContext,
    ToolVersions,
    failure,
    file_problem,
)
from reconciler.core.parse_error import ParseError
from reconciler.host.base import Host, HostFileError
from reconciler.host.replay import ReplayError
from reconciler.model.observed import DmDevice, DrbdState, LogicalVolume, ObservedNode, OwnedFile, Signature, ToolStatus
from reconciler.names import check_device_path, check_name, name_problem
from reconciler.observe import blkid, xfs_sb
from reconciler.observe.timeout import OBSERVE_TIMEOUT
from reconciler.observe.versions import probe_versions

DEFAULT_OWNED_DIRS = (drbd_paths.CONFIG_DIR, xen_paths.CONFIG_DIR)
OWNED_SUFFIXES = (drbd_paths.CONFIG_SUFFIX, xen_paths.CONFIG_SUFFIX)
PROBE_TIMEOUT = 30.0
_T = TypeVar("_T")
MAX_COMMANDS_PER_PASS = 8


class ProbeError(RuntimeError):
    """A signature probe that could not tell what is on a device; never write to it on this basis."""


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
            problems.append(file_problem(exc, "list", directory))
            continue
        for name in names:
            if not _is_owned(name):
                continue
            path = posixpath.join(directory, name)
            try:
                files.append(OwnedFile(path=path, content=host.read_file(path)))
            except HostFileError as exc:
                problems.append(file_problem(exc, "read", path))
    if drbd_paths.CONFIG_DIR in directories:
        # Not the reconciler's, but what drbdadm reads first: a resource an old hand-written drbd.conf defines
        # is taken over with it, and must not be defined a second time by a rendered file.
        try:
            top = host.read_file(drbd_paths.TOP_CONFIG)
        except HostFileError as exc:
            problems.append(file_problem(exc, "read", drbd_paths.TOP_CONFIG))
        except ReplayError:
            top = None  # a capture made before this file was read: replayed as absent, as it was then
        else:
            if top is not None:
                files.append(OwnedFile(path=drbd_paths.TOP_CONFIG, content=top))
    if problems:
        return ToolStatus(name="files", state="failed", detail="; ".join(problems)), tuple(files)
    return ToolStatus(name="files", state="available", detail=f"{len(files)} owned files read"), tuple(files)


class Observer:
    """Observes one node through ``host``. Reuse one instance: tool versions are probed once per instance."""

    def __init__(self, host: Host, *, owned_dirs: Sequence[str] = DEFAULT_OWNED_DIRS,
                 timeout: float = OBSERVE_TIMEOUT, versions: ToolVersions | None = None,
                 providers: Sequence[FactProvider] = FACT_PROVIDERS) -> None:
        """``versions``: tool versions already known (e.g. remembered by an earlier command); not probed then.

        ``providers``: the backends a pass reads, in order (:data:`~reconciler.backends.providers.FACT_PROVIDERS`)."""
        self.host = host
        self.providers = tuple(providers)
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
            runner = CommandRunner(self.host, self.timeout)
            self._versions = probe_versions(runner)
            self.version_commands_run += len(runner.argvs)
        return self._versions

    def observe(self) -> ObservedNode:
        """One pass. ``commands_run`` counts this pass's commands, not the one-time version probes."""
        versions = self.versions
        run = CommandRunner(self.host, self.timeout)
        files_status, files = _read_owned(self.host, self.owned_dirs)
        context = PassContext(host=self.host, run=run, versions=versions, files=files)
        facts = NodeFacts()
        for provider in self.providers:
            provider.read(context, facts)
        self.last_pass_argvs = tuple(run.argvs)
        return ObservedNode(
            node=self.host.node,
            volume_groups=facts.volume_groups,
            logical_volumes=facts.logical_volumes,
            dm_devices=facts.dm_devices,
            drbd=facts.drbd,
            domains=facts.domains,
            host=facts.host,
            tools=(*facts.tools, files_status),
            files=files,
            commands_run=len(run.argvs),
        )

    def observe_drbd(self) -> tuple[ToolStatus, DrbdState]:
        """DRBD's state alone, read afresh (the owned files too: DRBD 8.4 names its minors there), with the
        split-brain handler's records."""
        _, files = _read_owned(self.host, self.owned_dirs)
        return with_split_brain_markers(self.host, *observe_drbd(CommandRunner(self.host, self.timeout), self.host,
                                                                 files))

    def observe_drbd_resource(self, name: str) -> tuple[ToolStatus, DrbdState]:
        """DRBD's state of resource ``name`` alone, read afresh (on DRBD 9 one ``drbdsetup status NAME``; DRBD 8.4
        reads the owned files as :meth:`observe_drbd` does), with the split-brain handler's records."""
        return with_split_brain_markers(self.host, *observe_drbd_resource(
            CommandRunner(self.host, self.timeout), self.host, check_name(name, "DRBD resource"),
            lambda: _read_owned(self.host, self.owned_dirs)[1]))

    def observe_dm(self) -> tuple[ToolStatus, tuple[DmDevice, ...]]:
        return observe_dm(CommandRunner(self.host, self.timeout), self.versions.version(dm_facts.VERSION_PROBE.name))

    def observe_named_lvs(self, names: tuple[tuple[str, str], ...]) -> tuple[ToolStatus, tuple[LogicalVolume, ...]]:
        """The LVs ``names`` ((vg, lv) pairs) alone (one ``lvs VG/LV ...``), read afresh; a missing one is absent."""
        return lvm_facts.observe_named_lvs(CommandRunner(self.host, self.timeout),
                                           self.versions.version(lvm_facts.VERSION_PROBE.name), names)

    def probe(self, device: str) -> Signature:
        """What ``blkid -p`` finds on ``device`` (probing the device, not blkid's cache).

        Raises :class:`ProbeError` when blkid is missing or fails: an unknown answer must stop a write.
        """
        check_device_path(device)
        return self._read_device(blkid.blkid_argv(device), f"cannot probe {device} for signatures",
                                 lambda out, code: blkid.parse_blkid_export(out, device, code))

    def mkfs_unfinished(self, device: str) -> bool:
        """Whether the XFS filesystem on ``device`` was left unfinished by ``mkfs.xfs`` (``xfs_db -r``).

        Raises :class:`ProbeError` when xfs_db is missing or gives no clear answer.
        """
        return self._read_device(xfs_sb.inprogress_argv(device), f"cannot read the XFS superblock of {device}",
                                 lambda out, code: xfs_sb.parse_inprogress(out, device, code))

    def _read_device(self, argv: Sequence[str], what: str, parse: Callable[[str, int], _T]) -> _T:
        """One read of a device before a write: any unclear answer is a ProbeError, which stops the write."""
        result = self.host.run(argv, timeout=PROBE_TIMEOUT)
        if result.not_found or result.timed_out:
            raise ProbeError(f"{what}: {failure(result)}")
        try:
            return parse(result.stdout, result.returncode)
        except ParseError as exc:
            raise ProbeError(f"{what}: {exc} ({failure(result)})") from exc

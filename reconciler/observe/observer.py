"""The Observer: one pass over a node with a fixed handful of commands, whatever its size.

A pass runs at most :data:`MAX_COMMANDS_PER_PASS` commands (vgs, lvs, dmsetup info, dmsetup table,
drbdsetup status on DRBD 9, xl list, xl list -l, xl info) and reads ``/proc/drbd`` and the files the
reconciler owns. Per-device signature probes (``blkid -p``) run only through :meth:`Observer.probe`,
for devices an action is about to write to.

The observer reads the owned files, then runs the registered fact providers of the node's
backends in order (:func:`~reconciler.backends.providers.node_facts`: LVM and device-mapper, then the
replicator's and the hypervisor's, DRBD and Xen by default); each runs its own commands and fills its part of
the observation (:mod:`reconciler.core.facts`).

Every tool ends up in ``ObservedNode.tools`` as ``available``, ``missing`` (not installed, or no kernel
module) or ``failed`` (it ran and failed, or printed what its parser could not read). A tool that is
not ``available`` contributes nothing else to the observation: an empty list from it means "unknown",
never "none".
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from reconciler.backends.providers import OWNED_CONFIG, node_facts
from reconciler.backends.registry import DEFAULT_BACKENDS
from reconciler.core.facts import (
    CommandRunner,
    FactProvider,
    FreshContext,
    FreshFact,
    FreshRead,
    NodeFacts,
    PassContext,
    ToolVersions,
    failure,
    file_problem,
)
from reconciler.core.parse_error import ParseError
from reconciler.core.seams import Backends
from reconciler.host.base import Host, HostFileError
from reconciler.host.replay import ReplayError
from reconciler.model.observed import DmDevice, DrbdState, LogicalVolume, ObservedNode, OwnedFile, Signature, ToolStatus
from reconciler.names import check_device_path, check_name, name_problem
from reconciler.observe import blkid, xfs_sb
from reconciler.observe.timeout import OBSERVE_TIMEOUT
from reconciler.observe.versions import probe_versions

DEFAULT_OWNED_DIRS = tuple(owned.directory for owned in OWNED_CONFIG)
# A file is read under any registered backend's suffix, in any of the owned directories.
OWNED_SUFFIXES = tuple(owned.suffix for owned in OWNED_CONFIG)
PROBE_TIMEOUT = 30.0
_T = TypeVar("_T")
# vgs, lvs, dmsetup info and table, drbdsetup status and show (the runtime allowance of two primaries), xl list,
# list -l and info: a fixed handful, whatever the number of resources.
MAX_COMMANDS_PER_PASS = 9


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
    for owned in OWNED_CONFIG:
        if owned.directory not in directories:
            continue
        for path in owned.also:
            # Not the reconciler's, but what the tool reads with its files (DRBD's drbd.conf).
            try:
                content = host.read_file(path)
            except HostFileError as exc:
                problems.append(file_problem(exc, "read", path))
            except ReplayError:
                continue  # a capture made before this file was read: replayed as absent, as it was then
            else:
                if content is not None:
                    files.append(OwnedFile(path=path, content=content))
    if problems:
        return ToolStatus(name="files", state="failed", detail="; ".join(problems)), tuple(files)
    return ToolStatus(name="files", state="available", detail=f"{len(files)} owned files read"), tuple(files)


class Observer:
    """Observes one node through ``host``. Reuse one instance: tool versions are probed once per instance."""

    def __init__(self, host: Host, *, owned_dirs: Sequence[str] = DEFAULT_OWNED_DIRS,
                 timeout: float = OBSERVE_TIMEOUT, versions: ToolVersions | None = None,
                 backends: Backends = DEFAULT_BACKENDS,
                 providers: Sequence[FactProvider] | None = None,
                 fresh_reads: Mapping[FreshFact, FreshRead] | None = None) -> None:
        """``versions``: tool versions already known (e.g. remembered by an earlier command); not probed then.

        ``backends``: the node's pair, whose fact providers and fresh reads run with the shared ones
        (:func:`~reconciler.backends.providers.node_facts`); ``providers`` and ``fresh_reads`` replace them."""
        self.host = host
        self._providers_given = providers is not None
        self._fresh_given = fresh_reads is not None
        facts = node_facts(backends)
        self.providers = tuple(providers) if providers is not None else facts.providers
        self.fresh_reads = fresh_reads if fresh_reads is not None else facts.fresh_reads
        self.owned_dirs = tuple(owned_dirs)
        self.timeout = timeout
        self._versions: ToolVersions | None = versions
        self.version_commands_run = 0
        self.last_pass_argvs: tuple[tuple[str, ...], ...] = ()

    def use_backends(self, backends: Backends) -> None:
        """Observe as a node running ``backends`` from the next pass on (providers or fresh reads given to the
        constructor stay)."""
        facts = node_facts(backends)
        if not self._providers_given:
            self.providers = facts.providers
        if not self._fresh_given:
            self.fresh_reads = facts.fresh_reads

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

    def _fresh_context(self) -> FreshContext:
        return FreshContext(host=self.host, run=CommandRunner(self.host, self.timeout), versions=lambda: self.versions,
                            files=lambda: _read_owned(self.host, self.owned_dirs)[1])

    def _fresh(self, fact: FreshFact) -> tuple[ToolStatus, NodeFacts]:
        facts = NodeFacts()
        return self.fresh_reads[fact].read_fresh(self._fresh_context(), facts), facts

    def _fresh_named(self, fact: FreshFact, names: tuple[str, ...]) -> tuple[ToolStatus, NodeFacts]:
        facts = NodeFacts()
        return self.fresh_reads[fact].read_named(self._fresh_context(), facts, names), facts

    def observe_drbd(self) -> tuple[ToolStatus, DrbdState]:
        """The replicated resources' state alone, read afresh by the registered reader, with the split-brain
        handler's records."""
        status, facts = self._fresh("replication")
        return status, facts.drbd

    def observe_drbd_resource(self, name: str) -> tuple[ToolStatus, DrbdState]:
        """The replicated resource ``name`` alone, read afresh by the registered reader (DRBD 9: one
        ``drbdsetup status NAME``; DRBD 8.4 reads the owned files as :meth:`observe_drbd` does), with the
        split-brain handler's records."""
        status, facts = self._fresh_named("replication", (check_name(name, "DRBD resource"),))
        return status, facts.drbd

    def observe_dm(self) -> tuple[ToolStatus, tuple[DmDevice, ...]]:
        """The device-mapper devices alone, read afresh by the registered reader."""
        status, facts = self._fresh("devices")
        return status, facts.dm_devices

    def observe_lvs(self) -> tuple[ToolStatus, tuple[LogicalVolume, ...]]:
        """The LVs alone, read afresh by the registered reader (LVM's: one ``lvs``)."""
        status, facts = self._fresh("volumes")
        return status, facts.logical_volumes

    def observe_named_lvs(self, names: tuple[tuple[str, str], ...]) -> tuple[ToolStatus, tuple[LogicalVolume, ...]]:
        """The LVs ``names`` ((vg, lv) pairs) alone, read afresh by the registered reader (LVM's: one
        ``lvs VG/LV ...``); a missing one is absent."""
        status, facts = self._fresh_named("volumes", tuple(f"{vg}/{lv}" for vg, lv in names))
        return status, facts.logical_volumes

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

"""The seam between the observer and the tools it reads: a :class:`FactProvider` per backend.

The observer runs the registered providers in order (:data:`reconciler.backends.providers.FACT_PROVIDERS`);
each one runs its commands through the pass's :class:`CommandRunner`, parses what they print, and writes its
part of the observation (its fields and its :class:`ToolStatus`) into the shared :class:`NodeFacts`. A new
backend is one provider and one registration; the observer does not change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from reconciler.host.base import CommandResult, Host, HostFileError
from reconciler.model.observed import (
    DmDevice,
    DomainState,
    DrbdState,
    HostInfo,
    LogicalVolume,
    OwnedFile,
    ToolStatus,
    VolumeGroup,
)


@dataclass(frozen=True)
class OwnedConfigFiles:
    """Where a backend keeps the config files the reconciler writes, which the observer reads every pass: the
    files named ``<name><suffix>`` in ``directory``, and ``also`` (files of the tool's own it reads with them,
    such as a top file that may define resources by hand)."""

    directory: str
    suffix: str
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class VersionProbe:
    """One tool's version command, registered by its backend
    (:data:`~reconciler.backends.providers.VERSION_PROBES`) and run once per observer, not once per pass."""

    name: str  # what its answer is found under in :class:`ToolVersions`
    binary: str  # the executable whose file the remembered answer depends on (observe.version_cache)
    argv: tuple[str, ...]
    read: Callable[[CommandResult], ToolStatus]  # never raises: a version that cannot be read is "failed"


@dataclass(frozen=True)
class ToolVersions:
    """The version probes' answers by probe name, in the probes' order. A state of ``failed`` means that the
    probe told nothing (the tool may still be there); ``available`` carries the version."""

    tools: tuple[tuple[str, ToolStatus], ...] = ()

    def status(self, name: str) -> ToolStatus | None:
        return dict(self.tools).get(name)

    def version(self, name: str) -> str | None:
        status = self.status(name)
        return status.version if status is not None and status.state == "available" else None

    @property
    def answered(self) -> bool:
        """False when no probe told anything (a node down or unreachable): worth asking again later."""
        return any(status.state != "failed" for _, status in self.tools)

    @property
    def complete(self) -> bool:
        """Every probe told something: worth remembering."""
        return bool(self.tools) and all(status.state != "failed" for _, status in self.tools)


@dataclass
class CommandRunner:
    """Runs the pass's commands through the host and records them (the pass's command count and log)."""

    host: Host
    timeout: float
    argvs: list[tuple[str, ...]] = field(default_factory=list)

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        self.argvs.append(tuple(argv))
        return self.host.run(argv, timeout=self.timeout)


@dataclass(frozen=True)
class PassContext:
    """What every provider of one pass may read: the host, the runner, tool versions, the owned files."""

    host: Host
    run: CommandRunner
    versions: ToolVersions
    files: tuple[OwnedFile, ...]


@dataclass
class NodeFacts:
    """The observation being built; each provider fills its own fields and appends its tool statuses."""

    volume_groups: tuple[VolumeGroup, ...] = ()
    logical_volumes: tuple[LogicalVolume, ...] = ()
    dm_devices: tuple[DmDevice, ...] = ()
    drbd: DrbdState = field(default_factory=DrbdState)
    domains: tuple[DomainState, ...] = ()
    host: HostInfo = field(default_factory=HostInfo)
    tools: list[ToolStatus] = field(default_factory=list)


class FactProvider(Protocol):
    """One backend's part of an observation pass."""

    @property
    def name(self) -> str:
        """The backend's name (``lvm``, ``dm``, ``drbd``, ``xen``)."""
        ...

    def read(self, context: PassContext, facts: NodeFacts) -> None:
        """Run this backend's commands and write what they tell into ``facts``.

        Never raises for what the node says: a missing or failing tool is a :class:`ToolStatus` that is not
        ``available``, and then the provider writes no other field (empty means unknown, never none)."""
        ...


@dataclass(frozen=True)
class FreshContext:
    """What a read right before a step may use: the host, a runner, and the tool versions and owned files on
    demand (each read only when asked, so a read that needs neither runs no more commands than its own)."""

    host: Host
    run: CommandRunner
    versions: Callable[[], ToolVersions]
    files: Callable[[], tuple[OwnedFile, ...]]


# What the last look right before a step reads afresh: the replicated resources' state (with the handler's
# split-brain records), the block devices a stripe is, the logical volumes.
FreshFact = Literal["replication", "devices", "volumes"]


class FreshRead(Protocol):
    """One backend's read of one kind of fact alone, afresh, for the last look before a step."""

    def read_fresh(self, context: FreshContext, facts: NodeFacts) -> ToolStatus:
        """Run the few commands this kind of fact needs, write it into ``facts`` (its own fields only) and
        return the tool's status; never raises for what the node says, as :meth:`FactProvider.read`."""
        ...

    def read_named(self, context: FreshContext, facts: NodeFacts, names: tuple[str, ...]) -> ToolStatus:
        """As :meth:`read_fresh`, limited to the objects ``names`` (a replicated resource's name, ``VG/LV`` for a
        volume) where the tool can ask for them alone, so the cost does not grow with the node's other objects;
        one that does not exist is absent from ``facts``, an unclear answer is a status that is not available."""
        ...


def failure(result: CommandResult) -> str:
    """``describe()`` names the last line; device-mapper and DRBD say the cause on the first one."""
    text = result.describe()
    lines = [line.strip() for line in result.stderr.strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0] not in text:
        text += f" ({lines[0]})"
    return text


def file_problem(exc: HostFileError, action: str, path: str) -> str:
    message = exc.strerror or str(exc)
    return message if path in message else f"cannot {action} {path}: {message}"


def missing(name: str, result: CommandResult, version: str | None = None) -> ToolStatus:
    return ToolStatus(name=name, state="missing", version=version, detail=f"{result.argv[0]} is not installed")

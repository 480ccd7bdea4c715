"""The host a command acts on, chosen by how the node is reached.

- ``real``: this machine (:class:`reconciler.host.real.RealHost`);
- ``sim``: a node of the simulated cluster in a directory (the simulator's ``SimHost``);
- ``replay``: a node captured in a support bundle, answered from the capture (:mod:`reconciler.host.replay`).

The simulator is not part of the product: no module outside ``reconciler.sim`` imports it. Its provider
module is named here as data, imported the first time a simulated node is asked for, and registers itself
with :func:`register`; a build without the simulator says so instead of failing on an import.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from reconciler.host.base import Host

NodeKind = Literal["real", "sim", "replay"]

# Providers that live outside the host layer: kind -> the module that registers it when imported.
PROVIDER_MODULES: Mapping[str, str] = {"sim": "reconciler.sim.provider"}


class NoProvider(OSError):
    """Nodes of this kind cannot be reached by this build (its provider is not installed)."""


@dataclass(frozen=True)
class NodeAccess:
    """How a node is reached: ``location`` is the simulated cluster's directory or the capture bundle."""

    kind: NodeKind = "real"
    location: str | None = None

    def __post_init__(self) -> None:
        if (self.kind == "real") != (self.location is None):
            raise ValueError(f"a {self.kind} node {'takes no' if self.kind == 'real' else 'needs a'} location")

    @classmethod
    def of(cls, *, sim: str | os.PathLike[str] | None = None,
           replay: str | os.PathLike[str] | None = None) -> NodeAccess:
        """From the command line's ``--sim DIR`` / ``--replay DIR`` (at most one of them)."""
        if sim and replay:
            raise ValueError("--replay and --sim exclude each other")
        if sim:
            return cls("sim", os.path.abspath(sim))
        if replay:
            return cls("replay", os.path.abspath(replay))
        return cls()

    @property
    def this_machine(self) -> bool:
        """The node is the machine this process runs on (its name, boot and tool versions are ours)."""
        return self.kind == "real"


class HostProvider(Protocol):
    """Makes hosts of one kind."""

    def host(self, location: str | None, node: str | None) -> Host:
        """The node ``node`` (None: the one the location holds, or this machine's name)."""
        ...

    def nodes(self, location: str | None) -> tuple[str, ...] | None:
        """The nodes reachable there, or None when any name may be acted as once it is checked otherwise."""
        ...

    def peer_ports(self, location: str | None) -> Mapping[str, int] | None:
        """Loopback ports at which the daemons of these nodes reach each other (their replication addresses
        do not exist), or None: they reach each other at the replication addresses of the desired state."""
        ...


class _RealProvider:
    def host(self, location: str | None, node: str | None) -> Host:
        from reconciler.host.real import RealHost  # noqa: PLC0415  (subprocess only when a command runs)

        return RealHost(node)

    def nodes(self, location: str | None) -> tuple[str, ...] | None:
        return None

    def peer_ports(self, location: str | None) -> Mapping[str, int] | None:
        return None


class _ReplayProvider:
    def host(self, location: str | None, node: str | None) -> Host:
        from reconciler.host.replay import ReplayHost  # noqa: PLC0415

        return ReplayHost(location or "", node)

    def nodes(self, location: str | None) -> tuple[str, ...] | None:
        return None

    def peer_ports(self, location: str | None) -> Mapping[str, int] | None:
        return None


_PROVIDERS: dict[str, HostProvider] = {"real": _RealProvider(), "replay": _ReplayProvider()}


def register(kind: NodeKind, provider: HostProvider) -> None:
    """Make ``provider`` the one for nodes of ``kind`` (the simulator calls this when it is imported)."""
    _PROVIDERS[kind] = provider


def provider(kind: NodeKind) -> HostProvider:
    found = _PROVIDERS.get(kind)
    if found is None and kind in PROVIDER_MODULES:
        module = PROVIDER_MODULES[kind]
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not exc.name or not (module == exc.name or module.startswith(exc.name + ".")):
                raise  # the provider is there but broken: that is a bug to see, not a missing part
            raise NoProvider(f"this build cannot reach a {kind} node ({module} is not installed)") from exc
        found = _PROVIDERS.get(kind)
    if found is None:
        raise NoProvider(f"no provider for {kind} nodes")
    return found


def make_host(access: NodeAccess, node: str | None) -> Host:
    """The host for ``node`` as ``access`` reaches it; raises OSError (or the replay's ReplayError) when
    there is no such node there."""
    return provider(access.kind).host(access.location, node)


def known_nodes(access: NodeAccess) -> tuple[str, ...] | None:
    return provider(access.kind).nodes(access.location)


def peer_ports(access: NodeAccess) -> Mapping[str, int] | None:
    return provider(access.kind).peer_ports(access.location)

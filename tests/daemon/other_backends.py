"""A second hypervisor and replicator, registered by name for a test only (``register``): what a node that names
them in cluster.yaml runs, so that the tests can tell their commands from Xen's and DRBD's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pytest

from reconciler.backends import providers, registry
from reconciler.backends.drbd.replicator import DrbdReplicator
from reconciler.backends.providers import BackendFacts
from reconciler.backends.xen.hypervisor import XenHypervisor
from reconciler.core.facts import NodeFacts, PassContext
from reconciler.core.seams import Argv, Backends, FenceRequest, FenceVerdict, SplitBrainRecord
from reconciler.host.base import Host
from reconciler.model.desired import NodeBackends
from reconciler.model.observed import ToolStatus

NAME = "other"
REPLICATOR_WATCH = ("other-repl", "status")
HYPERVISOR_WATCH = ("other-hv", "list")
EXIT_CODES: Mapping[FenceVerdict, int] = {"not-fenced": 21, "already": 23, "outdated": 24, "peer-primary": 26,
                                          "stonithed": 27}


@dataclass(frozen=True)
class Record:
    resource: str
    peer: str


class OtherReplicator(DrbdReplicator):
    """Its own name, watch command, fence handler contract (variables and exit codes) and split-brain record."""

    name = NAME

    def __init__(self) -> None:
        self.recorded: list[dict[str, str]] = []

    def watch_argv(self) -> Argv:
        return REPLICATOR_WATCH

    def fence_request(self, env: Mapping[str, str]) -> FenceRequest:
        return FenceRequest(resource=env.get("OTHER_RESOURCE", ""))

    def fence_exit_code(self, verdict: FenceVerdict) -> int:
        return EXIT_CODES[verdict]

    def record_split_brain(self, host: Host, env: Mapping[str, str], now: Callable[[], float]) -> SplitBrainRecord:
        self.recorded.append(dict(env))
        return Record(resource=env.get("OTHER_RESOURCE", ""), peer="himbeere")


class OtherHypervisor(XenHypervisor):
    name = NAME

    def watch_argv(self) -> Argv:
        return HYPERVISOR_WATCH


class ToolFacts:
    """A fact provider that runs one command of its tool and reports the tool."""

    def __init__(self, tool: str) -> None:
        self.name = tool
        self.argv = (tool, "facts")

    def read(self, context: PassContext, facts: NodeFacts) -> None:
        result = context.run(self.argv)
        facts.tools.append(ToolStatus(name=self.name, state="available" if result.ok else "failed"))


REPLICATOR_FACTS = ToolFacts("other-repl")
HYPERVISOR_FACTS = ToolFacts("other-hv")


def register(monkeypatch: pytest.MonkeyPatch) -> Backends:
    """Register both, with their fact providers, for the test; the pair as the registry gives it."""
    replicator, hypervisor = OtherReplicator(), OtherHypervisor()
    monkeypatch.setitem(registry.REPLICATORS, NAME, replicator)
    monkeypatch.setitem(registry.HYPERVISORS, NAME, hypervisor)
    monkeypatch.setitem(providers.REPLICATOR_FACTS, NAME,
                        BackendFacts(providers=(REPLICATOR_FACTS,)))
    monkeypatch.setitem(providers.HYPERVISOR_FACTS, NAME,
                        BackendFacts(providers=(HYPERVISOR_FACTS,)))
    return registry.backends_named(NodeBackends(hypervisor=NAME, replicator=NAME))


OTHER_NAMES = NodeBackends(hypervisor=NAME, replicator=NAME)

"""Fence-peer's outdate, its local view and the split-brain handler go through the node's Replicator: a second
replicator plugs in there, and nothing of them names DRBD outside its backend."""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.backends.drbd.replicator import DrbdReplicator
from reconciler.core.seams import OutdateOutcome, SplitBrainRecord
from reconciler.daemon.peers.fence import local_view, outdate_local
from reconciler.daemon.peers.splitbrain import record_split_brain
from reconciler.host.base import Host
from tests.apply.fakes import FakeHost

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Record:
    resource: str
    peer: str


class OtherReplicator(DrbdReplicator):
    """Another replicator's fencing answers: only the methods under test differ from DRBD's."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def outdate(self, host: Host, resource: str,
                peer_keeps: tuple[bool, str] = (False, "")) -> tuple[OutdateOutcome, str]:
        self.calls.append(("outdate", resource))
        return "already", f"{resource} is stale in the other replicator"

    def local_view(self, host: Host, minor: int) -> tuple[str, str]:
        self.calls.append(("local_view", minor))
        return "Secondary", "UpToDate"

    def record_split_brain(self, host: Host, env: Mapping[str, str], now: Callable[[], float]) -> SplitBrainRecord:
        self.calls.append(("record_split_brain", dict(env)))
        return Record(resource=env["RESOURCE"], peer="himbeere")


def test_outdate_asks_the_replicator_for_a_managed_resource_only() -> None:
    host = FakeHost()
    other = OtherReplicator()
    answer = outdate_local(host, "vm100", lambda: frozenset({"vm100"}), other)
    assert (answer.resource, answer.outcome, answer.detail) == ("vm100", "already",
                                                                "vm100 is stale in the other replicator")
    refused = outdate_local(host, "vm101", lambda: frozenset({"vm100"}), other)
    assert refused.outcome == "unknown"
    unsafe = outdate_local(host, "../vm", lambda: frozenset({"vm100"}), other)
    assert unsafe.outcome == "unknown"
    assert other.calls == [("outdate", "vm100")]
    assert host.calls == []  # the other replicator ran nothing, and neither did the shared part


def test_the_local_view_and_the_split_brain_record_are_the_replicators() -> None:
    other = OtherReplicator()
    assert local_view(FakeHost(), 3, other) == ("Secondary", "UpToDate")
    record = record_split_brain(FakeHost(), {"RESOURCE": "vm7"}, lambda: 1.0, other)
    assert (record.resource, record.peer) == ("vm7", "himbeere")
    assert [c[0] for c in other.calls] == ["local_view", "record_split_brain"]


@pytest.mark.parametrize("module", ["reconciler/daemon/peers/fence.py", "reconciler/daemon/peers/splitbrain.py",
                                    "reconciler/apply/lastlook.py"])
def test_the_shared_modules_import_no_drbd_module(module: str) -> None:
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(name.startswith("reconciler.backends.drbd") for name in imported), sorted(imported)

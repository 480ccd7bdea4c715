"""The composer plans a VM's replica and domain config, and health reads a replica's conditions, through the
node's Replicator and Hypervisor: another backend's planning plugs in there, and `plan` names no DRBD or Xen
planning module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from reconciler.backends.drbd.replicator import DrbdReplicator
from reconciler.backends.xen.hypervisor import XenHypervisor
from reconciler.core.peer_view import PeerView
from reconciler.core.seams import Backends
from reconciler.core.vm_builder import VmBuilder
from reconciler.model.desired import DesiredDomain, DesiredDrbd, DesiredVm
from reconciler.model.observed import DrbdResourceState
from reconciler.model.status import Condition
from reconciler.plan.diff import plan_node
from tests.plan.factories import converged, empty_observed, make_node, make_vm

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]


class CountingReplicator(DrbdReplicator):
    """DRBD's planning, with every call through the protocol counted, and one condition of its own."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def plan_split_brain(self, b: VmBuilder, running: bool) -> bool:
        self.calls.append("split-brain")
        return super().plan_split_brain(b, running)

    def plan_quorum_loss(self, b: VmBuilder, state: DrbdResourceState) -> bool:
        self.calls.append("quorum")
        return super().plan_quorum_loss(b, state)

    def plan_resource(self, b: VmBuilder, desired: DesiredDrbd) -> None:
        self.calls.append("resource")
        super().plan_resource(b, desired)

    def plan_role(self, b: VmBuilder, desired: DesiredDrbd, *, want_primary: bool, domain_running: bool) -> str | None:
        self.calls.append("role")
        return super().plan_role(b, desired, want_primary=want_primary, domain_running=domain_running)

    def health_conditions(self, vm: DesiredVm, state: DrbdResourceState, peer: PeerView | None,
                          hostname: str) -> list[Condition]:
        self.calls.append("health")
        return [Condition(key=f"drbd:{state.name}", vm=vm.name, kind="disk", message="the other replicator says so")]


class CountingHypervisor(XenHypervisor):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def plan_config(self, b: VmBuilder, domain: DesiredDomain) -> str | None:
        self.calls.append("config")
        return super().plan_config(b, domain)


def test_a_fresh_node_is_planned_through_the_protocols_with_the_same_actions() -> None:
    desired = make_node(make_vm(100))
    replicator, hypervisor = CountingReplicator(), CountingHypervisor()
    plan = plan_node(desired, empty_observed(), backends=Backends(hypervisor, replicator))
    assert plan.actions == plan_node(desired, empty_observed()).actions
    assert replicator.calls == ["split-brain", "resource", "role"]
    assert hypervisor.calls == ["config"]


def test_health_takes_the_replicators_conditions() -> None:
    desired = make_node(make_vm(100))
    replicator = CountingReplicator()
    plan = plan_node(desired, converged(desired), backends=Backends(CountingHypervisor(), replicator))
    assert "health" in replicator.calls
    assert "quorum" in replicator.calls  # a resource is up: the quorum check runs on it
    assert [c.message for c in plan.conditions] == ["the other replicator says so"]


@pytest.mark.parametrize("module", ["diff.py", "health.py"])
def test_the_composer_and_health_import_no_drbd_or_xen_module(module: str) -> None:
    tree = ast.parse((ROOT / "reconciler" / "plan" / module).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in imported if m.startswith(("reconciler.backends.drbd", "reconciler.backends.xen"))}

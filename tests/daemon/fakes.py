"""A fake engine and a fake source for loop tests: no host, no git, a virtual clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.core.actions import Action, ActionKind
from reconciler.core.peer_view import PeerView
from reconciler.core.plan_model import Plan, PlannedResource
from reconciler.core.seams import Backends
from reconciler.daemon.loop.engine import ActionHooks, ApplyOutcome
from reconciler.model.desired import DesiredDrbd, DesiredNode, DesiredVm, DrbdHost
from reconciler.model.observed import (
    DrbdConnectionState,
    DrbdDeviceState,
    DrbdPeerDeviceState,
    DrbdResourceState,
    DrbdState,
    ObservedNode,
)
from reconciler.model.status import ActionRecord, ResourceStatus, RevisionInfo
from reconciler.source.gitsource import LoadedRevision, SourceView

SHA_A = "a" * 40
SHA_B = "b" * 40


def desired_node(node: str = "erdbeere", peer: str = "himbeere", vms: tuple[str, ...] = ("vm100",)) -> DesiredNode:
    out = []
    for index, name in enumerate(vms):
        drbd = DesiredDrbd(vm=name, name=name, minor=index, port=7000 + index, backing_device=f"/dev/mapper/root{name}",
                           drbd_version="9", hosts=(DrbdHost(name=node, address="10.0.0.1", port=7000, node_id=0),
                                                    DrbdHost(name=peer, address="10.0.0.2", port=7000, node_id=1)),
                           safety="fencing", config_path=f"/etc/drbd.d/{name}.res", config_text="")
        out.append(DesiredVm(name=name, id=100 + index, source_file=f"vms/{name}.yaml", lifecycle="present",
                             layout="linear", nodes=(node, peer), primary_node=node, this_node=node, lvs=(),
                             drbd=drbd))
    return DesiredNode(cluster="test", node=node, hostname=node, address="10.0.0.1", drbd_version="9",
                       volume_groups=("vg0",), vms=tuple(out))


def action(kind: ActionKind, vm: str = "vm100", key: str | None = None) -> Action:
    key = key or f"drbd:{vm}"
    return Action(id=f"{kind}@{key}", kind=kind, key=key, vm=vm, change="change", description=kind)


def drbd_resource(name: str, *, peer_role: str, peer_disk: str = "UpToDate",
                  connection: str = "Connected") -> DrbdResourceState:
    return DrbdResourceState(
        name=name, role="Secondary", devices=(DrbdDeviceState(volume=0, minor=0, disk_state="UpToDate"),),
        connections=(DrbdConnectionState(peer_name="himbeere", connection_state=connection, peer_role=peer_role,
                                         peer_devices=(DrbdPeerDeviceState(volume=0, replication_state="Established",
                                                                           peer_disk_state=peer_disk),)),))


@dataclass
class FakeEngine:
    """Plans whatever ``planned`` says; apply marks runnable actions ok and records what it ran."""

    planned: list[Action] = field(default_factory=list)
    drbd: DrbdState = field(default_factory=DrbdState)
    fail_observe: bool = False
    applied: list[tuple[str, ...]] = field(default_factory=list)
    expanded: list[Any] = field(default_factory=list)
    peer_views: list[PeerView | None] = field(default_factory=list)
    moved_away: list[frozenset[str]] = field(default_factory=list)
    backends_used: list[Backends] = field(default_factory=list)
    # What the loop shows metrics; this engine leaves them unset, as an engine before its first pass does.
    last_observed: ObservedNode | None = None
    last_desired: DesiredNode | None = None

    def expand(self, cluster: Any, node: str) -> DesiredNode:
        self.expanded.append(cluster)
        return desired_node(node, vms=tuple(cluster) if isinstance(cluster, tuple) else ("vm100",))

    def observe(self) -> ObservedNode:
        if self.fail_observe:
            raise RuntimeError("lvs timed out")
        return ObservedNode(node="erdbeere", drbd=self.drbd)

    def plan(self, desired: DesiredNode, observed: ObservedNode, peer: PeerView | None,
             moved_away: frozenset[str], migrations: object = None) -> Plan:
        self.peer_views.append(peer)
        self.moved_away.append(moved_away)
        resources = tuple(PlannedResource(key=f"drbd:{vm.name}", vm=vm.name, kind="drbd") for vm in desired.vms)
        return Plan(node=desired.node, actions=tuple(self.planned), resources=resources)

    def apply(self, plan: Plan, desired: DesiredNode, observed: ObservedNode, hooks: ActionHooks) -> ApplyOutcome:
        records = []
        phases: dict[str, tuple[str, str]] = {}
        ran = []
        for act in plan.actions:
            if act.waiting:
                result, phase = "waiting", "waiting"
            else:
                hooks.started(act, 10.0)
                result, phase = "ok", "ready"
                ran.append(act.id)
                hooks.finished(act, "ok", "")
            records.append(ActionRecord(kind=act.kind, key=act.key, vm=act.vm, result=result,  # type: ignore[arg-type]
                                        message=act.waiting))
            phases[act.key] = (phase, act.waiting)
        self.applied.append(tuple(ran))
        resources = tuple(ResourceStatus(key=r.key, vm=r.vm, kind=r.kind,
                                         phase=phases.get(r.key, ("ready", ""))[0],  # type: ignore[arg-type]
                                         reason=phases.get(r.key, ("", ""))[1])
                          for r in plan.resources)
        return ApplyOutcome(resources=resources, actions=tuple(records))

    def backing_sizes(self, desired: DesiredNode, observed: ObservedNode) -> dict[str, int]:
        return {"vm100": 1 << 30}

    def use_backends(self, backends: Backends) -> None:
        self.backends_used.append(backends)


class FakeSource:
    """Stands in for GitSource: the test sets what the next evaluation returns."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.view = SourceView(None, None)
        self.allowed_seen: list[frozenset[str]] = []

    def set(self, sha: str | None, cluster: Any = ("vm100",), *, attempted: str | None = None, refusal: str = "",
            errors: tuple[str, ...] = ()) -> None:
        in_force = LoadedRevision(RevisionInfo(sha=sha, seen_at=1.0, summary="s"), self.directory, cluster) \
            if sha else None
        tried = RevisionInfo(sha=attempted, seen_at=2.0) if attempted else (in_force.info if in_force else None)
        self.view = SourceView(in_force, tried, refusal, errors)

    @property
    def in_force(self) -> LoadedRevision | None:
        return self.view.in_force

    def evaluate(self, now: float, allowed: frozenset[str] = frozenset()) -> SourceView:
        self.allowed_seen.append(allowed)
        return self.view


class RecordingMetrics:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.passes: list[str] = []
        self.suspended: list[tuple[str, bool]] = []
        self.peers: list[str] = []
        self.observed: list[Any] = []
        self.power_fences: list[dict[str, Any]] = []

    def record_revision_seen(self, sha: str, at: float) -> None:
        self.seen.append(sha)

    def record_pass(self, result: Any, observed: Any, desired: Any, status: Any) -> None:
        self.passes.append(result.outcome)

    def set_suspended(self, scope: str, suspended: bool) -> None:
        self.suspended.append((scope, suspended))

    def record_power_fences(self, fences: Any) -> None:
        self.power_fences.append(dict(fences))

    def record_peer(self, peer: Any) -> None:
        self.peers.append(peer.node)

    def update_observed(self, observed: Any) -> None:
        self.observed.append(observed)

"""Plan rewrites the daemon applies on top of the planner's safety gate.

- Two-node operations wait until the peer has applied the same revision (peer status).
- After a start (a reboot, or a daemon restart), role and domain changes wait until the repository was
  fetched (or a timeout passed) and the peer was seen, unless DRBD proves the peer cannot write.
- Suspended VMs (or the whole node) get no actions at all; they are still observed and exported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.core.action_registry import kinds_where
from reconciler.core.plan_model import Plan
from reconciler.core.safety import peer_cannot_write
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode
from reconciler.model.status import PeerStatus

# Both DRBD sides must agree on these (port, protocol, size, teardown), so both run the same revision first.
NEEDS_PEER_AT_REVISION = kinds_where("peer_revision")
# Who runs a domain changes through these; never decided from a cached revision right after a start.
BOOT_GATED = kinds_where("boot_gated")


def hold_for_peer_revision(plan: Plan, revision: str, desired: DesiredNode, peers: Iterable[PeerStatus]) -> Plan:
    """Hold what needs the peer at the same revision. A DRBD config file is held with the adjust that applies
    it: written alone, the file would match the desired state while the kernel still runs the old settings,
    and the next pass, finding nothing to write, would call the node converged (seen in the lab)."""
    by_node = {p.node: p for p in peers}
    vm_peers = {vm.name: vm.peers for vm in desired.vms}
    held: dict[str, str] = {}
    for action in plan.actions:
        if action.kind in NEEDS_PEER_AT_REVISION and not action.refused and not action.waiting:
            behind = [_behind(node, by_node.get(node), revision) for node in vm_peers.get(action.vm, ())]
            reasons = [r for r in behind if r]
            if reasons:
                held[action.id] = "; ".join(reasons)
    by_id = {a.id: a for a in plan.actions}
    for ident, reason in list(held.items()):
        if by_id[ident].kind == "drbd-adjust":
            for dep in by_id[ident].depends_on:
                if dep in by_id and by_id[dep].kind == "write-drbd-config" and not by_id[dep].refused:
                    held.setdefault(dep, f"{reason} (the file is written together with its adjust)")
    actions = tuple(a.with_(waiting=held[a.id], wait_for="peer-revision") if a.id in held else a
                    for a in plan.actions)
    return plan.model_copy(update={"actions": actions})


def _behind(node: str, peer: PeerStatus | None, revision: str) -> str:
    if peer is None or not peer.reachable:
        why = f" ({peer.error})" if peer is not None and peer.error else ""
        return f"waiting for peer {node} to apply revision {revision[:12]}: peer status unknown{why}"
    if peer.applied_revision != revision:
        shown = peer.applied_revision[:12] if peer.applied_revision else "none"
        return f"waiting for peer {node} to apply revision {revision[:12]} (it has {shown})"
    return ""


@dataclass(frozen=True)
class BootGate:
    """Open once the repository was fetched (or ``fetch_deadline_passed``) and the peer was seen."""

    fetched: bool
    fetch_deadline_passed: bool
    peers_seen: frozenset[str]
    one_shot: bool = False  # a one-shot apply: it never sees peers, only DRBD's own view can open the gate

    def reason(self, vm_peers: Iterable[str]) -> str:
        missing = [p for p in vm_peers if p not in self.peers_seen]
        if not (self.fetched or self.fetch_deadline_passed):
            return "boot gate: waiting for the first fetch of the repository since start"
        if missing and self.one_shot:
            return (f"a one-shot apply does not see peer {', '.join(missing)} and DRBD does not show that it cannot "
                    "write; left to `reconciler run`, which sees the peer")
        if missing:
            return f"boot gate: waiting to see peer {', '.join(missing)} (an unreachable peer proves nothing)"
        return ""

    @property
    def fetch_done(self) -> bool:
        return self.fetched or self.fetch_deadline_passed


def hold_for_boot(plan: Plan, gate: BootGate, desired: DesiredNode, observed: ObservedNode) -> tuple[Plan, str]:
    """Mark boot-gated actions waiting; returns the plan and the overall gate reason ("" when open)."""
    vms = {vm.name: vm for vm in desired.vms}
    overall: list[str] = []
    actions = []
    for action in plan.actions:
        vm = vms.get(action.vm)
        if action.kind in BOOT_GATED and vm is not None and not action.refused and not action.waiting:
            reason = gate.reason(vm.peers)
            if reason and gate.fetch_done and vm.takeover is not None:
                # An automatic failover is itself a judgment of the lost peer (its grace), and DRBD's fence-peer
                # handler or quorum proves it at the promotion: waiting to hear from the peer would never end.
                reason = ""
            if reason and gate.fetch_done and vm.drbd is not None:
                resource = observed.drbd.resource(vm.drbd.name)
                if resource is not None and peer_cannot_write(resource, quorum_mechanism=vm.drbd.safety == "quorum"):
                    reason = ""  # DRBD itself shows the peer cannot write: no need to hear from it.
            if reason:
                actions.append(action.with_(waiting=reason, wait_for="one-shot" if gate.one_shot else "boot-gate"))
                overall.append(reason)
                continue
        actions.append(action)
    gated = plan.model_copy(update={"actions": tuple(actions)})
    return gated, overall[0] if overall else ""


ONE_SHOT_NO_PEER = ("needs both nodes at the same revision, which only the daemon sees (peer status); a one-shot "
                    "apply leaves it to `reconciler run`")


def hold_for_one_shot(plan: Plan, desired: DesiredNode, observed: ObservedNode) -> tuple[Plan, str]:
    """The daemon's gates for a one-shot ``apply``, which sees no peer status: what needs the peer at the same
    revision waits, and role and domain changes wait unless DRBD itself shows the peer cannot write."""
    held = tuple(a.with_(waiting=ONE_SHOT_NO_PEER, wait_for="one-shot")
                 if a.kind in NEEDS_PEER_AT_REVISION and not a.refused and not a.waiting
                 and any(vm.name == a.vm and vm.peers for vm in desired.vms) else a
                 for a in plan.actions)
    gate = BootGate(fetched=True, fetch_deadline_passed=True, peers_seen=frozenset(), one_shot=True)
    return hold_for_boot(plan.model_copy(update={"actions": held}), gate, desired, observed)


def without_vms(plan: Plan, vms: frozenset[str]) -> Plan:
    """The plan minus every action of the given (suspended) VMs."""
    if not vms:
        return plan
    return plan.model_copy(update={"actions": tuple(a for a in plan.actions if a.vm not in vms)})

"""Failover health: could this node take a VM over right now?

The standby node judges itself, because only it sees its own disk, rendered config, free memory and
domain list. The primary exports no readiness for its own VMs; a standby whose daemon is down shows up
as a missing target, which its own alert covers.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.metrics_core import Metric

from reconciler.core.metric_families import flag, gauge, non_empty
from reconciler.model.desired import DesiredNode, DesiredVm
from reconciler.model.observed import DrbdResourceState, ObservedNode
from reconciler.model.status import PeerStatus

CHECKS = ("disk_uptodate", "connected", "config_rendered", "domain_not_running", "memory", "safety")


@dataclass(frozen=True)
class FailoverHealth:
    vm: str
    node: str
    primary: str
    checks: tuple[tuple[str, bool], ...]

    @property
    def ready(self) -> bool:
        return all(ok for _, ok in self.checks)

    def failing(self) -> tuple[str, ...]:
        return tuple(name for name, ok in self.checks if not ok)


def _disk_uptodate(res: DrbdResourceState | None) -> bool:
    return res is not None and bool(res.devices) and all(d.disk_state == "UpToDate" for d in res.devices)


def _connected(res: DrbdResourceState | None, primary: str) -> bool:
    if res is None:
        return False
    conns = [c for c in res.connections if c.peer_name == primary] or list(res.connections)
    return bool(conns) and all(c.connection_state == "Connected" for c in conns)


def _safety(vm: DesiredVm, res: DrbdResourceState | None) -> bool:
    """Fencing or quorum configured, and for quorum, DRBD says this node has it."""
    if vm.drbd is None or vm.drbd.safety == "none":
        return False
    if vm.drbd.safety == "quorum":
        return res is not None and bool(res.devices) and all(d.quorum is not False for d in res.devices)
    return True


def _config_rendered(vm: DesiredVm, observed: ObservedNode) -> bool:
    wanted = []
    if vm.drbd is not None:
        wanted.append((vm.drbd.config_path, vm.drbd.config_text))
    if vm.domain is not None:
        wanted.append((vm.domain.config_path, vm.domain.config_text))
    return all(observed.file(path) == text for path, text in wanted)


def _memory(vm: DesiredVm, observed: ObservedNode) -> bool:
    if vm.domain is None:
        return False
    free = observed.host.free_memory_mib
    return free is not None and free >= vm.domain.memory_mib


def vm_failover_health(vm: DesiredVm, observed: ObservedNode) -> FailoverHealth | None:
    """Health of this node as the standby of ``vm``; None when this node is not its standby."""
    if vm.lifecycle != "present" or vm.is_primary_here or vm.this_node not in vm.nodes:
        return None
    if vm.drbd is None or vm.domain is None or not vm.peers:
        return None
    res = observed.drbd.resource(vm.drbd.name)
    domain = observed.domain(vm.domain.name)
    checks = (
        ("disk_uptodate", _disk_uptodate(res)),
        ("connected", _connected(res, vm.primary_node)),
        ("config_rendered", _config_rendered(vm, observed)),
        ("domain_not_running", domain is None or not domain.is_running),
        ("memory", _memory(vm, observed)),
        ("safety", _safety(vm, res)),
    )
    return FailoverHealth(vm=vm.name, node=vm.this_node, primary=vm.primary_node, checks=checks)


def failover_health(desired: DesiredNode, observed: ObservedNode) -> list[FailoverHealth]:
    out = []
    for vm in desired.vms:
        health = vm_failover_health(vm, observed)
        if health is not None:
            out.append(health)
    return out


@dataclass(frozen=True)
class RevisionSkew:
    vm: str
    node: str
    peer: str
    skewed: bool


def revision_skew(desired: DesiredNode, applied: str | None, peers: dict[str, PeerStatus]) -> list[RevisionSkew]:
    """Per VM and peer node: whether the peer applied another revision than this node.

    Unknown on either side (nothing applied yet, peer never answered) yields no entry rather than a
    guess: the peer-unreachable and not-converging alerts speak for those cases.
    """
    if applied is None:
        return []
    out = []
    for vm in desired.vms:
        for peer_name in vm.peers:
            peer = peers.get(peer_name)
            if peer is None or peer.applied_revision is None:
                continue
            out.append(RevisionSkew(vm.name, desired.node, peer_name, peer.applied_revision != applied))
    return out


def failover_metrics(
    desired: DesiredNode | None,
    observed: ObservedNode | None,
    applied: str | None,
    peers: dict[str, PeerStatus],
) -> list[Metric]:
    ready = gauge("reconciler_failover_ready",
                  "1 when this node, standby of the VM, could take it over now (every check passes)",
                  ["vm", "node", "primary"])
    check = gauge("reconciler_failover_check", "One failover precondition on the standby node: 1 passes, 0 fails",
                  ["vm", "node", "check"])
    skew = gauge("reconciler_vm_revision_skew",
                 "1 when the peer node of the VM applied another revision than this node",
                 ["vm", "node", "peer"])
    if desired is not None and observed is not None:
        for health in failover_health(desired, observed):
            ready.add_metric([health.vm, health.node, health.primary], flag(health.ready))
            for name, ok in health.checks:
                check.add_metric([health.vm, health.node, name], flag(ok))
    if desired is not None:
        for s in revision_skew(desired, applied, peers):
            skew.add_metric([s.vm, s.node, s.peer], flag(s.skewed))
    return non_empty([ready, check, skew])

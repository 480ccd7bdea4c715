"""A Primary that lost DRBD 9 quorum gives its VM up: the domain is destroyed and the resource demoted.

Quorum loss alone only fails (``on-no-quorum io-error``) or freezes (``suspend-io``) the Primary's writes; the
domain would run on against a dead disk while the side that kept quorum may take the VM over (automatic
failover after its grace, or a commit). A clean shutdown cannot finish without writes, so the domain is
destroyed at once (the guest's unflushed writes could not have reached any disk anyway), then the resource is
demoted, so that the two sides never reconnect as two Primaries. A demotion that fails is reported (a failed
action); the node is not rebooted by the reconciler.
"""

from __future__ import annotations

from reconciler.model.desired import DesiredVm
from reconciler.model.observed import DrbdResourceState
from reconciler.plan.builder import VmBuilder


def quorum_lost(vm: DesiredVm, res: DrbdResourceState | None) -> bool:
    """This node holds a replica under the quorum mechanism, and DRBD says it has no quorum now (unknown is not
    lost: a domain is never destroyed on a guess)."""
    return (vm.drbd is not None and vm.drbd.safety == "quorum" and vm.this_node in vm.nodes and res is not None
            and any(d.quorum is False for d in res.devices))


def plan_quorum_loss(b: VmBuilder, res: DrbdResourceState) -> bool:
    """Plan the stop of a Primary without quorum; True when the VM gets nothing else in this pass."""
    vm, drbd = b.vm, b.vm.drbd
    if drbd is None or res.role != "Primary" or not quorum_lost(vm, res):
        return False
    why = f"{drbd.name} lost quorum: its writes fail or freeze, and the side with quorum may take the VM over"
    stop = None
    domain = vm.domain
    if domain is not None and b.observed.domain(domain.name) is not None:
        stop = b.add("destroy-domain", domain.key, "change", f"destroy domain {domain.name} ({why})",
                     commands=(b.command(b.hypervisor.destroy_argv(domain.name)),), reason=why,
                     devices=(drbd.device,))
    b.add("demote", drbd.key, "change", f"demote {drbd.name} to Secondary (quorum lost)",
          commands=(b.command(b.replicator.demote_argv(drbd.name)),), depends_on=(stop,), reason=why)
    return True

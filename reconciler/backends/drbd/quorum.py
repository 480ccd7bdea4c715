"""A Primary that lost DRBD 9 quorum gives its VM up: the domain is destroyed and the resource demoted.

Quorum loss alone only fails (``on-no-quorum io-error``) or freezes (``suspend-io``) the Primary's writes; the
domain would run on against a dead disk while the side that kept quorum may take the VM over (automatic
failover after its grace, or a commit). A clean shutdown cannot finish without writes, so the domain is
destroyed at once (the guest's unflushed writes could not have reached any disk anyway), then the resource is
demoted, so that the two sides never reconnect as two Primaries.

When that fails (the daemon counts the failures, ``DesiredVm.escalation``), every later attempt demotes with
``--force`` (the device's openers get I/O errors); once a forced demotion failed too, and long enough after
the first failure, the node reboots after the forced demotion of the same pass as the VM's
``safety.on_demote_failure`` says (as drbd-reactor's promoter escalates): a Primary that cannot be demoted
keeps its stale role, and a domain that cannot be destroyed may still hold the disk. The reboot's last look
runs it only while the resource is still Primary without quorum; one the node made recently holds the next
(``reboot_held``: refused, the forced demotion goes on).
"""

from __future__ import annotations

from reconciler.core.actions import REBOOT_ARGV
from reconciler.core.seams import PlanBuilder
from reconciler.model.desired import DesiredVm
from reconciler.model.observed import DrbdResourceState

FORCE_AFTER_FAILURES = 1


def quorum_lost(vm: DesiredVm, res: DrbdResourceState | None) -> bool:
    """This node holds a replica under the quorum mechanism, and DRBD says it has no quorum now (unknown is not
    lost: a domain is never destroyed on a guess)."""
    return (vm.drbd is not None and vm.drbd.safety == "quorum" and vm.this_node in vm.nodes and res is not None
            and any(d.quorum is False for d in res.devices))


def primary_without_quorum(vm: DesiredVm, res: DrbdResourceState | None) -> bool:
    """What the escalation is about: this node's replica is Primary and DRBD says it has no quorum."""
    return res is not None and res.role == "Primary" and quorum_lost(vm, res)


def plan_quorum_loss(b: PlanBuilder, res: DrbdResourceState) -> bool:
    """Plan the stop of a Primary without quorum; True when the VM gets nothing else in this pass."""
    vm, drbd = b.vm, b.vm.drbd
    if drbd is None or not primary_without_quorum(vm, res):
        return False
    why = f"{drbd.name} lost quorum: its writes fail or freeze, and the side with quorum may take the VM over"
    stop = None
    domain = vm.domain
    if domain is not None and b.observed.domain(domain.name) is not None:
        stop = b.add("destroy-domain", domain.key, "change", f"destroy domain {domain.name} ({why})",
                     commands=(b.command(b.hypervisor.destroy_argv(domain.name)),), reason=why,
                     devices=(drbd.device,))
    escalation = vm.escalation
    forced = escalation is not None and escalation.failures >= FORCE_AFTER_FAILURES
    argv = b.replicator.force_demote_argv(drbd.name) if forced else b.replicator.demote_argv(drbd.name)
    # The first, plain demotion waits for the destroy; a forced one runs even when the destroy failed (a domain
    # that cannot die holds the device open, which is what --force is for).
    b.add("quorum-demote", drbd.key, "change",
          f"demote {drbd.name} to Secondary (quorum lost{'; forced: the device may still be open' if forced else ''})",
          commands=(b.command(argv),), depends_on=() if forced else (stop,), reason=why, devices=(drbd.device,))
    reboot = REBOOT_ARGV.get(drbd.on_demote_failure)
    if escalation is not None and escalation.reboot_due and reboot is not None:
        # No dependency: it runs after the demotion (plan order) whether that failed or was skipped, and its last
        # look reboots only while the resource is still Primary without quorum.
        b.add("reboot-node", drbd.key, "change",
              f"reboot {vm.this_node} ({drbd.on_demote_failure}) if {drbd.name} is still Primary without quorum "
              f"after {escalation.failures} failed attempts to stop it, a forced demotion among them",
              commands=(b.command(reboot),), reason=why, devices=(drbd.device,), refused=escalation.reboot_held)
    return True

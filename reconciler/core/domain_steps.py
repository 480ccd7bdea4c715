"""The domain steps of one VM, through the :class:`~reconciler.core.seams.Hypervisor` protocol.

Starting, shutting down, changing memory and vcpus live, and whether a running domain may be stopped for a
move: the same for every hypervisor, so they live here, and the DRBD backend's split-brain and quorum steps
shut a domain down through them too. A hypervisor's own steps (its config file) live in its package.
"""

from __future__ import annotations

from collections.abc import Collection

from reconciler.core.seams import PlanBuilder, Replicator
from reconciler.model.desired import DesiredDomain, DesiredVm
from reconciler.model.observed import DomainState, DrbdResourceState


def plan_live_changes(b: PlanBuilder, domain: DesiredDomain, running: DomainState) -> bool:
    """Memory and vcpus within the running domain's maximum change live; returns True when a restart is needed."""
    restart: list[str] = []
    maxmem = running.maxmem_mib or domain.maxmem_mib
    if running.maxmem_mib is not None and running.maxmem_mib != domain.maxmem_mib:
        restart.append(f"maxmem {running.maxmem_mib} -> {domain.maxmem_mib} MiB")
    if running.memory_mib != domain.memory_mib:
        if domain.memory_mib <= maxmem:
            b.add("set-domain-memory", domain.key, "change",
                  f"set {domain.name} memory {running.memory_mib} -> {domain.memory_mib} MiB (live)",
                  commands=(b.command(b.hypervisor.set_memory_argv(domain.name, domain.memory_mib)),))
        else:
            restart.append(f"memory {domain.memory_mib} MiB exceeds the running maximum of {maxmem} MiB")
    if running.vcpus is not None and running.vcpus != domain.vcpus:
        if domain.vcpus <= domain.maxvcpus and not restart:
            b.add("set-domain-vcpus", domain.key, "change",
                  f"set {domain.name} vcpus {running.vcpus} -> {domain.vcpus} (live)",
                  commands=(b.command(b.hypervisor.set_vcpus_argv(domain.name, domain.vcpus)),))
        else:
            restart.append(f"vcpus {running.vcpus} -> {domain.vcpus}")
    if not restart:
        return False
    if domain.allow_restart:
        return True
    b.note("restart-needed", domain.key, f"{domain.name}: restart needed for {'; '.join(restart)}; left running "
                                         "(set allow_restart to let the reconciler restart it)")
    return False


def plan_start(b: PlanBuilder, domain: DesiredDomain, after: tuple[str | None, ...]) -> str:
    return b.add("start-domain", domain.key, "create", f"start domain {domain.name}",
                 commands=(b.command(b.hypervisor.start_argv(domain.name)),), depends_on=after,
                 devices=domain.disks, resource=b.vm.drbd.name if b.vm.drbd is not None else "",
                 undo=(b.command(b.hypervisor.destroy_argv(domain.name)),))


def plan_shutdown(b: PlanBuilder, domain: DesiredDomain, why: str, *, refused: str = "", waiting: str = "") -> str:
    return b.add("shutdown-domain", domain.key, "delete" if b.vm.lifecycle == "deleted" else "change",
                 f"shut down domain {domain.name} ({why})",
                 commands=(b.command(b.hypervisor.shutdown_argv(domain.name)),), reason=why, refused=refused,
                 waiting=waiting)


def handover(vm: DesiredVm, res: DrbdResourceState | None, moved_away: Collection[str] | None,
             replicator: Replicator) -> tuple[str, str]:
    """Whether a domain running here, away from its designated primary, may be stopped now for a move:
    ``(refused, waiting)``, both "" when it may.

    A domain no revision moved away was most likely failed over here by hand: it is left running (refused,
    with how to record that). A move that a revision asked for waits, with what it waits for, until the
    designated primary can take over (Connected with UpToDate data); it is never refused for that.
    """
    record = (f"if it was failed over here by hand, record that with `primary: {vm.this_node}` in "
              f"{vm.source_file}; otherwise shut it down by hand")
    if moved_away is not None and vm.name not in moved_away:
        return (f"{vm.name} runs here although no revision moved it away from this node (designated primary: "
                f"{vm.primary_node}); left running: {record}"), ""
    if vm.drbd is None:
        return "", ""
    if res is not None and replicator.peer_can_take_over(res):
        return "", ""
    seen = ", ".join(f"{c.peer_name} {c.connection_state}/"
                     f"{'/'.join(p.peer_disk_state for p in c.peer_devices) or 'no disk'}"
                     for c in (res.connections if res else ())) or "no peer connection"
    unknown = (f"; if it was failed over here by hand, record that with `primary: {vm.this_node}` in "
               f"{vm.source_file}" if moved_away is None else "")
    return "", (f"the move to {vm.primary_node} waits until it can take over (Connected with UpToDate data; "
                f"now {seen}); {vm.name} keeps running here meanwhile{unknown}")

"""Is what the node has healthy? "Converged" (nothing left to do) is not enough for "Ready".

Each condition here is a state the reconciler cannot or must not repair by itself, and that an operator must
know about: split brain, a disk that should hold UpToDate data and does not, a peer whose data is unknown or
stale, a domain running away from its designated node (or possibly on both, or kept by the peer after an
automatic failover), a domain that exists on its designated node but does not run (paused, crashed, half-made by
an interrupted start), a restart the desired state asked for but did not allow, growth that has not reached the
DRBD device. A resource with a condition is Degraded, and a pass with one is not "converged". Pure: desired +
observation + plan in, conditions out.
"""

from __future__ import annotations

from reconciler.backends.registry import node_backends
from reconciler.core.peer_view import PeerView, failed_over_away
from reconciler.core.plan_model import Plan
from reconciler.core.seams import Backends, Hypervisor
from reconciler.model.desired import DesiredNode, DesiredVm
from reconciler.model.observed import DomainState, DrbdResourceState, ObservedNode
from reconciler.model.status import Condition, PeerTakeover


def assess(desired: DesiredNode, observed: ObservedNode, plan: Plan,
           peer: PeerView | None = None, backends: Backends | None = None) -> tuple[Condition, ...]:
    """The conditions of ``desired``'s resources; a replica's own are its replicator's (``health_conditions``)."""
    chosen = backends if backends is not None else node_backends(desired)
    replicator, hyper = chosen.replicator, chosen.hypervisor
    conditions: list[Condition] = []
    resources = {r.name: r for r in observed.drbd.resources}
    for vm in desired.vms:
        if vm.lifecycle != "present" or vm.suspended:
            continue
        res = resources.get(vm.drbd.name) if vm.drbd is not None else None
        if vm.drbd is not None and res is not None:
            conditions += replicator.health_conditions(vm, res, peer, desired.hostname)
        conditions += _migration_conditions(vm, observed, res, hyper)
        here = vm.domain is not None and observed.domain(vm.domain.name) is not None
        away = failed_over_away(vm, res, peer, domain_here=here)
        if away is not None and peer is not None:
            conditions.append(_failed_over_away(vm, away, peer.node))
        else:
            conditions += _domain_conditions(vm, observed, res)
    for note in plan.notes:
        if note.kind == "restart-needed":
            conditions.append(Condition(key=note.key, vm=note.vm, kind="restart-needed", message=note.message))
    for action in plan.actions:
        if action.kind == "drbd-resize" and action.waiting:
            conditions.append(Condition(key=action.key, vm=action.vm, kind="growth-pending",
                                        message=f"the backing device grew but the DRBD device has not: "
                                                f"{action.waiting}"))
    return tuple(conditions)


def _migration_conditions(vm: DesiredVm, observed: ObservedNode, res: DrbdResourceState | None,
                          hypervisor: Hypervisor) -> list[Condition]:
    """A live migration's window open here, or xl's names of a migration: never converged (the window closes and
    the names go once the migration ends; when they stay, an operator must look)."""
    out: list[Condition] = []
    if vm.domain is not None:
        names = [n for n in hypervisor.migration_names(vm.domain.name) if observed.domain(n) is not None]
        if names:
            out.append(Condition(key=vm.domain.key, vm=vm.name, kind="live-migration",
                                 message=f"xl shows {', '.join(names)} here: {vm.domain.name} is in a live migration "
                                         "(or one left it in an undefined state: see the VM's migration status)"))
    if vm.drbd is not None and res is not None and res.two_primaries_allowed:
        out.append(Condition(key=vm.drbd.key, vm=vm.name, kind="live-migration",
                             message=f"{vm.drbd.name} allows two primaries here (a live migration's window is open)"))
    return out


def _failed_over_away(vm: DesiredVm, away: PeerTakeover, peer: str) -> Condition:
    key = vm.domain.key if vm.domain is not None else vm.drbd.key if vm.drbd is not None else f"vm:{vm.name}"
    return Condition(key=key, vm=vm.name, kind="failed-over-away",
                     message=f"{vm.name} runs on {peer} after automatic failover {away.id} away from this node, "
                             "its designated primary, and stays there (failback: manual); decide by commit: "
                             f"`primary: {peer}` in {vm.source_file} keeps it there, "
                             "`failover: {failback: automatic}` moves it back here once this node is UpToDate")


def _domain_conditions(vm: DesiredVm, observed: ObservedNode, res: DrbdResourceState | None) -> list[Condition]:
    if vm.domain is None:
        return []
    dom = observed.domain(vm.domain.name)
    running_here = dom is not None and dom.is_running
    peer_primary = [c.peer_name for c in (res.connections if res is not None else ()) if c.peer_role == "Primary"]
    key = vm.domain.key
    if vm.takeover is not None and vm.takeover.designated != vm.this_node and not peer_primary \
            and (running_here or dom is None):
        state = "runs here" if running_here else "is being started here"
        return [Condition(key=key, vm=vm.name, kind="failed-over",
                          message=f"{vm.name} {state} after automatic failover {vm.takeover.id} from "
                                  f"{vm.takeover.from_node}, its designated primary; decide by commit: "
                                  f"`primary: {vm.this_node}` in {vm.source_file} keeps it here, "
                                  f"`failover: {{failback: automatic}}` moves it back once {vm.takeover.from_node} "
                                  "is UpToDate again")]
    if running_here and peer_primary:
        return [Condition(key=key, vm=vm.name, kind="domain-on-both",
                          message=f"{vm.name} runs here while {', '.join(peer_primary)} is Primary too: the VM may "
                                  "run on both nodes")]
    if running_here and not vm.is_primary_here:
        return [Condition(key=key, vm=vm.name, kind="domain-away",
                          message=f"{vm.name} runs here, away from its designated primary {vm.primary_node}")]
    if not running_here and vm.is_primary_here and peer_primary:
        return [Condition(key=key, vm=vm.name, kind="domain-away",
                          message=f"{vm.name} is designated to run here, but {', '.join(peer_primary)} is Primary "
                                  "(the VM runs there, away from this node)")]
    if dom is not None and not running_here and vm.is_primary_here:
        return [Condition(key=key, vm=vm.name, kind="domain-not-running", message=not_running(dom))]
    return []


def not_running(dom: DomainState) -> str:
    """Why a domain that exists here is not running, and what brings it back; the reconciler does not
    restart it itself (its name is taken, and a paused or crashed domain may be kept on purpose)."""
    name = dom.name
    again = f"`xl destroy {name}` lets the reconciler start it again"
    if dom.never_ran:
        return (f"{name} (domain {dom.domid}) is paused and has never run: most likely a start that did not finish "
                f"(`xl create` stopped before it unpaused the domain), whose guest wrote nothing, and then {again}; "
                f"if it was restored or migrated in paused, `xl unpause {name}` runs it instead")
    if dom.state == "paused":
        return f"{name} (domain {dom.domid}) is paused; `xl unpause {name}` resumes it"
    if dom.state == "crashed":
        return (f"{name} (domain {dom.domid}) crashed and is kept for inspection (its on_crash setting); "
                f"once inspected, {again}")
    return (f"{name} (domain {dom.domid}) is {dom.state} but still listed: the reconciler starts it again once it is "
            f"gone; if it stays, {again}")

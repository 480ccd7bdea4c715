"""``plan_node``: desired resources of one node + its observation -> an ordered, gated plan. Pure."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from reconciler.backends.dm.plan import plan_stripe
from reconciler.backends.lvm.plan import plan_lvs
from reconciler.backends.registry import node_backends
from reconciler.core.action_order import order_actions
from reconciler.core.action_registry import kinds_where, observed_tool
from reconciler.core.actions import Action
from reconciler.core.domain_steps import handover, plan_live_changes, plan_shutdown, plan_start
from reconciler.core.migration_view import MigrationView
from reconciler.core.observed_index import ObservedIndex
from reconciler.core.peer_view import PeerView, failed_over_away
from reconciler.core.plan_model import Note, Plan, PlannedResource, VmRefusal
from reconciler.core.safety import mass_delete_refusal
from reconciler.core.seams import Backends
from reconciler.core.vm_builder import VmBuilder
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode
from reconciler.plan.deletion import plan_absent, plan_deletion
from reconciler.plan.filesystem import plan_make_fs, plan_make_swaps, plan_provision
from reconciler.plan.health import assess
from reconciler.plan.identity import Holders, identity_refusal
from reconciler.plan.migration import (
    in_migration_names,
    live_migration_vm,
    plan_live_migration,
    plan_window_close,
    plan_window_held,
)
from reconciler.plan.orphans import find_orphans
from reconciler.plan.takeover import hold_until_owned

REMOVAL_KINDS = kinds_where("removes")


def plan_node(desired: DesiredNode, observed: ObservedNode, *, peer: PeerView | None = None,
              allow_mass_delete: bool = False, drbd_changes: Mapping[str, str] | None = None,
              moved_away: Collection[str] | None = None, backends: Backends | None = None,
              migrations: MigrationView | None = None) -> Plan:
    """The ordered, gated actions that take ``observed`` to ``desired``; empty when nothing differs.

    ``drbd_changes`` (resource -> what ``drbdadm -d adjust`` would run) comes from the optional deep check.
    ``moved_away`` names the VMs a revision moved away from this node (the daemon knows its history; a one-shot
    run passes None). A domain running where it is not designated is stopped only when the repository moved it
    away (when that is known) and the designated primary can take over now; otherwise it was most likely
    started here by hand in a failover, and stopping it would turn that failover into an outage.
    ``backends``: the hypervisor and replicator whose commands the actions run (by default those the node's
    ``backends`` names, :func:`reconciler.backends.registry.node_backends`).
    ``migrations``: what the daemon knows of live migrations (the transport, the peer's phases, those stopped);
    without it a VM that allows live migration and must move waits (it is never moved cold).
    """
    if backends is None:
        backends = node_backends(desired)
    view = migrations or MigrationView()
    actions: list[Action] = []
    notes: list[Note] = []
    deleting: list[str] = []
    refused_vms: list[VmRefusal] = []
    index = ObservedIndex(observed)
    holders = Holders(index, backends.replicator)
    for vm in desired.vms:
        if vm.suspended:
            notes.append(Note(key=f"vm:{vm.name}", vm=vm.name, kind="info",
                              message=f"{vm.name} is suspended; not reconciled"))
            continue
        refusal = identity_refusal(vm, index, holders)
        if refusal:
            refused_vms.append(VmRefusal(vm=vm.name, reason=refusal))
            continue
        b = VmBuilder(vm, index, peer, backends, drbd_changes or {})
        if vm.lifecycle == "deleted":
            plan_deletion(b)
            if any(a.kind in REMOVAL_KINDS for a in b.actions):
                deleting.append(vm.name)
        elif vm.lifecycle == "absent":
            plan_absent(b)
        else:
            _plan_present(b, moved_away, view)
            if vm.drbd is not None:
                plan_window_close(b, index.resource(vm.drbd.name), view)
            hold_until_owned(b)
        actions.extend(b.actions)
        notes.extend(b.notes)
    mass = mass_delete_refusal(len(deleting), desired.max_removals_per_revision,
                                  allowed=allow_mass_delete or desired.allow_mass_delete)
    if mass:
        # The guard holds everything it covers: a VM it keeps is not shut down or demoted either.
        actions = [a.with_(refused=mass) if a.vm in deleting else a for a in actions]
    blind = {t.name: f"{t.name} could not be observed ({t.state}{': ' + t.detail if t.detail else ''}); "
                     "nothing is changed on what cannot be seen"
             for t in observed.tools if t.state != "available"}
    if blind:
        # A tool that could not be read means "unknown", never "none": nothing is planned on top of it
        # (creating what merely looks absent would fail or, worse, collide). Its blindness is also the reason
        # given, over any refusal the plan drew from what it could not see ("volume group ... does not exist").
        actions = [a.with_(refused=blind[tool]) if (tool := observed_tool(a.kind, backends)) in blind else a
                   for a in actions]
    notes.extend(find_orphans(desired, observed, backends.hypervisor))
    plan = Plan(node=desired.node, actions=order_actions(actions), notes=tuple(notes),
                resources=_resources(desired), refused_vms=tuple(refused_vms))
    return plan.model_copy(update={"conditions": assess(desired, observed, plan, peer, backends)})


def _plan_present(b: VmBuilder, moved_away: Collection[str] | None, view: MigrationView) -> None:
    vm, observed = b.vm, b.observed
    replicator, hypervisor = b.replicator, b.hypervisor
    if replicator.plan_split_brain(b, vm.domain is not None and observed.domain(vm.domain.name) is not None):
        return  # this node discards its changes: nothing else for the VM until DRBD has resolved the split brain
    if vm.drbd is not None and (res := observed.resource(vm.drbd.name)) is not None \
            and replicator.plan_quorum_loss(b, res):
        return  # quorum lost on the Primary: the domain goes, the resource demotes; nothing else until it is back
    plan_lvs(b)
    if vm.stripe is not None:
        plan_stripe(b, vm.stripe)
    domain = vm.domain
    running = observed.domain(domain.name) if domain is not None else None
    res = observed.resource(vm.drbd.name) if vm.drbd is not None else None
    # The peer keeps the VM after an automatic failover until a commit decides: a promotion here would only wait
    # for a demotion that nothing is going to make (health reports the failover instead).
    away = failed_over_away(vm, res, b.peer, domain_here=running is not None)
    want_primary = vm.is_primary_here and away is None
    names = in_migration_names(b, domain) if domain is not None else None
    if names is not None and domain is not None:
        # xl's names of a live migration under way (or left undefined), whatever the VM allows now: the domain
        # exists, so nothing starts a second instance, stops it or changes the role under it.
        b.note("info", domain.key, f"{domain.name} is in a live migration (xl shows {names.name} here); nothing "
                                   "is started, stopped, promoted or demoted for it meanwhile")
        hypervisor.plan_config(b, domain)
        if vm.drbd is not None:
            replicator.plan_resource(b, vm.drbd)
        return
    if plan_live_migration(b, res, running, moved_away, view) if live_migration_vm(b) \
            else plan_window_held(b, res, running, view):
        # The migration's steps decide the domain and the role: no start, stop, promotion or demotion besides.
        if domain is not None:
            hypervisor.plan_config(b, domain)
        if vm.drbd is not None:
            replicator.plan_resource(b, vm.drbd)
        return
    stop = None
    if domain is not None and running is not None and not want_primary:
        refused, waiting = handover(vm, res, moved_away, b.replicator)
        stop = plan_shutdown(b, domain, f"the designated primary is {vm.primary_node}", refused=refused,
                             waiting=waiting)
    restart = False
    if domain is not None and running is not None and running.is_running and want_primary:
        # A paused, crashed or half-made domain is reported (health), not changed: `xl mem-set` on a domain
        # that `xl create` never finished fails every pass and says nothing useful.
        restart = plan_live_changes(b, domain, running)
    config = hypervisor.plan_config(b, domain) if domain is not None else None
    if restart and domain is not None:
        stop = plan_shutdown(b, domain, "restart allowed for a change that cannot be made live")
    promote = None
    if vm.drbd is not None:
        replicator.plan_resource(b, vm.drbd)
        promote = replicator.plan_role(b, vm.drbd, want_primary=want_primary,
                                       domain_running=running is not None and stop is None)
    if not want_primary:
        return
    starting = domain is not None and (running is None or restart)
    brand_new = b.find("promote-force-initial", vm.drbd.key) is not None if vm.drbd else False
    fs = plan_make_fs(b, (promote,)) if (starting or brand_new) and running is None else None
    filled = plan_provision(b, (fs, promote)) if starting and running is None else None
    swaps = plan_make_swaps(b) if starting and running is None else ()
    if starting and domain is not None:
        up = b.find("drbd-up", vm.drbd.key) if vm.drbd else None
        plan_start(b, domain, (promote, up, fs, filled, *swaps, config, stop))


def _resources(desired: DesiredNode) -> tuple[PlannedResource, ...]:
    out: list[PlannedResource] = []
    for vm in desired.vms:
        keyed: list[tuple[str, str]] = [(lv.key, "lv") for lv in vm.lvs]
        if vm.stripe is not None:
            keyed.append((vm.stripe.key, "stripe"))
        if vm.drbd is not None:
            keyed.append((vm.drbd.key, "drbd"))
        if vm.filesystem is not None and vm.is_primary_here:
            keyed.append((vm.filesystem.key, "filesystem"))
        keyed += [(s.key, "swap") for s in vm.swaps]
        if vm.domain is not None:
            keyed.append((vm.domain.key, "domain"))
        out += [PlannedResource(key=k, vm=vm.name, kind=kind, suspended=vm.suspended)
                for k, kind in keyed]
    return tuple(out)

"""A live migration's steps for one VM, on either node. Pure.

When a VM allows live migration (``domain.live_migration``) and a revision moves it to the other node while its
domain runs, the switchover is made of steps the two daemons take in turn, each seeing the other through DRBD's
own view (the peer's role) and through the peer's published phase:

1. the source (where the domain runs) opens the window: ``drbdadm net-options --allow-two-primaries=yes``, once
   both nodes are at the same revision (the daemon's gate), the protocol is C, the minor is the desired one and
   the resource is Connected with UpToDate data on both sides;
2. the target sees the source's window open (DRBD gives the connected peer the source's allowance; the target
   opens its own only if it is not), then promotes (``promote-for-migration``);
3. the source sees the target Primary and runs ``xl migrate -s TRANSPORT NAME TARGET``;
4. the source, no longer running the domain, demotes (the usual step) and closes the window;
5. the target, running the domain, closes it if it is still open once the source is Secondary.

A node without the domain never closes the window while the Connected peer is Primary and reports a migration
of this revision under way: the window is the peer's.

No step starts or stops the domain: while xl's names ``NAME--incoming`` / ``NAME--migratedaway`` exist on a node,
nothing at all is planned for the VM there. A migration that must not go on (:class:`MigrationStop`) returns to
one Primary where the domain runs: a node that does not run it demotes, then the window closes (DRBD shares the
allowance with the connected peer and refuses to withdraw it while both sides are Primary). A
migration held for the operator (xl said the domain's state is undefined) is left exactly as it is.

A VM not (or no longer) moved live whose resource is found inside a window (both sides Primary, or the
allowance in force) gets only that way back to one Primary (:func:`plan_window_held`): a revision withdrawing
``live_migration`` mid-window must not start a second instance on the target.

Outside a migration the window is never open: any VM's resource found allowing two primaries is closed as soon as
at most one side is Primary (the last step of :func:`plan_window_close`).
"""

from __future__ import annotations

from collections.abc import Collection

from reconciler.core.migration_view import MigrationView
from reconciler.core.vm_builder import VmBuilder
from reconciler.model.desired import DesiredDomain, DesiredDrbd
from reconciler.model.observed import DomainState, DrbdResourceState
from reconciler.model.status import MigrationPhase

# The peer's phases in which its window is open (or further): the target may open its own and promote.
_PEER_WINDOW_OPEN: frozenset[MigrationPhase] = frozenset({"window-open", "target-promoted"})
# The peer's phases of a migration going on: the allowance it opened (which DRBD shares with this node) is its own.
_PEER_LIVE: frozenset[MigrationPhase] = frozenset({"waiting", "window-open", "target-promoted", "migrating",
                                                  "migrated"})


def _parts(b: VmBuilder) -> tuple[DesiredDomain, DesiredDrbd]:
    """The domain and the resource of a VM :func:`live_migration_vm` admitted."""
    if b.vm.domain is None or b.vm.drbd is None:
        raise ValueError(f"{b.vm.name} has no domain or no DRBD resource: no live migration")
    return b.vm.domain, b.vm.drbd


def live_migration_vm(b: VmBuilder) -> bool:
    """The VM may be moved live: it allows it, runs a domain on one replicated resource, with one peer."""
    vm = b.vm
    return (vm.domain is not None and vm.domain.live_migration and vm.drbd is not None
            and len(vm.peers) == 1 and not any(h.diskless for h in vm.drbd.hosts))


def in_migration_names(b: VmBuilder, domain: DesiredDomain) -> DomainState | None:
    """The domain as xl names it here in the middle of a live migration (incoming or migrated away), if so."""
    incoming, away = b.hypervisor.migration_names(domain.name)
    return b.observed.domain(incoming) or b.observed.domain(away)


def _peer(res: DrbdResourceState | None) -> tuple[str, str]:
    """(connection state, peer role) of the one peer; ("", "") when there is no connection."""
    if res is None or not res.connections:
        return "", ""
    conn = res.connections[0]
    return conn.connection_state, conn.peer_role


def preconditions(b: VmBuilder, res: DrbdResourceState | None, view: MigrationView) -> str:
    """What a step of the window still waits for ("" when everything holds): the transport, protocol C, the
    minor, the connection, UpToDate data on both sides and a known runtime allowance."""
    vm = b.vm
    _, drbd = _parts(b)
    if not view.transport:
        return ("no migration transport is configured on this node (RECONCILER_MIGRATE_TRANSPORT, e.g. "
                "'ssh -o BatchMode=yes'; `reconciler doctor` checks it)")
    if drbd.protocol != "C":
        return f"{drbd.name} replicates with protocol {drbd.protocol}; a live migration needs protocol C"
    if res is None:
        return f"{drbd.name} is not up"
    minors = {d.minor for d in res.devices}
    if minors != {drbd.minor}:
        return f"{drbd.name} runs on minor(s) {sorted(minors)} here, not the desired {drbd.minor}"
    if res.two_primaries_allowed is None:
        return f"the runtime allow-two-primaries of {drbd.name} could not be read"
    connection, _ = _peer(res)
    if connection != "Connected":
        return f"{drbd.name} is {connection or 'not connected'} to {vm.peers[0]}, not Connected"
    if any(d.disk_state != "UpToDate" for d in res.devices):
        return f"{drbd.name} is {'/'.join(d.disk_state for d in res.devices)} here, not UpToDate"
    if not b.replicator.peer_can_take_over(res):
        return f"{drbd.name} is not UpToDate on {vm.peers[0]}"
    return ""


def plan_live_migration(b: VmBuilder, res: DrbdResourceState | None, running: DomainState | None,
                        moved_away: Collection[str] | None, view: MigrationView) -> bool:
    """The VM's migration steps on this node; True when they decide the domain and the role for this pass
    (the caller then plans neither a start, a shutdown nor a promotion or demotion of its own)."""
    vm = b.vm
    domain, _ = _parts(b)
    target = vm.primary_node if not vm.is_primary_here else vm.this_node
    peer = vm.peers[0]
    names = in_migration_names(b, domain)
    if names is not None:
        b.note("info", domain.key, f"{domain.name} is being live-migrated (xl shows {names.name} here); nothing "
                                   "is started, stopped, promoted or demoted for it meanwhile")
        return True
    stop = view.stopped.get(vm.name)
    if stop is not None and stop.kind == "held":
        b.note("info", domain.key, f"the live migration of {vm.name} is held for the operator: {stop.reason}")
        return True
    connection, peer_role = _peer(res)
    here = running is not None
    role = res.role if res is not None else ""
    allowed = bool(res is not None and res.two_primaries_allowed)
    if stop is not None or (allowed and connection != "Connected"):
        return _abort(b, res, here=here, role=role, peer_role=peer_role, connection=connection,
                      why=stop.reason if stop is not None else f"the replication link to {peer} is lost")
    if here and not vm.is_primary_here:
        return _source(b, res, running, moved_away, view, allowed=allowed, peer_role=peer_role, target=target)
    if not here and vm.is_primary_here and peer_role == "Primary":
        return _target(b, res, view, allowed=allowed, role=role)
    return False  # nothing to migrate here: the usual steps apply (and plan_window_close closes a window left)


def plan_window_held(b: VmBuilder, res: DrbdResourceState | None, running: DomainState | None,
                     view: MigrationView) -> bool:
    """For a VM not (or no longer) moved live: while both sides are Primary for its resource, or an allowance of
    two primaries is in force, only the way back to one Primary where the domain runs is planned (True: no start,
    stop, promotion or demotion besides). A revision withdrawing ``live_migration`` inside a window must not
    make the target, Primary beside the source, start a second instance."""
    vm = b.vm
    if vm.domain is None or vm.drbd is None or res is None:
        return False
    connection, peer_role = _peer(res)
    both = res.role == "Primary" and peer_role == "Primary"
    if not both and not res.two_primaries_allowed:
        return False
    stop = view.stopped.get(vm.name)
    if stop is not None and stop.kind == "held":
        b.note("info", vm.domain.key, f"the live migration of {vm.name} is held for the operator: {stop.reason}")
        return True
    if not res.two_primaries_allowed:
        # Both Primary without an allowance here is no window of ours (it is reported as such): nothing changes
        # the role under it, and nothing starts or stops the domain meanwhile.
        b.note("info", vm.domain.key, f"both sides are Primary for {vm.drbd.name}: nothing is started, stopped, "
                                      "promoted or demoted for it meanwhile")
        return True
    why = (stop.reason if stop is not None else
           f"{vm.name} is not moved live (any more) while the window of {vm.drbd.name} is open")
    _abort(b, res, here=running is not None, role=res.role, peer_role=peer_role, connection=connection, why=why)
    return True


def unreplicated_disks(running: DomainState, device: str) -> str:
    """What keeps the running domain from moving live because of its disks ("" when nothing does): every disk
    it has must be the replicated device, which both nodes hold; anything else (a swap LV it was started with,
    before its file dropped it) is local to this node and would not move with the guest's memory."""
    if not running.disks:
        return (f"the disks {running.name} runs with could not be read (xl list -l): a live migration needs to know "
                "that every one of them is replicated")
    local = [d for d in running.disks if d != device]
    if local:
        return (f"{running.name} runs with disks that are not replicated ({', '.join(local)}): they are local to "
                "this node and would not move with it; shut it down and let it start again from its file (which "
                "names only its replicated device) before it can move live")
    return ""


def _source(b: VmBuilder, res: DrbdResourceState | None, running: DomainState | None,
            moved_away: Collection[str] | None, view: MigrationView, *, allowed: bool, peer_role: str,
            target: str) -> bool:
    vm = b.vm
    domain, drbd = _parts(b)
    if moved_away is not None and vm.name not in moved_away:
        b.note("info", domain.key, f"{vm.name} runs here although no revision moved it away from this node "
                                   f"(designated primary: {vm.primary_node}); left running: if it was failed over "
                                   f"here by hand, record that with `primary: {vm.this_node}` in {vm.source_file}")
        return True
    waiting = (unreplicated_disks(running, drbd.device) if running is not None else "") or preconditions(b, res, view)
    if not allowed:
        if peer_role == "Primary":
            b.note("info", domain.key, f"{target} is Primary although this node's window is closed; the live "
                                       f"migration of {vm.name} waits")
            return True
        b.add("open-migration-window", drbd.key, "change",
              f"open the live migration window of {drbd.name} (allow two primaries, at run time only)",
              commands=(b.command(b.replicator.allow_two_primaries_argv(drbd.name, allow=True)),),
              waiting=waiting, wait_for="local-state" if waiting else "")
        return True
    if peer_role != "Primary":
        b.add("migrate-domain", domain.key, "change", f"live-migrate {domain.name} to {target}",
              commands=(b.command(b.hypervisor.migrate_argv(domain.name, target, view.transport or "ssh"))
                        .model_copy(update={"retry": False}),), devices=(drbd.device,),
              waiting=waiting or f"waiting for {target} to promote {drbd.name} (the window is open here)",
              wait_for="peer-state")
        return True
    b.add("migrate-domain", domain.key, "change", f"live-migrate {domain.name} to {target}",
          commands=(b.command(b.hypervisor.migrate_argv(domain.name, target, view.transport or "ssh"))
                    .model_copy(update={"retry": False}),), devices=(drbd.device,),
          waiting=waiting, wait_for="local-state" if waiting else "")
    return True


def _target(b: VmBuilder, res: DrbdResourceState | None, view: MigrationView, *, allowed: bool, role: str) -> bool:
    vm = b.vm
    domain, drbd = _parts(b)
    peer = vm.peers[0]
    if role == "Primary":
        b.note("info", domain.key, f"both nodes are Primary for {drbd.name}: waiting for {peer} to live-migrate "
                                   f"{domain.name} here (it is never started here meanwhile)")
        return True
    if view.peer_phases.get(vm.name) not in _PEER_WINDOW_OPEN:
        b.note("info", domain.key, f"{domain.name} runs on {peer}: waiting for {peer} to open the live migration "
                                   "window (it is never started here meanwhile)")
        return True
    waiting = preconditions(b, res, view)
    opened = None
    if not allowed:
        opened = b.add("open-migration-window", drbd.key, "change",
                       f"open the live migration window of {drbd.name} (allow two primaries, at run time only)",
                       commands=(b.command(b.replicator.allow_two_primaries_argv(drbd.name, allow=True)),),
                       waiting=waiting, wait_for="local-state" if waiting else "")
    b.add("promote-for-migration", drbd.key, "change",
          f"promote {drbd.name} beside {peer} for the live migration of {domain.name}",
          commands=(b.command(b.replicator.promote_argv(drbd.name)).model_copy(update={"retry": False}),),
          depends_on=(opened,), waiting=waiting, wait_for="local-state" if waiting else "", safety=drbd.safety)
    return True


def _abort(b: VmBuilder, res: DrbdResourceState | None, *, here: bool, role: str, peer_role: str, connection: str,
           why: str) -> bool:
    """Back to one Primary, where the domain runs: the other side demotes, then the window closes (a close
    closes it on both sides while Connected; each side closes what is left of it when not)."""
    vm = b.vm
    domain, drbd = _parts(b)
    demote = None
    if not here and role == "Primary":
        demote = b.add("demote", drbd.key, "change",
                       f"demote {drbd.name} to Secondary (the live migration of {vm.name} is aborted: {why})",
                       commands=(b.command(b.replicator.demote_argv(drbd.name)),), reason=why)
    elif here and role == "Primary" and peer_role == "Primary":
        b.note("info", domain.key, f"the live migration of {vm.name} is aborted ({why}); {domain.name} keeps "
                                   f"running here: waiting for {vm.peers[0]} to demote")
    if res is not None and res.two_primaries_allowed and (demote is not None or peer_role != "Primary"
                                                          or connection != "Connected" or role != "Primary"):
        _close(b, res, depends_on=demote, why=f"the live migration of {vm.name} is aborted")
    if here and not vm.is_primary_here:
        b.note("info", domain.key, f"the live migration of {vm.name} is aborted: {why}; {domain.name} stays on "
                                   f"{vm.this_node} (a new revision tries again)")
        return True
    # The designated primary without the domain goes on as usual once back to Secondary with its window closed.
    return demote is not None or bool(res is not None and res.two_primaries_allowed)


def _close(b: VmBuilder, res: DrbdResourceState, *, depends_on: str | None, why: str) -> str | None:
    _, drbd = _parts(b)
    if b.find("close-migration-window", drbd.key) is not None:
        return None
    return b.add("close-migration-window", drbd.key, "change",
                 f"close the live migration window of {drbd.name} (withdraw the allowance of two primaries: {why})",
                 commands=(b.command(b.replicator.allow_two_primaries_argv(drbd.name, allow=False)),),
                 depends_on=(depends_on,), reason=why)


def plan_window_close(b: VmBuilder, res: DrbdResourceState | None, view: MigrationView) -> None:
    """Withdraw an allowance of two primaries found in force once at most one side is Primary (or this one is
    about to demote): after a migration's last step, after its abort, or one opened by hand. Never while xl's
    migration names show here or the migration is held for the operator."""
    drbd, domain = b.vm.drbd, b.vm.domain
    if drbd is None or res is None or not res.two_primaries_allowed:
        return
    stop = view.stopped.get(b.vm.name)
    if (stop is not None and stop.kind == "held") or (domain is not None and in_migration_names(b, domain)):
        return
    if b.find("open-migration-window", drbd.key) or b.find("promote-for-migration", drbd.key) or (
            domain is not None and b.find("migrate-domain", domain.key)):
        return  # the migration's steps go on
    connection, peer_role = _peer(res)
    demote = b.find("demote", drbd.key)
    if res.role == "Primary" and peer_role == "Primary" and connection == "Connected" and demote is None:
        return  # inside the window: the migration's steps go on (and DRBD refuses to close it meanwhile)
    if (stop is None and live_migration_vm(b) and connection == "Connected" and peer_role == "Primary"
            and view.peer_phases.get(b.vm.name) in _PEER_LIVE):
        # DRBD shares the allowance with the connected peer: closing it here closes the window the peer, which
        # runs the domain and owns the window, opened for its migration at this revision.
        return
    _close(b, res, depends_on=demote, why="no live migration needs it any more")

"""Split brain, resolved by commit: the desired state names, for one incident, the node whose changes are lost.

DRBD reports a split brain on both nodes (its ``split-brain`` handler records each side's generation identifiers,
reconciler.backends.drbd.splitbrain_handler); both records together name the incident
(:func:`reconciler.backends.drbd.splitbrain_markers.incident_id`), this node's from its own record and the peer's
from peer status. A VM's ``split_brain_recovery: {incident: ID, discard: NODE}`` then makes the discarding node shut
its domain down and run ``drbdadm secondary`` and ``drbdadm connect --discard-my-data``, and the survivor ``drbdadm
connect``: DRBD makes the discarding side SyncTarget and it takes the survivor's data. Only while that incident
persists, re-checked right before the step (the gate's rule is
:func:`reconciler.core.safety.split_brain_recovery_refusal`); otherwise the statement is inert and a note says so.
Pure.
"""

from __future__ import annotations

from reconciler.backends.drbd.splitbrain_markers import incident_id
from reconciler.core.actions import ActionKind
from reconciler.core.domain_steps import plan_shutdown
from reconciler.core.peer_view import PeerView
from reconciler.core.safety import split_brain_recovery_refusal
from reconciler.core.seams import PlanBuilder
from reconciler.model.base import Frozen
from reconciler.model.desired import DesiredVm, SplitBrainRecovery
from reconciler.model.observed import DrbdResourceState

DISCARD: ActionKind = "discard-my-data"
CONNECT: ActionKind = "split-brain-connect"


class Incident(Frozen):
    """One split brain as this node knows it: its id (None until both sides' records are known) and the
    generation identifiers each side recorded at detection."""

    resource: str
    split: bool
    id: str | None
    local: str
    peer: str
    peer_node: str

    def identity(self, wanted: str) -> str:
        """What the last look needs to name the incident again: the one the statement names, the peer's record
        (which it cannot re-read right before the step) and this node's (which it reads afresh and compares)."""
        return f"{wanted} {self.peer or '-'} {self.local or '-'}"


def incident_of(vm: DesiredVm, res: DrbdResourceState, peer: PeerView | None) -> Incident:
    peer_record = ""
    peer_node = next(iter(vm.peers), "")
    if peer is not None and peer.node in vm.peers:
        peer_record = peer.split_brain.get(res.name, "")
        peer_node = peer.node
    return Incident(resource=res.name, split=res.split_brain,
                    id=incident_id(res.name, res.split_brain_record, peer_record) if res.split_brain else None,
                    local=res.split_brain_record, peer=peer_record, peer_node=peer_node)


def describe_incident(vm: DesiredVm, incident: Incident) -> str:
    """The incident for status and logs: its id and both sides' generation identifiers at detection."""
    here = f"{vm.this_node} {incident.local or 'unknown'}"
    there = f"{incident.peer_node or 'the peer'} {incident.peer or 'unknown (no peer status)'}"
    named = f"incident {incident.id}" if incident.id else "incident not named yet (the peer's record is unknown)"
    return f"{named}; generation identifiers at detection: {here}, {there}"


def recovery_hint(vm: DesiredVm, incident: Incident) -> str:
    name = incident.resource
    statement = vm.split_brain_recovery
    if statement is not None and incident.id == statement.incident:
        return (f"being resolved by commit: {statement.discard}'s changes are discarded (split_brain_recovery in "
                f"{vm.source_file})")
    by_commit = (f"resolve it by commit: add `split_brain_recovery: {{incident: {incident.id}, discard: NODE}}` to "
                 f"{vm.source_file}, NODE being the node whose changes are lost; or " if incident.id else "")
    return (f"nothing is adjusted or reconnected automatically: {by_commit}decide which node's changes are discarded, "
            f"stop the domain there, then on that node `drbdadm secondary {name}; drbdadm connect --discard-my-data "
            f"{name}` and on the survivor `drbdadm connect {name}` (docs/split-brain.md)")


def plan_split_brain(b: PlanBuilder, running: bool) -> bool:
    """Plan the recovery the desired state asks for, or note why it does nothing. True when this node discards
    its changes in this pass (the caller then plans nothing else for the VM: no promotion, no start)."""
    vm = b.vm
    statement = vm.split_brain_recovery
    drbd = vm.drbd
    if statement is None or drbd is None:
        return False
    res = b.observed.resource(drbd.name)
    if res is None:
        _inert(b, statement, f"{drbd.name} is not up on this node")
        return False
    incident = incident_of(vm, res, b.peer)
    if statement.discard == vm.this_node and _discarded_awaiting_resync(res, incident, statement):
        b.note("split-brain-recovery", f"vm:{vm.name}",
               f"{drbd.name}: this node's changes were discarded for split brain {statement.incident} and it has "
               f"not resynced from {incident.peer_node} yet; nothing else is done for {vm.name} here until it has "
               f"(if that incident was resolved otherwise, remove split_brain_recovery from {vm.source_file})")
        return True
    refusal = split_brain_recovery_refusal(drbd.name, wanted=statement.incident, split=incident.split,
                                           incident=incident.id)
    if refusal and (not incident.split or incident.id is not None):
        _inert(b, statement, refusal)
        return False
    waiting = refusal or ""
    identity = incident.identity(statement.incident)
    if statement.discard != vm.this_node:
        b.add(CONNECT, drbd.key, "change",
              f"connect {drbd.name} to {incident.peer_node} (split brain {statement.incident}: this node survives, "
              f"{statement.discard} discards its changes)",
              commands=(b.command(b.replicator.connect_argv(drbd.name)),), identity=identity,
              waiting=waiting, wait_for="peer-state" if waiting else "",
              reason=f"split_brain_recovery {statement.incident}")
        return False
    why = f"split brain {statement.incident}: this node's changes are discarded"
    stop = plan_shutdown(b, vm.domain, why, waiting=waiting) if running and vm.domain is not None else None
    b.add(DISCARD, drbd.key, "change",
          f"discard this node's changes to {drbd.name} and resync from {incident.peer_node} (split brain "
          f"{statement.incident}, by split_brain_recovery in {vm.source_file})",
          # No `disconnect` first, as the user's guides have it for a victim still trying to connect: the last look
          # proves this side StandAlone, and there DRBD 8.4 has no connection to drop ("unknown connection",
          # exit 10, seen on real 8.4.11 in the lab); `connect` starts from StandAlone on 8.4 and 9 alike.
          commands=(b.command(b.replicator.demote_argv(drbd.name)),
                    b.command(b.replicator.connect_argv(drbd.name, discard_my_data=True))),
          depends_on=(stop,), destructive=True, identity=identity, waiting=waiting,
          wait_for="peer-state" if waiting else "", reason=why)
    return True


def _discarded_awaiting_resync(res: DrbdResourceState, incident: Incident, statement: SplitBrainRecovery) -> bool:
    """After ``connect --discard-my-data`` and before DRBD's handshake with the survivor, this node is Connecting
    with its own, condemned data still UpToDate: nothing may promote it (where quorum alone would allow it) or
    start the domain on it. Once connected it is SyncTarget (Inconsistent) and the usual rules hold it."""
    if incident.split or not res.split_brain_record:
        return False
    # Without the peer's record the incident cannot be told from a later one: held too (unreachable proves
    # nothing; the note says how to lift it once the incident is over).
    named = not incident.peer or incident_id(res.name, res.split_brain_record, incident.peer) == statement.incident
    return named and any(c.connection_state != "Connected" for c in res.connections)


def _inert(b: PlanBuilder, statement: SplitBrainRecovery, why: str) -> None:
    b.note("split-brain-recovery", f"vm:{b.vm.name}",
           f"split_brain_recovery in {b.vm.source_file} does nothing: {why}. Once no node reports split brain "
           f"incident {statement.incident} for {b.vm.name}, the statement can be removed")

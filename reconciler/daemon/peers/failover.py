"""Automatic failover: the standby takes a VM over by itself when the node running it is lost.

The desired state names each VM's designated primary. With ``failover: automatic`` the daemon on the other node
decides, once, that it runs the VM instead, when all of these hold:

- DRBD's connection to the designated primary is down *and* that node's daemon does not answer, both without a
  break for the VM's ``grace`` (longer than DRBD's own timeouts: a blip is not a loss);
- this node is Secondary with UpToDate data (a standby with anything less never takes over), without split brain,
  and (under quorum) holds quorum;
- the VM is not suspended here, ``failover.hold`` (the maintenance switch) is off, and no automatic failover of
  the VM was decided within ``min_interval``.

The decision is a record in the state directory (``failover/<vm>.json``); while it is in force the daemon plans
the VM as if the desired state named this node. The promotion is where the proof happens, and DRBD makes it:
under ``resource-and-stonith`` it runs the fence-peer handler, which powers the lost node off and checks that
it is off (exit 7), or the promotion is refused; under quorum, DRBD promotes only a node that holds quorum.
Nothing here proves anything about the peer by itself.

A record ends (and the VM is planned as the desired state says again) when:

- a commit names this node as the primary (the failover is accepted), or the VM leaves ``present``;
- the peer is seen Primary while this node is Secondary (the peer runs it; never two primaries);
- it was only decided and the peer came back before the promotion (abandoned);
- it was only decided and its promotion or start failed, or did not finish in time (failed: reported, never
  retried in a loop; ``min_interval`` holds the next attempt);
- ``failback: automatic`` and the designated primary is connected, UpToDate and its daemon answers: the VM moves
  back as a planned switchover (shutdown here, demote, promote there, start there).

While a record is in force, this node's peer status names the VM, the failover and the node it was taken from
(:func:`takeovers_held`): with ``failback: manual`` the designated primary, back, then knows that nothing moves
the VM until a commit, and reports that instead of waiting for a demotion (``reconciler.core.peer_view``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from reconciler.daemon.records import named_records
from reconciler.daemon.records.logs import event
from reconciler.model.desired import DesiredNode, DesiredVm, Takeover
from reconciler.model.observed import DrbdConnectionState, DrbdResourceState, ObservedNode
from reconciler.model.status import ActionRecord, FailoverState, FailoverStatus, PeerStatus, PeerTakeover

RECORD_DIR = "failover"
IN_FORCE: frozenset[FailoverState] = frozenset({"decided", "running"})
STATES: frozenset[FailoverState] = frozenset({"decided", "running", "failed", "abandoned", "ended"})
# Beyond the promotion's own budget: the domain's start and a pass or two between the steps.
START_MARGIN_SECONDS = 420.0
# A peer status older than this (a stopped peer monitor) says nothing about the peer.
PEER_STATUS_MAX_AGE = 60.0
# The actions whose failure ends a failover that has not reached "running".
TAKEOVER_KINDS = frozenset({"promote", "start-domain", "make-fs", "provision-fs", "make-swap"})


@dataclass(frozen=True)
class FailoverRecord:
    """One automatic failover of ``vm`` from ``from_node`` to ``to_node`` (this node), and where it stands.
    ``designated``: the node the desired state named when it was decided (``from_node``, or this node when it
    takes its own VM back from a peer that ran it after an earlier failover and was lost in turn)."""

    vm: str
    id: str
    from_node: str
    to_node: str
    state: FailoverState
    decided_at: float
    updated_at: float
    reason: str  # why it was decided
    detail: str = ""  # why it is in its current state
    designated: str = ""

    @property
    def in_force(self) -> bool:
        return self.state in IN_FORCE

    @property
    def returning(self) -> bool:
        """This node takes its own VM back (it is the designated primary)."""
        return self.designated == self.to_node

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"


def failover_id(vm: str, node: str, decided_at: float) -> str:
    """A short name for one failover, as status, metrics and the log show it."""
    digest = hashlib.sha256(f"{vm}\0{node}\0{decided_at:.3f}".encode()).hexdigest()
    return f"fo-{digest[:12]}"


FAILOVER_ID = re.compile(r"fo-[0-9a-f]{12}")
"""What :func:`failover_id` makes (a peer's report of one is believed only in this shape)."""


def takeovers_held(failovers: Iterable[FailoverStatus], node: str) -> tuple[PeerTakeover, ...]:
    """The VMs ``node`` runs (or is taking) over from their designated primary, as its peers learn from its
    status: the records in force that moved a VM here. A VM taken back by its own designated primary is none."""
    return tuple(PeerTakeover(vm=f.vm, id=f.id, from_node=f.from_node) for f in failovers
                 if f.state in IN_FORCE and f.to_node == node and f.designated != node)


def record_path(state_dir: Path, vm: str) -> Path:
    return named_records.record_path(state_dir / RECORD_DIR, vm, "VM")


def write_record(state_dir: Path, record: FailoverRecord) -> None:
    named_records.write_named(state_dir / RECORD_DIR, record.vm, "VM", record.to_json())


def _record(data: Mapping[str, object]) -> FailoverRecord:
    state = str(data["state"])
    if state not in STATES:
        raise ValueError(f"unknown failover state {state!r}")
    return FailoverRecord(vm=str(data["vm"]), id=str(data["id"]), from_node=str(data["from_node"]),
                          to_node=str(data["to_node"]), state=state,
                          decided_at=named_records.as_float(data["decided_at"]),
                          updated_at=named_records.as_float(data["updated_at"]),
                          reason=str(data["reason"]), detail=str(data.get("detail", "")),
                          designated=str(data.get("designated") or data["from_node"]))


def read_records(state_dir: Path) -> dict[str, FailoverRecord]:
    """The latest record per VM; unreadable or foreign files are skipped (and a skipped record never moves a VM)."""
    found = named_records.read_named(state_dir / RECORD_DIR, "VM", _record)
    return {vm: record for vm, record in found.items() if record.vm == vm}


def other_node(vm: DesiredVm) -> str | None:
    """The VM's other data node (a quorum tiebreaker holds no data and is never one)."""
    return next((n for n in vm.nodes if n != vm.this_node), None)


def _data_peer_connections(vm: DesiredVm, res: DrbdResourceState, hostname: str) -> list[DrbdConnectionState]:
    drbd = vm.drbd
    peers = {h.name for h in drbd.hosts if not h.diskless and h.name != hostname} if drbd is not None else set()
    return [c for c in res.connections if c.peer_name in peers]


def peer_lost(vm: DesiredVm, res: DrbdResourceState | None, peer: PeerStatus | None, hostname: str,
              now: float) -> str:
    """How the VM's other data node looks lost from here, or "" when it does not: DRBD's connection to it is
    down *and* its daemon does not answer, in a peer status no older than PEER_STATUS_MAX_AGE. One of the two
    alone is a link, not a node; a status that is missing or old says nothing."""
    node = other_node(vm)
    if res is None or node is None or peer is None or peer.reachable:
        return ""
    if now - peer.checked_at > PEER_STATUS_MAX_AGE:
        return ""
    states = [c.connection_state for c in _data_peer_connections(vm, res, hostname)]
    if "Connected" in states:
        return ""
    why = peer.error or "no answer"
    return f"{node} lost: DRBD {'/'.join(states) or 'has no connection to it'}, its daemon: {why}"


def hold_reason(vm: DesiredVm, held: str) -> str:
    """Why automatic failover must not act for the VM now, whatever DRBD and the peer show."""
    if vm.failover.mode != "automatic":
        return "failover: manual (a failover is a commit)"
    if vm.failover.hold:
        return "automatic failover is held (failover.hold in the desired state)"
    if held:
        return f"automatic failover is held: {held}"
    if vm.lifecycle != "present" or vm.suspended:
        return f"the VM is {'suspended' if vm.suspended else vm.lifecycle} in the desired state"
    return ""


def takeover_refusal(vm: DesiredVm, res: DrbdResourceState | None, *, held: str = "") -> str:
    """Why this node must not take the VM over (besides the grace and the rate limit), "" when it may."""
    hold = hold_reason(vm, held)
    if hold:
        return hold
    if vm.drbd is None:
        return "the VM has no DRBD resource"
    if res is None:
        return f"DRBD resource {vm.drbd.name} is not up here"
    if res.split_brain:
        return f"{res.name} is in split brain: only a commit decides whose data survives"
    if res.role == "Primary":
        return f"{res.name} is already Primary here (by hand?); an automatic failover does not adopt that"
    disks = [d.disk_state for d in res.devices]
    if not disks or any(d != "UpToDate" for d in disks):
        return (f"the local disk is {'/'.join(disks) or 'missing'}, not UpToDate: a standby without UpToDate data "
                "never takes over")
    if vm.drbd.safety == "quorum" and not all(d.quorum for d in res.devices):
        return "this node has no quorum"
    return ""


def peer_back(vm: DesiredVm, res: DrbdResourceState | None, peer: PeerStatus | None, hostname: str) -> str:
    """Why the other data node does not count as back, "" when it is: its daemon answers, DRBD is connected to
    it and its disk is UpToDate (what a failback needs)."""
    node = other_node(vm)
    if peer is None or not peer.reachable:
        return f"the daemon of {node} does not answer"
    if res is None:
        return "the DRBD resource is not up here"
    conns = _data_peer_connections(vm, res, hostname)
    if not conns or any(c.connection_state != "Connected" for c in conns):
        return f"{node} is not connected"
    disks = [p.peer_disk_state for c in conns for p in c.peer_devices]
    if not disks or any(d != "UpToDate" for d in disks):
        return f"{node}'s disk is {'/'.join(disks) or 'unknown'}, not UpToDate"
    return ""


def with_takeovers(desired: DesiredNode, records: Mapping[str, FailoverRecord]) -> DesiredNode:
    """The daemon's view for a one-shot command: the failovers that run here, as the daemon last recorded them.
    Only ``running`` ones: a decided one is the daemon's to carry out or to abandon, never a one-shot's."""
    vms = tuple(_taken_over(vm, record, desired.node)
                if (record := records.get(vm.name)) is not None and record.state == "running"
                and record.to_node == desired.node and record.designated == vm.primary_node
                and vm.this_node in vm.nodes else vm
                for vm in desired.vms)
    return desired.model_copy(update={"vms": vms})


def _taken_over(vm: DesiredVm, record: FailoverRecord, node: str) -> DesiredVm:
    return vm.model_copy(update={"primary_node": node, "takeover": Takeover(
        id=record.id, from_node=record.from_node, decided_at=record.decided_at,
        designated=record.designated or record.from_node)})


def _domain_runs(vm: DesiredVm, observed: ObservedNode) -> bool:
    dom = observed.domain(vm.domain.name) if vm.domain is not None else None
    return dom is not None and dom.is_running


@dataclass(frozen=True)
class _Pass:
    """What one pass knows for every VM's review."""

    observed: ObservedNode
    peers: Mapping[str, PeerStatus]
    hostname: str
    now: float


@dataclass
class FailoverKeeper:
    """The failover records of one node and the decisions that make them; one instance per daemon."""

    state_dir: Path
    node: str
    clock: Callable[[], float]
    records: dict[str, FailoverRecord] = field(default_factory=dict)
    _lost_since: dict[str, float] = field(default_factory=dict)
    _waiting: dict[str, str] = field(default_factory=dict)
    _reported: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.records = read_records(self.state_dir)

    # -- before planning ---------------------------------------------------------------------
    def view(self, desired: DesiredNode, observed: ObservedNode, peers: Iterable[PeerStatus], *,
             held: Mapping[str, str] | None = None) -> DesiredNode:
        """The desired state as this node plans it: VMs taken over here are planned as if it named this node.
        ``held``: VM -> why automatic failover is held for it here (a suspension)."""
        seen = _Pass(observed, {p.node: p for p in peers}, desired.hostname, self.clock())
        held = held or {}
        vms = tuple(self._one(vm, seen, held.get(vm.name, "")) for vm in desired.vms)
        for name in set(self._waiting) - {vm.name for vm in desired.vms}:
            self._quiet(name)
        planned = {vm.name for vm in vms if vm.takeover is not None}
        for name, record in list(self.records.items()):
            if record.in_force and name not in planned:
                self._end(record, "ended", "the VM is no longer planned here (not in the desired state for this "
                                           "node, or no DRBD resource)", seen.now)
        return desired.model_copy(update={"vms": vms})

    def _one(self, vm: DesiredVm, seen: _Pass, held: str) -> DesiredVm:
        node = other_node(vm)
        if vm.this_node not in vm.nodes or vm.drbd is None or node is None:
            self._quiet(vm.name)
            return vm
        res = seen.observed.drbd.resource(vm.drbd.name)
        record = self.records.get(vm.name)
        if record is not None and record.in_force:
            record = self._review(record, vm, res, seen, held)
            if record.in_force:
                self._quiet(vm.name)
                return _taken_over(vm, record, self.node)
        lost = peer_lost(vm, res, seen.peers.get(node), seen.hostname, seen.now)
        if not lost or (vm.is_primary_here and res is not None and res.role == "Primary"):
            # Not lost, or lost while this node runs the VM where the desired state wants it: nothing to take.
            self._lost_since.pop(vm.name, None)
            self._quiet(vm.name)
            return vm
        refusal = takeover_refusal(vm, res, held=held)
        if refusal:
            # The grace counts only while a takeover is allowed: lifting a hold never acts at once.
            self._lost_since.pop(vm.name, None)
            self._wait(vm.name, f"{lost}; no automatic failover: {refusal}")
            return vm
        now = seen.now
        since = self._lost_since.setdefault(vm.name, now)
        waited = now - since
        if waited < vm.failover.grace_seconds:
            self._wait(vm.name, f"{lost}; failover after {vm.failover.grace_seconds} s of that "
                                f"({waited:.0f} s so far)")
            return vm
        if record is not None and record.state != "abandoned" \
                and now - record.decided_at < vm.failover.min_interval_seconds:
            self._wait(vm.name, f"{lost}; no automatic failover: the last one ({record.id}, {record.state}) was "
                                f"{now - record.decided_at:.0f} s ago, less than min_interval "
                                f"{vm.failover.min_interval_seconds} s")
            return vm
        decided = FailoverRecord(vm=vm.name, id=failover_id(vm.name, self.node, now), from_node=node,
                                 to_node=self.node, state="decided", decided_at=now, updated_at=now,
                                 reason=f"{lost} for {waited:.0f} s; local disk UpToDate",
                                 designated=vm.primary_node)
        try:
            write_record(self.state_dir, decided)
        except OSError as exc:
            # A decision that a restart would forget is not made: the next pass tries again.
            self._wait(vm.name, f"{lost}; the failover record could not be written ({exc}); not taking over")
            return vm
        self.records[vm.name] = decided
        self._lost_since.pop(vm.name, None)
        self._quiet(vm.name)
        event("failover.decided", level=logging.WARNING, vm=vm.name, failover=decided.id, peer=node,
              reason=decided.reason)
        return _taken_over(vm, decided, self.node)

    def _review(self, record: FailoverRecord, vm: DesiredVm, res: DrbdResourceState | None, seen: _Pass,
                held: str) -> FailoverRecord:
        """Whether a failover in force still is: its record, moved on where the world says so."""
        now = seen.now
        if vm.lifecycle != "present":
            return self._end(record, "ended", f"the VM's lifecycle is now {vm.lifecycle}", now)
        if vm.primary_node not in (record.designated, self.node):
            return self._end(record, "ended", f"the desired state now names {vm.primary_node}", now)
        peer_primary = [c.peer_name for c in (res.connections if res else ()) if c.peer_role == "Primary"]
        if res is not None and res.role != "Primary" and peer_primary:
            return self._end(record, "abandoned" if record.state == "decided" else "ended",
                             f"{', '.join(peer_primary)} is Primary: the VM runs there", now)
        peer = seen.peers.get(record.from_node)
        primary_here = res is not None and res.role == "Primary"
        if record.state == "decided":
            hold = hold_reason(vm, held)
            if hold and not primary_here:
                return self._end(record, "abandoned", f"before the promotion: {hold}", now)
            if not peer_lost(vm, res, peer, seen.hostname, now) and not primary_here:
                return self._end(record, "abandoned", f"{record.from_node} came back before the promotion", now)
            if primary_here and _domain_runs(vm, seen.observed):
                if record.returning or vm.is_primary_here:
                    return self._end(record, "ended", "the VM runs on the node the desired state names", now)
                record = replace(record, state="running", updated_at=now, detail="Primary here, the domain runs")
                self._save(record)
                event("failover.running", level=logging.WARNING, vm=vm.name, failover=record.id)
                return record
            budget = vm.failover.promote_timeout_seconds + START_MARGIN_SECONDS
            if now - record.decided_at > budget:
                return self._end(record, "failed", f"not running {budget:.0f} s after the decision", now)
            return record
        if vm.is_primary_here:
            return self._end(record, "ended", "the desired state now names this node as the primary", now)
        if not primary_here and not _domain_runs(vm, seen.observed) and not peer_back(vm, res, peer, seen.hostname):
            # This node lost the VM (a reboot) while its designated primary is back: the VM goes home.
            return self._end(record, "ended", f"this node no longer runs the VM and {record.from_node} is back",
                             now)
        if vm.failover.failback == "automatic" and not peer_back(vm, res, peer, seen.hostname):
            return self._end(record, "ended", f"failback: {record.from_node} is connected and UpToDate again; "
                                              "the VM moves back as a planned switchover", now)
        return record

    # -- after applying ----------------------------------------------------------------------
    def after_apply(self, actions: Iterable[ActionRecord]) -> None:
        """A failover whose promotion or start failed ends as failed: reported, never retried in a loop. A
        promotion DRBD refused (the fence-peer handler proved nothing) is a failure here, not a wait: trying
        again would run the handler, and with it a power fence, once more."""
        now = self.clock()
        for action in actions:
            record = self.records.get(action.vm)
            if record is None or record.state != "decided" or action.kind not in TAKEOVER_KINDS:
                continue
            if action.result in ("failed", "refused") or (action.kind == "promote" and action.result == "waiting"
                                                           and action.ran):
                self._end(record, "failed", f"{action.kind} {action.result}: {action.message}", now)

    # -- reporting ---------------------------------------------------------------------------
    def statuses(self) -> tuple[FailoverStatus, ...]:
        out = {name: FailoverStatus(vm=name, id=r.id, state=r.state, from_node=r.from_node, to_node=r.to_node,
                                    decided_at=r.decided_at, updated_at=r.updated_at, reason=r.reason,
                                    detail=r.detail, designated=r.designated)
               for name, r in self.records.items()}
        for name, why in self._waiting.items():
            base = out.get(name)
            out[name] = (base.model_copy(update={"watching": why}) if base is not None
                         else FailoverStatus(vm=name, watching=why))
        return tuple(out[name] for name in sorted(out))

    def _wait(self, vm: str, why: str) -> None:
        self._waiting[vm] = why
        # One log line per change of what is waited for (not per second counted).
        head = why.rsplit("(", maxsplit=1)[0]
        if self._reported.get(vm) != head:
            self._reported[vm] = head
            event("failover.watching", level=logging.WARNING, vm=vm, detail=why)

    def _quiet(self, vm: str) -> None:
        self._waiting.pop(vm, None)
        self._reported.pop(vm, None)

    def _end(self, record: FailoverRecord, state: FailoverState, why: str, now: float) -> FailoverRecord:
        ended = replace(record, state=state, updated_at=now, detail=why)
        self._save(ended)
        event(f"failover.{state}", level=logging.WARNING, vm=record.vm, failover=record.id, detail=why)
        return ended

    def _save(self, record: FailoverRecord) -> None:
        self.records[record.vm] = record
        try:
            write_record(self.state_dir, record)
        except OSError as exc:
            # The state in memory rules for this run; after a restart the older record is reviewed again.
            event("failover.record-error", level=logging.ERROR, vm=record.vm, failover=record.id, error=str(exc))

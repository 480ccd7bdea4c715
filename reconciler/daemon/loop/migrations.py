"""Live migrations as this node takes part in them: where each is, since when, and whether it must stop.

The steps themselves are planned from observation (:mod:`reconciler.plan.migration`); this keeper adds what one
pass's observation cannot know: how long the current step has lasted (every step has a timeout), whether a step
of this node failed, and what the peer reports. It tells the planner which migrations must not go on
(:class:`~reconciler.core.migration_view.MigrationStop`): aborted (back to one Primary where the domain runs) or
held for the operator (xl said the domain's state is undefined at both ends, or xl's names stayed behind). The
records live in ``migrations.json`` in the state directory, so a restarted daemon (or a rebooted node) knows that
a migration of this revision was aborted and does not start it again; a new revision may try again.

A node's phase comes from what it sees: the source (the node whose domain is moving away) goes ``waiting`` ->
``window-open`` -> ``target-promoted`` -> ``migrating`` (xl's names) -> ``migrated`` -> ``source-demoted`` ->
``done``; the target the same from its side. ``aborting`` lasts until this node is back to one Primary with its
window closed (``aborted``); ``held`` until xl's names are gone from this node and only one side is Primary (the
operator's answer), then ``done`` where the domain was kept on the target, ``aborted`` (not tried again at this
revision) where it was kept on the source.
A replication link lost inside the window aborts the migration, unless the domain has left the source already
(fence-peer then demoted the source): the migration ends on the target as usual once the windows are closed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import get_args

from reconciler.backends.registry import DEFAULT_BACKENDS, node_backends
from reconciler.core.migration_view import MigrationStop, MigrationView
from reconciler.core.seams import Hypervisor
from reconciler.daemon.records.logs import event
from reconciler.host.atomic import write_atomic
from reconciler.model.desired import DesiredNode, DesiredVm
from reconciler.model.observed import ObservedNode
from reconciler.model.status import ActionRecord, MigrationPhase, MigrationStatus, PeerMigration, PeerStatus
from reconciler.names import UnsafeNameError, check_name

MIGRATIONS_FILE = "migrations.json"
MAX_BYTES = 256 * 1024
# How long one step inside the window may last (the peer's next step included) before the migration is aborted.
DEFAULT_STEP_TIMEOUT = 180.0
# How long xl's migration names may stay on a node before it is held for the operator: longer than `xl migrate`
# may run (its action's timeout), so a migration that is merely slow is never taken for a stuck one.
NAMES_TIMEOUT = 960.0
MIGRATION_KINDS = frozenset({"open-migration-window", "promote-for-migration", "migrate-domain"})
_WINDOW_PHASES: frozenset[MigrationPhase] = frozenset({"window-open", "target-promoted", "migrated",
                                                       "source-demoted"})
_ENDED: frozenset[MigrationPhase] = frozenset({"done", "aborted"})
# The phases in which the domain has left the source (as each side sees it): a lost link no longer aborts.
_MOVED: frozenset[MigrationPhase] = frozenset({"migrated", "source-demoted", "done"})
_PEER_STOPS: dict[MigrationPhase, str] = {"aborting": "aborted", "aborted": "aborted", "held": "held"}


@dataclass(frozen=True)
class MigrationRecord:
    vm: str
    revision: str
    source: str
    target: str
    phase: MigrationPhase
    since: float
    started_at: float
    stop: str = ""  # "", "aborted" or "held"
    reason: str = ""

    def status(self) -> MigrationStatus:
        return MigrationStatus(vm=self.vm, revision=self.revision, source=self.source, target=self.target,
                               phase=self.phase, since=self.since, started_at=self.started_at, reason=self.reason)


def load_records(state_dir: Path) -> dict[str, MigrationRecord]:
    """What the file holds; a missing, oversized or unreadable file counts as none (nothing is stopped on it,
    and the window's state is observed anew)."""
    path = state_dir / MIGRATIONS_FILE
    try:
        if path.is_symlink() or path.stat().st_size > MAX_BYTES:
            return {}
        data = json.loads(path.read_text())
        found = {}
        for name, raw in data.items():
            record = _record(raw)
            if record is not None and record.vm == name:
                found[name] = record
        return found
    except (OSError, ValueError, TypeError, UnsafeNameError, AttributeError):
        return {}


def _record(raw: object) -> MigrationRecord | None:
    """A record of the file, only with the types and values a record has (anything else: none)."""
    if not isinstance(raw, dict):
        return None
    record = MigrationRecord(**raw)
    texts = (record.vm, record.revision, record.source, record.target, record.reason)
    times = (record.since, record.started_at)
    if not all(isinstance(t, str) for t in texts) or record.phase not in get_args(MigrationPhase) \
            or record.stop not in ("", "aborted", "held") \
            or not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in times):
        return None
    check_name(record.vm, "VM")
    return record


def _live_vms(desired: DesiredNode) -> Iterable[DesiredVm]:
    for vm in desired.vms:
        if (vm.domain is not None and vm.domain.live_migration and vm.drbd is not None and len(vm.peers) == 1
                and not any(h.diskless for h in vm.drbd.hosts) and vm.lifecycle == "present"):
            yield vm


class MigrationKeeper:
    def __init__(self, state_dir: Path, node: str, now: Callable[[], float], *, transport: str = "",
                 step_timeout: float = DEFAULT_STEP_TIMEOUT, hypervisor: Hypervisor = DEFAULT_BACKENDS.hypervisor,
                 on_error: Callable[[str], None] = lambda message: None) -> None:
        self.state_dir = state_dir
        self.node = node
        self.now = now
        self.transport = transport
        self.step_timeout = step_timeout
        self.hypervisor = hypervisor
        self._on_error = on_error
        self.records = load_records(state_dir)
        self._saved = dict(self.records)

    # -- each pass, before the plan -----------------------------------------------------------
    def view(self, desired: DesiredNode, observed: ObservedNode, peers: Iterable[PeerStatus],
             revision: str) -> MigrationView:
        now = self.now()
        # xl's names of a migrating domain, and its undefined state after a failed step, are the node's hypervisor's.
        self.hypervisor = node_backends(desired).hypervisor
        reports = {(p.node, m.vm): m for p in peers if p.reachable for m in p.migrations}
        live = {vm.name for vm in _live_vms(desired)}
        for name in [n for n in self.records if n not in live]:
            del self.records[name]  # no longer a VM that migrates live: nothing of it is kept
        for vm in _live_vms(desired):
            self._update(vm, observed, reports.get((vm.peers[0], vm.name)), revision, now)
        self._save()
        peer_phases: dict[str, MigrationPhase] = {}
        for vm in _live_vms(desired):
            report = reports.get((vm.peers[0], vm.name))
            if report is not None and report.revision == revision:
                peer_phases[vm.name] = report.phase
        stopped = {name: MigrationStop("held" if r.stop == "held" else "aborted", r.reason)
                   for name, r in self.records.items() if r.stop and (r.revision == revision or r.stop == "held"
                                                                      or r.phase == "aborting")}
        return MigrationView(transport=self.transport, peer_phases=peer_phases, stopped=stopped)

    def _update(self, vm: DesiredVm, observed: ObservedNode, report: PeerMigration | None, revision: str,
                now: float) -> None:
        if vm.domain is None or vm.drbd is None:
            return
        res = observed.drbd.resource(vm.drbd.name)
        here = observed.domain(vm.domain.name) is not None
        names = [n for n in self.hypervisor.migration_names(vm.domain.name) if observed.domain(n) is not None]
        role = res.role if res is not None else ""
        conn = res.connections[0] if res is not None and res.connections else None
        peer_role = conn.peer_role if conn is not None else ""
        connected = conn is not None and conn.connection_state == "Connected"
        allowed = bool(res is not None and res.two_primaries_allowed)
        record = self.records.get(vm.name)
        if record is not None and record.revision != revision and record.phase in _ENDED:
            record = None
            del self.records[vm.name]
        source_here = here and not vm.is_primary_here
        target_here = vm.is_primary_here and not here and (peer_role == "Primary" or report is not None)
        if record is None:
            if not (source_here or target_here or allowed or names):
                return
            if not (source_here or names or allowed) and (report is None or report.revision != revision):
                return  # the target learns of a migration from the source's window, nothing else
            source, target = (self.node, vm.primary_node) if not vm.is_primary_here else (vm.peers[0], self.node)
            record = MigrationRecord(vm=vm.name, revision=revision, source=source, target=target, phase="waiting",
                                     since=now, started_at=now)
            event("migration.begin", vm=vm.name, source=source, target=target, revision=revision[:12])
        phase = self._phase(record, here=here, names=bool(names), role=role, peer_role=peer_role, allowed=allowed)
        stop, reason = record.stop, record.reason
        if not stop and report is not None and report.revision == record.revision and report.phase in _PEER_STOPS:
            stop, reason = _PEER_STOPS[report.phase], f"{vm.peers[0]} reports: {report.reason or report.phase}"
        if not stop and allowed and not connected and not names:
            if phase in _MOVED:
                # The domain runs on the target already: the node that gave way (fence-peer's demotion) is the
                # source, so the migration ends as it would have; the windows close, nothing is undone.
                reason = reason or (f"the replication link to {vm.peers[0]} was lost inside the window after "
                                    f"{vm.name} had moved to {record.target}; the migration ends there")
            else:
                stop, reason = "aborted", f"the replication link to {vm.peers[0]} was lost inside the window"
        elapsed = now - record.since
        # `waiting` with the allowance in force: the window is open (DRBD shares it with the peer) but a step of
        # the migration has not followed; it must not stay open for ever either.
        timed = phase in _WINDOW_PHASES or (phase == "waiting" and allowed)
        if not stop and timed and phase == record.phase and elapsed > self.step_timeout:
            stop, reason = "aborted", f"{phase} lasted longer than {self.step_timeout:.0f} s"
        if not stop and names and phase == record.phase and elapsed > NAMES_TIMEOUT:
            stop, reason = "held", f"xl shows {', '.join(names)} here for longer than {NAMES_TIMEOUT:.0f} s"
        resolved = stop == "held" and not names and not (role == "Primary" and peer_role == "Primary")
        if resolved:
            # The operator resolved it: one instance, one Primary. Kept on the source, it is an aborted migration,
            # not tried again at this revision (a commit of the node that runs it ends it).
            stop = "" if here == vm.is_primary_here else "aborted"
            phase = "done" if not stop else "aborted"
            reason = (f"held, then resolved by the operator (xl's names gone, one Primary): {vm.name} "
                      + ("runs here" if here else "does not run here"))
            event("migration.resolved", vm=vm.name, here=here, revision=record.revision[:12])
        if stop == "aborted":
            back = not names and not allowed and not (role == "Primary" and peer_role == "Primary")
            phase = "aborted" if back else "aborting"
        elif stop == "held":
            phase = "held"
        if stop and stop != record.stop and not resolved:
            level = logging.WARNING
            event(f"migration.{stop}", level=level, vm=vm.name, revision=record.revision[:12], reason=reason)
            self._on_error(f"live migration of {vm.name} {stop}: {reason}")
        if phase != record.phase:
            event("migration.phase", vm=vm.name, phase=phase, revision=record.revision[:12])
        self.records[vm.name] = replace(record, phase=phase, since=now if phase != record.phase else record.since,
                                        stop=stop, reason=reason)

    def _phase(self, record: MigrationRecord, *, here: bool, names: bool, role: str, peer_role: str,
               allowed: bool) -> MigrationPhase:
        """Where the migration is, as this node sees it (its part: source or target)."""
        if names:
            return "migrating"
        if record.source == self.node:
            if here:
                return "target-promoted" if peer_role == "Primary" else "window-open" if allowed else "waiting"
            if role == "Primary":
                return "migrated"
            return "source-demoted" if allowed else "done"
        if not here:
            return "target-promoted" if role == "Primary" else "window-open" if allowed else "waiting"
        if peer_role == "Primary":
            return "migrated"
        return "source-demoted" if allowed else "done"

    # -- after the apply ------------------------------------------------------------------------
    def after_apply(self, actions: Iterable[ActionRecord]) -> None:
        """A failed step stops its migration: xl's undefined state holds it, anything else aborts it."""
        for action in actions:
            if action.kind not in MIGRATION_KINDS or action.result != "failed":
                continue
            record = self.records.get(action.vm)
            if record is None or record.stop:
                continue
            phase: MigrationPhase = "aborting"
            stop = "aborted"
            if action.kind == "migrate-domain" and self.hypervisor.migration_undefined(action.message):
                stop, phase = "held", "held"
            reason = f"{action.kind} failed: {action.message.strip()[-1500:]}"
            self.records[action.vm] = replace(record, stop=stop, phase=phase, since=self.now(), reason=reason)
            event(f"migration.{stop}", level=logging.WARNING, vm=action.vm, revision=record.revision[:12],
                  reason=reason)
            self._on_error(f"live migration of {action.vm} {stop}: {reason}")
        self._save()

    # -- what others read ------------------------------------------------------------------------
    def statuses(self) -> tuple[MigrationStatus, ...]:
        return tuple(r.status() for _, r in sorted(self.records.items()))

    def peer_report(self) -> tuple[PeerMigration, ...]:
        return tuple(PeerMigration(vm=r.vm, revision=r.revision, phase=r.phase, reason=r.reason[:2000])
                     for _, r in sorted(self.records.items()))

    def _save(self) -> None:
        if self.records == self._saved:
            return
        path = self.state_dir / MIGRATIONS_FILE
        try:
            if self.records:
                write_atomic(str(path), json.dumps({n: asdict(r) for n, r in sorted(self.records.items())}),
                             mode=0o640)
            else:
                path.unlink(missing_ok=True)
            self._saved = dict(self.records)
        except OSError as exc:  # kept in memory; the next pass tries again
            self._on_error(f"cannot keep the live migrations in {self.state_dir}: {exc}")


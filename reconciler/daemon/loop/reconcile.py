"""One pass, with a fixed shape (Flux's lesson): guards, then load -> observe -> plan -> apply -> status.

A pass is level-triggered: it never depends on which event woke it. It returns the PassResult and the
NodeStatus it published; the loop decides when the next one runs. What the published status says is
decided by :mod:`reconciler.daemon.loop.status` from what the pass hands it; which VMs moved away, by
:class:`reconciler.daemon.loop.moves.MoveTracker`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.core.actions import Action
from reconciler.core.peer_view import PeerView
from reconciler.core.plan_model import Plan
from reconciler.daemon.loop.engine import ActionHooks, ApplyOutcome, Engine
from reconciler.daemon.loop.escalation import EscalationKeeper
from reconciler.daemon.loop.gating import BootGate, hold_for_boot, hold_for_peer_revision, without_vms
from reconciler.daemon.loop.metrics_sink import MetricsSink, NullMetrics
from reconciler.daemon.loop.migrations import MigrationKeeper
from reconciler.daemon.loop.moves import MoveTracker
from reconciler.daemon.loop.seams import RevisionSource, Verifier
from reconciler.daemon.loop.status import (
    PassReport,
    StatusBuilder,
    merge_suspended,
    outcome_of,
    suspended_resources,
    suspension_reason,
)
from reconciler.daemon.node.control import NODE_SCOPE, ControlState, ControlStore
from reconciler.daemon.peers.failover import PEER_STATUS_MAX_AGE, FailoverKeeper, takeovers_held
from reconciler.daemon.peers.powerfence import read_records
from reconciler.daemon.records.logs import event
from reconciler.daemon.schedule.clock import Clock
from reconciler.daemon.schedule.liveness import Liveness
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode
from reconciler.model.status import (
    NodeStatus,
    PassOutcome,
    PassResult,
    PeerStatus,
    PeerTakeover,
    ResourceStatus,
    RevisionInfo,
    VerifyStatus,
)
from reconciler.source.errors import SourceError
from reconciler.source.gitsource import SourceView


@dataclass
class PassContext:
    """What the loop hands the pass about the world outside this node."""

    peers: tuple[PeerStatus, ...] = ()
    peer_backing: dict[str, dict[str, int]] = field(default_factory=dict)  # peer -> resource -> bytes
    # peer -> resource -> the peer's record of its last split brain there (names incidents with this node's)
    peer_split_brain: dict[str, dict[str, str]] = field(default_factory=dict)
    gate: BootGate = field(default_factory=lambda: BootGate(fetched=True, fetch_deadline_passed=True,
                                                             peers_seen=frozenset()))


@dataclass
class Reconciler:
    node: str
    state_dir: Path
    source: RevisionSource
    engine: Engine
    clock: Clock
    liveness: Liveness
    metrics: MetricsSink = field(default_factory=NullMetrics)
    should_stop: Callable[[], bool] = lambda: False
    cluster_name: str = ""
    booted_at: float | None = None
    observed_once: bool = False
    backing_sizes: dict[str, int] = field(default_factory=dict)
    # This node's split-brain records (resource -> generation identifiers at detection), for the peer status.
    split_brain_records: dict[str, str] = field(default_factory=dict)
    _suspended_scopes: frozenset[str] = frozenset()
    _reported_seen: set[str] = field(default_factory=set)
    _reported_rejection: tuple[str, str] = ("", "")
    verifier: Verifier | None = None
    _verify: tuple[VerifyStatus, ...] = ()
    failovers: FailoverKeeper = field(init=False)
    escalations: EscalationKeeper = field(init=False)
    report: StatusBuilder = field(init=False)
    moves: MoveTracker = field(init=False)
    migrations: MigrationKeeper = field(init=False)
    # The command `xl migrate -s` reaches the peer's receiver with ("" when none is configured on this node).
    migrate_transport: str = ""
    # The desired state as the last pass planned it (VMs taken over after a failover included): what the
    # metrics compare the node with.
    planned: DesiredNode | None = None

    def __post_init__(self) -> None:
        self.failovers = FailoverKeeper(self.state_dir, self.node, self.clock.time)
        self.escalations = EscalationKeeper(self.state_dir, self.node, self.clock.time)
        self.report = StatusBuilder(self.node, self.state_dir, self.clock)
        self.moves = MoveTracker(self.state_dir, self.node, self.error)
        self.migrations = MigrationKeeper(self.state_dir, self.node, self.clock.time,
                                          transport=self.migrate_transport, on_error=self.error)

    @property
    def status(self) -> NodeStatus | None:
        """What the last pass published (None before the first)."""
        return self.report.status

    @property
    def last_applied(self) -> RevisionInfo | None:
        """The last revision a pass completed with no failed or refused resource: the peer relies on it."""
        return self.report.last_applied

    def error(self, message: str) -> None:
        """Remember an error for status (the fetcher and the loop call this between passes too)."""
        self.report.error(message)

    def republish_errors(self, *, even_first: bool = False) -> None:
        """Publish new errors between passes, without running a pass (see StatusBuilder.republish_errors)."""
        self.report.republish_errors(even_first=even_first)

    # -- the pass ----------------------------------------------------------------------------
    def run_pass(self, control: ControlState, ctx: PassContext, reasons: frozenset[str] = frozenset()) -> PassResult:
        started = self.clock.time()
        self.liveness.beat("pass: load revision")
        self._sync_suspensions(control)
        try:
            view = self.source.evaluate(started, control.allowed_revisions)
        except SourceError as exc:
            self.error(f"source: {exc}")
            event("source.error", level=logging.WARNING, error=str(exc))
            view = SourceView(self.source.in_force, None)
        self._report_seen(view)
        if view.in_force is None:
            # Still observe: readiness and the exported state do not need a revision.
            self._observe()
            kind: PassOutcome = "invalid" if view.invalid_errors or view.refusal else "error"
            return self._finish(started, view, None, kind, errors=("no valid revision yet",))
        revision = view.in_force.info.sha
        try:
            desired = self.engine.expand(view.in_force.cluster, self.node)
        except Exception as exc:
            # A revision that cannot be expanded for this node is reported, not fatal.
            # UnknownNodeError says which nodes cluster.yaml declares; a bare KeyError would print only 'kiwi'.
            detail = getattr(exc, "message", None) or str(exc)
            message = f"revision {revision[:12]} cannot be expanded for node {self.node}: {detail}"
            self.error(message)
            return self._finish(started, view, None, "error", errors=(message,))
        observed = self._observe()
        if observed is None:
            return self._finish(started, view, desired, "error", errors=(self.report.last_error,))
        held = {vm.name: why for vm in desired.vms if (why := suspension_reason(control, vm.name))}
        desired = self.failovers.view(desired, observed, ctx.peers, held=held)
        desired = self.escalations.view(desired, observed)
        self.planned = desired
        self.backing_sizes = self.engine.backing_sizes(desired, observed)
        self.split_brain_records = {r.name: r.split_brain_record for r in observed.drbd.resources
                                    if r.split_brain_record}
        self.liveness.beat("pass: plan")
        moved_away = self.moves.track(desired, observed)
        migrations = self.migrations.view(desired, observed, ctx.peers, revision)
        plan = self.engine.plan(desired, observed, self._peer_view(desired, ctx), moved_away, migrations)
        plan = hold_for_peer_revision(plan, revision, desired, ctx.peers)
        plan, gate_reason = hold_for_boot(plan, ctx.gate, desired, observed)
        suspended_vms = frozenset(vm.name for vm in desired.vms if control.vm_suspended(vm.name) is not None)
        if control.node_suspended:
            return self._finish(started, view, desired, "suspended",
                                resources=suspended_resources(plan, control), gate=gate_reason)
        self.report.report_recovery_notes(plan)
        runnable = without_vms(plan, suspended_vms)
        for action in runnable.actions:
            event("action.planned", level=logging.DEBUG, vm=action.vm, resource=action.key, action=action.kind,
                  revision=revision[:12], waiting=action.waiting or None, refused=action.refused or None)
        outcome = self.engine.apply(runnable, desired, observed, self._hooks(revision))
        self.failovers.after_apply(outcome.actions)
        self.escalations.after_apply(outcome.actions)
        self.migrations.after_apply(outcome.actions)
        self._run_verify(desired, observed, plan, suspended_vms)
        resources = merge_suspended(outcome.resources, plan, control, suspended_vms)
        result_kind = outcome_of(resources, outcome)
        for message in outcome.errors:
            self.error(message)
        return self._finish(started, view, desired, result_kind, resources=resources, apply=outcome, gate=gate_reason)

    def _run_verify(self, desired: DesiredNode, observed: ObservedNode, plan: Plan,
                    suspended_vms: frozenset[str]) -> None:
        """Scheduled online verification; it never fails the pass (a failing command is reported in status)."""
        if self.verifier is None:
            return
        self.liveness.beat("pass: verify")
        busy = frozenset(a.vm for a in plan.actions)
        try:
            self._verify = self.verifier.step(desired, observed, busy=busy, held=suspended_vms)
        except Exception as exc:
            self.error(f"online verify: {exc}")
            event("verify.error", level=logging.WARNING, error=str(exc))

    def _observe(self) -> ObservedNode | None:
        self.liveness.beat("pass: observe")
        try:
            observed = self.engine.observe()
        except Exception as exc:  # throttled by the loop, never fatal
            self.error(f"observation failed: {exc}")
            event("observe.error", level=logging.WARNING, error=str(exc))
            return None
        self.observed_once = True
        return observed

    def _hooks(self, revision: str) -> ActionHooks:
        def started(action: Action, timeout: float) -> None:
            self.liveness.busy(f"action {action.kind} {action.key}", timeout)
            event("action.start", vm=action.vm, resource=action.key, action=action.kind, revision=revision[:12])

        def finished(action: Action, result: str, message: str) -> None:
            self.liveness.beat("pass: apply")
            level = logging.WARNING if result in ("failed", "refused") else logging.INFO
            # A failure line must say what failed; an unchanged one why nothing ran.
            failed = result in ("failed", "refused", "waiting", "skipped")
            event("action.end", level=level, vm=action.vm, resource=action.key, action=action.kind,
                  revision=revision[:12], result=result, error=message if failed and message else None,
                  reason=message if result == "unchanged" and message else None)

        def running(action: Action) -> str:
            return self.escalations.reboot_starting(action) if action.kind == "reboot-node" else ""

        return ActionHooks(started=started, finished=finished, should_stop=self.should_stop, running=running)

    def taken_over(self) -> tuple[PeerTakeover, ...]:
        """The VMs this node runs after an automatic failover, for its peer status (as of the last pass)."""
        status = self.status
        return takeovers_held(status.failovers, self.node) if status is not None else ()

    def _peer_view(self, desired: DesiredNode, ctx: PassContext) -> PeerView | None:
        peers = {p for vm in desired.vms for p in vm.peers}
        if len(peers) != 1:
            return None
        (peer,) = peers
        status = next((p for p in ctx.peers if p.node == peer), None)
        # Only what the peer says now: an unreachable peer, or a stopped monitor's last word, holds nothing back.
        takeovers = status.takeovers if status is not None and status.reachable \
            and self.clock.time() - status.checked_at <= PEER_STATUS_MAX_AGE else ()
        sizes = ctx.peer_backing.get(peer)
        if sizes is None and not takeovers:
            return None
        return PeerView(node=peer, backing_bytes=dict(sizes or {}),
                        split_brain=dict(ctx.peer_split_brain.get(peer, {})), takeovers=takeovers)

    def _sync_suspensions(self, control: ControlState) -> None:
        scopes = frozenset(s.scope for s in control.suspensions)
        for scope in scopes - self._suspended_scopes:
            self.metrics.set_suspended(scope, True)
            susp = control.suspension(scope)
            event("suspended", vm=None if scope == NODE_SCOPE else scope, reason=susp.reason if susp else None,
                  by=susp.by if susp else None)
        for scope in self._suspended_scopes - scopes:
            self.metrics.set_suspended(scope, False)
            event("resumed", vm=None if scope == NODE_SCOPE else scope)
        self._suspended_scopes = scopes

    def _report_seen(self, view: SourceView) -> None:
        for info in (view.attempted, view.in_force.info if view.in_force else None):
            if info is not None and info.sha not in self._reported_seen:
                self._reported_seen.add(info.sha)
                self.metrics.record_revision_seen(info.sha, info.seen_at)
                event("revision.seen", revision=info.sha[:12], summary=info.summary)
        attempted = view.attempted.sha if view.attempted else ""
        if (view.refusal or view.invalid_errors) and (attempted, view.refusal) != self._reported_rejection:
            self._reported_rejection = (attempted, view.refusal)
            if view.refusal:
                event("revision.refused", level=logging.WARNING, revision=attempted[:12], reason=view.refusal)
            for line in view.invalid_errors:
                event("revision.invalid", level=logging.WARNING, revision=attempted[:12], error=line)

    def _finish(self, started: float, view: SourceView, desired: DesiredNode | None, outcome: PassOutcome, *,
                resources: tuple[ResourceStatus, ...] | None = None, apply: ApplyOutcome | None = None,
                errors: tuple[str, ...] = (), gate: str = "") -> PassResult:
        """Hand what the pass found and did to the status builder."""
        return self.report.finish(PassReport(
            started=started, in_force=view.in_force.info if view.in_force else None, attempted=view.attempted,
            outcome=outcome, refusal=view.refusal, invalid_errors=view.invalid_errors,
            cluster=desired.cluster if desired else self.cluster_name, booted_at=self.booted_at,
            resources=resources, apply=apply, errors=errors, gate=gate, verify=self._verify,
            failovers=self.failovers.statuses(), escalations=self.escalations.statuses(),
            migrations=self.migrations.statuses()))

    def publish(self, control: ControlState, peers: tuple[PeerStatus, ...], observed: ObservedNode | None,
                desired: DesiredNode | None, result: PassResult, *, fresh_for: float | None = None) -> NodeStatus:
        """Add what only the loop knows (peers, suspensions), write status.json and feed the metrics.
        ``fresh_for``: seconds within which the loop promises the next status."""
        status = self.report.publish(control.suspensions, peers, fresh_for=fresh_for)
        self.metrics.record_pass(result, observed, desired, status)
        # What the fence-peer handler (a process DRBD starts, not this one) recorded of its power fences.
        self.metrics.record_power_fences({r.peer: (r.outcome, r.finished) for r in read_records(self.state_dir)})
        return status


def load_control(state_dir: Path) -> ControlState:
    return ControlStore(state_dir).read()

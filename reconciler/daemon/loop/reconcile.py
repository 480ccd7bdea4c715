"""One pass, with a fixed shape (Flux's lesson): guards, then load -> observe -> plan -> apply -> status.

A pass is level-triggered: it never depends on which event woke it. It returns the PassResult and the
NodeStatus it published; the loop decides when the next one runs.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.daemon.loop.engine import ActionHooks, ApplyOutcome, Engine
from reconciler.daemon.loop.escalation import EscalationKeeper
from reconciler.daemon.loop.gating import BootGate, hold_for_boot, hold_for_peer_revision, without_vms
from reconciler.daemon.loop.metrics_sink import MetricsSink, NullMetrics
from reconciler.daemon.loop.moves import load_moved_away, save_moved_away
from reconciler.daemon.loop.verify import VerifyScheduler
from reconciler.daemon.node.control import NODE_SCOPE, ControlState, ControlStore
from reconciler.daemon.peers.failover import PEER_STATUS_MAX_AGE, FailoverKeeper, takeovers_held
from reconciler.daemon.peers.powerfence import read_records
from reconciler.daemon.records import status_store
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
from reconciler.plan.actions import Action
from reconciler.plan.model import Plan
from reconciler.plan.peer import PeerView
from reconciler.printable import escape
from reconciler.source.errors import SourceError
from reconciler.source.gitsource import GitSource, SourceView

MAX_RECENT_ERRORS = 20
# Outcomes after which this node has done all it can for the revision; peers may then rely on it.
APPLIED_OUTCOMES: frozenset[PassOutcome] = frozenset({"converged", "degraded", "progressing"})


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
    source: GitSource
    engine: Engine
    clock: Clock
    liveness: Liveness
    metrics: MetricsSink = field(default_factory=NullMetrics)
    should_stop: Callable[[], bool] = lambda: False
    cluster_name: str = ""
    booted_at: float | None = None
    last_applied: RevisionInfo | None = None
    last_success_at: float | None = None
    observed_once: bool = False
    backing_sizes: dict[str, int] = field(default_factory=dict)
    # This node's split-brain records (resource -> generation identifiers at detection), for the peer status.
    split_brain_records: dict[str, str] = field(default_factory=dict)
    _errors: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_RECENT_ERRORS))
    _resources: tuple[ResourceStatus, ...] = ()
    _suspended_scopes: frozenset[str] = frozenset()
    _reported_seen: set[str] = field(default_factory=set)
    _reported_recovery_notes: frozenset[str] = frozenset()
    _reported_rejection: tuple[str, str] = ("", "")
    _converged_revision: str | None = None
    # Which node each VM was designated to in the previous pass (in memory: after a restart no new move is
    # seen until a revision changes a VM's node, so a restart never starts stopping a running domain), and
    # the VMs a revision has since moved away from this node, with the id of the domain that was to stop, kept in
    # moved-away.json until that domain stopped here: a move (a switchover, a failback) interrupted by a restart
    # carries on, and a domain started later (by hand) is never taken for it.
    _last_primaries: dict[str, str] | None = None
    _moved_away: dict[str, int] = field(default_factory=dict)  # VM -> the id of its domain running here
    _moved_saved: dict[str, int] = field(default_factory=dict)
    _health: dict[str, str] = field(default_factory=dict)  # degraded resource -> its reason, for the log
    status: NodeStatus | None = None
    verifier: VerifyScheduler | None = None
    _verify: tuple[VerifyStatus, ...] = ()
    _lock: threading.RLock = field(default_factory=threading.RLock)
    failovers: FailoverKeeper = field(init=False)
    escalations: EscalationKeeper = field(init=False)
    # The desired state as the last pass planned it (VMs taken over after a failover included): what the
    # metrics compare the node with.
    planned: DesiredNode | None = None

    def __post_init__(self) -> None:
        self.failovers = FailoverKeeper(self.state_dir, self.node, self.clock.time)
        self.escalations = EscalationKeeper(self.state_dir, self.node, self.clock.time)
        self._moved_saved = load_moved_away(self.state_dir)
        self._moved_away = dict(self._moved_saved)
        previous = status_store.load(self.state_dir)
        if previous is not None and previous.node == self.node:
            self.last_applied = previous.last_applied
            self.last_success_at = previous.last_success_at
            self._resources = previous.resources
            self._errors.extend(previous.recent_errors)

    def error(self, message: str) -> None:
        """Remember an error for status; a repeated one moves to the end with its latest time. Escaped: an
        error may quote a file name or a tool's output, which must not reach a terminal raw."""
        message = escape(message)
        stamp = self.clock.time()
        with self._lock:
            for entry in list(self._errors):
                if entry.partition(" ")[2] == message:
                    self._errors.remove(entry)
            self._errors.append(f"{stamp:.0f} {message}")

    def republish_errors(self, *, even_first: bool = False) -> None:
        """Publish new errors between passes (a failing fetch), without running a pass; ``even_first``
        publishes them also before any pass has finished (a pass that crashed)."""
        with self._lock:
            if self.status is None and not even_first:
                return
            base = self.status if self.status is not None else NodeStatus(node=self.node)
            self.status = base.model_copy(update={"recent_errors": tuple(self._errors),
                                                  "updated_at": self.clock.time()})
            status_store.publish(self.state_dir, self.status)

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
            observed = self._observe()
            kind: PassOutcome = "invalid" if view.invalid_errors or view.refusal else "error"
            return self._finish(started, view, observed, None, kind, errors=("no valid revision yet",))
        revision = view.in_force.info.sha
        try:
            desired = self.engine.expand(view.in_force.cluster, self.node)
        except Exception as exc:
            # A revision that cannot be expanded for this node is reported, not fatal.
            # UnknownNodeError says which nodes cluster.yaml declares; a bare KeyError would print only 'kiwi'.
            detail = getattr(exc, "message", None) or str(exc)
            message = f"revision {revision[:12]} cannot be expanded for node {self.node}: {detail}"
            self.error(message)
            return self._finish(started, view, None, None, "error", errors=(message,))
        observed = self._observe()
        if observed is None:
            return self._finish(started, view, None, desired, "error", errors=(self._errors[-1],))
        held = {vm.name: why for vm in desired.vms if (why := _suspension_reason(control, vm.name))}
        desired = self.failovers.view(desired, observed, ctx.peers, held=held)
        desired = self.escalations.view(desired, observed)
        self.planned = desired
        self.backing_sizes = self.engine.backing_sizes(desired, observed)
        self.split_brain_records = {r.name: r.split_brain_record for r in observed.drbd.resources
                                    if r.split_brain_record}
        self.liveness.beat("pass: plan")
        moved_away = self._track_moves(desired, observed)
        plan = self.engine.plan(desired, observed, self._peer_view(desired, ctx), moved_away)
        plan = hold_for_peer_revision(plan, revision, desired, ctx.peers)
        plan, gate_reason = hold_for_boot(plan, ctx.gate, desired, observed)
        suspended_vms = frozenset(vm.name for vm in desired.vms if control.vm_suspended(vm.name) is not None)
        if control.node_suspended:
            return self._finish(started, view, observed, desired, "suspended",
                                resources=self._suspended_resources(plan, control), gate=gate_reason)
        self._report_recovery_notes(plan)
        runnable = without_vms(plan, suspended_vms)
        for action in runnable.actions:
            event("action.planned", level=logging.DEBUG, vm=action.vm, resource=action.key, action=action.kind,
                  revision=revision[:12], waiting=action.waiting or None, refused=action.refused or None)
        outcome = self.engine.apply(runnable, desired, observed, self._hooks(revision))
        self.failovers.after_apply(outcome.actions)
        self.escalations.after_apply(outcome.actions)
        self._run_verify(desired, observed, plan, suspended_vms)
        resources = self._merge_suspended(outcome.resources, plan, control, suspended_vms)
        result_kind = _outcome_of(resources, outcome)
        for message in outcome.errors:
            self.error(message)
        return self._finish(started, view, observed, desired, result_kind, resources=resources, apply=outcome,
                            gate=gate_reason)

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

    def _track_moves(self, desired: DesiredNode, observed: ObservedNode) -> frozenset[str]:
        # The domain each VM runs as here (its id): a move is about that domain, not one started later.
        running = {vm.name: dom.domid for vm in desired.vms
                   if vm.domain is not None and (dom := observed.domain(vm.domain.name)) is not None and dom.is_running}
        current = {vm.name: vm.primary_node for vm in desired.vms}
        for name, primary in current.items():
            before = self._last_primaries.get(name) if self._last_primaries is not None else None
            if before == self.node and primary != self.node and name in running:
                self._moved_away[name] = running[name]
                event("vm.moved-away", vm=name, to=primary)
            elif primary == self.node:
                self._moved_away.pop(name, None)
        self._last_primaries = current
        # A move is done once its domain no longer runs here; a later start (by hand) is not undone.
        self._moved_away = {name: domid for name, domid in self._moved_away.items() if running.get(name) == domid}
        if self._moved_away != self._moved_saved:
            try:
                save_moved_away(self.state_dir, self._moved_away)
                self._moved_saved = dict(self._moved_away)
            except OSError as exc:  # kept in memory; the next pass tries again
                self.error(f"cannot keep the VMs moved away in {self.state_dir}: {exc}")
        return frozenset(self._moved_away)

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

    def _report_recovery_notes(self, plan: Plan) -> None:
        """What a split_brain_recovery statement does not do (or no longer does), logged when it changes: that
        is where an operator learns that the statement can be removed."""
        notes = {n.message: n for n in plan.notes if n.kind == "split-brain-recovery"}
        for message in sorted(notes.keys() - self._reported_recovery_notes):
            event("split-brain-recovery.note", vm=notes[message].vm, note=message)
        self._reported_recovery_notes = frozenset(notes)

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

    def _suspended_resources(self, plan: Plan, control: ControlState) -> tuple[ResourceStatus, ...]:
        return tuple(
            ResourceStatus(key=r.key, vm=r.vm, kind=r.kind, phase="suspended", reason=_suspension_reason(control, r.vm))
            for r in plan.resources)

    def _merge_suspended(self, resources: tuple[ResourceStatus, ...], plan: Plan, control: ControlState,
                         suspended_vms: frozenset[str]) -> tuple[ResourceStatus, ...]:
        if not suspended_vms:
            return resources
        kept = tuple(r for r in resources if r.vm not in suspended_vms)
        added = tuple(ResourceStatus(key=r.key, vm=r.vm, kind=r.kind, phase="suspended",
                                     reason=_suspension_reason(control, r.vm))
                      for r in plan.resources if r.vm in suspended_vms)
        return kept + added

    def _finish(self, started: float, view: SourceView, observed: ObservedNode | None, desired: DesiredNode | None,
                outcome: PassOutcome, *, resources: tuple[ResourceStatus, ...] | None = None,
                apply: ApplyOutcome | None = None, errors: tuple[str, ...] = (), gate: str = "") -> PassResult:
        finished = self.clock.time()
        revision = view.in_force.info.sha if view.in_force else None
        result = PassResult(
            started_at=started, finished_at=finished, revision=revision, outcome=outcome,
            resources=resources or (), actions=apply.actions if apply else (),
            retries=apply.retries if apply else 0, errors=errors + (apply.errors if apply else ()),
            # Work done on a revision this node had already converged to means something drifted.
            drift=sum(1 for a in (apply.actions if apply else ()) if a.result == "ok")
            if revision is not None and revision == self._converged_revision else 0,
        )
        if resources is not None:
            self._resources = resources
        if outcome in APPLIED_OUTCOMES and view.in_force is not None:
            self.last_applied = view.in_force.info
        if outcome == "converged":
            self.last_success_at = finished
            self._converged_revision = revision
        self.status = NodeStatus(
            node=self.node, cluster=desired.cluster if desired else self.cluster_name,
            last_attempted=view.attempted or (view.in_force.info if view.in_force else None),
            last_applied=self.last_applied,
            pending_refusal=view.refusal, invalid_errors=view.invalid_errors,
            last_pass=result, last_success_at=self.last_success_at,
            suspensions=(), recent_errors=tuple(self._errors), booted_at=self.booted_at,
            resources=self._resources, boot_gate=gate, updated_at=finished, verify=self._verify,
            failovers=self.failovers.statuses(), escalations=self.escalations.statuses(),
        )
        self._log_health_changes(resources or ())
        quiet = outcome in ("converged", "progressing", "suspended")
        event("pass.end", level=logging.INFO if quiet else logging.WARNING,
              revision=revision[:12] if revision else None, result=outcome,
              duration=f"{result.duration_s:.3f}", actions=len(result.actions),
              waiting=sum(1 for r in result.resources if r.phase == "waiting") or None,
              failed=sum(1 for r in result.resources if r.phase == "failed") or None)
        return result

    def _log_health_changes(self, resources: tuple[ResourceStatus, ...]) -> None:
        """One log line when a resource becomes degraded (with why) and one when it is healthy again."""
        for res in resources:
            before = self._health.get(res.key)
            now = res.reason if res.phase == "degraded" else None
            if now is not None and now != before:
                event("resource.degraded", level=logging.WARNING, vm=res.vm, resource=res.key,
                      conditions=",".join(res.conditions), reason=now)
            elif now is None and before is not None and res.phase == "ready":
                event("resource.healthy", vm=res.vm, resource=res.key)
            if now is not None:
                self._health[res.key] = now
            elif res.phase == "ready":
                self._health.pop(res.key, None)

    def publish(self, control: ControlState, peers: tuple[PeerStatus, ...], observed: ObservedNode | None,
                desired: DesiredNode | None, result: PassResult, *, fresh_for: float | None = None) -> NodeStatus:
        """Add what only the loop knows (peers, suspensions), write status.json and feed the metrics.
        ``fresh_for``: seconds within which the loop promises the next status."""
        with self._lock:
            assert self.status is not None  # noqa: S101  (run_pass always sets it)
            fresh_until = self.clock.time() + fresh_for if fresh_for is not None else None
            status = self.status.model_copy(update={"peers": peers, "suspensions": control.suspensions,
                                                    "recent_errors": tuple(self._errors),
                                                    "fresh_until": fresh_until})
            self.status = status
            status_store.publish(self.state_dir, status)
        self.metrics.record_pass(result, observed, desired, status)
        # What the fence-peer handler (a process DRBD starts, not this one) recorded of its power fences.
        self.metrics.record_power_fences({r.peer: (r.outcome, r.finished) for r in read_records(self.state_dir)})
        return status


def _suspension_reason(control: ControlState, vm: str) -> str:
    susp = control.vm_suspended(vm)
    if susp is None:
        return ""
    scope = "node" if susp.scope == NODE_SCOPE else vm
    return f"{scope} suspended by {susp.by}: {susp.reason}"


def _outcome_of(resources: tuple[ResourceStatus, ...], outcome: ApplyOutcome) -> PassOutcome:
    phases = {r.phase for r in resources}
    if "failed" in phases or "refused" in phases or any(a.result == "failed" for a in outcome.actions):
        return "failed"
    if phases - {"ready", "degraded", "suspended"}:
        return "progressing"
    if "degraded" in phases:
        return "degraded"
    return "converged"


def load_control(state_dir: Path) -> ControlState:
    return ControlStore(state_dir).read()

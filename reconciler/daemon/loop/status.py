"""The node status a pass publishes, built from what the pass hands over and from nothing else.

Running a pass (:mod:`reconciler.daemon.loop.reconcile`) and deciding what operators, peers and metrics are
told are separate jobs: the pass gives a :class:`PassReport` (its revisions, outcome, resources, what apply
did), never its engine, source or keepers, and :class:`StatusBuilder` turns that into the ``PassResult`` and
``NodeStatus`` (the ``Reconciler`` feeds the metrics with them: it alone holds the sink). What a status
carries from one pass to the next lives here too: the applied revision, the last resources, the recent errors,
which resources were degraded (for the log) and the split-brain recovery notes already logged.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.core.plan_model import Plan
from reconciler.daemon.loop.engine import ApplyOutcome
from reconciler.daemon.node.control import NODE_SCOPE, ControlState
from reconciler.daemon.records import status_store
from reconciler.daemon.records.logs import event
from reconciler.daemon.schedule.clock import Clock
from reconciler.model.status import (
    EscalationStatus,
    FailoverStatus,
    MigrationStatus,
    NodeStatus,
    PassOutcome,
    PassResult,
    PeerStatus,
    ResourceStatus,
    RevisionInfo,
    Suspension,
    VerifyStatus,
)
from reconciler.printable import escape

MAX_RECENT_ERRORS = 20
# Outcomes after which this node has done all it can for the revision; peers may then rely on it.
APPLIED_OUTCOMES: frozenset[PassOutcome] = frozenset({"converged", "degraded", "progressing"})


@dataclass(frozen=True)
class PassReport:
    """What one pass hands over to be published: its revisions, how it ended and what it found."""

    started: float
    in_force: RevisionInfo | None
    attempted: RevisionInfo | None
    outcome: PassOutcome
    refusal: str = ""
    invalid_errors: tuple[str, ...] = ()
    cluster: str = ""
    booted_at: float | None = None
    resources: tuple[ResourceStatus, ...] | None = None  # None: the pass got no plan, the last ones stay
    apply: ApplyOutcome | None = None
    errors: tuple[str, ...] = ()
    gate: str = ""  # why the boot gate holds, "" when open
    verify: tuple[VerifyStatus, ...] = ()
    failovers: tuple[FailoverStatus, ...] = ()
    escalations: tuple[EscalationStatus, ...] = ()
    migrations: tuple[MigrationStatus, ...] = ()


@dataclass
class StatusBuilder:
    """Builds, keeps and publishes the node status; errors may arrive from any thread (a failing fetch)."""

    node: str
    state_dir: Path
    clock: Clock
    last_applied: RevisionInfo | None = None
    last_success_at: float | None = None
    status: NodeStatus | None = None
    _errors: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_RECENT_ERRORS))
    _resources: tuple[ResourceStatus, ...] = ()
    _converged_revision: str | None = None
    _health: dict[str, str] = field(default_factory=dict)  # degraded resource -> its reason, for the log
    _reported_recovery_notes: frozenset[str] = frozenset()
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        previous = status_store.load(self.state_dir)
        if previous is not None and previous.node == self.node:
            self.last_applied = previous.last_applied
            self.last_success_at = previous.last_success_at
            self._resources = previous.resources
            self._errors.extend(previous.recent_errors)

    @property
    def recent_errors(self) -> tuple[str, ...]:
        return tuple(self._errors)

    @property
    def last_error(self) -> str:
        return self._errors[-1]

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

    def finish(self, report: PassReport) -> PassResult:
        """The pass's result; the status it makes is kept for :meth:`publish`, and the pass's end logged."""
        finished = self.clock.time()
        revision = report.in_force.sha if report.in_force else None
        apply = report.apply
        result = PassResult(
            started_at=report.started, finished_at=finished, revision=revision, outcome=report.outcome,
            resources=report.resources or (), actions=apply.actions if apply else (),
            retries=apply.retries if apply else 0, errors=report.errors + (apply.errors if apply else ()),
            # Work done on a revision this node had already converged to means something drifted.
            drift=sum(1 for a in (apply.actions if apply else ()) if a.result == "ok")
            if revision is not None and revision == self._converged_revision else 0,
        )
        if report.resources is not None:
            self._resources = report.resources
        if report.outcome in APPLIED_OUTCOMES and report.in_force is not None:
            self.last_applied = report.in_force
        if report.outcome == "converged":
            self.last_success_at = finished
            self._converged_revision = revision
        self.status = NodeStatus(
            node=self.node, cluster=report.cluster,
            last_attempted=report.attempted or report.in_force,
            last_applied=self.last_applied,
            pending_refusal=report.refusal, invalid_errors=report.invalid_errors,
            last_pass=result, last_success_at=self.last_success_at,
            suspensions=(), recent_errors=tuple(self._errors), booted_at=report.booted_at,
            resources=self._resources, boot_gate=report.gate, updated_at=finished, verify=report.verify,
            failovers=report.failovers, escalations=report.escalations, migrations=report.migrations,
        )
        self._log_health_changes(report.resources or ())
        quiet = report.outcome in ("converged", "progressing", "suspended")
        event("pass.end", level=logging.INFO if quiet else logging.WARNING,
              revision=revision[:12] if revision else None, result=report.outcome,
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

    def report_recovery_notes(self, plan: Plan) -> None:
        """What a split_brain_recovery statement does not do (or no longer does), logged when it changes: that
        is where an operator learns that the statement can be removed."""
        notes = {n.message: n for n in plan.notes if n.kind == "split-brain-recovery"}
        for message in sorted(notes.keys() - self._reported_recovery_notes):
            event("split-brain-recovery.note", vm=notes[message].vm, note=message)
        self._reported_recovery_notes = frozenset(notes)

    def publish(self, suspensions: tuple[Suspension, ...], peers: tuple[PeerStatus, ...], *,
                fresh_for: float | None = None) -> NodeStatus:
        """Add what only the loop knows (peers, suspensions) and write status.json.
        ``fresh_for``: seconds within which the loop promises the next status."""
        with self._lock:
            assert self.status is not None  # noqa: S101  (finish always ran before)
            fresh_until = self.clock.time() + fresh_for if fresh_for is not None else None
            status = self.status.model_copy(update={"peers": peers, "suspensions": suspensions,
                                                    "recent_errors": tuple(self._errors),
                                                    "fresh_until": fresh_until})
            self.status = status
            status_store.publish(self.state_dir, status)
        return status


def suspension_reason(control: ControlState, vm: str) -> str:
    susp = control.vm_suspended(vm)
    if susp is None:
        return ""
    scope = "node" if susp.scope == NODE_SCOPE else vm
    return f"{scope} suspended by {susp.by}: {susp.reason}"


def suspended_resources(plan: Plan, control: ControlState) -> tuple[ResourceStatus, ...]:
    """Every resource of the plan as suspended: the node is suspended, nothing ran."""
    return tuple(
        ResourceStatus(key=r.key, vm=r.vm, kind=r.kind, phase="suspended", reason=suspension_reason(control, r.vm))
        for r in plan.resources)


def merge_suspended(resources: tuple[ResourceStatus, ...], plan: Plan, control: ControlState,
                    suspended_vms: frozenset[str]) -> tuple[ResourceStatus, ...]:
    """What apply reported, with the resources of suspended VMs (which it did not see) shown as suspended."""
    if not suspended_vms:
        return resources
    kept = tuple(r for r in resources if r.vm not in suspended_vms)
    added = tuple(ResourceStatus(key=r.key, vm=r.vm, kind=r.kind, phase="suspended",
                                 reason=suspension_reason(control, r.vm))
                  for r in plan.resources if r.vm in suspended_vms)
    return kept + added


def outcome_of(resources: tuple[ResourceStatus, ...], outcome: ApplyOutcome) -> PassOutcome:
    phases = {r.phase for r in resources}
    if "failed" in phases or "refused" in phases or any(a.result == "failed" for a in outcome.actions):
        return "failed"
    if phases - {"ready", "degraded", "suspended"}:
        return "progressing"
    if "degraded" in phases:
        return "degraded"
    return "converged"

"""What one apply pass did, in the shapes the daemon, status and metrics already read."""

from __future__ import annotations

from reconciler.core.plan_model import Note, Plan
from reconciler.model.base import Frozen
from reconciler.model.status import (
    ActionRecord,
    Condition,
    PassOutcome,
    PassResult,
    ResourcePhase,
    ResourceStatus,
)

# Conditions that outweigh whatever else a resource waits for: the operator must see them first.
CRITICAL_CONDITIONS = frozenset({"split-brain", "domain-on-both"})
_PHASE_RANK: dict[ResourcePhase, int] = {"ready": 0, "degraded": 1, "progressing": 2, "waiting": 3, "refused": 4,
                                         "failed": 5, "suspended": 6}


class ApplyResult(Frozen):
    node: str
    started_at: float
    finished_at: float
    outcome: PassOutcome
    actions: tuple[ActionRecord, ...] = ()
    resources: tuple[ResourceStatus, ...] = ()
    notes: tuple[Note, ...] = ()
    retries: int = 0
    errors: tuple[str, ...] = ()

    @property
    def converged(self) -> bool:
        return self.outcome == "converged"

    def count(self, result: str) -> int:
        return sum(r.result == result for r in self.actions)

    def to_pass_result(self, revision: str | None) -> PassResult:
        return PassResult(started_at=self.started_at, finished_at=self.finished_at, revision=revision,
                          outcome=self.outcome, resources=self.resources, actions=self.actions,
                          drift=sum(n.kind == "drift" for n in self.notes), retries=self.retries, errors=self.errors)

    def summary(self) -> str:
        parts = [f"{self.node}: {self.outcome}",
                 f"{self.count('ok')} ok", f"{self.count('unchanged')} unchanged",
                 f"{self.count('failed')} failed", f"{self.count('refused')} refused",
                 f"{self.count('waiting')} waiting", f"{self.count('skipped')} skipped", f"{self.retries} retries"]
        return ", ".join(parts)


def resource_statuses(plan: Plan, records: tuple[ActionRecord, ...]) -> tuple[ResourceStatus, ...]:
    """Each desired resource's phase: the worst outcome of the actions on it (none means ready)."""
    worst: dict[str, tuple[ResourcePhase, str]] = {}
    # Skipped means a dependency failed or was refused: the resource is blocked by a failure.
    phase_of: dict[str, ResourcePhase] = {"ok": "progressing", "unchanged": "ready", "failed": "failed",
                                          "refused": "refused",
                                          "waiting": "waiting", "skipped": "failed"}
    for record in records:
        phase = phase_of[record.result]
        current = worst.get(record.key)
        if current is None or _PHASE_RANK[phase] > _PHASE_RANK[current[0]]:
            worst[record.key] = (phase, record.message)
    refused_vms = {r.vm: r.reason for r in plan.refused_vms}
    conditions: dict[str, list[Condition]] = {}
    for condition in plan.conditions:
        conditions.setdefault(condition.key, []).append(condition)
    out = []
    for res in plan.resources:
        if res.vm in refused_vms:
            out.append(ResourceStatus(key=res.key, vm=res.vm, kind=res.kind, phase="refused",
                                      reason=refused_vms[res.vm]))
            continue
        if res.suspended:
            out.append(ResourceStatus(key=res.key, vm=res.vm, kind=res.kind, phase="suspended",
                                      reason="reconciliation suspended"))
            continue
        phase, reason = worst.get(res.key, ("ready", ""))
        found = conditions.get(res.key, [])
        if phase == "progressing":
            # Changed in this pass: Ready only once a pass observes it as it should be, healthy.
            reason = "changed in this pass; the next pass confirms it"
        critical = [c for c in found if c.kind in CRITICAL_CONDITIONS]
        if (phase == "ready" and found) or (critical and phase in ("progressing", "waiting")):
            also = f" (also: {reason})" if reason and phase == "waiting" else ""
            phase, reason = "degraded", "; ".join(c.message for c in found) + also
        out.append(ResourceStatus(key=res.key, vm=res.vm, kind=res.kind, phase=phase, reason=reason,
                                  conditions=tuple(c.kind for c in found)))
    return tuple(out)


def pass_outcome(records: tuple[ActionRecord, ...], resources: tuple[ResourceStatus, ...] = (), *,
                 refused_vms: int = 0) -> PassOutcome:
    if refused_vms or any(r.result in ("failed", "refused") for r in records):
        return "failed"
    if any(r.result in ("waiting", "skipped", "ok") for r in records):
        return "progressing"
    if any(r.phase == "degraded" for r in resources):
        return "degraded"
    return "converged"

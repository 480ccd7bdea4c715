"""What one apply pass did, in the shapes the daemon, status and metrics already read."""

from __future__ import annotations

from reconciler.model.base import Frozen
from reconciler.model.status import ActionRecord, PassOutcome, PassResult, ResourcePhase, ResourceStatus
from reconciler.plan.model import Note, Plan

_PHASE_RANK: dict[ResourcePhase, int] = {"ready": 0, "progressing": 1, "waiting": 2, "refused": 3, "failed": 4,
                                         "suspended": 5}


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
    out = []
    for res in plan.resources:
        if res.suspended:
            out.append(ResourceStatus(key=res.key, vm=res.vm, kind=res.kind, phase="suspended",
                                      reason="reconciliation suspended"))
            continue
        phase, reason = worst.get(res.key, ("ready", ""))
        if phase == "progressing":
            phase, reason = "ready", "converged in this pass"
        out.append(ResourceStatus(key=res.key, vm=res.vm, kind=res.kind, phase=phase, reason=reason))
    return tuple(out)


def pass_outcome(records: tuple[ActionRecord, ...]) -> PassOutcome:
    if any(r.result in ("failed", "refused") for r in records):
        return "failed"
    if any(r.result in ("waiting", "skipped") for r in records):
        return "progressing"
    return "converged"

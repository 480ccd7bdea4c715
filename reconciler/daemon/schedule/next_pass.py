"""When the next pass is due: at once for news about the node, after a backoff following daemon errors, soon
while something progresses, and at the drift interval once converged.

Pure arithmetic on the times it is given, so the loop's timing is tested without threads or sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.daemon.schedule.backoff import Backoff
from reconciler.model.status import PassResult

URGENT_WAKEUPS = frozenset({"drbd", "domain"})
# A new revision fetched: new input, so the error backoff of the old one no longer applies.
NEW_INPUT = frozenset({"revision"})
CONFIRM_DELAY_S = 1.0


@dataclass
class Schedule:
    """When the next pass is due, and the throttle after daemon-level errors (reset on success)."""

    next_due: float = 0.0
    not_before: float = 0.0
    backoff: Backoff = field(default_factory=lambda: Backoff(base=2.0, cap=300.0))

    def woken(self, now: float, reasons: frozenset[str] | set[str] = frozenset()) -> None:
        if reasons & NEW_INPUT:
            # The failures counted so far were the old revision's; the commit that fixes them must not wait
            # out their backoff (seen in the lab: a fix applied five minutes after it was fetched).
            self.backoff.reset()
            self.not_before = min(self.not_before, now)
        # A change of DRBD's or a domain's state is news about the node itself (a disconnect, a failed disk,
        # a role change): it is looked at at once, even while passes back off after errors.
        urgent = bool(reasons & URGENT_WAKEUPS)
        self.next_due = min(self.next_due, now if urgent else max(now, self.not_before))

    def after(self, result: PassResult, now: float, *, has_revision: bool, waiting: bool,
              progress_interval: float, drift_interval: float) -> float:
        if result.outcome in ("error", "failed") and has_revision:
            delay = self.backoff.failure()
            self.not_before = now + delay
            self.next_due = now + delay
            return delay
        self.backoff.reset()
        self.not_before = now
        # A degraded node may heal by itself (a resync ends, the peer returns): look again soon.
        delay = progress_interval if result.outcome in ("progressing", "degraded") or waiting else drift_interval
        if any(a.result == "ok" for a in result.actions):
            # Something changed: the next pass confirms it (Ready only then) and goes on with what depended on it.
            delay = min(delay, CONFIRM_DELAY_S)
        self.next_due = now + delay
        return delay

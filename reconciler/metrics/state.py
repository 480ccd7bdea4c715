"""What the metrics endpoint exports, kept between scrapes.

The daemon writes here (after each pass, on each DRBD event, on suspend/resume, on each peer check);
the collector reads an immutable :class:`Snapshot` at each scrape. Counters and histograms accumulate
here because a pass result only tells what happened in that pass.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from prometheus_client.utils import floatToGoString

from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode
from reconciler.model.status import (
    ActionResult,
    NodeStatus,
    PassOutcome,
    PassResult,
    PeerStatus,
)

PASS_DURATION_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
CONVERGE_LATENCY_BUCKETS: tuple[float, ...] = (
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)
# How many revisions we remember having seen; older ones are dropped (a revision that never converges
# must not make the table grow forever).
MAX_TRACKED_REVISIONS = 64


@dataclass
class Histogram:
    """Cumulative-free bucket counts; the collector turns them into Prometheus' cumulative form."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
        self.counts[index] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, cumulative count)`` pairs, ending with ``+Inf``."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            out.append((_float_label(bound), float(running)))
        out.append(("+Inf", float(self.count)))
        return out

    def copy(self) -> Histogram:
        return Histogram(self.bounds, list(self.counts), self.total, self.count)


def _float_label(value: float) -> str:
    """Bucket bounds spelled as prometheus_client spells them (``1.0``, ``+Inf``)."""
    label: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return label


@dataclass(frozen=True)
class SuspendedScope:
    suspended: bool
    since: float | None


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of everything the collector needs for one scrape."""

    node: str
    observed: ObservedNode | None
    observed_at: float | None
    desired: DesiredNode | None
    status: NodeStatus | None
    last_pass: PassResult | None
    last_success_at: float | None
    passes: dict[PassOutcome, int]
    actions: dict[tuple[str, ActionResult], int]
    retries: int
    drift_total: int
    pass_duration: Histogram
    converge_latency: Histogram
    last_converged_revision: str | None
    last_converged_at: float | None
    last_converged_commit_lag: float | None
    last_revision_seen: str | None
    last_revision_seen_at: float | None
    suspended: dict[str, SuspendedScope]
    peers: dict[str, PeerStatus]
    power_fences: dict[str, tuple[str, float]] = field(default_factory=dict)


PASS_OUTCOMES: tuple[PassOutcome, ...] = ("converged", "degraded", "progressing", "failed", "invalid", "suspended",
                                          "error")


class MetricsState:
    """Thread-safe holder of what the collector exports.

    Writers are the daemon's threads (the loop, the DRBD event reader, the peer checker, the control
    socket); the reader is the HTTP server's thread. Every method takes the one lock briefly.
    """

    def __init__(self, node: str = "", *, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._node = node
        self._clock = clock
        self._observed: ObservedNode | None = None
        self._observed_at: float | None = None
        self._pass_observed: ObservedNode | None = None
        self._desired: DesiredNode | None = None
        self._status: NodeStatus | None = None
        self._last_pass: PassResult | None = None
        self._last_success_at: float | None = None
        self._passes: dict[PassOutcome, int] = dict.fromkeys(PASS_OUTCOMES, 0)
        self._actions: dict[tuple[str, ActionResult], int] = {}
        self._retries = 0
        self._drift_total = 0
        self._pass_duration = Histogram(PASS_DURATION_BUCKETS)
        self._converge_latency = Histogram(CONVERGE_LATENCY_BUCKETS)
        self._first_seen: dict[str, float] = {}
        self._converged: set[str] = set()
        self._last_converged_revision: str | None = None
        self._last_converged_at: float | None = None
        self._last_converged_commit_lag: float | None = None
        self._last_revision_seen: str | None = None
        self._last_revision_seen_at: float | None = None
        self._suspended: dict[str, SuspendedScope] = {"node": SuspendedScope(False, None)}
        self._peers: dict[str, PeerStatus] = {}
        self._power_fences: dict[str, tuple[str, float]] = {}

    def _now(self) -> float:
        return float(self._clock())

    def record_revision_seen(self, sha: str, at: float) -> None:
        """The node saw ``sha`` for the first time at ``at`` (epoch seconds); the latency clock starts."""
        with self._lock:
            self._last_revision_seen = sha
            self._last_revision_seen_at = at
            if sha in self._first_seen:
                return
            self._first_seen[sha] = at
            while len(self._first_seen) > MAX_TRACKED_REVISIONS:
                oldest = min(self._first_seen, key=self._first_seen.__getitem__)
                del self._first_seen[oldest]
                self._converged.discard(oldest)

    def record_pass(
        self,
        result: PassResult,
        observed: ObservedNode | None,
        desired: DesiredNode | None,
        status: NodeStatus,
    ) -> None:
        """One pass finished: accumulate its counters and keep what it saw."""
        with self._lock:
            self._node = status.node or self._node
            self._status = status
            self._last_pass = result
            # A pass that could not observe may hand back the previous pass's observation: it must neither
            # look fresh nor replace a newer one from the DRBD event stream.
            if observed is not None and observed is not self._pass_observed:
                self._pass_observed = observed
                self._observed = observed
                self._observed_at = result.finished_at
            if desired is not None:
                self._desired = desired
            self._passes[result.outcome] = self._passes.get(result.outcome, 0) + 1
            self._pass_duration.observe(max(0.0, result.duration_s))
            for action in result.actions:
                key = (action.kind, action.result)
                self._actions[key] = self._actions.get(key, 0) + 1
            self._retries += result.retries
            self._drift_total += result.drift
            success_at = status.last_success_at
            if result.outcome == "converged":
                success_at = max(success_at or 0.0, result.finished_at)
                self._record_converged(result, status)
            if success_at is not None:
                self._last_success_at = max(self._last_success_at or 0.0, success_at)
            # The status lists active suspensions with their start; lifting one goes through
            # set_suspended(scope, False), so a status that omits suspensions cannot lift them.
            for suspension in status.suspensions:
                current = self._suspended.get(suspension.scope)
                if current is None or not current.suspended or (current.since or 0.0) > suspension.at:
                    self._suspended[suspension.scope] = SuspendedScope(True, suspension.at)
            for peer in status.peers:
                self._peers[peer.node] = peer

    def _record_converged(self, result: PassResult, status: NodeStatus) -> None:
        sha = result.revision
        if sha is None or sha in self._converged:
            return
        self._converged.add(sha)
        seen_at = self._first_seen.get(sha)
        if seen_at is None and status.last_applied is not None and status.last_applied.sha == sha:
            seen_at = status.last_applied.seen_at
        if seen_at is not None:
            self._converge_latency.observe(max(0.0, result.finished_at - seen_at))
        self._last_converged_revision = sha
        self._last_converged_at = result.finished_at
        committed_at = None
        for info in (status.last_applied, status.last_attempted):
            if info is not None and info.sha == sha and info.committed_at is not None:
                committed_at = info.committed_at
        self._last_converged_commit_lag = None if committed_at is None else result.finished_at - committed_at

    def update_observed(self, observed: ObservedNode) -> None:
        """A fresher observation between passes (from the DRBD event stream)."""
        with self._lock:
            self._observed = observed
            self._observed_at = self._now()
            self._node = self._node or observed.node

    def set_suspended(self, scope: str, suspended: bool) -> None:
        """``scope`` is ``"node"`` or a VM name."""
        with self._lock:
            current = self._suspended.get(scope)
            if suspended:
                if current is None or not current.suspended:
                    self._suspended[scope] = SuspendedScope(True, self._now())
            elif scope == "node":
                self._suspended[scope] = SuspendedScope(False, None)
            else:
                self._suspended.pop(scope, None)

    def record_peer(self, peer: PeerStatus) -> None:
        with self._lock:
            self._peers[peer.node] = peer

    def record_power_fences(self, fences: Mapping[str, tuple[str, float]]) -> None:
        with self._lock:
            self._power_fences = dict(fences)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                node=self._node,
                observed=self._observed,
                observed_at=self._observed_at,
                desired=self._desired,
                status=self._status,
                last_pass=self._last_pass,
                last_success_at=self._last_success_at,
                passes=dict(self._passes),
                actions=dict(self._actions),
                retries=self._retries,
                drift_total=self._drift_total,
                pass_duration=self._pass_duration.copy(),
                converge_latency=self._converge_latency.copy(),
                last_converged_revision=self._last_converged_revision,
                last_converged_at=self._last_converged_at,
                last_converged_commit_lag=self._last_converged_commit_lag,
                last_revision_seen=self._last_revision_seen,
                last_revision_seen_at=self._last_revision_seen_at,
                suspended=dict(self._suspended),
                peers=dict(self._peers),
                power_fences=dict(self._power_fences),
            )

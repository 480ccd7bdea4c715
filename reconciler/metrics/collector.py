"""The Prometheus collector: fresh metric families from :class:`MetricsState` at each scrape."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from reconciler.core.metric_families import gauge
from reconciler.metrics.drbd_metrics import drbd_metrics
from reconciler.metrics.escalation_metrics import escalation_metrics
from reconciler.metrics.failover import failover_metrics
from reconciler.metrics.fence_metrics import fence_metrics
from reconciler.metrics.reconcile_metrics import reconcile_metrics
from reconciler.metrics.state import MetricsState
from reconciler.metrics.takeover_metrics import takeover_metrics
from reconciler.metrics.verify_metrics import verify_metrics
from reconciler.metrics.xen_metrics import xen_metrics

log = logging.getLogger(__name__)


class ReconcilerCollector(Collector):
    def __init__(self, state: MetricsState) -> None:
        self._state = state

    def describe(self) -> Iterator[Metric]:
        # Families depend on the state at scrape time; an empty description skips the registry's
        # duplicate check instead of collecting at registration.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        snap = self._state.snapshot()
        applied = snap.status.last_applied.sha if snap.status and snap.status.last_applied else None
        sections: list[tuple[str, Callable[[], list[Metric]]]] = [
            ("reconcile", lambda: reconcile_metrics(snap)),
            ("drbd", lambda: drbd_metrics(snap.observed, snap.desired) if snap.observed is not None else []),
            ("xen", lambda: xen_metrics(snap.observed, snap.desired)),
            ("failover", lambda: failover_metrics(snap.desired, snap.observed, applied, snap.peers)),
            ("verify", lambda: verify_metrics(snap.status)),
            ("fencing", lambda: fence_metrics(snap.power_fences)),
            ("takeover", lambda: takeover_metrics(snap.status)),
            ("escalation", lambda: escalation_metrics(snap.status)),
        ]
        failed: list[str] = []
        for name, build in sections:
            # One odd value must not cost the whole scrape (and with it every alert on this node).
            try:
                yield from build()
            except Exception:
                log.exception("metrics: building the %s section failed", name)
                failed.append(name)
        errors = gauge("reconciler_metrics_section_failed",
                       "1 when a section of the metrics could not be built at this scrape (see the daemon's log)",
                       ["section"])
        for name, _ in sections:
            errors.add_metric([name], 1.0 if name in failed else 0.0)
        yield errors


def build_registry(state: MetricsState, *, process_metrics: bool = True) -> CollectorRegistry:
    """A registry of its own (not the global one), so tests and several daemons in one process stay apart."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReconcilerCollector(state))
    if process_metrics:
        ProcessCollector(registry=registry)
    return registry


def exposition(state: MetricsState) -> bytes:
    """The text exposition of one scrape, as the endpoint serves it."""
    return generate_latest(build_registry(state, process_metrics=False))

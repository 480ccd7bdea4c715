"""The Prometheus collector: fresh metric families from :class:`MetricsState` at each scrape.

The backends' sections (DRBD's, Xen's) come from the modules the registry names
(:data:`reconciler.backends.registry.METRICS_MODULES`), in its order, between the reconciler's own.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from types import ModuleType

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from reconciler.backends.registry import METRICS_MODULES
from reconciler.core.metric_families import BackendMetrics, gauge
from reconciler.metrics.escalation_metrics import escalation_metrics
from reconciler.metrics.failover import failover_metrics
from reconciler.metrics.fence_metrics import fence_metrics
from reconciler.metrics.reconcile_metrics import reconcile_metrics
from reconciler.metrics.state import MetricsState, Snapshot
from reconciler.metrics.takeover_metrics import takeover_metrics
from reconciler.metrics.verify_metrics import verify_metrics

log = logging.getLogger(__name__)

# Imported with this module, as the sections the collector names are.
_BACKEND_MODULES: tuple[tuple[str, ModuleType], ...] = tuple(
    (section, importlib.import_module(module)) for section, module in METRICS_MODULES)


def _backend_section(module: ModuleType, snap: Snapshot) -> Callable[[], list[Metric]]:
    def build() -> list[Metric]:
        collect: BackendMetrics = module.collect
        return collect(snap.observed, snap.desired)
    return build


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
            *((section, _backend_section(module, snap)) for section, module in _BACKEND_MODULES),
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

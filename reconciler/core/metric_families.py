"""Small builders shared by the metric modules: gauges, counters and one-hot "enum" gauges.

Below the backends, so that each backend's metrics (``backends/<name>/metrics.py``) and the reconciler's own
(:mod:`reconciler.metrics`) build their families alike, and the protocol of a backend's part of a scrape
(:class:`BackendMetrics`); only the modules that export metrics import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode


class BackendMetrics(Protocol):
    """A backend's part of a scrape: the ``collect`` of the module the registry names for it
    (:data:`reconciler.backends.registry.METRICS_MODULES`).

    ``observed`` is the node's last observation (None before the first), ``desired`` this node's desired state
    (None before the first valid revision); families without a sample are left out.
    """

    def __call__(self, observed: ObservedNode | None, desired: DesiredNode | None, /) -> list[Metric]: ...


def gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def counter(name: str, documentation: str, labels: Sequence[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, labels=list(labels))


def add_enum(
    family: GaugeMetricFamily,
    label_values: Sequence[str],
    states: Iterable[str],
    current: str | None,
) -> None:
    """One sample per known state, 1 for the current one, as drbd-reactor's ``enums`` mode does.

    A state outside the known list (DRBD 8.4 spells some differently) still gets its own sample with 1,
    so ``!= "Connected"``-style alert expressions catch it.
    """
    known = list(states)
    for state in known:
        family.add_metric([*label_values, state], 1.0 if state == current else 0.0)
    if current is not None and current not in known:
        family.add_metric([*label_values, current], 1.0)


def non_empty(families: Iterable[Metric]) -> list[Metric]:
    """Families with at least one sample: an empty family would still print HELP/TYPE lines only."""
    return [f for f in families if f.samples]


def flag(value: bool) -> float:
    return 1.0 if value else 0.0

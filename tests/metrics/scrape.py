"""Read an exposition back into samples, the way Prometheus would see it."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from reconciler.metrics.collector import exposition
from reconciler.metrics.state import MetricsState

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def scrape(state: MetricsState) -> Samples:
    return parse(exposition(state).decode())


def value(samples: Samples, metric: str, /, **labels: str) -> float | None:
    return samples.get((metric, frozenset(labels.items())))


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def series(samples: Samples, metric: str, /) -> list[dict[str, str]]:
    return [dict(labels) for n, labels in samples if n == metric]

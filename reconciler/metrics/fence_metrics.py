"""Power fencing: the latest power fence of each peer by this node's fence-peer handler.

The handler records every attempt in the state directory (``reconciler.daemon.peers.powerfence``); the daemon
reads the records after each pass. A failed fence is what the alert is for: DRBD's I/O stayed frozen (under
``resource-and-stonith``) and the peer's state is unknown until someone looks.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.metrics_core import Metric

from reconciler.core.metric_families import gauge, non_empty

OUTCOMES = ("off", "failed")


def fence_metrics(fences: Mapping[str, tuple[str, float]]) -> list[Metric]:
    outcome = gauge("reconciler_power_fence_last_outcome",
                    "1 for the outcome of the latest power fence of the peer by this node: off (verified by a "
                    "status query) or failed", ["peer", "outcome"])
    when = gauge("reconciler_power_fence_last_timestamp_seconds",
                 "When the latest power fence of the peer by this node ended (Unix time)", ["peer"])
    for peer, (result, finished) in sorted(fences.items()):
        for name in OUTCOMES:
            outcome.add_metric([peer, name], 1.0 if name == result else 0.0)
        when.add_metric([peer], finished)
    return non_empty((outcome, when))

"""What the loop reports to metrics: the :class:`MetricsSink` protocol and its no-op :class:`NullMetrics`.

The real sink is :class:`reconciler.metrics.state.MetricsState` (which the metrics endpoint also serves);
the daemon and the pass know only this protocol, so they import nothing of Prometheus.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode
from reconciler.model.status import NodeStatus, PassResult, PeerStatus


class MetricsSink(Protocol):
    """Every call the daemon makes to metrics; each one only records (none may act or block)."""

    def record_revision_seen(self, sha: str, at: float) -> None:
        """The source saw revision ``sha`` first at ``at`` (for commit-to-applied latency)."""
        ...

    def record_pass(self, result: PassResult, observed: ObservedNode | None, desired: DesiredNode | None,
                    status: NodeStatus) -> None:
        """A pass ended with ``result``; ``status`` is what it published."""
        ...

    def update_observed(self, observed: ObservedNode) -> None:
        """Fresher facts between passes (a DRBD event): replication gauges follow them at once."""
        ...

    def set_suspended(self, scope: str, suspended: bool) -> None:
        """The node (``scope`` is the node scope) or one VM was suspended or resumed."""
        ...

    def record_peer(self, peer: PeerStatus) -> None:
        """The peer monitor saw a change of a peer's status."""
        ...

    def record_power_fences(self, fences: Mapping[str, tuple[str, float]]) -> None:
        """The latest power fence of each peer by this node: ``peer -> (outcome, finished at)``."""
        ...


class NullMetrics:
    """A sink that keeps nothing: a daemon or a pass run without metrics."""

    def record_revision_seen(self, sha: str, at: float) -> None:
        pass

    def record_pass(self, result: PassResult, observed: ObservedNode | None, desired: DesiredNode | None,
                    status: NodeStatus) -> None:
        pass

    def update_observed(self, observed: ObservedNode) -> None:
        pass

    def set_suspended(self, scope: str, suspended: bool) -> None:
        pass

    def record_peer(self, peer: PeerStatus) -> None:
        pass

    def record_power_fences(self, fences: Mapping[str, tuple[str, float]]) -> None:
        pass

"""The engine over the real layers: desired.expand, observe.Observer, plan.plan_node, apply.Executor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.apply.executor import ApplyOptions, Executor
from reconciler.apply.retry import RetryPolicy
from reconciler.backends.registry import node_backends
from reconciler.core.actions import Action
from reconciler.core.migration_view import MigrationView
from reconciler.core.peer_view import PeerView, peer_view_from_observation
from reconciler.core.plan_model import Plan
from reconciler.core.seams import Backends
from reconciler.daemon.loop.engine import ActionHooks, ApplyOutcome
from reconciler.desired.expand import expand_node
from reconciler.host.base import Host
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode
from reconciler.model.status import ActionRecord
from reconciler.observe.observer import Observer
from reconciler.plan.diff import plan_node

if TYPE_CHECKING:
    from reconciler.desired.load import Cluster


class _HookProgress:
    """Apply's progress callbacks, turned into the loop's liveness deadlines and structured log lines."""

    def __init__(self, hooks: ActionHooks, policy: RetryPolicy) -> None:
        self._hooks = hooks
        self._policy = policy

    def started(self, action: Action, index: int, total: int) -> None:
        # The longest this action may legitimately take: each command's timeout and the longest
        # backoff, for every attempt.
        attempts = max(1, self._policy.attempts)
        budget = (sum(c.timeout_s for c in action.commands) + self._policy.max_s) * attempts
        self._hooks.started(action, budget)

    def finished(self, action: Action, record: ActionRecord) -> None:
        self._hooks.finished(action, record.result, record.message)

    def resync(self, resource: str, peer: str, percent: float) -> None:
        return None

    def close(self) -> None:
        return None


class RealEngine:
    def __init__(self, host: Host, *, retry_policy: RetryPolicy | None = None) -> None:
        self.host = host
        self.observer = Observer(host)
        self.retry_policy = retry_policy or RetryPolicy()
        self.last_observed: ObservedNode | None = None
        self.last_desired: DesiredNode | None = None

    def expand(self, cluster: Cluster, node: str) -> DesiredNode:
        desired = expand_node(cluster, node)
        self.last_desired = desired
        # The pass observes next: as the node the revision describes, with its pair's providers.
        self.observer.use_backends(node_backends(desired))
        return desired

    def use_backends(self, backends: Backends) -> None:
        self.observer.use_backends(backends)

    def observe(self) -> ObservedNode:
        observed = self.observer.observe()
        self.last_observed = observed
        return observed

    def plan(self, desired: DesiredNode, observed: ObservedNode, peer: PeerView | None,
             moved_away: frozenset[str], migrations: MigrationView | None = None) -> Plan:
        return plan_node(desired, observed, peer=peer, moved_away=moved_away, migrations=migrations)

    def apply(self, plan: Plan, desired: DesiredNode, observed: ObservedNode, hooks: ActionHooks) -> ApplyOutcome:
        options = ApplyOptions(policy=self.retry_policy, should_stop=hooks.should_stop, before_run=hooks.running)
        executor = Executor(self.host, options=options, progress=_HookProgress(hooks, self.retry_policy),
                            observer=self.observer, backends=node_backends(desired))
        result = executor.apply(plan)
        return ApplyOutcome(resources=result.resources, actions=result.actions, retries=result.retries,
                            errors=result.errors)

    def backing_sizes(self, desired: DesiredNode, observed: ObservedNode) -> dict[str, int]:
        return dict(peer_view_from_observation(desired, observed).backing_bytes)

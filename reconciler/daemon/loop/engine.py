"""The seam between the loop and the layers it drives: expand, observe, plan, apply.

The loop only sees this protocol, so its behaviour (triggers, gating, suspension, status, backoff) is
tested with a fake engine on a virtual clock; :mod:`reconciler.daemon.loop.real_engine` wires the real layers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from reconciler.core.actions import Action
from reconciler.core.migration_view import MigrationView
from reconciler.core.peer_view import PeerView
from reconciler.core.plan_model import Plan
from reconciler.core.seams import Backends
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode
from reconciler.model.status import ActionRecord, ResourceStatus

if TYPE_CHECKING:
    from reconciler.desired.load import Cluster


@dataclass(frozen=True)
class ApplyOutcome:
    resources: tuple[ResourceStatus, ...] = ()
    actions: tuple[ActionRecord, ...] = ()
    retries: int = 0
    errors: tuple[str, ...] = ()


@dataclass
class ActionHooks:
    """Called by apply around each action: the loop's liveness and the stop request live here."""

    started: Callable[[Action, float], None] = lambda action, timeout: None
    # (action, result, message): the message is the error text of a failed, refused or waiting action.
    finished: Callable[[Action, str, str], None] = lambda action, result, message: None
    should_stop: Callable[[], bool] = field(default=lambda: False)
    # The action passed its last look and its first command runs next, unless this answers why not.
    running: Callable[[Action], str] = field(default=lambda action: "")


class Engine(Protocol):
    @property
    def last_observed(self) -> ObservedNode | None:
        """The latest observation, None before the first: metrics, and DRBD events between passes, use it."""
        ...

    @property
    def last_desired(self) -> DesiredNode | None:
        """The latest expansion for this node, None before the first (for metrics)."""
        ...

    def expand(self, cluster: Cluster, node: str) -> DesiredNode: ...

    def observe(self) -> ObservedNode: ...

    def plan(self, desired: DesiredNode, observed: ObservedNode, peer: PeerView | None,
             moved_away: frozenset[str], migrations: MigrationView | None = None) -> Plan: ...

    def apply(self, plan: Plan, desired: DesiredNode, observed: ObservedNode, hooks: ActionHooks) -> ApplyOutcome: ...

    def backing_sizes(self, desired: DesiredNode, observed: ObservedNode) -> dict[str, int]: ...

    def use_backends(self, backends: Backends) -> None:
        """Observe as a node running ``backends`` until a revision says otherwise (the daemon's recorded choice,
        before the first revision is expanded)."""
        ...

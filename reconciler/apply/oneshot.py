"""One convergence step as the CLI (and tests, and benchmarks) run it: observe, plan, optionally apply.

The peer is observed only when the plan cannot decide without it (an online resize needs to know the
peer's backing size, a split brain the peer's record to be named): a converged pass costs this node's fixed
handful of commands and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.apply.deepcheck import drbd_dry_run
from reconciler.backends.registry import node_backends
from reconciler.core.peer_view import PeerView, peer_view_from_observation
from reconciler.core.plan_model import Plan
from reconciler.host.base import Host
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode
from reconciler.observe.observer import Observer
from reconciler.plan.diff import plan_node

if TYPE_CHECKING:  # the executor (and tenacity) load only when something is applied: `plan` starts faster
    from reconciler.apply.executor import ApplyOptions
    from reconciler.apply.progress import Progress
    from reconciler.apply.result import ApplyResult

PeerSource = Callable[[], PeerView | None]
Gate = Callable[[Plan, DesiredNode, ObservedNode], Plan]
"""Rewrites a plan before it runs (the daemon's gates for a one-shot apply); it may only hold actions back."""


@dataclass(frozen=True)
class Step:
    observed: ObservedNode
    plan: Plan
    result: ApplyResult | None = None


def _needs_peer(plan: Plan, observed: ObservedNode) -> bool:
    return (any(a.wait_for == "peer-backing-size" for a in plan.actions)
            or any(r.split_brain for r in observed.drbd.resources))


def observe_and_plan(host: Host, desired: DesiredNode, *, peer: PeerSource | None = None,
                     allow_mass_delete: bool = False, observer: Observer | None = None, deep: bool = False,
                     gate: Gate | None = None) -> Step:
    """``deep`` adds the DRBD dry-run check: one read-only ``drbdadm -d adjust`` per resource that is up."""
    observer = observer or Observer(host)
    observer.use_backends(node_backends(desired))  # the node's pair's fact providers, not every registered one
    observed = observer.observe()
    changes = drbd_dry_run(host, desired, observed) if deep else None
    plan = plan_node(desired, observed, allow_mass_delete=allow_mass_delete, drbd_changes=changes)
    if peer is not None and _needs_peer(plan, observed):
        view = peer()
        if view is not None:
            plan = plan_node(desired, observed, peer=view, allow_mass_delete=allow_mass_delete, drbd_changes=changes)
    return Step(observed, gate(plan, desired, observed) if gate is not None else plan)


def converge_once(host: Host, desired: DesiredNode, *, peer: PeerSource | None = None,
                  allow_mass_delete: bool = False, options: ApplyOptions | None = None,
                  progress: Progress | None = None, observer: Observer | None = None, deep: bool = False,
                  gate: Gate | None = None) -> Step:
    """Observe, plan, apply. Pass the same ``observer`` to successive calls on one host, as the daemon
    does: it asks the tools' versions only once."""
    from reconciler.apply.executor import apply_plan  # noqa: PLC0415

    observer = observer or Observer(host)
    step = observe_and_plan(host, desired, peer=peer, allow_mass_delete=allow_mass_delete, observer=observer,
                            deep=deep, gate=gate)
    result = apply_plan(host, step.plan, options=options, progress=progress, observer=observer,
                        backends=node_backends(desired))
    return Step(step.observed, step.plan, result)


def observed_peer(peer_host: Host, desired_peer: DesiredNode) -> PeerView:
    return peer_view_from_observation(desired_peer,
                                      Observer(peer_host, backends=node_backends(desired_peer)).observe())

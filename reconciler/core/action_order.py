"""Dependency order with graphlib: a stable topological order (ties keep the planner's order)."""

from __future__ import annotations

import graphlib
import heapq
from collections.abc import Sequence

from reconciler.core.actions import Action


class PlanError(ValueError):
    """The planner produced an impossible graph (a cycle or a dangling dependency): a bug, never ignored."""


def order_actions(actions: Sequence[Action]) -> tuple[Action, ...]:
    position = {a.id: i for i, a in enumerate(actions)}
    if len(position) != len(actions):
        dupes = sorted({a.id for a in actions if sum(b.id == a.id for b in actions) > 1})
        raise PlanError(f"duplicate action ids: {', '.join(dupes)}")
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for action in actions:
        for dep in action.depends_on:
            if dep not in position:
                raise PlanError(f"{action.id} depends on {dep}, which is not in the plan")
        sorter.add(action.id, *action.depends_on)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise PlanError(f"dependency cycle: {' -> '.join(exc.args[1])}") from exc
    by_id = {a.id: a for a in actions}
    ordered: list[Action] = []
    ready: list[int] = []
    while sorter.is_active():
        for ident in sorter.get_ready():
            heapq.heappush(ready, position[ident])
        # One at a time, earliest first: the planner's order (VM by VM) survives wherever the graph allows.
        first = actions[heapq.heappop(ready)]
        ordered.append(by_id[first.id])
        sorter.done(first.id)
    return tuple(ordered)

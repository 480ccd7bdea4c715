"""The plan: ordered actions plus what the planner noticed but will not act on."""

from __future__ import annotations

from typing import Literal

from reconciler.core.actions import Action
from reconciler.model.base import Frozen
from reconciler.model.status import Condition

NoteKind = Literal["orphan", "drift", "restart-needed", "filesystem-growth", "split-brain-recovery", "info"]


class Note(Frozen):
    key: str
    vm: str
    kind: NoteKind
    message: str


class PlannedResource(Frozen):
    """A desired resource of this node, so apply can report a status for every one of them."""

    key: str
    vm: str
    kind: str
    suspended: bool = False


class VmRefusal(Frozen):
    """A VM this revision must not touch at all on this node (an identity change, a name someone else holds)."""

    vm: str
    reason: str


class Plan(Frozen):
    node: str
    actions: tuple[Action, ...] = ()
    notes: tuple[Note, ...] = ()
    resources: tuple[PlannedResource, ...] = ()
    refused_vms: tuple[VmRefusal, ...] = ()
    # What is unhealthy on the node as observed (reconciler.plan.health): such resources are Degraded.
    conditions: tuple[Condition, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.actions and not self.refused_vms

    @property
    def refused(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.refused)

    @property
    def waiting(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.waiting and not a.refused)

    @property
    def runnable(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if not a.refused and not a.waiting)

    def action(self, action_id: str) -> Action | None:
        return next((a for a in self.actions if a.id == action_id), None)

    def for_vm(self, vm: str) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.vm == vm)

"""Collects the actions and notes of one VM while the per-backend planners run.

Every planner, shared or a backend's, adds its steps through one :class:`VmBuilder`, so each action gets its
id, its kind's timeout and its dependencies the same way. The builder reaches the hypervisor and the
replicator only through their protocols (:mod:`reconciler.core.seams`): whether an owned config file was
written by hand, and what replacing it would change, is the backend's to say (:func:`foreign_file`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core.action_registry import spec
from reconciler.core.actions import Action, ActionKind, Change, Command, action_id, cmd
from reconciler.core.observed_index import ObservedIndex
from reconciler.core.peer_view import PeerView
from reconciler.core.plan_model import Note, NoteKind
from reconciler.core.seams import Argv, Backends, ConfigOwner, Hypervisor, Replicator
from reconciler.model.desired import DesiredVm

SEMANTIC_REWRITE = "takeover"
"""The reason of a hand-written config replaced by the rendered one that means the same."""


class VmBuilder:
    def __init__(self, vm: DesiredVm, observed: ObservedIndex, peer: PeerView | None, backends: Backends,
                 drbd_changes: Mapping[str, str] | None = None) -> None:
        self.vm = vm
        self.hypervisor: Hypervisor = backends.hypervisor
        self.replicator: Replicator = backends.replicator
        self.observed = observed
        self.peer = peer
        self.drbd_changes = drbd_changes or {}
        self.actions: list[Action] = []
        self.notes: list[Note] = []

    def add(self, kind: ActionKind, key: str, change: Change, description: str, *,
            commands: tuple[Command, ...] = (), depends_on: tuple[str | None, ...] = (), timeout: float | None = None,
            **fields: Any) -> str:
        ident = action_id(kind, key)
        deps = tuple(dict.fromkeys(d for d in depends_on if d is not None and d != ident))
        limit = timeout if timeout is not None else spec(kind).timeout_s
        timed = tuple(c.model_copy(update={"timeout_s": limit}) for c in commands)
        values = {"id": ident, "kind": kind, "key": key, "vm": self.vm.name, "change": change,
                  "description": description, "commands": timed, "depends_on": deps, **fields}
        self.actions.append(Action(**values))
        return ident

    @staticmethod
    def command(argv: Argv) -> Command:
        """A backend's argv as an action's command (the action's kind gives it its timeout)."""
        return cmd(*argv)

    def note(self, kind: NoteKind, key: str, message: str) -> None:
        self.notes.append(Note(key=key, vm=self.vm.name, kind=kind, message=message))

    def find(self, kind: ActionKind, key: str) -> str | None:
        ident = action_id(kind, key)
        return ident if any(a.id == ident for a in self.actions) else None

    def ids_for(self, *keys: str) -> tuple[str, ...]:
        wanted = set(keys)
        return tuple(a.id for a in self.actions if a.key in wanted)

    def owned_file(self, kind: ActionKind, key: str, path: str, content: str, owner: ConfigOwner) -> str | None:
        """Write a file the reconciler owns when it is missing; report drift and rewrite it when it differs.
        ``owner`` is the backend whose file it is: what the file means is its to say."""
        current = self.observed.file(path)
        if current == content:
            return None
        if current is None:
            elsewhere = owner.defined_elsewhere(self.observed.observed.files, key, path)
            return self.add(kind, key, "create", f"write {path}", file_path=path, file_content=content,
                            refused=elsewhere)
        name = key.split(":", 1)[1]
        if self.vm.lifecycle == "present" and owner.hand_written(current, name):
            return foreign_file(self, kind, key, path, content=content, current=current, owner=owner)
        self.note("drift", key, f"{path} differs from the desired config (edited by hand?); rewriting it")
        return self.add(kind, key, "change", f"rewrite {path} (drift)", file_path=path, file_content=content,
                        reason="drift")


def foreign_file(b: VmBuilder, kind: ActionKind, key: str, path: str, *, content: str, current: str,
                 owner: ConfigOwner) -> str | None:
    """A config file at a path the reconciler writes, written by hand: replaced only when it means the same."""
    differences = owner.config_differences(current, content, path)
    if not differences:
        b.note("info", key, f"{path} was written by hand and means the same as the rendered file; replacing it "
                            "(nothing to apply)")
        return b.add(kind, key, "change", f"replace hand-written {path} (same meaning)", file_path=path,
                     file_content=content, reason=SEMANTIC_REWRITE)
    shown = "; ".join(differences[:8]) + ("; ..." if len(differences) > 8 else "")
    return b.add(kind, key, "change", f"replace hand-written {path}", file_path=path, file_content=content,
                 refused=(f"{path} was written by hand and differs from the rendered file in what it means ({shown}): "
                          "make the desired state match it by a commit, or move the file away to have the rendered "
                          "one written and applied (see docs/import.md)"))

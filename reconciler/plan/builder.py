"""Collects the actions and notes of one VM while the per-layer planners run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.backends.base import Argv, Hypervisor, Replicator
from reconciler.backends.registry import DEFAULT_BACKENDS, Backends
from reconciler.model.desired import DesiredVm
from reconciler.observe.config_semantics import defined_elsewhere, hand_written
from reconciler.plan.actions import Action, ActionKind, Change, Command, action_id, cmd
from reconciler.plan.index import ObservedIndex
from reconciler.plan.model import Note, NoteKind
from reconciler.plan.peer import PeerView
from reconciler.plan.registry import spec


class VmBuilder:
    def __init__(self, vm: DesiredVm, observed: ObservedIndex, peer: PeerView | None,
                 drbd_changes: Mapping[str, str] | None = None, backends: Backends = DEFAULT_BACKENDS) -> None:
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

    def owned_file(self, kind: ActionKind, key: str, path: str, content: str) -> str | None:
        """Write a file the reconciler owns when it is missing; report drift and rewrite it when it differs."""
        current = self.observed.file(path)
        if current == content:
            return None
        if current is None:
            drbd = kind == "write-drbd-config"
            elsewhere = defined_elsewhere(self.observed.observed.files, key, path) if drbd else ""
            return self.add(kind, key, "create", f"write {path}", file_path=path, file_content=content,
                            refused=elsewhere)
        name = key.split(":", 1)[1]
        if self.vm.lifecycle == "present" and hand_written(
                current, drbd_resource=name if kind == "write-drbd-config" else None, domain=name):
            from reconciler.plan.takeover import foreign_file  # noqa: PLC0415  (takeover builds on this module)

            return foreign_file(self, kind, key, path, content=content, current=current)
        self.note("drift", key, f"{path} differs from the desired config (edited by hand?); rewriting it")
        return self.add(kind, key, "change", f"rewrite {path} (drift)", file_path=path, file_content=content,
                        reason="drift")

"""The node's pair of backends (hypervisor and replicator) as the revision it applies names it, remembered in
the state directory for the parts that run before the desired state is read, or without it: the daemon's
watchers and first observation, and the handlers the replication starts (fence-peer, split-brain).

The daemon writes ``backends.json`` (atomically) when a pass applies a revision whose pair differs from the one
recorded; readers check it strictly, and a name that no registered backend has is an error naming the file, never
a silent fall-back to another tool. No file yet (a node that never applied a revision) means the registry's
defaults, which the caller says in its log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.backends.registry import DEFAULT_BACKENDS, HYPERVISORS, REPLICATORS, backends_named
from reconciler.core.seams import Backends
from reconciler.host.atomic import write_atomic
from reconciler.model.desired import NodeBackends

CHOICE_FILE = "backends.json"
MAX_CHOICE_BYTES = 4096
_ROLES = ("hypervisor", "replicator")


class BackendChoiceError(ValueError):
    """The recorded choice cannot be used (the message names the file and what to do)."""


@dataclass(frozen=True)
class NodeChoice:
    """The pair a node runs, and whether it was recorded (False: the defaults, nothing applied yet)."""

    backends: Backends
    names: NodeBackends
    recorded: bool

    def describe(self) -> str:
        return f"hypervisor {self.names.hypervisor}, replicator {self.names.replicator}"


def choice_path(state_dir: Path) -> Path:
    return state_dir / CHOICE_FILE


def write_choice(state_dir: Path, names: NodeBackends) -> None:
    """Record ``names`` (checked against the registry first: only a pair this program runs is written)."""
    _check_registered(names, choice_path(state_dir))
    text = json.dumps({"hypervisor": names.hypervisor, "replicator": names.replicator}, sort_keys=True) + "\n"
    write_atomic(str(choice_path(state_dir)), text, mode=0o600)


def read_names(state_dir: Path) -> NodeBackends | None:
    """The recorded names, None when nothing is recorded; :class:`BackendChoiceError` when the file is not one
    this program wrote or names a backend it does not have."""
    path = choice_path(state_dir)
    try:
        if path.is_symlink():
            raise BackendChoiceError(f"{path}: a symlink, not the daemon's record of the node's backends; remove it "
                                     "(the daemon writes it again when it applies the next revision)")
        raw = path.read_bytes()[:MAX_CHOICE_BYTES + 1]
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BackendChoiceError(f"{path}: cannot read the node's backends: {exc.strerror or exc}") from exc
    if len(raw) > MAX_CHOICE_BYTES:
        raise BackendChoiceError(f"{path}: larger than {MAX_CHOICE_BYTES} bytes, not the daemon's record of the "
                                 "node's backends; remove it (the daemon writes it again when it applies a revision)")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BackendChoiceError(f"{path}: not JSON ({exc}); remove it (the daemon writes it again when it applies "
                                 "the next revision)") from exc
    names = _names(data, path)
    _check_registered(names, path)
    return names


def node_choice(state_dir: Path) -> NodeChoice:
    """The pair recorded in ``state_dir``, else the registry's defaults (``recorded`` False); raises
    :class:`BackendChoiceError` as :func:`read_names` does."""
    names = read_names(state_dir)
    if names is None:
        return NodeChoice(DEFAULT_BACKENDS, NodeBackends(), recorded=False)
    return NodeChoice(backends_named(names), names, recorded=True)


def _names(data: object, path: Path) -> NodeBackends:
    if not isinstance(data, Mapping) or set(data) != set(_ROLES):
        raise BackendChoiceError(f"{path}: expected an object with exactly the keys hypervisor and replicator, got "
                                 f"{json.dumps(data)[:200]}; remove it (the daemon writes it again when it applies "
                                 "the next revision)")
    values = {role: data[role] for role in _ROLES}
    for role, value in values.items():
        if not isinstance(value, str):
            raise BackendChoiceError(f"{path}: {role} is {json.dumps(value)[:80]}, not a backend's name")
    return NodeBackends(hypervisor=values["hypervisor"], replicator=values["replicator"])


def _check_registered(names: NodeBackends, path: Path) -> None:
    for role, name, known in (("hypervisor", names.hypervisor, HYPERVISORS),
                              ("replicator", names.replicator, REPLICATORS)):
        if name not in known:
            raise BackendChoiceError(
                f"{path}: unknown {role} {name[:80]!r} (this reconciler has: {', '.join(sorted(known))}); the last "
                f"revision applied on this node chose it: install the reconciler that has it, or remove the file to "
                "use the defaults until the daemon applies a revision again")

"""The simulated programs: a registry of command handlers and virtual files.

A simulator module registers what it emulates at import time::

    from reconciler.sim.commands import CommandContext, command, virtual_file

    @command("lvs")
    def lvs(ctx: CommandContext, argv: list[str]) -> CommandResult:
        ...                       # argv[0] is the program name as called ("lvs" or "/sbin/lvs")
        return ctx.ok(stdout)     # or ctx.fail(5, "  Volume group ... not found\\n")

    @virtual_file("/proc/drbd")
    def proc_drbd(ctx: CommandContext) -> str | None:
        ...                       # None: the file does not exist (e.g. module not loaded)

Programs are looked up by the base name of ``argv[0]``. A handler receives a ``CommandContext`` and
mutates ``ctx.state`` (the whole cluster state, see :mod:`reconciler.sim.state`) directly: the host
runs it inside one transaction, saves the state afterwards and logs the command as *mutating* when
the state changed. A handler must never sleep or do real I/O; it reads "time" from ``ctx.now``.
When a command fails, a handler returns the failure without leaving half-done changes behind (or
raises :class:`SimAbort`, which discards every change of that command).

Handlers for programs whose behaviour depends on another node (DRBD connections, ``xl migrate``)
use ``ctx.state["nodes"][other]`` and :func:`reconciler.sim.state.can_talk`.

Modules register by being imported; :mod:`reconciler.sim.handlers` imports them all.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.host.base import EXIT_NOT_FOUND, CommandResult
from reconciler.sim import state as simstate
from reconciler.sim.state import NodeState, State

Handler = Callable[["CommandContext", list[str]], CommandResult]
FileProvider = Callable[["CommandContext"], "str | None"]

_commands: dict[str, Handler] = {}
_virtual_files: dict[str, FileProvider] = {}
# Files whose paths carry a number (``/sys/devices/virtual/block/drbd0/size``).
_virtual_patterns: list[tuple[re.Pattern[str], Callable[[CommandContext, re.Match[str]], str | None]]] = []
_virtual_dirs: dict[str, Callable[[CommandContext], tuple[str, ...]]] = {}


class SimAbort(Exception):
    """Raised by a handler to end the command with ``result`` and discard its state changes."""

    def __init__(self, result: CommandResult) -> None:
        super().__init__(result.stderr)
        self.result = result


@dataclass
class CommandContext:
    """What a handler sees: the cluster state, the node it runs on and the caller's input."""

    state: State
    node: str
    argv: tuple[str, ...] = ()
    stdin: str | None = None
    timeout: float = 60.0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def node_state(self) -> NodeState:
        return simstate.node_state(self.state, self.node)

    @property
    def now(self) -> float:
        return float(self.state.get("time", 0.0))

    def resolve_device(self, path: str) -> str | None:
        return simstate.resolve_device(self.state, self.node, path)

    def device_exists(self, path: str) -> bool:
        return simstate.device_exists(self.state, self.node, path)

    def content(self, key: str) -> dict[str, Any]:
        return simstate.content(self.state, key)

    def result(self, returncode: int, stdout: str = "", stderr: str = "") -> CommandResult:
        return CommandResult(self.argv, returncode, stdout, stderr)

    def ok(self, stdout: str = "", stderr: str = "") -> CommandResult:
        return self.result(0, stdout, stderr)

    def fail(self, returncode: int, stderr: str, stdout: str = "") -> CommandResult:
        return self.result(returncode, stdout, stderr)

    def abort(self, returncode: int, stderr: str, stdout: str = "") -> SimAbort:
        """``raise ctx.abort(...)``: fail and roll back what this command changed so far."""
        return SimAbort(self.result(returncode, stdout, stderr))

    def read_file(self, path: str) -> str | None:
        """A regular file of the node, or a virtual file."""
        entry = self.node_state["files"].get(path)
        if entry is not None:
            return str(entry["content"])
        provider = _virtual_files.get(path)
        if provider is not None:
            return provider(self)
        for pattern, by_match in _virtual_patterns:
            found = pattern.fullmatch(path)
            if found is not None:
                return by_match(self, found)
        return None


def command(*names: str) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the handler of the programs ``names``."""

    def decorate(fn: Handler) -> Handler:
        for name in names:
            _commands[name] = fn
        return fn

    return decorate


def virtual_file(*paths: str) -> Callable[[FileProvider], FileProvider]:
    """Register a provider for files computed from the state (``/proc/drbd``, ``/proc/mounts``)."""

    def decorate(fn: FileProvider) -> FileProvider:
        for path in paths:
            _virtual_files[path] = fn
        return fn

    return decorate


def virtual_file_pattern(pattern: str) -> Callable[[Callable[[CommandContext, re.Match[str]], str | None]],
                                                   Callable[[CommandContext, re.Match[str]], str | None]]:
    """Register a provider for every path that matches ``pattern`` as a whole; it gets the match."""

    def decorate(fn: Callable[[CommandContext, re.Match[str]], str | None]) -> Callable[
            [CommandContext, re.Match[str]], str | None]:
        _virtual_patterns.append((re.compile(pattern), fn))
        return fn

    return decorate


def virtual_dir(path: str) -> Callable[[Callable[[CommandContext], tuple[str, ...]]],
                                       Callable[[CommandContext], tuple[str, ...]]]:
    """Register a provider of extra entry names of a directory (e.g. ``/dev/mapper``)."""

    def decorate(fn: Callable[[CommandContext], tuple[str, ...]]) -> Callable[[CommandContext], tuple[str, ...]]:
        _virtual_dirs[path] = fn
        return fn

    return decorate


def handler_for(program: str) -> Handler | None:
    return _commands.get(os.path.basename(program))


def known_programs() -> tuple[str, ...]:
    return tuple(sorted(_commands))


def virtual_file_provider(path: str) -> FileProvider | None:
    return _virtual_files.get(path)


def virtual_paths() -> tuple[str, ...]:
    return tuple(sorted(_virtual_files))


def virtual_dir_provider(path: str) -> Callable[[CommandContext], tuple[str, ...]] | None:
    return _virtual_dirs.get(path)


def not_found(ctx: CommandContext) -> CommandResult:
    program = ctx.argv[0] if ctx.argv else ""
    return CommandResult(ctx.argv, EXIT_NOT_FOUND, "", f"{program}: command not found\n", not_found=True)


def dispatch(ctx: CommandContext) -> CommandResult:
    """Run ``ctx.argv`` against the state; an unknown program answers like a shell (exit 127).

    A handler's :class:`SimAbort` propagates to the host, which restores the state of before the command.
    """
    handler = handler_for(ctx.argv[0]) if ctx.argv else None
    if handler is None:
        return not_found(ctx)
    return handler(ctx, list(ctx.argv))

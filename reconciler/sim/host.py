"""``SimHost``: the host seam over a simulated node.

Each ``run`` is one transaction on the cluster state: check the node is up, apply injected faults,
dispatch the argv to the registered handler, save, and append the command to the cluster's command
log (node, argv, exit code, whether it changed the state, simulated time). Nothing here sleeps: a
hang is charged to simulated time.
"""

from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Sequence

from reconciler.host.base import DEFAULT_TIMEOUT, CommandResult, HostFileError
from reconciler.sim import commands, device_index, faults, xen
from reconciler.sim.state import SimCluster, SimStateError, State, load_modules, node_state

EXIT_UNREACHABLE = 255
# Files that are symlinks on Linux (read them through /proc/self/...).
PROC_SYMLINKS = frozenset({"/proc/mounts", "/proc/net"})


class SimHost:
    """One node of the simulated cluster in ``cluster_dir``; implements :class:`reconciler.host.base.Host`."""

    def __init__(self, cluster_dir: str | os.PathLike[str], node: str) -> None:
        load_modules()
        self.cluster = SimCluster(cluster_dir)
        self._node = node
        with self.cluster.view() as state:
            node_state(state, node)  # fail early on an unknown node or a missing cluster

    @property
    def node(self) -> str:
        return self._node

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        args = tuple(argv)
        if not args or not all(isinstance(a, str) for a in args):
            raise TypeError(f"argv must be a non-empty sequence of strings, got {argv!r}")
        with self.cluster.transaction() as state:
            result, mutating = self._run_in(state, args, timeout, stdin)
            self.cluster.append_log({
                "time": state.get("time", 0.0), "node": self._node, "argv": list(args),
                "exit": result.returncode, "mutating": mutating,
            })
        return result

    def _run_in(self, state: State, args: tuple[str, ...], timeout: float,
                stdin: str | None) -> tuple[CommandResult, bool]:
        ns = node_state(state, self._node)
        if not ns.get("up"):
            return CommandResult(args, EXIT_UNREACHABLE, "",
                                 f"{self._node}: node is down (simulated crash)\n"), False
        forced = faults.apply_command_faults(state, self._node, args, timeout)
        if forced is not None:
            leftover = xen.interrupted_create(args) if forced.timed_out else None
            if leftover is None:
                return forced, False
            # A hung `xl create` that is killed leaves its domain behind, paused, as the real one does.
            made, _ = self._dispatch(state, leftover, timeout, stdin)
            return forced, made.ok
        return self._dispatch(state, args, timeout, stdin)

    def _dispatch(self, state: State, args: tuple[str, ...], timeout: float,
                  stdin: str | None) -> tuple[CommandResult, bool]:
        # The store tracks what a handler changes, so comparing and undoing costs what the command
        # touched, not the size of the cluster.
        point = self.cluster.savepoint()
        ctx = commands.CommandContext(state=state, node=self._node, argv=args, stdin=stdin, timeout=timeout)
        try:
            result = commands.dispatch(ctx)
        except commands.SimAbort as abort:
            self.cluster.rollback_to(point)
            return abort.result, False
        return result, self.cluster.changed_since(point)

    def _context(self, state: State) -> commands.CommandContext:
        return commands.CommandContext(state=state, node=self._node)

    def _require_up(self, state: State) -> None:
        if not node_state(state, self._node).get("up"):
            raise HostFileError(0, f"{self._node}: node is down (simulated crash)")

    def read_file(self, path: str) -> str | None:
        with self.cluster.view() as state:
            return self._read_file(state, path)

    def _read_file(self, state: State, path: str) -> str | None:
        self._require_up(state)
        if _normal(path) in PROC_SYMLINKS:
            # As on a real node: the host seam opens files with O_NOFOLLOW, and these are symlinks.
            raise HostFileError(errno.ELOOP, f"cannot read {path}: Too many levels of symbolic links")
        found = self._context(state).read_file(_normal(path))
        directory = _normal(path).rstrip("/") + "/"
        if found is None and any(f.startswith(directory) for f in state["nodes"][self.node].get("files", {})):
            raise HostFileError(errno.EISDIR, f"cannot read {path}: Is a directory")
        return found

    def list_dir(self, path: str) -> tuple[str, ...]:
        with self.cluster.view() as state:
            return self._list_dir(state, path)

    def _list_dir(self, state: State, path: str) -> tuple[str, ...]:
        self._require_up(state)
        directory = _normal(path).rstrip("/") or "/"
        prefix = "/" if directory == "/" else directory + "/"
        names: set[str] = set()
        paths = list(node_state(state, self._node)["files"]) + list(commands.virtual_paths())
        ctx = self._context(state)
        for candidate in paths:
            if candidate.startswith(prefix):
                rest = candidate[len(prefix):]
                first = rest.split("/", 1)[0]
                if "/" in rest or ctx.read_file(candidate) is not None:
                    names.add(first)
        provider = commands.virtual_dir_provider(directory)
        if provider is not None:
            names.update(provider(ctx))
        return tuple(sorted(names))

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        target = _normal(path)
        if commands.virtual_file_provider(target) is not None:
            raise HostFileError(0, f"refusing to write {target}: it is not a regular file")
        with self.cluster.transaction() as state:
            self._require_up(state)
            files = node_state(state, self._node)["files"]
            if device_index.is_directory(files, target):
                raise HostFileError(21, f"cannot write {target}: Is a directory")
            files[target] = {"content": content, "mode": mode}

    def remove_file(self, path: str) -> None:
        target = _normal(path)
        with self.cluster.transaction() as state:
            self._require_up(state)
            node_state(state, self._node)["files"].pop(target, None)


def _normal(path: str) -> str:
    if not path.startswith("/"):
        raise HostFileError(0, f"expected an absolute path, got {path!r}")
    return posixpath.normpath(path)


__all__ = ["SimHost", "SimStateError"]

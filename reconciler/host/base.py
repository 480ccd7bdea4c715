from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

DEFAULT_TIMEOUT = 60.0

EXIT_TIMEOUT = 124
EXIT_NOT_FOUND = 127


@dataclass(frozen=True)
class CommandResult:
    """What one command did. ``returncode`` is 124 on timeout and 127 when the program is missing."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float = 0.0
    timed_out: bool = False
    not_found: bool = False
    env: tuple[tuple[str, str], ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.not_found

    def describe(self) -> str:
        """One line for error messages: the command and the essence of what it said.

        That is its last line, and before it the first line that says "error" (or "undefined") when that is
        another one: a
        tool that gives up after a chain of errors (``xl create``: "xc: error: panic: ... segment kernel too
        large", then four libxl lines ending in "Destruction of domain failed") names the cause first."""
        said = [line.strip() for line in (self.stderr.strip() or self.stdout.strip()).splitlines() if line.strip()]
        tail = said[-1] if said else ""
        # xl's failed migration says "Domain state is now undefined !" before its closing lines.
        cause = next((line for line in said[:-1] if "error" in line.lower() or "undefined" in line.lower()), "")
        if cause:
            tail = f"{cause[:MAX_CAUSE]} [...] {tail}"
        if self.timed_out:
            state = "timed out"
        elif self.not_found:
            state = "not found"
        else:
            state = f"exit {self.returncode}"
        return f"`{' '.join(self.argv)}` ({state}){': ' + tail if tail else ''}"


MAX_CAUSE = 300


class HostFileError(OSError):
    """A file operation on the host failed (permission, not a regular file, a symlink at the target)."""


@runtime_checkable
class Host(Protocol):
    """One node. Real, simulated and replayed hosts implement this; nothing else touches the node."""

    @property
    def node(self) -> str:
        """The node name this host speaks for."""
        ...

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        """Run ``argv`` (never through a shell) and wait at most ``timeout`` seconds."""
        ...

    def read_file(self, path: str) -> str | None:
        """The text of ``path``, or None when it does not exist."""
        ...

    def list_dir(self, path: str) -> tuple[str, ...]:
        """Sorted entry names of a directory; empty when it does not exist."""
        ...

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        """Write atomically: temporary file, fsync, rename; never through a symlink at ``path``."""
        ...

    def remove_file(self, path: str) -> None:
        """Remove ``path`` if it exists (not following symlinks)."""
        ...


class HostWrapper:
    """A host that changes how commands run and passes everything else to ``inner`` unchanged."""

    def __init__(self, inner: Host) -> None:
        self._inner = inner

    @property
    def node(self) -> str:
        return self._inner.node

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        return self._inner.run(argv, timeout=timeout, stdin=stdin)

    def read_file(self, path: str) -> str | None:
        return self._inner.read_file(path)

    def list_dir(self, path: str) -> tuple[str, ...]:
        return self._inner.list_dir(path)

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        self._inner.write_file(path, content, mode)

    def remove_file(self, path: str) -> None:
        self._inner.remove_file(path)

"""``ReplayHost``: a host that answers from a capture directory (see :mod:`reconciler.host.capture`).

It never touches the machine it runs on: commands and file reads are answered from the capture, in the
order they were recorded (a command captured several times answers with each recording in turn, then
keeps giving the last one). Anything not captured, and every write, is refused with :class:`ReplayError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.host.base import DEFAULT_TIMEOUT, CommandResult, HostFileError
from reconciler.host.capture import CAPTURE_FORMAT, INDEX_NAME
from reconciler.names import name_problem


class ReplayError(RuntimeError):
    """The capture cannot answer: not a capture, an operation it did not record, or a write."""


class _Answers:
    """Recorded answers per key, handed out in order; the last one repeats."""

    def __init__(self) -> None:
        self._entries: dict[Any, list[dict[str, Any]]] = {}
        self._next: dict[Any, int] = {}

    def add(self, key: Any, entry: dict[str, Any]) -> None:
        self._entries.setdefault(key, []).append(entry)

    def take(self, key: Any) -> dict[str, Any] | None:
        entries = self._entries.get(key)
        if not entries:
            return None
        index = self._next.get(key, 0)
        self._next[key] = index + 1
        return entries[min(index, len(entries) - 1)]

    def recorded(self) -> list[Any]:
        return list(self._entries)


class ReplayHost:
    """Answers as the captured node did. ``node`` overrides the node name stored in the capture."""

    def __init__(self, directory: str | os.PathLike[str], node: str | None = None) -> None:
        self.directory = Path(directory).resolve()
        index_path = self.directory / INDEX_NAME
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ReplayError(f"{self.directory} is not a capture: {INDEX_NAME} is missing") from None
        except (OSError, ValueError) as exc:
            raise ReplayError(f"cannot read {index_path}: {exc}") from None
        if not isinstance(index, dict) or index.get("format") != CAPTURE_FORMAT:
            found = index.get("format") if isinstance(index, dict) else None
            raise ReplayError(f"{index_path} is not a capture in format {CAPTURE_FORMAT!r} (found {found!r})")
        self._node = node or str(index.get("node") or "")
        if not self._node:
            raise ReplayError(f"{index_path} names no node; pass one")
        problem = name_problem(self._node)
        if problem is not None:
            raise ReplayError(f"{index_path}: node name {self._node!r} is not safe: {problem}")
        self._commands = _Answers()
        self._files = _Answers()
        self._dirs = _Answers()
        try:
            for entry in index.get("commands", []):
                self._commands.add(tuple(str(a) for a in entry["argv"]), entry)
            for entry in index.get("files", []):
                self._files.add(str(entry["path"]), entry)
            for entry in index.get("dirs", []):
                self._dirs.add(str(entry["path"]), entry)
        except (KeyError, TypeError) as exc:
            raise ReplayError(f"{index_path} has a malformed entry: {exc!r}") from None

    @property
    def node(self) -> str:
        return self._node

    def _stored(self, relative: object) -> str:
        if not isinstance(relative, str):
            raise ReplayError(f"capture {self.directory}: expected a stored file name, got {relative!r}")
        target = (self.directory / relative).resolve()
        if not target.is_relative_to(self.directory):
            raise ReplayError(f"capture {self.directory}: {relative!r} points outside the capture")
        try:
            return target.read_text(encoding="utf-8")
        except OSError as exc:
            raise ReplayError(f"capture {self.directory}: cannot read {relative}: {exc.strerror}") from None

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        args = tuple(argv)
        entry = self._commands.take(args)
        if entry is None:
            captured = "; ".join(" ".join(key) for key in self._commands.recorded()) or "none"
            raise ReplayError(f"`{' '.join(args)}` was not captured in {self.directory} (captured: {captured})")
        return CommandResult(
            argv=args,
            returncode=int(entry["exit"]),
            stdout=self._stored(entry["stdout"]),
            stderr=self._stored(entry["stderr"]),
            duration_s=float(entry.get("duration_s", 0.0)),
            timed_out=bool(entry.get("timed_out", False)),
            not_found=bool(entry.get("not_found", False)),
        )

    def read_file(self, path: str) -> str | None:
        entry = self._files.take(path)
        if entry is None:
            raise ReplayError(f"{path} was not read when {self.directory} was captured")
        if "error" in entry:
            raise HostFileError(int(entry.get("errno") or 0), str(entry["error"]))
        if not entry.get("exists"):
            return None
        return self._stored(entry["content"])

    def list_dir(self, path: str) -> tuple[str, ...]:
        entry = self._dirs.take(path)
        if entry is None:
            raise ReplayError(f"directory {path} was not listed when {self.directory} was captured")
        if "error" in entry:
            raise HostFileError(int(entry.get("errno") or 0), str(entry["error"]))
        return tuple(str(name) for name in entry.get("entries", []))

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        raise ReplayError(f"refusing to write {path}: a replayed node ({self.directory}) is read-only")

    def remove_file(self, path: str) -> None:
        raise ReplayError(f"refusing to remove {path}: a replayed node ({self.directory}) is read-only")

"""``CapturingHost``: a host decorator that records every command and file read into a directory.

The directory is a support bundle anyone can read and replay (:mod:`reconciler.host.replay`):

    index.json                  format, node, when, and in order: every command (argv, exit code, flags,
                                duration, the names of its output files), every file read, every listing
    commands/001-vgs.stdout     one file per output stream, exactly as the tool printed it
    files/proc/drbd             the files read, under their own path

Writes pass through to the wrapped host and are listed in the index (path and mode; their content is
what the reconciler rendered, so it is kept too, under ``written/``). The index is rewritten after every
operation, so a capture interrupted half-way still holds everything up to that point.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.host.base import DEFAULT_TIMEOUT, CommandResult, Host, HostFileError

CAPTURE_FORMAT = "reconciler-capture/1"
INDEX_NAME = "index.json"

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_.+-]+")


def _slug(argv: Sequence[str]) -> str:
    words = list(argv[:2]) if len(argv) > 1 and not argv[1].startswith("-") else list(argv[:1])
    slug = _UNSAFE_CHARS.sub("_", "-".join(words)).strip("_.")
    return slug[:60] or "command"


def stored_path(prefix: str, path: str) -> str:
    """Where a node path is kept inside the capture: ``files/etc/drbd.d/vm100.res``."""
    parts = [p for p in path.split("/") if p not in ("", ".", "..")]
    return "/".join([prefix, *parts])


class CapturingHost:
    """Forwards everything to ``inner`` and records it under ``directory`` (created if needed, must be empty)."""

    def __init__(self, inner: Host, directory: str | os.PathLike[str]) -> None:
        self.inner = inner
        self.directory = Path(directory)
        # Owned files may hold DRBD shared secrets: the capture is readable by its owner only.
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if any(self.directory.iterdir()):
            # Mixing two captures would make a support bundle lie about what one pass saw.
            raise FileExistsError(f"capture directory {self.directory} is not empty; choose a new one")
        self._started = datetime.now(UTC).isoformat(timespec="seconds")
        self._commands: list[dict[str, Any]] = []
        self._files: list[dict[str, Any]] = []
        self._dirs: list[dict[str, Any]] = []
        self._writes: list[dict[str, Any]] = []
        self._save_index()

    @property
    def node(self) -> str:
        return self.inner.node

    def _store(self, relative: str, content: str) -> str:
        target = self.directory / relative
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        return relative

    def _save_index(self) -> None:
        index = {
            "format": CAPTURE_FORMAT,
            "node": self.inner.node,
            "captured_at": self._started,
            "reconciler_version": __version__,
            "commands": self._commands,
            "files": self._files,
            "dirs": self._dirs,
            "writes": self._writes,
        }
        tmp = self._store(f".{INDEX_NAME}.tmp", json.dumps(index, indent=2) + "\n")
        (self.directory / tmp).replace(self.directory / INDEX_NAME)

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        result = self.inner.run(argv, timeout=timeout, stdin=stdin)
        seq = len(self._commands) + 1
        base = f"commands/{seq:03d}-{_slug(result.argv)}"
        entry: dict[str, Any] = {
            "seq": seq,
            "argv": list(result.argv),
            "exit": result.returncode,
            "timed_out": result.timed_out,
            "not_found": result.not_found,
            "duration_s": round(result.duration_s, 6),
            "timeout_s": timeout,
            "stdout": self._store(base + ".stdout", result.stdout),
            "stderr": self._store(base + ".stderr", result.stderr),
        }
        if stdin is not None:
            entry["stdin"] = self._store(base + ".stdin", stdin)
        self._commands.append(entry)
        self._save_index()
        return result

    def _store_file(self, path: str, content: str) -> str:
        """Read again with other content (a later pass), a file is kept beside the first copy."""
        relative = stored_path("files", path)
        copy = 1
        while (self.directory / relative).exists():
            if (self.directory / relative).read_text(encoding="utf-8") == content:
                return relative
            copy += 1
            relative = stored_path(f"files.{copy}", path)
        return self._store(relative, content)

    def read_file(self, path: str) -> str | None:
        entry: dict[str, Any] = {"path": path}
        try:
            content = self.inner.read_file(path)
        except HostFileError as exc:
            entry.update(exists=None, error=exc.strerror or str(exc), errno=exc.errno)
            self._files.append(entry)
            self._save_index()
            raise
        entry["exists"] = content is not None
        if content is not None:
            entry["content"] = self._store_file(path, content)
        self._files.append(entry)
        self._save_index()
        return content

    def list_dir(self, path: str) -> tuple[str, ...]:
        try:
            entries = self.inner.list_dir(path)
        except HostFileError as exc:
            self._dirs.append({"path": path, "error": exc.strerror or str(exc), "errno": exc.errno})
            self._save_index()
            raise
        self._dirs.append({"path": path, "entries": list(entries)})
        self._save_index()
        return entries

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        self.inner.write_file(path, content, mode)
        self._writes.append({"op": "write", "path": path, "mode": oct(mode),
                             "content": self._store(stored_path("written", path), content)})
        self._save_index()

    def remove_file(self, path: str) -> None:
        self.inner.remove_file(path)
        self._writes.append({"op": "remove", "path": path})
        self._save_index()

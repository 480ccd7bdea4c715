"""The real host: subprocess without a shell, atomic file writes."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence

from reconciler.host.base import DEFAULT_TIMEOUT, EXIT_NOT_FOUND, EXIT_TIMEOUT, CommandResult, HostFileError


class RealHost:
    """Runs commands on this machine. ``env`` adds variables (for example ``LVM_SYSTEM_DIR``)."""

    def __init__(self, node: str | None = None, env: Mapping[str, str] | None = None) -> None:
        self._node = node or socket.gethostname()
        self._env = dict(env or {})

    @property
    def node(self) -> str:
        return self._node

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        args = tuple(argv)
        if not args or not all(isinstance(a, str) for a in args):
            raise TypeError(f"argv must be a non-empty sequence of strings, got {argv!r}")
        env = {**os.environ, **self._env, "LC_ALL": "C", "LANG": "C"}
        started = time.monotonic()
        try:
            proc = subprocess.run(
                args,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                check=False,
                stdin=None if stdin is not None else subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            return CommandResult(args, EXIT_NOT_FOUND, "", f"{args[0]}: {exc.strerror}", time.monotonic() - started,
                                 not_found=True)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            return CommandResult(args, EXIT_TIMEOUT, out, err + f"\ntimed out after {timeout:g}s",
                                 time.monotonic() - started, timed_out=True)
        return CommandResult(args, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)

    def read_file(self, path: str) -> str | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise HostFileError(exc.errno, f"cannot read {path}: {exc.strerror}") from exc
        with os.fdopen(fd, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def list_dir(self, path: str) -> tuple[str, ...]:
        try:
            return tuple(sorted(os.listdir(path)))
        except FileNotFoundError:
            return ()

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        directory = os.path.dirname(path) or "."
        try:
            existing = os.lstat(path)
        except FileNotFoundError:
            existing = None
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            raise HostFileError(0, f"refusing to write {path}: it exists and is not a regular file "
                                   "(a symlink or device there is not ours to replace)")
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".reconciler-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def remove_file(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return

"""The real host: subprocess without a shell, atomic file writes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence

from reconciler.host.atomic import write_atomic
from reconciler.host.base import DEFAULT_TIMEOUT, EXIT_NOT_FOUND, EXIT_TIMEOUT, CommandResult, HostFileError

EXIT_NOT_EXECUTABLE = 126
# When set, every command this host runs is appended to that file as one JSON line (argv, exit code,
# seconds): an audit of exactly what touched the node, e.g. to prove that a pass changed nothing.
COMMAND_LOG_ENV = "RECONCILER_COMMAND_LOG"


class RealHost:
    """Runs commands on this machine. ``env`` adds variables (for example ``LVM_SYSTEM_DIR``)."""

    def __init__(self, node: str | None = None, env: Mapping[str, str] | None = None) -> None:
        self._node = node or socket.gethostname()
        self._env = dict(env or {})
        self._command_log = os.environ.get(COMMAND_LOG_ENV) or None

    @property
    def node(self) -> str:
        return self._node

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        result = self._run(argv, timeout=timeout, stdin=stdin)
        if self._command_log is not None:
            self._log(result)
        return result

    def _log(self, result: CommandResult) -> None:
        line = json.dumps({"time": round(time.time(), 3), "argv": list(result.argv), "rc": result.returncode,
                           "seconds": round(result.duration_s, 3)})
        try:
            with open(self._command_log or "", "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError:
            # An audit log that cannot be written must not stop the node's convergence.
            pass

    def _run(self, argv: Sequence[str], *, timeout: float, stdin: str | None) -> CommandResult:
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
                # A label or path in a non-UTF-8 encoding must not crash a whole observation pass.
                encoding="utf-8",
                errors="replace",
                timeout=timeout,
                env=env,
                check=False,
                stdin=None if stdin is not None else subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            return CommandResult(args, EXIT_NOT_FOUND, "", f"{args[0]}: {exc.strerror}", time.monotonic() - started,
                                 not_found=True)
        except OSError as exc:
            # Present but not runnable (no execute permission, wrong format): the shell's 126.
            return CommandResult(args, EXIT_NOT_EXECUTABLE, "", f"{args[0]}: {exc.strerror}",
                                 time.monotonic() - started)
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
        except OSError as exc:
            raise HostFileError(exc.errno, f"cannot list {path}: {exc.strerror}") from exc

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        write_atomic(path, content, mode)

    def remove_file(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return


def follow(argv: Sequence[str]) -> subprocess.Popen[str]:
    """Start a command that streams events (e.g. ``drbdsetup events2``); the caller reads its stdout line by
    line and terminates it. Its stderr is discarded; a stream that ends is the caller's signal to fall back."""
    args = tuple(argv)
    if not args or not all(isinstance(a, str) for a in args):
        raise TypeError(f"argv must be a non-empty sequence of strings, got {argv!r}")
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, encoding="utf-8", errors="replace", bufsize=1,
                            env={**os.environ, "LC_ALL": "C", "LANG": "C"}, start_new_session=True)

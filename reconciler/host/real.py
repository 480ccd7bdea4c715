"""The real host: subprocess without a shell, atomic file writes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

from reconciler.host.atomic import write_atomic
from reconciler.host.base import DEFAULT_TIMEOUT, EXIT_NOT_FOUND, EXIT_TIMEOUT, CommandResult, HostFileError

EXIT_NOT_EXECUTABLE = 126
# When set, every command this host runs is appended to that file as one JSON line (argv, exit code,
# seconds): an audit of exactly what touched the node, e.g. to prove that a pass changed nothing.
COMMAND_LOG_ENV = "RECONCILER_COMMAND_LOG"


LEFTOVER_WAIT = 5.0


def _kill_session(proc: subprocess.Popen[str]) -> None:
    """SIGKILL to the command's whole session (it leads its own process group), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    # One stuck in the kernel (D state) goes when its I/O does; we do not wait for it longer.
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=LEFTOVER_WAIT)


def _leftovers(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """What a killed command had written; the pipes close once the whole group is gone."""
    try:
        out, err = proc.communicate(timeout=LEFTOVER_WAIT)
    except subprocess.TimeoutExpired:
        return "", ""
    return out or "", err or ""


class RealHost:
    """Runs commands on this machine. ``env`` adds variables (for example ``LVM_SYSTEM_DIR``)."""

    def __init__(self, node: str | None = None, env: Mapping[str, str] | None = None) -> None:
        self._node = node or os.uname().nodename
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
            # A session of its own, so that a timeout kills what the command started too: `drbdadm show-gi`
            # runs drbdmeta, which holds DRBD's per-minor lock; killing drbdadm alone left drbdmeta holding
            # it, and every later drbdmeta on that minor failed with exit 20.
            proc = subprocess.Popen(
                args,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                # A label or path in a non-UTF-8 encoding must not crash a whole observation pass.
                encoding="utf-8",
                errors="replace",
                env=env,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            return CommandResult(args, EXIT_NOT_FOUND, "", f"{args[0]}: {exc.strerror}", time.monotonic() - started,
                                 not_found=True)
        except OSError as exc:
            # Present but not runnable (no execute permission, wrong format): the shell's 126.
            return CommandResult(args, EXIT_NOT_EXECUTABLE, "", f"{args[0]}: {exc.strerror}",
                                 time.monotonic() - started)
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_session(proc)
            out, err = _leftovers(proc)
            return CommandResult(args, EXIT_TIMEOUT, out, err + f"\ntimed out after {timeout:g}s",
                                 time.monotonic() - started, timed_out=True)
        except BaseException:
            # Interrupted (Ctrl-C, a stop): the command's session goes with us.
            _kill_session(proc)
            raise
        return CommandResult(args, proc.returncode, out, err, time.monotonic() - started)

    def read_file(self, path: str) -> str | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise HostFileError(exc.errno, f"cannot read {path}: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError as exc:
            # A directory opens but does not read (/etc/xen/scripts among the domain configs): the caller's
            # error, as for a file that cannot be opened.
            raise HostFileError(exc.errno, f"cannot read {path}: {exc.strerror}") from exc

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

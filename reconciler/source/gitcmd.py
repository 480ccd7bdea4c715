"""Every git command of the daemon runs here: an argv list, a hard timeout, no terminal prompts.

GitPython's documentation warns that long-running processes leak ``git cat-file`` helpers and can hang
on a stuck remote. So the daemon never uses GitPython's object database (no ``Repo.commit()`` and the
like, which keep persistent helper processes); it only runs one-shot commands through
``git.Git.execute`` with ``kill_after_timeout``, which kills the command and its children when the
time is up. A stuck ``fetch`` therefore costs at most its timeout, and nothing stays behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler.source.errors import GitFailed, GitTimeout

DEFAULT_GIT_TIMEOUT = 30.0
FETCH_TIMEOUT = 120.0

# No prompt may wait for a human: the daemon has no terminal.
_QUIET_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "/bin/false",
    "SSH_ASKPASS": "/bin/false",
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=15 -o ServerAliveInterval=15",
    "GIT_HTTP_LOW_SPEED_LIMIT": "1000",
    "GIT_HTTP_LOW_SPEED_TIME": "30",
    "LC_ALL": "C",
    "LANG": "C",
    # The repository's own config must not make us run hooks or editors.
    "GIT_EDITOR": "/bin/false",
    "GIT_CONFIG_NOSYSTEM": "1",
    # Fetched objects and refs reach the disk before git reports success (git flushes neither fully by
    # default): after a power loss the mirror still holds every revision the daemon judged or put in force.
    "GIT_CONFIG_COUNT": "2",
    "GIT_CONFIG_KEY_0": "core.fsync",
    "GIT_CONFIG_VALUE_0": "all",
    "GIT_CONFIG_KEY_1": "core.fsyncMethod",
    "GIT_CONFIG_VALUE_1": "fsync",
}


@dataclass(frozen=True)
class GitOutput:
    returncode: int
    stdout: bytes
    stderr: str


class GitRunner:
    """Runs ``git ARGS`` in ``cwd`` with a timeout. ``env`` adds variables (e.g. ``GNUPGHOME``)."""

    def __init__(self, cwd: str, env: Mapping[str, str] | None = None) -> None:
        # Imported here: commands that only read the state directory (status, suspend) need no GitPython.
        import git  # noqa: PLC0415

        self._cwd = cwd
        self._git = git.Git(cwd)
        self._env = {**_QUIET_ENV, **(env or {})}
        if "HOME" not in os.environ and "HOME" not in self._env:
            self._env["HOME"] = cwd

    @property
    def cwd(self) -> str:
        return self._cwd

    def output(self, args: Sequence[str], *, timeout: float = DEFAULT_GIT_TIMEOUT,
               env: Mapping[str, str] | None = None, max_file_bytes: int | None = None) -> GitOutput:
        """Run and return the outcome whatever the exit code; raise only on timeout.

        ``max_file_bytes`` caps every file git writes (``prlimit --fsize``): a fetched pack from a server
        that sends more is cut off and the command fails, instead of filling the state directory's disk."""
        argv = tuple(args)
        prefix = _fsize_prefix(max_file_bytes)
        status, out, err = self._git.execute(
            [*prefix, "git", *argv],
            with_extended_output=True,
            with_exceptions=False,
            stdout_as_string=False,
            kill_after_timeout=timeout,
            env={**self._env, **(env or {})},
            strip_newline_in_stdout=False,
        )
        stderr = err.decode(errors="replace") if isinstance(err, bytes) else str(err or "")
        stdout = out if isinstance(out, bytes) else str(out or "").encode()
        if "did not complete in" in stderr and stderr.startswith("Timeout:"):
            raise GitTimeout(argv, timeout)
        return GitOutput(int(status or 0), stdout, stderr)

    def run(self, args: Sequence[str], *, timeout: float = DEFAULT_GIT_TIMEOUT,
            env: Mapping[str, str] | None = None, max_file_bytes: int | None = None) -> str:
        """Run and return stdout as text; raise :class:`GitFailed` on a non-zero exit."""
        result = self.output(args, timeout=timeout, env=env, max_file_bytes=max_file_bytes)
        if result.returncode != 0:
            raise GitFailed(tuple(args), result.returncode, result.stderr)
        return result.stdout.decode(errors="replace")

    def bounded_output(self, args: Sequence[str], *, max_bytes: int, stdin: bytes = b"",
                       timeout: float = DEFAULT_GIT_TIMEOUT) -> GitOutput:
        """Run with ``stdin``; stop reading (and kill git) once stdout passes ``max_bytes``.

        For reading a revision's content, whose size a pusher decides: nothing more than the limit is ever
        held in memory. The caller tells a cut-off answer by its length (``max_bytes + 1``)."""
        argv = ["git", *args]
        env = {**os.environ, **self._env}
        with subprocess.Popen(argv, cwd=self._cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as proc:
            try:
                out, err = _communicate_bounded(proc, stdin, max_bytes, timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise GitTimeout(tuple(args), timeout) from None
        return GitOutput(proc.returncode if proc.returncode is not None else -9, out, err.decode(errors="replace"))


def _fsize_prefix(max_file_bytes: int | None) -> list[str]:
    if max_file_bytes is None:
        return []
    prlimit = shutil.which("prlimit")
    return [prlimit, f"--fsize={max_file_bytes}", "--"] if prlimit else []


def _communicate_bounded(proc: subprocess.Popen[bytes], stdin: bytes, max_bytes: int,
                         timeout: float) -> tuple[bytes, bytes]:
    import selectors  # noqa: PLC0415  (only this reader needs it)
    import time  # noqa: PLC0415

    if proc.stdin is None or proc.stdout is None or proc.stderr is None:
        raise OSError("git was started without pipes")
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    errs: list[bytes] = []
    got = 0
    pending = memoryview(stdin)
    with selectors.DefaultSelector() as sel:
        if pending:
            sel.register(proc.stdin, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
        sel.register(proc.stdout, selectors.EVENT_READ)
        sel.register(proc.stderr, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(proc.args, timeout)
            for key, _ in sel.select(min(left, 1.0)):
                if key.fileobj is proc.stdin:
                    try:
                        written = os.write(proc.stdin.fileno(), pending[:65536])
                    except BrokenPipeError:  # git stopped reading: it failed, and says why on stderr
                        written = len(pending)
                    pending = pending[written:]
                    if not pending:
                        sel.unregister(proc.stdin)
                        proc.stdin.close()
                    continue
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                if key.fileobj is proc.stdout:
                    chunks.append(data)
                    got += len(data)
                    if got > max_bytes:
                        proc.kill()
                        proc.wait()
                        return b"".join(chunks)[: max_bytes + 1], b"".join(errs)
                elif sum(map(len, errs)) < 65536:
                    errs.append(data)
    left = max(0.1, deadline - time.monotonic())
    proc.wait(timeout=left)
    return b"".join(chunks), b"".join(errs)

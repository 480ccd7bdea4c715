"""Every git command of the daemon runs here: an argv list, a hard timeout, no terminal prompts.

GitPython's documentation warns that long-running processes leak ``git cat-file`` helpers and can hang
on a stuck remote. So the daemon never uses GitPython's object database (no ``Repo.commit()`` and the
like, which keep persistent helper processes); it only runs one-shot commands through
``git.Git.execute`` with ``kill_after_timeout``, which kills the command and its children when the
time is up. A stuck ``fetch`` therefore costs at most its timeout, and nothing stays behind.
"""

from __future__ import annotations

import os
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
               env: Mapping[str, str] | None = None) -> GitOutput:
        """Run and return the outcome whatever the exit code; raise only on timeout."""
        argv = tuple(args)
        status, out, err = self._git.execute(
            ["git", *argv],
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
            env: Mapping[str, str] | None = None) -> str:
        """Run and return stdout as text; raise :class:`GitFailed` on a non-zero exit."""
        result = self.output(args, timeout=timeout, env=env)
        if result.returncode != 0:
            raise GitFailed(tuple(args), result.returncode, result.stderr)
        return result.stdout.decode(errors="replace")

"""A real git repository in a temporary directory, driven with the git command line (test helper)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Operator",
    "GIT_AUTHOR_EMAIL": "ops@example.org",
    "GIT_COMMITTER_NAME": "Test Operator",
    "GIT_COMMITTER_EMAIL": "ops@example.org",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, **GIT_ENV, **(env or {})})
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


class WorkRepo:
    """A working repository with a bare 'server' it pushes to (like a forge), or used directly."""

    def __init__(self, root: Path, *, bare_server: bool = True) -> None:
        self.work = root / "work"
        self.work.mkdir(parents=True)
        git(self.work, "init", "-q", "-b", "main")
        self.server: Path | None = None
        if bare_server:
            self.server = root / "server.git"
            git(root, "init", "-q", "--bare", "-b", "main", str(self.server))
            git(self.work, "remote", "add", "origin", str(self.server))

    @property
    def url(self) -> str:
        return str(self.server or self.work)

    def write(self, relpath: str, content: str) -> None:
        path = self.work / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)

    def commit(self, message: str, files: dict[str, str] | None = None, *, sign_args: tuple[str, ...] = (),
               push: bool = True) -> str:
        for relpath, content in (files or {}).items():
            self.write(relpath, content)
        git(self.work, "add", "-A")
        git(self.work, *sign_args, "commit", "-q", "--allow-empty", "-m", message)
        if push and self.server is not None:
            git(self.work, "push", "-q", "--force", "origin", "main")
        return self.head()

    def head(self) -> str:
        return git(self.work, "rev-parse", "HEAD")

    def reset_hard(self, sha: str) -> None:
        git(self.work, "reset", "-q", "--hard", sha)

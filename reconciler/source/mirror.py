"""A bare mirror of the desired-state branch inside the state directory, and exports of its revisions."""

from __future__ import annotations

import re
from pathlib import Path

from reconciler.model.status import RevisionInfo
from reconciler.printable import escape
from reconciler.source.errors import GitFailed, SourceError
from reconciler.source.gitcmd import FETCH_TIMEOUT, GitRunner
from reconciler.source.treeread import export_tree

# Every file a fetch writes (a pack, or a loose object) is capped: a server cannot fill the state
# directory's disk with one huge pack. Desired-state repositories are kilobytes to a few megabytes.
MAX_FETCH_FILE_BYTES = 1024 * 1024 * 1024
_SHA_RE = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
_BRANCH_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
_SUBDIR_RE = re.compile(r"[A-Za-z0-9_.+-]+(/[A-Za-z0-9_.+-]+)*")


def check_sha(value: str) -> str:
    if not _SHA_RE.fullmatch(value):
        raise SourceError(f"{value!r} is not a full commit id (40 or 64 lowercase hex digits)")
    return value


def check_branch(value: str) -> str:
    if not _BRANCH_RE.fullmatch(value) or ".." in value or value.endswith((".lock", "/")) or "//" in value:
        raise SourceError(f"{value!r} is not an acceptable branch name")
    return value


def check_subdir(value: str) -> str:
    value = value.strip("/")
    if value and (not _SUBDIR_RE.fullmatch(value) or ".." in value.split("/")):
        raise SourceError(f"{value!r} is not an acceptable path inside the repository")
    return value


class Mirror:
    """``<state>/repo.git`` tracking one branch of ``url`` as ``refs/remotes/origin/<branch>``."""

    def __init__(self, state_dir: Path, url: str, branch: str, *, fetch_timeout: float = FETCH_TIMEOUT,
                 max_fetch_bytes: int = MAX_FETCH_FILE_BYTES) -> None:
        if url.startswith("-"):
            raise SourceError(f"repository {url!r} must not start with '-'")
        self.url = url
        self.branch = check_branch(branch)
        self.path = state_dir / "repo.git"
        self.fetch_timeout = fetch_timeout
        self.max_fetch_bytes = max_fetch_bytes
        self._ref = f"refs/remotes/origin/{self.branch}"
        self.git = GitRunner(str(state_dir))

    def _in_repo(self, *args: str) -> list[str]:
        return ["--git-dir", str(self.path), *args]

    def ensure(self) -> None:
        """Create the bare mirror once; later calls only keep the remote URL current."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not (self.path / "HEAD").exists():
            self.git.run(["init", "--bare", "--quiet", str(self.path)])
        self.git.run(self._in_repo("config", "remote.origin.url", self.url))
        # Fetched objects only ever come from the one remote; no automatic gc racing our reads.
        self.git.run(self._in_repo("config", "gc.auto", "0"))
        # A fetch always stays one pack file (never hundreds of loose objects), so the size cap on each
        # file written bounds the fetch as a whole.
        self.git.run(self._in_repo("config", "fetch.unpackLimit", "1"))

    def fetch(self) -> str | None:
        """Fetch the branch (forced: a force-push is detected by the source, not refused by git)."""
        self.ensure()
        refspec = f"+refs/heads/{self.branch}:{self._ref}"
        try:
            self.git.run(self._in_repo("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "origin", refspec),
                         timeout=self.fetch_timeout, max_file_bytes=self.max_fetch_bytes)
        except GitFailed as exc:
            largest = self._remove_partial_packs()
            # SIGXFSZ killed git or its index-pack: seen in the exit, in git's words, or in what it left.
            if exc.returncode == -25 or "signal 25" in exc.stderr or largest >= self.max_fetch_bytes:
                raise SourceError(f"git fetch stopped: the server sent a file larger than {self.max_fetch_bytes} "
                                  "bytes (a desired-state repository is far smaller; check the server)") from exc
            raise
        return self.tip()

    def _remove_partial_packs(self) -> int:
        """Remove what a failed fetch left behind (each later one would leave another); the largest size."""
        largest = 0
        leftovers = [*(self.path / "objects" / "pack").glob("tmp_*"), *(self.path / "objects").glob("tmp_obj_*")]
        for leftover in leftovers:
            try:
                largest = max(largest, leftover.stat().st_size)
                leftover.unlink()
            except OSError:
                continue
        return largest

    def tip(self) -> str | None:
        """The fetched tip of the branch, or None before the first successful fetch."""
        if not (self.path / "HEAD").exists():
            return None
        out = self.git.output(self._in_repo("rev-parse", "--verify", "--quiet", f"{self._ref}^{{commit}}"))
        sha = out.stdout.decode().strip()
        return sha if out.returncode == 0 and _SHA_RE.fullmatch(sha) else None

    def has_commit(self, sha: str) -> bool:
        out = self.git.output(self._in_repo("cat-file", "-e", f"{check_sha(sha)}^{{commit}}"))
        return out.returncode == 0

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        out = self.git.output(self._in_repo("merge-base", "--is-ancestor", check_sha(ancestor), check_sha(descendant)))
        if out.returncode in (0, 1):
            return out.returncode == 0
        raise GitFailed(("merge-base", "--is-ancestor", ancestor, descendant), out.returncode, out.stderr)

    def info(self, sha: str, seen_at: float) -> RevisionInfo:
        text = self.git.run(self._in_repo("show", "-s", "--format=%ct%x00%s", check_sha(sha)))
        stamp, _, summary = text.strip("\n").partition("\x00")
        committed = float(stamp) if stamp.isdigit() else None
        # The subject is whatever the committer wrote; status and logs show it, so it is escaped.
        return RevisionInfo(sha=sha, seen_at=seen_at, committed_at=committed, summary=escape(summary[:200]))

    def export(self, sha: str, subdir: str, dest: Path) -> Path:
        """Write the tree of ``sha`` (only ``subdir`` when given) to ``dest``; return the directory to load.

        Read from the object store, not ``git archive``: see :mod:`reconciler.source.treeread`."""
        check_sha(sha)
        subdir = check_subdir(subdir)
        return export_tree(self.git, str(self.path), sha, subdir, dest, timeout=self.fetch_timeout)

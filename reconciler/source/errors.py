"""Errors of the git source. The loop catches :class:`SourceError` and keeps the last good revision."""

from __future__ import annotations


class SourceError(Exception):
    """The repository could not be read or updated; the revision in force stays in force."""


class GitFailed(SourceError):
    """A git command exited non-zero."""

    def __init__(self, argv: tuple[str, ...], returncode: int, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
        said = essence(stderr)
        super().__init__(f"`git {' '.join(argv)}` failed (exit {returncode}){': ' + said if said else ''}")


_BOILERPLATE = ("Please make sure you have the correct access rights", "and the repository exists")


def essence(stderr: str) -> str:
    """The informative lines of git's stderr (what failed and why), without its generic advice."""
    # ssh frames a changed host key in lines of '@': unframed, the warning itself fits the three lines.
    lines = [line.strip().strip("@").strip() for line in stderr.splitlines()]
    useful = [line for line in lines if line and not line.startswith(_BOILERPLATE)]
    return "; ".join(useful[:3])[:400]


class GitTimeout(SourceError):
    """A git command ran longer than its timeout and was killed."""

    def __init__(self, argv: tuple[str, ...], timeout: float) -> None:
        self.argv = argv
        self.timeout = timeout
        super().__init__(f"`git {' '.join(argv)}` killed after {timeout:g}s")

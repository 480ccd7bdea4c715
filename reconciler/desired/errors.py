"""Problems found in the desired state, each pointing at a file, line and column."""

from __future__ import annotations

import os
from dataclasses import dataclass

from reconciler.printable import escape


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem. ``path`` is relative to the desired-state directory; line and col start at 1."""

    path: str
    line: int
    col: int
    message: str
    hint: str = ""

    def format(self, root: str | None = None) -> str:
        """One line, whatever the file name or value holds: control characters are shown escaped."""
        shown = self.path if root in (None, "", ".") else os.path.normpath(os.path.join(root, self.path))
        text = f"{escape(shown)}:{self.line}:{self.col}: {escape(self.message)}"
        return f"{text} (hint: {escape(self.hint)})" if self.hint else text

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line, self.col, self.message)


class ValidationFailed(Exception):
    """The desired state is invalid; ``issues`` holds every problem found, sorted by file and line."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues: tuple[Issue, ...] = tuple(sorted(issues, key=Issue.sort_key))
        first = self.issues[0].format() if self.issues else "no details"
        super().__init__(f"{len(self.issues)} problem(s) in the desired state; first: {first}")

    def format(self, root: str | None = None) -> str:
        return "\n".join(issue.format(root) for issue in self.issues)


class UnknownNodeError(KeyError):
    """The node is not declared in the cluster file. Like any KeyError, ``str()`` is the quoted node name;
    ``message`` says it in a sentence with the known nodes."""

    def __init__(self, node: str, known: tuple[str, ...]) -> None:
        super().__init__(node)
        self.node = node
        self.message = f"node {node!r} is not declared in cluster.yaml (known: {', '.join(known)})"

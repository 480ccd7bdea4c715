"""Check the rest of a file whose schema validation failed: the independent problems must show too.

A value of the wrong type makes pydantic reject the whole file, which would hide every other mistake in
it (a primary that is not one of the nodes, a port taken by another VM) until the first one is fixed.
So each rejected value is replaced by a placeholder the schema accepts (or removed, where none fits) and
the remainder is validated again; the file's other rules, and the checks across files, then run on it.
Their findings inside a replaced value (or the list it was an item of) are dropped: they would be about
the placeholder, not about what the operator wrote. The remainder never becomes desired
state: the file already has an issue, so the load as a whole fails.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from reconciler.desired.errors import Issue
from reconciler.desired.schema_issues import _clean_loc
from reconciler.desired.yamlload import Document, KeyPath, YamlValue

M = TypeVar("M", bound=BaseModel)

# Removing a value can only reveal errors of its parents (rarely): a few rounds settle every real file.
MAX_ROUNDS = 4


@dataclass(frozen=True)
class Span:
    """A region of one file, 1-based lines and columns, end inclusive."""

    path: str
    start: tuple[int, int]
    end: tuple[int, int]

    def holds(self, issue: Issue) -> bool:
        return issue.path == self.path and self.start <= (issue.line, issue.col) <= self.end


@dataclass(frozen=True)
class Remainder(Generic[M]):
    spec: M
    document: Document
    removed: tuple[Span, ...]

    def keep(self, issues: Iterable[Issue]) -> list[Issue]:
        """The issues that are not about a removed value."""
        return [issue for issue in issues if not any(span.holds(issue) for span in self.removed)]


def _order(path: KeyPath) -> list[tuple[int, int | str]]:
    return [(0, step) if isinstance(step, int) else (1, step) for step in path]


def _without(value: YamlValue, paths: Sequence[KeyPath]) -> YamlValue:
    pruned = copy.deepcopy(value)
    # Deepest and last list items first, so that removing one does not shift the others.
    for path in sorted(paths, key=_order, reverse=True):
        # Any: a step that does not fit raises KeyError, IndexError or TypeError, which the caller expects.
        parent: Any = pruned
        for step in path[:-1]:
            parent = parent[step]
        del parent[path[-1]]
    return pruned


# Tried in turn for a required value that had to be removed; the first the schema accepts there stands in.
_PLACEHOLDERS: tuple[YamlValue, ...] = (1, "x", "1G", True, 64, [], {}, "present")


def _set(value: YamlValue, path: KeyPath, item: YamlValue) -> YamlValue:
    changed = copy.deepcopy(value)
    parent: Any = changed  # as in _without
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = item
    return changed


def _with_placeholder(model: type[BaseModel], value: YamlValue, path: KeyPath) -> YamlValue | None:
    for candidate in _PLACEHOLDERS:
        try:
            trial = _set(value, path, candidate)
        except (KeyError, IndexError, TypeError):
            return None
        try:
            model.model_validate(trial)
        except ValidationError as exc:
            if any(_clean_loc(e["loc"], trial)[0][:len(path)] == path for e in exc.errors(include_url=False)):
                continue
        return trial
    return None


def _span(document: Document, path: KeyPath) -> Span | None:
    # A removed list item changes the list's length: its whole list is masked.
    target = path[:-1] if path and isinstance(path[-1], int) else path
    key, node = document.node_at(target)
    first = key or node
    if node is None or first is None:
        return None
    return Span(document.path, (first.start_mark.line + 1, first.start_mark.column + 1),
                (node.end_mark.line + 1, node.end_mark.column + 1))


def validate_remainder(model: type[M], document: Document) -> Remainder[M] | None:
    """The file validated without the values the schema rejects; None when that leaves nothing to check
    (a required key missing or rejected, or the file not a mapping)."""
    value = document.value
    removed: list[KeyPath] = []
    for _ in range(MAX_ROUNDS):
        try:
            spec = model.model_validate(value)
        except ValidationError as exc:
            paths: list[KeyPath] = []
            errors = exc.errors(include_url=False)
            for error in errors:
                keypath, _ = _clean_loc(error["loc"], value)
                if error["type"] == "missing":
                    # A required value we removed: stand in a placeholder (findings there are masked). A key
                    # the operator left out is reported already and leaves nothing to check.
                    if keypath not in removed:
                        return None
                    value = _with_placeholder(model, value, keypath)
                    if value is None:
                        return None
                    continue
                if not keypath:
                    return None
                # A placeholder the schema accepts keeps the rest of the VM resolvable (a removed memory
                # would be reported as missing, and hide the checks that need a whole VM).
                trial = _with_placeholder(model, value, keypath) if error["type"] != "extra_forbidden" else None
                if trial is not None:
                    value = trial
                    removed.append(keypath)
                else:
                    paths.append(keypath)
            if paths:
                try:
                    value = _without(value, sorted(set(paths), key=_order))
                except (KeyError, IndexError, TypeError):
                    return None
                removed += paths
            continue
        spans = tuple(span for span in (_span(document, path) for path in removed) if span is not None)
        return Remainder(spec, Document(document.path, document.text, value), spans)
    return None

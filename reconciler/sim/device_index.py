"""Indexes of a node's devices: who holds what open, and which LV or dm device has a minor number.

Each is an :class:`~reconciler.sim.entry_index.EntryIndex` over one split map of the node (its dm devices,
its domains, each VG's LVs, the maps other modules register holders in), so that ``open_count`` and the
resolution of ``253:N`` cost the same on a node of 10 VMs and of 1,000. Every function returns None when
the state is not a store's own tree (a snapshot): the caller then walks the maps as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from reconciler.sim.entry_index import EntryIndex, index_of

EntryHolders = Callable[[Any], "list[str]"]


class HolderCounts(EntryIndex[tuple[str, ...]]):
    """The device paths (or numbers) each entry holds open, and how many entries hold each."""

    def __init__(self, holders: EntryHolders) -> None:
        super().__init__()
        self._holders = holders
        self.counts: dict[str, int] = {}

    def compute(self, entry: Any) -> tuple[str, ...]:
        return tuple(self._holders(entry))

    def added(self, key: str, value: tuple[str, ...]) -> None:
        counts = self.counts
        for held in value:
            counts[held] = counts.get(held, 0) + 1

    def removed(self, key: str, value: tuple[str, ...]) -> None:
        counts = self.counts
        for held in value:
            left = counts[held] - 1
            if left:
                counts[held] = left
            else:
                del counts[held]


class MinorIndex(EntryIndex[str]):
    """Entries by their ``minor`` as text (as ``253:N`` formats it); an entry without one is left out."""

    def __init__(self) -> None:
        super().__init__()
        self.by_minor: dict[str, set[str]] = {}

    def compute(self, entry: Any) -> str:
        minor = entry.get("minor", _ABSENT) if isinstance(entry, dict) else _ABSENT
        return _ABSENT if minor is _ABSENT else str(minor)

    def added(self, key: str, value: str) -> None:
        if value is not _ABSENT:
            self.by_minor.setdefault(value, set()).add(key)

    def removed(self, key: str, value: str) -> None:
        if value is not _ABSENT:
            keys = self.by_minor[value]
            keys.discard(key)
            if not keys:
                del self.by_minor[value]


_ABSENT: Any = "\0absent"


class DirectoryIndex(EntryIndex[tuple[str, ...]]):
    """The directories a map of files keyed by path implies: every prefix of a key that a "/" follows."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def compute_keyed(self, key: str, entry: Any) -> tuple[str, ...]:
        return tuple(key[:i] for i, char in enumerate(key) if char == "/")

    def added(self, key: str, value: tuple[str, ...]) -> None:
        for directory in value:
            self.counts[directory] = self.counts.get(directory, 0) + 1

    def removed(self, key: str, value: tuple[str, ...]) -> None:
        for directory in value:
            left = self.counts[directory] - 1
            if left:
                self.counts[directory] = left
            else:
                del self.counts[directory]


def holder_counts(split: Any, holders: EntryHolders) -> Mapping[str, int] | None:
    """How many entries of ``split`` hold each device (per ``holders(entry)``); None for a plain map."""
    found = index_of(split, ("holders", holders), lambda: HolderCounts(holders))
    return None if found is None else found.counts


def is_directory(files: Any, path: str) -> bool:
    """Whether some key of the map ``files`` lies below ``path`` (``key.startswith(path + "/")``)."""
    found = index_of(files, "directories", DirectoryIndex) if files else None
    if found is None:
        return any(existing.startswith(path + "/") for existing in files)
    return path in found.counts


def with_minor(split: Any, minor: str) -> AbstractSet[str] | None:
    """The keys of the entries of ``split`` whose minor is ``minor`` (text); None for a plain map."""
    found = index_of(split, "minor", MinorIndex)
    return None if found is None else found.by_minor.get(minor, _NO_KEYS)


_NO_KEYS: frozenset[str] = frozenset()

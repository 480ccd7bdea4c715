"""Indexes over one split map of the simulated state, kept in step with the store instead of recomputed.

A question such as "what holds ``253:7`` open" or "which extents of this VG are in use" used to walk every
entry of a map (every dm device, every LV) at every command, so a command cost grew with the cluster. An
:class:`EntryIndex` keeps one value per entry of a split map (see :mod:`reconciler.sim.store`), computed
from that entry alone, and an aggregate of those values that its subclass maintains. Before each use it
brings itself up to date by recomputing only the entries that changed since: those the store's change log
names (commits here, rows read in from other writers), those changed in the open transaction (recomputed
at every use while they are, since a plain container put into the tree is not tracked until the commit),
and those it saw changed in a transaction before. A map that is not the store's own (a snapshot, or a
plain dict put in its place in the open transaction) is computed from scratch, as is everything after a
full reload. The answers are therefore those of a walk over the live tree, only cheaper.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from reconciler.sim.store import ShardStore, owner_of

V = TypeVar("V")
IndexT = TypeVar("IndexT", bound="EntryIndex[Any]")


class EntryIndex(Generic[V]):
    """One value per entry of a split map (``compute(entry)``), and the subclass's aggregate of them."""

    def __init__(self) -> None:
        self.values: dict[str, V] = {}
        self._split: Any = None  # the map the values were computed from (held: its identity is the check)
        self._position: tuple[int, int] = (-1, 0)
        self._provisional: set[str] = set()  # entries changed in a transaction when last synced
        self._broken: set[str] = set()  # entries whose value could not be computed (malformed)

    @property
    def usable(self) -> bool:
        return not self._broken

    def compute(self, entry: Any) -> V:
        raise NotImplementedError

    def compute_keyed(self, key: str, entry: Any) -> V:
        """The value of the entry at ``key`` (by default from the entry alone)."""
        return self.compute(entry)

    def added(self, key: str, value: V) -> None:
        """An entry's value joins the aggregate."""

    def removed(self, key: str, value: V) -> None:
        """An entry's value leaves the aggregate."""

    def sync(self, store: ShardStore, split: Any) -> None:
        path: tuple[str, ...] = split._t.path
        logged = store.logged_since(self._position) if split is self._split else None
        dirty = [p[-1] for p in store.dirty_paths() if len(p) == len(path) + 1 and p[:-1] == path]
        if logged is None:
            for key, value in self.values.items():
                self.removed(key, value)
            self.values = {}
            self._broken.clear()
            keys: set[str] = set(dict.keys(split))
        else:
            keys = set(self._provisional)
            depth = len(path) + 1
            keys.update(p[-1] for p in logged if len(p) == depth and p[:-1] == path)
            keys.update(dirty)
        for key in keys:
            old = self.values.pop(key, _NONE)
            if old is not _NONE:
                self.removed(key, old)
            self._broken.discard(key)
            entry = dict.get(split, key, _NONE)
            if entry is _NONE:
                continue
            try:
                value = self.compute_keyed(key, entry)
            except Exception:
                self._broken.add(key)
                continue
            self.values[key] = value
            self.added(key, value)
        self._split = split
        self._position = store.position()
        self._provisional = set(dirty)


_NONE: Any = object()


def index_of(split: Any, kind: Hashable, make: Callable[[], IndexT]) -> IndexT | None:
    """The up-to-date index of type ``kind`` over the split map ``split``; None when ``split`` is not a
    store's own map (the caller then walks it)."""
    store = owner_of(split)
    if store is None:
        return None
    key = (kind, split._t.path)
    found: IndexT | None = store.indexes.get(key)
    if found is None:
        found = store.indexes[key] = make()
    found.sync(store, split)
    return found if found.usable else None

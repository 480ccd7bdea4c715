"""Where a simulated cluster's state is kept: shards in SQLite, and a parsed copy per process.

The state is one JSON tree (see :mod:`reconciler.sim.state`), but it is not stored as one document: a
1,000-VM cluster's state is ~12 MB, and re-reading and re-writing it for every command made the simulator
quadratic in the number of VMs. Instead the tree is cut into *shards* at the maps listed in
:data:`SPLIT_MAPS` (the nodes, each node's VGs, LVs, dm devices, files, domains and DRBD resources, the
block-device contents, the oracle's per-resource books): every entry of such a map is a row of
``state.db`` (its JSON, with the split maps inside it written as ``{}``), and a command reads and writes
only the rows it touches.

Each :class:`ShardStore` keeps the whole tree parsed in memory and knows what changed:

* Every dict and list in the tree is a :class:`TrackedDict` / :class:`TrackedList` (subclasses of the
  builtins, so handlers keep treating the state as plain JSON data) whose mutating methods mark their
  shard dirty; the maps in :data:`SPLIT_MAPS` are :class:`SplitDict`, whose mutations mark the entry
  they change. Reads run at builtin speed. A plain container put into the tree is noticed through the
  assignment that put it there (which marks its shard), and is replaced by tracked copies when the
  shard is saved.
* A commit serialises the dirty shards only, writes the ones whose text changed in one SQLite
  transaction, and bumps a generation number; a rollback re-parses the dirty shards from their last
  saved text. A savepoint does the same within a transaction (a failed command inside a larger one).
* Before each transaction the store compares the database's ``epoch:generation`` with its own; when
  another process (or another store in this one) wrote, it re-reads only the rows written since (every
  row carries the generation that wrote it; a removed shard leaves a row without a body).

The caller (``SimCluster``) holds the cluster's ``flock`` around every call, which serialises the
processes; SQLite's write-ahead log makes a write all-or-nothing if the writer dies mid-commit.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, SupportsIndex

Path = tuple[str, ...]
State = dict[str, Any]

# Maps whose entries are stored one per row ("*": any key). Each is a dict of entries of one kind, which
# a command touches one or a few at a time; everything else lives in the row of its nearest entry.
SPLIT_MAPS: tuple[Path, ...] = (
    (),
    ("nodes",),
    ("nodes", "*"),
    ("nodes", "*", "vgs"),
    ("nodes", "*", "vgs", "*", "lvs"),
    ("nodes", "*", "dm"),
    ("nodes", "*", "files"),
    ("nodes", "*", "domains"),
    ("nodes", "*", "drbd", "resources"),
    ("nodes", "*", "drbd", "last_keys"),
    ("disks",),
    ("oracle",),
    ("oracle", "acked"),
    ("oracle", "domains"),
    ("oracle", "primaries"),
    ("oracle", "dual"),
)

# Split maps kept in the order their keys were added instead of sorted: nothing observes their order (the
# block-device contents are looked up by key, and the one walk over them, DRBD's outdate of a peer, changes
# each record it finds whatever the order), and re-sorting the largest map of the tree at each commit that adds
# a key cost a 1,000-VM cluster more than the command itself. A fresh read still gives them sorted.
UNORDERED_MAPS: frozenset[Path] = frozenset({("disks",)})

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE shards (path TEXT PRIMARY KEY, gen INTEGER NOT NULL, body TEXT);
CREATE INDEX shards_by_gen ON shards (gen);
"""

_MISSING: Any = object()
_INHERITED: list[sqlite3.Connection] = []
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _after_fork_in_child() -> None:
    # The parent's connections must never be finalised here (garbage collection of a store the child drops
    # would close the parent's SQLite handle): set them aside at once, so every store reopens its own.
    for found in list(_STORES):
        found._forget_connection()


_STORES: weakref.WeakSet[ShardStore] = weakref.WeakSet()
os.register_at_fork(after_in_child=_after_fork_in_child)


class StoreError(OSError):
    """The database is missing, unreadable or not a simulator state."""


class _Trie:
    """One position of :data:`SPLIT_MAPS`, with the positions below it."""

    __slots__ = ("children", "inner", "split")

    def __init__(self) -> None:
        self.split = False
        self.children: dict[str, _Trie] = {}
        self.inner = False  # a split map lies strictly below (so a shard here holds split maps)

    def child(self, key: str) -> _Trie | None:
        found = self.children.get(key)
        return found if found is not None else self.children.get("*")


def _build_trie(paths: Iterable[Path]) -> _Trie:
    root = _Trie()
    for path in paths:
        node = root
        for key in path:
            node.inner = True
            node = node.children.setdefault(key, _Trie())
        node.split = True
    return root


_TRIE = _build_trie(SPLIT_MAPS)


def _trie_at(path: Path) -> _Trie | None:
    node: _Trie | None = _TRIE
    for key in path:
        if node is None:
            return None
        node = node.child(key)
    return node


class _Tracker:
    """Shared by every container of one shard: marks that shard (or, for a split map, an entry) dirty."""

    __slots__ = ("dirty", "owner", "path", "unsorted")

    def __init__(self, dirty: set[Path], path: Path, unsorted: dict[int, dict[str, Any]] | None = None,
                 owner: weakref.ref[ShardStore] | None = None) -> None:
        self.dirty = dirty
        self.path = path
        self.owner = owner  # a split map's: the store whose tree it is part of (for indexes over the tree)
        # A split map's: where it puts itself when it gains a key that does not belong at its end (the
        # store sorts those maps when the transaction ends).
        self.unsorted = unsorted


class TrackedDict(dict[str, Any]):
    """A dict of the state: every mutation marks its shard dirty. Copies of it are plain dicts."""

    __slots__ = ("_t",)
    _t: _Tracker

    def _touch(self, _key: Any = None) -> None:
        tracker = self._t
        tracker.dirty.add(tracker.path)

    def __setitem__(self, key: str, value: Any) -> None:
        # Handlers often set a field to the value it has (a settle pass over every resource): that is no
        # change, and marking it would make the commit serialise every shard it passed over.
        if type(value) in _SCALARS:
            old = dict.get(self, key, _MISSING)
            if type(old) is type(value) and old == value:
                return
        self._touch(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        self._touch(key)
        dict.__delitem__(self, key)

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            self._touch(key)
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:
        key, value = dict.popitem(self)
        self._touch(key)
        return key, value

    def clear(self) -> None:
        for key in list(self):
            self._touch(key)
        dict.clear(self)

    def update(self, *args: Any, **kwargs: Any) -> None:
        merged = dict(*args, **kwargs)
        for key in merged:
            self._touch(key)
        dict.update(self, merged)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self._touch(key)
        return dict.setdefault(self, key, default)

    def __ior__(self, other: Any) -> TrackedDict:  # type: ignore[override,misc]
        self.update(other)
        return self

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return plain(self)  # type: ignore[no-any-return]

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        return (dict, (plain(self),))


class SplitDict(TrackedDict):
    """A map of :data:`SPLIT_MAPS`: a mutation marks the entry it changes, not the whole map."""

    __slots__ = ()

    def _touch(self, key: Any = None) -> None:
        tracker = self._t
        tracker.dirty.add((*tracker.path, key))
        # A key about to be added lands at the end. The commit need not reinstall the entry (its text may be
        # unchanged: a key removed and put back), so the map must say itself that it needs sorting.
        unsorted = tracker.unsorted
        if unsorted is not None and not dict.__contains__(self, key) and self and next(reversed(self)) > key:
            unsorted[id(self)] = self


class TrackedList(list[Any]):
    """A list of the state: every mutation marks its shard dirty. Copies of it are plain lists."""

    __slots__ = ("_t",)
    _t: _Tracker

    def _touch(self) -> None:
        tracker = self._t
        tracker.dirty.add(tracker.path)

    def __setitem__(self, index: Any, value: Any) -> None:
        self._touch()
        list.__setitem__(self, index, value)

    def __delitem__(self, index: Any) -> None:
        self._touch()
        list.__delitem__(self, index)

    def __iadd__(self, other: Iterable[Any]) -> TrackedList:  # type: ignore[misc]
        self._touch()
        list.extend(self, other)
        return self

    def __imul__(self, count: SupportsIndex) -> TrackedList:
        self._touch()
        list.__imul__(self, count)
        return self

    def append(self, value: Any) -> None:
        self._touch()
        list.append(self, value)

    def extend(self, values: Iterable[Any]) -> None:
        self._touch()
        list.extend(self, values)

    def insert(self, index: SupportsIndex, value: Any) -> None:
        self._touch()
        list.insert(self, index, value)

    def pop(self, index: SupportsIndex = -1) -> Any:
        self._touch()
        return list.pop(self, index)

    def remove(self, value: Any) -> None:
        self._touch()
        list.remove(self, value)

    def clear(self) -> None:
        self._touch()
        list.clear(self)

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self._touch()
        list.sort(self, *args, **kwargs)

    def reverse(self) -> None:
        self._touch()
        list.reverse(self)

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return plain(self)  # type: ignore[no-any-return]

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        return (list, (plain(self),))


def unchanged(container: Any) -> bool:
    """Whether ``container`` is a tracked part of a store's state whose shard has not changed since it was
    saved or read: as long as this holds, anything computed from it may be reused (the store puts new
    objects in place when the shard changes, here or in another process)."""
    tracker = getattr(container, "_t", None)
    return type(container) is TrackedDict and tracker is not None and tracker.path not in tracker.dirty


def owner_of(container: Any) -> ShardStore | None:
    """The store whose tree holds the split map ``container`` (None for a plain dict, e.g. a snapshot)."""
    tracker = getattr(container, "_t", None)
    if type(container) is not SplitDict or tracker is None or tracker.owner is None:
        return None
    found = tracker.owner()
    return found if found is not None and found._canonical(container, tracker.path) else None


def plain(value: Any) -> Any:
    """A deep copy made of builtin dicts and lists (what ``json.loads`` gives)."""
    return json.loads(json.dumps(value))


def encode_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _path_text(path: Path) -> str:
    return json.dumps(list(path), separators=(",", ":"))


def _empty(value: Any) -> bool:
    """An empty container, or one holding only empty containers."""
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    if isinstance(value, list):
        return not value
    return False


def same(a: Any, b: Any) -> bool:
    """Equal, except that a key holding only empty containers counts as absent (``setdefault`` changes nothing)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a.keys() | b.keys():
            if key in a and key in b:
                if not same(a[key], b[key]):
                    return False
            elif not _empty(a[key] if key in a else b[key]):
                return False
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def create(path: str, state: Mapping[str, Any]) -> None:
    """Make ``path`` a database holding ``state`` (a new epoch: every cache of the old contents reloads)."""
    rows: dict[Path, str] = {}
    _split_rows(dict(state), (), _TRIE, rows)
    if os.path.isfile(path):
        try:
            # In place, in one transaction: a new file renamed over the old one would meet the old file's
            # write-ahead log, which SQLite would apply to it, and processes that have the old one open.
            _write_all(sqlite3.connect(path, isolation_level=None), rows, fresh=False)
            return
        except sqlite3.DatabaseError:
            pass  # not a database of ours: replace it
    for leftover in (path + "-wal", path + "-shm"):
        if os.path.exists(leftover):
            os.unlink(leftover)
    tmp = f"{path}.new-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        _write_all(sqlite3.connect(tmp, isolation_level=None), rows, fresh=True)
        os.replace(tmp, path)
    except BaseException:
        for leftover in (tmp, tmp + "-journal", tmp + "-wal", tmp + "-shm"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        raise


def _write_all(connection: sqlite3.Connection, rows: Mapping[Path, str], *, fresh: bool) -> None:
    try:
        if fresh:
            # Write-ahead logging: a commit appends to one file instead of creating and deleting a journal.
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(SCHEMA)
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("DELETE FROM shards")
        connection.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (f"{secrets.token_hex(8)}:1",))
        connection.executemany("INSERT INTO shards VALUES (?, 1, ?)",
                               ((_path_text(p), text) for p, text in rows.items()))
        connection.execute("COMMIT")
    finally:
        connection.close()


def _split_rows(value: Any, path: Path, trie: _Trie | None, rows: dict[Path, str]) -> None:
    """The rows of the split map ``value`` at ``path`` and of every split map below it."""
    for key, entry in value.items():
        entry_path = (*path, key)
        entry_trie = trie.child(key) if trie is not None else None
        rows[entry_path] = encode_text(_blank(entry, entry_trie, entry_path, rows))


def _blank(value: Any, trie: _Trie | None, path: Path, rows: dict[Path, str] | None) -> Any:
    """``value`` with its split maps written as ``{}`` (their entries go to ``rows``, unless it is None)."""
    if trie is None or not isinstance(value, dict):
        return value
    if trie.split:
        if rows is not None:
            _split_rows(value, path, trie, rows)
        return {}
    if not trie.inner:
        return value
    out: dict[str, Any] | None = None
    for key, entry in value.items():
        child = trie.child(key)
        if child is None:
            continue
        replaced = _blank(entry, child, (*path, key), rows)
        if replaced is not entry:
            if out is None:
                out = dict(value)
            out[key] = replaced
    return value if out is None else out


class Savepoint:
    """What :meth:`ShardStore.rollback_to` and :meth:`ShardStore.changed_since` compare against."""

    __slots__ = ("dirty", "filled", "texts")

    def __init__(self, dirty: frozenset[Path], texts: dict[Path, str | None], filled: dict[Path, bool]) -> None:
        self.dirty = dirty
        self.texts = texts
        # Split maps with an entry dirty at the savepoint -> whether they had entries then (any other split
        # map had those of its rows).
        self.filled = filled


class ShardStore:
    """The state of the database at ``db_path``, parsed once and kept in step with it (see the module docstring).

    Not thread-safe; every method must be called under the cluster's lock (exclusive for :meth:`commit`)."""

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self._connection: sqlite3.Connection | None = None
        self._opened: tuple[int, int, int] | None = None  # (pid, st_dev, st_ino) of the open database
        self._version: str | None = None  # "epoch:generation" of what the memory holds
        self._dirty: set[Path] = set()
        self._rows: dict[Path, str] = {}
        self._kids: dict[Path, set[str]] = {}  # split map -> keys of its entries in _rows
        self._unsorted: dict[int, dict[str, Any]] = {}  # maps that got a key out of order, to sort
        # The shards changed by each commit and refresh, in order, for indexes kept in step with the tree
        # (reconciler.sim.entry_index): a position is (era, count); a full reload starts a new era.
        self._log: list[Path] = []
        self._log_base = 0  # how many paths were trimmed off the front of _log
        self._era = 0
        self.indexes: dict[Any, Any] = {}  # the indexes over this tree, by their callers' keys
        self.root: SplitDict = self._new_split(())
        _STORES.add(self)

    # --- the database -----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            info = os.stat(self.db_path)
        except FileNotFoundError as exc:
            raise StoreError(f"no simulator state at {self.db_path}") from exc
        opened = (os.getpid(), info.st_dev, info.st_ino)
        if self._connection is not None and self._opened == opened:
            return self._connection
        # A forked child must not use its parent's connection, and a database replaced by `init --force`
        # is a new file: open again and forget what was read from the old one.
        if self._connection is not None and self._opened is not None and self._opened[0] == os.getpid():
            self._connection.close()
        elif self._connection is not None:
            # Inherited through fork: SQLite must not close (and so maybe checkpoint) the parent's handle
            # here; keep it referenced so that it is never finalised in this process.
            _INHERITED.append(self._connection)
        self._connection = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
        # No fsync: a simulation need not survive a power cut, only a killed process (which the
        # write-ahead log covers); syncing would dominate the cost of a command.
        self._connection.execute("PRAGMA synchronous=OFF")
        self._opened = opened
        self._version = None
        return self._connection

    def _forget_connection(self) -> None:
        """In a forked child: keep the parent's connection referenced, unused, and read everything again."""
        if self._connection is not None:
            _INHERITED.append(self._connection)
        self._connection = None
        self._opened = None
        self._version = None

    def refresh(self) -> None:
        """Bring the memory up to the database's current version (under the cluster's lock)."""
        connection = self._connect()
        try:
            row = connection.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.db_path} is not a simulator state: {exc}") from exc
        if row is None:
            raise StoreError(f"{self.db_path} has no version")
        version = str(row[0])
        if self._dirty:
            self.rollback()  # a stray change outside a transaction (to a snapshot) is never saved
        if version == self._version:
            return
        epoch, _, gen = version.partition(":")
        known_epoch, _, known_gen = (self._version or "").partition(":")
        if self._version is None or epoch != known_epoch:
            self._load_all(connection)
        else:
            changed = connection.execute("SELECT path, body FROM shards WHERE gen > ?", (int(known_gen),)).fetchall()
            self._apply(((tuple(json.loads(p)), b) for p, b in changed))
        self._version = f"{epoch}:{gen}"

    def _load_all(self, connection: sqlite3.Connection) -> None:
        self._rows = {}
        self._kids = {}
        for path_text, body in connection.execute("SELECT path, body FROM shards WHERE body IS NOT NULL"):
            self._set_row(tuple(json.loads(path_text)), body)
        self._dirty.clear()
        # A new dirty set: containers of the old tree (held by nobody, one hopes) no longer mark anything.
        self._dirty = set()
        root = self._new_split(())
        self._fill(root, ())
        self.root = root
        self._era += 1
        self._log = []
        self._log_base = 0

    def _apply(self, changed: Iterable[tuple[Path, str | None]]) -> None:
        """Rows another writer changed: update the memory along (parents before their entries)."""
        batch = sorted(changed, key=lambda item: len(item[0]))
        self._logged(path for path, _ in batch)
        for path, body in batch:
            if body is None:
                self._drop_row(path)
            else:
                self._set_row(path, body)
        for path, body in batch:
            if body is None:
                self._detach(path)
            else:
                self._install(path)
        self._sort_maps()

    def commit(self) -> None:
        """Write the dirty shards whose text changed (one SQLite transaction), then track them afresh."""
        if not self._dirty:
            return
        changes: dict[Path, str | None] = {}
        for path in sorted(self._dirty, key=len):
            self._save_shard(path, changes)
        if changes:
            connection = self._connect()
            epoch, _, gen = (self._version or ":0").partition(":")
            version = f"{epoch}:{int(gen) + 1}"
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(
                    "INSERT OR REPLACE INTO shards (path, gen, body) VALUES (?, ?, ?)",
                    [(_path_text(p), int(gen) + 1, body) for p, body in changes.items()])
                connection.execute("UPDATE meta SET value = ? WHERE key = 'version'", (version,))
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            self._version = version
        try:
            self._saved(changes)
        except BaseException:
            # The database has the transaction but the memory may lack part of it, with nothing dirty left
            # for the caller's rollback to undo: forget the version, so the next refresh reads every row.
            self._version = None
            raise

    def _saved(self, changes: Mapping[Path, str | None]) -> None:
        """Bring the rows and the tree in step with a commit of ``changes``."""
        fresh = {p for p, body in changes.items() if body is not None and p not in self._rows}
        self._logged(changes)
        for path, body in changes.items():
            if body is None:
                self._drop_row(path)
            else:
                self._set_row(path, body)
        # Re-parse what was saved, so that plain containers put in by this transaction are tracked from now on
        # (a shard whose text did not change and holds only its own tracked containers is kept as it is).
        dirty = sorted(self._dirty, key=len)
        self._dirty.clear()
        for path in dirty:
            if path in self._rows and (path in changes or not self._tracked(path)):
                self._install(path, fresh=path in fresh)
        self._sort_maps()

    def _logged(self, paths: Iterable[Path]) -> None:
        self._log.extend(paths)
        if len(self._log) > 200_000:  # indexes further behind than this rebuild themselves
            drop = len(self._log) // 2
            del self._log[:drop]
            self._log_base += drop

    def position(self) -> tuple[int, int]:
        """Where the change log stands now (see :meth:`logged_since`)."""
        return (self._era, self._log_base + len(self._log))

    def logged_since(self, position: tuple[int, int]) -> list[Path] | None:
        """The shards committed or read in since ``position`` (None: too long ago, or everything was reloaded)."""
        era, count = position
        if era != self._era or count < self._log_base:
            return None
        return self._log[count - self._log_base:]

    def dirty_paths(self) -> set[Path]:
        """The shards changed in the open transaction (read-only: the store's own set)."""
        return self._dirty

    def rollback(self) -> None:
        """Forget every change since the last commit or refresh."""
        dirty = sorted(self._dirty, key=len)
        self._dirty.clear()
        for path in dirty:
            if path in self._rows:
                self._install(path)
            else:
                self._detach(path)
        self._dirty.clear()
        self._sort_maps()

    def discard_stray(self) -> None:
        """Undo what a reader changed by mistake (outside a transaction nothing may change)."""
        if self._dirty:
            self.rollback()

    def savepoint(self) -> Savepoint:
        """A point to compare with or roll back to. A plain dict put at a split position before it is
        replaced in the tree by a split map of the same entries: a caller still holding that dict must look
        the map up again to change it."""
        # A plain map put at a split position before the savepoint (a ticker that ran before the command)
        # is made this store's own first: otherwise a rollback would rebuild it from the rows, which do not
        # have its entries yet, and a comparison would take it for a map put in place of the stored one.
        self._adopt_split_maps()
        texts = {p: self._text_now(p) for p in self._dirty}
        filled: dict[Path, set[str]] = {}
        for path in self._dirty:
            if path:
                keys = filled.get(path[:-1])
                if keys is None:
                    keys = filled[path[:-1]] = set(self._kids.get(path[:-1], ()))
                if texts[path] is None:
                    keys.discard(path[-1])
                else:
                    keys.add(path[-1])
        return Savepoint(frozenset(self._dirty), texts, {m: bool(keys) for m, keys in filled.items()})

    def _adopt_split_maps(self) -> None:
        """Replace every plain map at a split position of a dirty shard by a split map of the same entries,
        each marked dirty (as is every stored entry it no longer has), so that the entries are shards."""
        work = sorted(self._dirty, key=len)
        for path in work:  # grows while it runs: an adopted map's entries are shards to look into too
            trie = _trie_at(path)
            if not path or trie is None or not (trie.split or trie.inner):
                continue
            parent = self._lookup(path[:-1])
            if isinstance(parent, dict) and path[-1] in parent:
                self._adopt(parent, path[-1], trie, path, work)

    def _adopt(self, parent: dict[str, Any], key: str, trie: _Trie, path: Path, work: list[Path]) -> None:
        value = dict.__getitem__(parent, key)
        if not isinstance(value, dict):
            return
        if trie.split:
            if self._canonical(value, path):
                return  # its entries mark themselves
            found = self._new_split(path)
            for entry_key in sorted(value):
                dict.__setitem__(found, entry_key, dict.__getitem__(value, entry_key))
            # Its parent is in a dirty shard already: the replacement needs no mark of its own.
            dict.__setitem__(parent, key, found)
            for entry_key in sorted(set(value) | self._kids.get(path, set())):
                entry = (*path, entry_key)
                if entry not in self._dirty:
                    self._dirty.add(entry)
                    work.append(entry)
            return
        if not trie.inner:
            return
        for entry_key in list(value):
            child = trie.child(entry_key)
            if child is not None and (child.split or child.inner):
                self._adopt(value, entry_key, child, (*path, entry_key), work)

    def changed_since(self, point: Savepoint) -> bool:
        """Whether the state differs from the savepoint (an empty container added counts as no change)."""
        for path in self._dirty:
            if self._maps_replaced(path, point):
                return True
            before = point.texts[path] if path in point.dirty else self._rows.get(path)
            after = self._text_now(path)
            if after == before:
                continue
            if before is None or after is None:
                present = after if before is None else before
                if present is not None and _empty(json.loads(present)):
                    continue
                return True
            if not same(json.loads(before), json.loads(after)):
                return True
        return False

    def _maps_replaced(self, path: Path, point: Savepoint) -> bool:
        """Whether a split map in the shard at ``path`` was put in place of the one there at ``point``, or
        removed, with entries on either side (the shard's own text shows such a map as ``{}`` either way)."""
        trie = _trie_at(path)
        if trie is None or not (trie.split or trie.inner):
            return False
        value = self._lookup(path)
        visited: set[Path] = set()
        if value is not _MISSING and self._replaced_below(value, trie, path, visited, point):
            return True
        return any(self._filled_at(point, m) and m not in visited and m[:len(path)] == path and
                   (m == path or self._owned_by(m, path))
                   for m in self._kids.keys() | point.filled.keys() if len(m) >= len(path))

    def _filled_at(self, point: Savepoint, split: Path) -> bool:
        """Whether the split map at ``split`` had entries at ``point``."""
        found = point.filled.get(split)
        return bool(self._kids.get(split)) if found is None else found

    def _replaced_below(self, value: Any, trie: _Trie, path: Path, visited: set[Path], point: Savepoint) -> bool:
        if not isinstance(value, dict):
            return False
        if trie.split:
            visited.add(path)
            return not self._canonical(value, path) and bool(value or self._filled_at(point, path))
        for key, entry in value.items():
            child = trie.child(key)
            if child is not None and self._replaced_below(entry, child, (*path, key), visited, point):
                return True
        return False

    def rollback_to(self, point: Savepoint) -> None:
        dirty = sorted(self._dirty, key=len)
        for path in dirty:
            text = point.texts[path] if path in point.dirty else self._rows.get(path)
            if text is None:
                self._detach(path)
            else:
                self._install(path, text)
        self._dirty.clear()
        self._dirty.update(point.dirty)
        self._sort_maps()

    def close(self) -> None:
        if self._connection is not None and self._opened is not None and self._opened[0] == os.getpid():
            self._connection.close()
        elif self._connection is not None:
            _INHERITED.append(self._connection)
        self._connection = None
        self._opened = None

    # --- rows and the tree --------------------------------------------------------------------

    def _sort_maps(self) -> None:
        for found in self._unsorted.values():
            ordered = sorted(dict.items(found))
            dict.clear(found)
            dict.update(found, ordered)
        self._unsorted.clear()

    def _set_row(self, path: Path, body: str) -> None:
        self._rows[path] = body
        self._kids.setdefault(path[:-1], set()).add(path[-1])

    def _drop_row(self, path: Path) -> None:
        if self._rows.pop(path, None) is not None:
            kids = self._kids.get(path[:-1])
            if kids is not None:
                kids.discard(path[-1])
                if not kids:
                    del self._kids[path[:-1]]

    def _lookup(self, path: Path) -> Any:
        value: Any = self.root
        for key in path:
            if not isinstance(value, dict):
                return _MISSING
            value = value.get(key, _MISSING)
            if value is _MISSING:
                return _MISSING
        return value

    def _text_now(self, path: Path) -> str | None:
        """The row text the shard at ``path`` would have now (None: no such shard), without saving anything."""
        value = self._lookup(path)
        if value is _MISSING:
            return None
        # Only this shard's own text: the entries of split maps inside it are rows of their own.
        return encode_text(_blank(value, _trie_at(path), path, None))

    def _tracked(self, path: Path) -> bool:
        """Whether every container of the shard at ``path`` is tracked as part of that shard."""
        value = self._lookup(path)
        if value is _MISSING:
            return True
        trie = _trie_at(path)
        if trie is not None and trie.split:
            return self._canonical(value, path)
        tracker = getattr(value, "_t", None)
        if tracker is None or tracker.path != path or tracker.dirty is not self._dirty:
            # Anything but a JSON scalar is reinstalled: a tuple (or a dict of another class) encodes as the
            # text it replaced, and would otherwise stay in the tree, untracked, with the shard clean.
            return type(value) in _SCALARS
        return self._tracked_below(value, trie, path, tracker)

    def _tracked_below(self, value: Any, trie: _Trie | None, path: Path, tracker: _Tracker) -> bool:
        if type(value) is TrackedDict:
            if value._t is not tracker:
                return False
            for key, entry in value.items():
                child = trie.child(key) if trie is not None else None
                if child is not None and child.split and isinstance(entry, dict):
                    if not self._canonical(entry, (*path, key)):
                        return False
                elif type(entry) not in _SCALARS and not self._tracked_below(
                        entry, child, (*path, key) if child is not None else path, tracker):
                    return False
            return True
        if type(value) is TrackedList:
            return value._t is tracker and all(
                type(entry) in _SCALARS or self._tracked_below(entry, None, path, tracker)
                for entry in value)
        return type(value) in _SCALARS

    def _new_split(self, path: Path) -> SplitDict:
        found = SplitDict()
        found._t = _Tracker(self._dirty, path, None if path in UNORDERED_MAPS else self._unsorted, weakref.ref(self))
        return found

    def _canonical(self, value: Any, path: Path) -> bool:
        """Whether ``value`` is this store's split map for ``path`` (so its entries are tracked as rows)."""
        return type(value) is SplitDict and value._t.path == path and value._t.dirty is self._dirty

    def _save_shard(self, path: Path, changes: dict[Path, str | None]) -> None:
        if not path:
            return  # the root map itself has no row
        value = self._lookup(path)
        if value is _MISSING:
            self._drop_below(path, changes, including=True)
            return
        trie = _trie_at(path)
        visited: set[Path] = set()
        rows: dict[Path, str] = {}
        text = encode_text(self._blank_saving(value, trie, path, rows=rows, visited=visited, changes=changes))
        if trie is not None and trie.inner:
            # Split maps that were inside this shard and are gone now take their entries with them.
            for below in [m for m in self._kids if len(m) > len(path) and m[:len(path)] == path]:
                if below not in visited and self._owned_by(below, path):
                    self._drop_below(below, changes, including=False)
        for row_path, row_text in rows.items():
            changes[row_path] = row_text
        if text != self._rows.get(path) or path in changes:
            changes[path] = text

    def _owned_by(self, split: Path, shard: Path) -> bool:
        """Whether the split map at ``split`` lies in the row of ``shard`` (no split map between them)."""
        node = _trie_at(shard)
        for key in split[len(shard):-1]:
            if node is None or node.split:
                return False
            node = node.child(key)
        return node is not None and not node.split

    def _blank_saving(self, value: Any, trie: _Trie | None, path: Path, *, rows: dict[Path, str],
                      visited: set[Path], changes: dict[Path, str | None]) -> Any:
        """Like :func:`_blank`, but a split map that is not this store's own (new, or put in place of the
        old one) has its old rows dropped and all its entries written."""
        if trie is None or not isinstance(value, dict):
            return value
        if trie.split:
            visited.add(path)
            if not self._canonical(value, path):
                self._drop_below(path, changes, including=False)
                _split_rows(value, path, trie, rows)
            return {}
        if not trie.inner:
            return value
        out: dict[str, Any] | None = None
        for key, entry in value.items():
            child = trie.child(key)
            if child is None:
                continue
            replaced = self._blank_saving(entry, child, (*path, key), rows=rows, visited=visited,
                                         changes=changes)
            if replaced is not entry:
                if out is None:
                    out = dict(value)
                out[key] = replaced
        return value if out is None else out

    def _drop_below(self, path: Path, changes: dict[Path, str | None], *, including: bool) -> None:
        if including and path in self._rows:
            changes[path] = None
        for split in [m for m in self._kids if len(m) >= len(path) and m[:len(path)] == path]:
            for key in self._kids[split]:
                changes[(*split, key)] = None

    def _detach(self, path: Path) -> None:
        parent = self._lookup(path[:-1])
        if isinstance(parent, dict) and path[-1] in parent:
            dict.__delitem__(parent, path[-1])

    def _install(self, path: Path, text: str | None = None, *, fresh: bool = False) -> None:
        """Put the shard at ``path`` into the tree from its row (or ``text``), tracked; split maps inside it
        are kept when they are this store's own, rebuilt from the rows otherwise."""
        parent = self._lookup(path[:-1])
        if not isinstance(parent, dict):
            return  # its parent is gone too; it comes back with the parent's rows
        body = self._rows[path] if text is None else text
        key = path[-1]
        live = dict.get(parent, key, _MISSING)
        value = self._build(json.loads(body), _trie_at(path), path, _Tracker(self._dirty, path), live)
        dict.__setitem__(parent, key, value)
        if (fresh or live is _MISSING) and len(parent) > 1 and path[:-1] not in UNORDERED_MAPS:
            # Maps are kept in key order (as the sorted JSON of the old single-file store gave them, which
            # listings rely on): a new key lands at the end, so sort again (once per batch) when it does not
            # belong there.
            keys = reversed(parent)
            next(keys)
            if next(keys) > key:
                self._unsorted[id(parent)] = parent

    def _build(self, value: Any, trie: _Trie | None, path: Path, tracker: _Tracker, live: Any) -> Any:
        if trie is None:
            return _wrap(value, tracker)
        if type(value) is dict:
            if trie.split:
                if self._canonical(live, path):
                    return live
                found = self._new_split(path)
                self._fill(found, path)
                return found
            out = TrackedDict()
            out._t = tracker
            for key, entry in value.items():
                inner = dict.get(live, key, _MISSING) if isinstance(live, dict) else _MISSING
                dict.__setitem__(out, key, self._build(entry, trie.child(key), (*path, key), tracker, inner))
            return out
        return _wrap(value, tracker)

    def _fill(self, split: SplitDict, path: Path) -> None:
        """The entries of a split map, from the rows."""
        trie = _trie_at(path)
        for key in sorted(self._kids.get(path, ())):
            entry = (*path, key)
            child = trie.child(key) if trie is not None else None
            dict.__setitem__(split, key, self._build(json.loads(self._rows[entry]), child, entry,
                                                     _Tracker(self._dirty, entry), _MISSING))

    def paths(self) -> Iterator[Path]:
        """The stored shards (for tests and the benchmark)."""
        return iter(sorted(self._rows))


def _wrap(value: Any, tracker: _Tracker) -> Any:
    if type(value) is dict:
        out = TrackedDict()
        out._t = tracker
        for key, entry in value.items():
            dict.__setitem__(out, key, _wrap(entry, tracker))
        return out
    if type(value) is list:
        items = TrackedList(_wrap(entry, tracker) for entry in value)
        items._t = tracker
        return items
    return value

"""The simulated cluster's state: one directory, shared safely by several processes.

Contract for every simulator module (storage, Xen, DRBD, oracle, faults):

``SimCluster(directory)``
    The cluster lives in DIRECTORY: ``state.db`` (the state, an SQLite database of one row per shard;
    see :mod:`reconciler.sim.store`), ``commands.log`` (append-only, one JSON object per line: node,
    argv, exit, mutating, time) and ``lock`` (an ``fcntl.flock`` target). Every read-modify-write holds
    the exclusive lock, so a daemon per node, a CLI and a test can share one cluster without lost
    updates. Only ``init`` creates these files: any other use of a directory without ``state.db`` raises
    :class:`SimStateError` (a ``state.json`` of the earlier single-file format is converted on first use).

    ``with cluster.transaction() as state:`` yields the state as JSON data (dicts, lists, str, int,
    float, bool, None; the dicts and lists are tracking subclasses of the builtins, and copies of them
    are plain) and saves what changed when the block ends without an exception (an exception discards
    every change). Each ``SimCluster`` object keeps the parsed state between transactions and re-reads
    only what other writers changed, so a command costs what it touches, not the size of the cluster.
    Transactions nest within one ``SimCluster`` object (the inner one shares the outer state);
    ``savepoint()``, ``rollback_to(point)`` and ``changed_since(point)`` undo or compare part of one.
    ``cluster.read()`` returns a deep copy under a shared lock; ``cluster.snapshot()`` the object's own
    state without a copy (valid until its next transaction; never mutate it).

    ``SimCluster.init(directory, nodes, vgs, drbd_version)`` creates a cluster; ``vgs`` maps a VG name
    to its size in bytes (one PV per VG, named after the VG: ``vg-sda`` lives on ``/dev/sda``); the
    n-th node gets the address 192.168.2.n unless ``addresses`` says otherwise.

State layout (``state`` is a dict)::

    time        simulated seconds (float); ``cluster.advance(dt)`` or ``advance_state(state, dt)``
                moves it and calls the registered tickers in registration order: ``fn(state, dt)``
    nodes       {node: {...}} with
        up          bool; False while crashed (every command then fails like an unreachable node)
        boot_id     str, changes at each boot
        vgs         {vg: {uuid, extent_size, pvs: [{name, uuid, pe_count}], lvs: {name: lv}, stale: [...]}}
                    (owned by reconciler.sim.lvm; read through its helpers)
        lvs         reserved (LVs live inside their VG; kept for symmetry, always {})
        dm          {name: {uuid, minor, table: [...] | None, inactive: [...] | None, suspended, readonly}}
                    devices made with ``dmsetup create`` (LVs appear in dmsetup's listings too)
        files       {path: {"content": str, "mode": int}}: the node's regular files
        domains     {name: {...}} running Xen domains (reconciler.sim.xen; ``disks`` [{target, vdev, mode}])
        mounts      [{"device", "mountpoint", "fstype", "options"}]
        memory      total host memory in MiB (dom0 included)
        drbd        reserved for the DRBD simulator: it defines the contents
        drbd_version  "9" or "8.4"
        address     the node's replication address (``ip -j addr``, ``ssh``); 192.168.2.N by default
        next_minor  next device-mapper minor number (253:N); next_domid: the next Xen domain id
    network     {"cut": [[a, b], ...]} sorted pairs of nodes whose replication link is cut;
                "management_cut": the same for the management link (peer status, fence-peer requests)
    faults      [fault dicts] (reconciler.sim.faults)
    disks       {content key: content dict}: what is written on block devices (below)
    oracle      reserved for reconciler.sim.oracle

Block-device contents survive reboots and device-mapper/DRBD teardown, as on real disks. A content key
names what a device path shows:

* an LV: ``"lv:<uuid>"``
* a device-mapper ``linear`` device over one whole device: the key of that device
* a device-mapper ``striped`` device: ``"striped:<chunk sectors>:<leg key>|<leg key>|..."``, so
  recreating the same stripe over the same LVs finds the same filesystem and DRBD metadata.

``content(state, key)`` is the mutable dict stored for a key (created on first use; read-only paths
use ``peek_content``, which stores nothing, so that a probe does not count as a change): ``"signature"`` (None or e.g.
``{"type": "xfs", "uuid": "..."}``), ``"failed"`` (True after an injected disk failure) and free keys
for other modules (the DRBD simulator keeps ``"drbd_md"`` there). ``resolve_device(state, node, path)``
returns the content key of ``/dev/VG/LV``, ``/dev/mapper/VG-LV``, ``/dev/mapper/NAME`` or ``/dev/dm-N``
on that node, or None; ``/dev/drbdN`` is resolved by the DRBD simulator through
``register_device_resolver``. ``device_exists`` tells whether the path is a block device there.

Hooks (registered at import time by the modules that need them; plain module-level lists):

* ``register_ticker(fn(state, dt))``: called by ``advance_state``.
* ``register_reboot_hook(fn(state, node))``: called when a node crashes (dm tables, domains and mounts
  are already gone; the DRBD simulator drops its runtime state).
* ``register_disk_failure_hook(fn(state, node, key))``: called after a disk failure was injected.
* ``register_device_resolver(fn(state, node, path) -> str | None)``: extra device paths
  (``/dev/drbdN``); the first non-None answer wins.
* ``register_holder_source(fn(state, node) -> list[str])``: device paths a module holds open on the
  node (DRBD's attached backing disks), so that ``lvremove``, ``dmsetup remove``, ``mkfs.xfs`` and
  ``wipefs -a`` refuse them as busy and ``lvs`` shows them open. ``open_count(state, node, path)``
  counts holders (dm table legs, mounts, running domains' disks and these sources);
  ``open_counts(state, node)`` gives them all at once, by device number.
* ``device_number(state, node, path)`` (``253:N`` for LVs and dm devices, ``147:N`` for DRBD,
  ``8:16n`` for ``/dev/sdX``) and ``device_size(state, node, path)`` (bytes) for other modules.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import os
import secrets
import sqlite3
import threading
import uuid as uuidlib
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from reconciler.sim import device_index, store
from reconciler.sim.store import Savepoint, ShardStore

State = dict[str, Any]
NodeState = dict[str, Any]
Ticker = Callable[[State, float], None]
RebootHook = Callable[[State, str], None]
DiskFailureHook = Callable[[State, str, str], None]
DeviceResolver = Callable[[State, str, str], "str | None"]

STATE_FILE = "state.db"
LEGACY_STATE_FILE = "state.json"  # the single-file store of earlier versions, converted on first use
LOG_FILE = "commands.log"
LOCK_FILE = "lock"
FORMAT_VERSION = 1

DEFAULT_EXTENT_SIZE = 4 * 1024**2
# The first extent starts after the PV label and metadata area (1 MiB by default).
PV_METADATA_BYTES = 1024**2
DEFAULT_MEMORY_MIB = 65536
DOM0_MEMORY_MIB = 4096
DM_MAJOR = 253

_tickers: list[Ticker] = []
_reboot_hooks: list[RebootHook] = []
_disk_failure_hooks: list[DiskFailureHook] = []
_device_resolvers: list[DeviceResolver] = []


class SimStateError(OSError):
    """The cluster directory is missing, unreadable or of another format."""


def register_ticker(fn: Ticker) -> Ticker:
    if fn not in _tickers:
        _tickers.append(fn)
    return fn


def register_reboot_hook(fn: RebootHook) -> RebootHook:
    if fn not in _reboot_hooks:
        _reboot_hooks.append(fn)
    return fn


def register_disk_failure_hook(fn: DiskFailureHook) -> DiskFailureHook:
    if fn not in _disk_failure_hooks:
        _disk_failure_hooks.append(fn)
    return fn


def register_device_resolver(fn: DeviceResolver) -> DeviceResolver:
    if fn not in _device_resolvers:
        _device_resolvers.append(fn)
    return fn


def reboot_hooks() -> tuple[RebootHook, ...]:
    return tuple(_reboot_hooks)


def disk_failure_hooks() -> tuple[DiskFailureHook, ...]:
    return tuple(_disk_failure_hooks)


def load_modules() -> None:
    """Import every simulator module so their commands, tickers and hooks are registered."""
    importlib.import_module("reconciler.sim.handlers")


def advance_state(state: State, seconds: float) -> None:
    """Move simulated time forward by ``seconds`` and let every ticker act on the elapsed time."""
    if seconds < 0:
        raise ValueError(f"time cannot go backwards ({seconds} s)")
    state["time"] = float(state.get("time", 0.0)) + seconds
    for ticker in tuple(_tickers):
        ticker(state, seconds)


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def lvm_uuid() -> str:
    """An LVM-style id: 32 characters in groups 6-4-4-4-4-4-6."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    text = "".join(secrets.choice(alphabet) for _ in range(32))
    parts = [text[0:6], text[6:10], text[10:14], text[14:18], text[18:22], text[22:26], text[26:32]]
    return "-".join(parts)


LVM_CONF = "/etc/lvm/lvm.conf"
PREPARED_LVM_CONF = """# lvm.conf of a simulated node (only what the reconciler's checks read)
devices {
    # DRBD devices and the dm stripes under them carry guests' data: never scan them in dom0.
    global_filter = [ "r|^/dev/drbd|", "r|^/dev/mapper/root|", "a|.*|" ]
    use_devicesfile = 0
}
"""
XL_CONF = "/etc/xen/xl.conf"
PREPARED_XL_CONF = """# xl.conf of a simulated node: dom0 keeps its memory (dom0_mem is fixed on Xen's command line)
autoballoon="off"
"""


def empty_node(drbd_version: str, memory_mib: int = DEFAULT_MEMORY_MIB) -> NodeState:
    return {
        "up": True,
        "boot_id": new_uuid(),
        "vgs": {},
        "lvs": {},
        "dm": {},
        "files": {LVM_CONF: {"content": PREPARED_LVM_CONF, "mode": 0o644},
                  XL_CONF: {"content": PREPARED_XL_CONF, "mode": 0o644}},
        "domains": {},
        "mounts": [],
        "memory": memory_mib,
        "drbd": {},
        "drbd_version": drbd_version,
        "next_minor": 0,
    }


def add_vg(node_state: NodeState, vg: str, size: int, extent_size: int = DEFAULT_EXTENT_SIZE,
           pv_name: str | None = None) -> None:
    """One PV of ``size`` bytes carrying a new VG (as after ``pvcreate`` + ``vgcreate``)."""
    disk = pv_name or "/dev/" + (vg[3:] if vg.startswith("vg-") else vg)
    pe_count = (size - PV_METADATA_BYTES) // extent_size
    if pe_count < 1:
        raise ValueError(f"volume group {vg}: {size} bytes hold no {extent_size}-byte extent")
    node_state["vgs"][vg] = {
        "uuid": lvm_uuid(),
        "extent_size": extent_size,
        "pvs": [{"name": disk, "uuid": lvm_uuid(), "pe_count": pe_count, "dev_size": size}],
        "lvs": {},
        "stale": [],
    }


def add_pv(node_state: NodeState, vg: str, pv_name: str, size: int) -> None:
    """Another PV of ``size`` bytes in an existing VG (as after ``vgextend``)."""
    vg_state = node_state["vgs"][vg]
    pe_count = (size - PV_METADATA_BYTES) // int(vg_state["extent_size"])
    if pe_count < 1:
        raise ValueError(f"physical volume {pv_name}: {size} bytes hold no extent")
    vg_state["pvs"].append({"name": pv_name, "uuid": lvm_uuid(), "pe_count": pe_count, "dev_size": size})


def new_state(nodes: Mapping[str, NodeState]) -> State:
    return {
        "format": FORMAT_VERSION,
        "time": 0.0,
        "nodes": dict(nodes),
        "network": {"cut": []},
        "faults": [],
        "disks": {},
        "oracle": {},
        "seq": 0,
    }


def serialise(state: State) -> str:
    """The canonical text of a state (sorted keys, no spaces), as ``reconciler sim show --json``-style dumps use."""
    return json.dumps(state, separators=(",", ":"), sort_keys=True)


def _after_fork_in_child() -> None:
    for cluster in list(_CLUSTERS):
        cluster._after_fork_in_child()


_CLUSTERS: weakref.WeakSet[SimCluster] = weakref.WeakSet()
os.register_at_fork(after_in_child=_after_fork_in_child)


class SimCluster:
    """A simulated cluster stored in ``directory``; see the module docstring for the contract."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = os.fspath(directory)
        self._depth = 0
        self._state: State | None = None
        self._store: ShardStore | None = None
        # A daemon's watcher threads run commands through the same host (and so the same object) as its
        # main loop: one thread at a time uses the parsed state; the same thread may nest.
        self._mutex = threading.RLock()
        self._viewing = 0  # view() blocks holding the shared lock (in the thread holding the mutex)
        self._held: set[int] = set()  # descriptors of the cluster's lock that this object holds
        _CLUSTERS.add(self)

    def _after_fork_in_child(self) -> None:
        """A forked child has only the thread that forked: if another held this object, start afresh."""
        if self._mutex.acquire(blocking=False):
            self._mutex.release()  # free, or held by this very thread, which goes on in the child
            return
        # That thread's transaction or view will never end here: its mutex and its copy of the lock's
        # descriptor would stay held forever (the lock itself is the parent's, released by the parent).
        self._mutex = threading.RLock()
        self._depth = 0
        self._state = None
        self._viewing = 0
        for fd in self._held:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._held = set()

    @property
    def state_path(self) -> str:
        return os.path.join(self.directory, STATE_FILE)

    @property
    def log_path(self) -> str:
        return os.path.join(self.directory, LOG_FILE)

    @classmethod
    def init(cls, directory: str | os.PathLike[str], nodes: list[str] | tuple[str, ...],
             vgs: Mapping[str, int], drbd_version: str = "9", *, memory_mib: int = DEFAULT_MEMORY_MIB,
             addresses: Mapping[str, str] | None = None, pv_counts: Mapping[str, int] | None = None) -> SimCluster:
        """``vgs``: name -> size of each PV; ``pv_counts``: how many PVs a VG has (default 1; with more, they
        are /dev/<disk>1, /dev/<disk>2, ... so that lvm-striped LVs can stripe over them)."""
        if drbd_version not in ("9", "8.4"):
            raise ValueError(f"DRBD version must be '9' or '8.4', not {drbd_version!r}")
        if not nodes:
            raise ValueError("a cluster needs at least one node")
        path = os.fspath(directory)
        os.makedirs(path, exist_ok=True)
        node_states: dict[str, NodeState] = {}
        for index, node in enumerate(nodes):
            node_state = empty_node(drbd_version, memory_mib)
            node_state["address"] = (addresses or {}).get(node, f"192.168.2.{index + 1}")
            for vg, size in vgs.items():
                count = (pv_counts or {}).get(vg, 1)
                if count < 1:
                    raise ValueError(f"volume group {vg}: needs at least one physical volume, not {count}")
                if count == 1:
                    add_vg(node_state, vg, size)
                    continue
                disk = "/dev/" + (vg[3:] if vg.startswith("vg-") else vg)
                add_vg(node_state, vg, size, pv_name=f"{disk}1")
                for number in range(2, count + 1):
                    add_pv(node_state, vg, f"{disk}{number}", size)
            node_states[node] = node_state
        cluster = cls(path)
        with cluster._locked(exclusive=True, creating=True):
            store.create(cluster.state_path, new_state(node_states))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(path, LEGACY_STATE_FILE))
            with open(cluster.log_path, "w", encoding="utf-8"):
                pass
        from reconciler.sim.endpoints import record_peer_ports  # noqa: PLC0415

        record_peer_ports(path, nodes)
        return cluster

    def exists(self) -> bool:
        return os.path.isfile(self.state_path) or os.path.isfile(os.path.join(self.directory, LEGACY_STATE_FILE))

    @contextlib.contextmanager
    def _locked(self, *, exclusive: bool, creating: bool = False) -> Iterator[int]:
        # Only `init` may create the lock file: anything else given a directory without the state (a
        # desired-state checkout, a typo) must leave it untouched instead of littering it with a lock.
        if not os.path.isdir(self.directory) or not (creating or self.exists()):
            if os.path.isdir(self.directory) and os.listdir(self.directory):
                raise SimStateError(f"{self.directory} is not a simulated cluster: it has no {STATE_FILE} (give "
                                    "--sim the directory made by `reconciler sim init NEW_DIR`)")
            raise SimStateError(f"no simulated cluster at {self.directory}: it has no {STATE_FILE} "
                                f"(create one with `reconciler sim init {self.directory}`)")
        fd = os.open(os.path.join(self.directory, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        self._held.add(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield fd
        finally:
            self._held.discard(fd)
            os.close(fd)

    def _current(self, shared_lock: int | None = None) -> ShardStore:
        """The store, brought up to date with the directory (call under the lock; ``shared_lock``: the
        descriptor holding it when it is shared)."""
        if not os.path.isfile(self.state_path):
            if shared_lock is None:
                self._migrate()
            else:
                # Readers share the lock: two converting at once would both write state.db, and one could
                # unlink the write-ahead log of the database the other just made. Convert under the exclusive
                # lock (flock converts the held lock, not atomically: look again once it is held).
                fcntl.flock(shared_lock, fcntl.LOCK_EX)
                try:
                    if not os.path.isfile(self.state_path):
                        self._migrate()
                finally:
                    fcntl.flock(shared_lock, fcntl.LOCK_SH)
        if self._store is None:
            self._store = ShardStore(self.state_path)
        try:
            self._store.refresh()
        except store.StoreError as exc:
            raise SimStateError(f"{self.state_path} is not a simulator state: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise SimStateError(f"{self.state_path} is not a simulator state: {exc}") from exc
        if self._store.root.get("format") != FORMAT_VERSION:
            raise SimStateError(f"{self.state_path} is not a simulator state of format {FORMAT_VERSION}")
        return self._store

    def _migrate(self) -> None:
        """A cluster made before the state moved to SQLite: convert its state.json (once, atomically)."""
        legacy = os.path.join(self.directory, LEGACY_STATE_FILE)
        try:
            with open(legacy, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError as exc:
            if os.path.isfile(self.state_path):
                return  # converted by another process meanwhile
            raise SimStateError(f"no simulated cluster at {self.directory} (create one with `reconciler sim init`)"
                                ) from exc
        try:
            state = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SimStateError(f"{legacy} is not valid JSON: {exc}") from exc
        if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
            raise SimStateError(f"{legacy} is not a simulator state of format {FORMAT_VERSION}")
        store.create(self.state_path, state)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(legacy)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        """The state under the exclusive lock, saved on a clean exit, discarded on an exception.

        Not inside :meth:`view` of the same object (outside a transaction): that holds the shared lock,
        which the exclusive lock would wait for forever; this raises RuntimeError instead."""
        with self._mutex:
            if self._viewing and self._depth == 0:
                # The mutex is held, so the view is this thread's: waiting for the lock would never end.
                raise RuntimeError("SimCluster.transaction() inside view() of the same object would wait for "
                                   "its own shared lock: open the transaction first, and view inside it")
            if self._depth > 0 and self._state is not None:
                self._depth += 1
                try:
                    yield self._state
                finally:
                    self._depth -= 1
                return
            with self._outermost() as state:
                yield state

    @contextlib.contextmanager
    def _outermost(self) -> Iterator[State]:
        with self._locked(exclusive=True):
            current = self._current()
            state = current.root
            self._state = state
            self._depth = 1
            try:
                yield state
                current.commit()
            except BaseException:
                current.rollback()
                raise
            finally:
                self._depth = 0
                self._state = None

    def savepoint(self) -> Savepoint:
        """Inside a transaction: a point that :meth:`rollback_to` and :meth:`changed_since` refer to."""
        if self._store is None or self._state is None:
            raise RuntimeError("a savepoint needs a transaction")
        return self._store.savepoint()

    def rollback_to(self, point: Savepoint) -> None:
        """Discard every change since ``point`` (the state's containers are new objects afterwards)."""
        if self._store is None or self._state is None:
            raise RuntimeError("a rollback needs a transaction")
        self._store.rollback_to(point)

    def changed_since(self, point: Savepoint) -> bool:
        """Whether anything changed since ``point``; a key that only gained empty containers is no change."""
        if self._store is None or self._state is None:
            raise RuntimeError("a comparison needs a transaction")
        return self._store.changed_since(point)

    def read(self) -> State:
        """A snapshot of the state (changes to it are not saved)."""
        with self.view() as state:
            return json.loads(json.dumps(state))  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def view(self) -> Iterator[State]:
        """The state for reading, without a copy, while the block runs (inside a transaction: its state).
        A change made to it outside a transaction is discarded, never saved."""
        with self._mutex:
            if self._state is not None:
                yield self._state
                return
            with self._locked(exclusive=False) as lock:
                current = self._current(lock)
                self._viewing += 1
                try:
                    yield current.root
                finally:
                    self._viewing -= 1
                    current.discard_stray()

    def snapshot(self) -> State:
        """Like :meth:`read`, but without a copy: the state this object holds, brought up to date with the
        directory. Valid until this object's next transaction, in this thread only (use :meth:`view` where
        other threads may use the object); never mutate it (a change to it is discarded, never saved)."""
        with self._mutex:
            if self._state is not None:
                return self.read()
            with self._locked(exclusive=False) as lock:
                return self._current(lock).root

    def append_log(self, entry: Mapping[str, Any]) -> None:
        """Append one line to the command log (call inside a transaction to keep the order)."""
        line = json.dumps(dict(entry), separators=(",", ":"), sort_keys=True) + "\n"
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(line)

    def read_log(self) -> list[dict[str, Any]]:
        try:
            with open(self.log_path, encoding="utf-8") as handle:
                return [json.loads(line) for line in handle if line.strip()]
        except FileNotFoundError:
            return []

    def advance(self, seconds: float) -> float:
        """Move simulated time forward; returns the new time."""
        load_modules()
        with self.transaction() as state:
            advance_state(state, seconds)
            return float(state["time"])


def node_state(state: State, node: str) -> NodeState:
    try:
        found: NodeState = state["nodes"][node]
    except KeyError:
        known = ", ".join(sorted(state.get("nodes", {}))) or "none"
        raise SimStateError(f"node {node!r} is not part of the simulated cluster (nodes: {known})") from None
    return found


def content(state: State, key: str) -> dict[str, Any]:
    """The persisted content record of a block device (created empty on first use)."""
    disks: dict[str, dict[str, Any]] = state.setdefault("disks", {})
    record = disks.get(key)
    if record is None:
        record = {"signature": None}
        disks[key] = record
    return record


def node_by_host(state: State, host: str) -> str | None:
    """The node that a host name or address names (as ssh would reach it), or None."""
    if host in state["nodes"]:
        return host
    for name, ns in state["nodes"].items():
        if ns.get("address") == host:
            return str(name)
    return None


def peek_content(state: State, key: str) -> dict[str, Any]:
    """The content record of ``key`` for reading: an empty record when nothing was written (nothing is stored)."""
    found: dict[str, Any] | None = state.get("disks", {}).get(key)
    return found if found is not None else {"signature": None}


def can_talk(state: State, a: str, b: str, *, link: str = "cut") -> bool:
    """Whether nodes ``a`` and ``b`` are both up and the link between them (``cut``: replication,
    ``management_cut``: management) is not cut."""
    nodes = state["nodes"]
    if not nodes.get(a, {}).get("up") or not nodes.get(b, {}).get("up"):
        return False
    pair = sorted((a, b))
    return pair not in [sorted(p) for p in state.get("network", {}).get(link, [])]


def _lv_path_key(node: NodeState, vg: str, lv: str) -> str | None:
    found = node["vgs"].get(vg, {}).get("lvs", {}).get(lv)
    return None if found is None else "lv:" + str(found["uuid"])


def split_mapper_name(name: str) -> tuple[str, str] | None:
    """``vg--a-lv--b`` -> (``vg-a``, ``lv-b``): device-mapper doubles dashes inside names."""
    index = 0
    while index < len(name):
        if name[index] == "-":
            if index + 1 < len(name) and name[index + 1] == "-":
                index += 2
                continue
            return name[:index].replace("--", "-"), name[index + 1:].replace("--", "-")
        index += 1
    return None


def mapper_name(vg: str, lv: str) -> str:
    return vg.replace("-", "--") + "-" + lv.replace("-", "--")


def dm_table_key(state: State, node: str, table: list[dict[str, Any]]) -> str | None:
    """Content key of a dm table: a whole-device linear passthrough or a striped set."""
    if len(table) != 1:
        return None
    line = table[0]
    target = line.get("target")
    if target == "linear":
        leg = line["legs"][0]
        if int(leg["offset"]) != 0:
            return None
        return _device_number_key(state, node, str(leg["device"]))
    if target == "striped":
        keys = [_device_number_key(state, node, str(leg["device"])) for leg in line["legs"]]
        if any(k is None or int(leg["offset"]) != 0 for k, leg in zip(keys, line["legs"], strict=True)):
            return None
        return f"striped:{int(line['chunk'])}:" + "|".join(str(k) for k in keys)
    return None


def _device_number_key(state: State, node: str, device: str) -> str | None:
    """A dm leg is stored as the path given at creation; numbers ``253:N`` are resolved too."""
    if ":" in device and not device.startswith("/"):
        path = device_path_for_number(state, node, device)
        return None if path is None else resolve_device(state, node, path)
    return resolve_device(state, node, device)


def device_path_for_number(state: State, node: str, number: str) -> str | None:
    """``253:N`` -> a path of that device on ``node`` (LV or dm device), or None."""
    major_text, _, minor_text = number.partition(":")
    if not major_text.isdigit() or not minor_text.isdigit() or int(major_text) != DM_MAJOR:
        return None
    minor = int(minor_text)
    ns = node_state(state, node)
    indexed = _path_for_minor_indexed(ns, minor)
    if indexed is not None:
        return indexed or None
    for vg, vg_state in ns["vgs"].items():
        for lv, lv_state in vg_state["lvs"].items():
            if lv_state.get("minor") == minor:
                return f"/dev/{vg}/{lv}"
    for name, dev in ns["dm"].items():
        if dev.get("minor") == minor:
            return f"/dev/mapper/{name}"
    return None


def _path_for_minor_indexed(ns: NodeState, minor: int) -> str | None:
    """:func:`device_path_for_number` through the minor indexes ("": no such device; None: no index)."""
    for vg, vg_state in ns["vgs"].items():
        lv = _first_with_minor(vg_state["lvs"], minor)
        if lv is None:
            return None
        if lv:
            return f"/dev/{vg}/{lv}"
    name = _first_with_minor(ns["dm"], minor)
    if name is None:
        return None
    return f"/dev/mapper/{name}" if name else ""


def _first_with_minor(entries: dict[str, Any], minor: int) -> str | None:
    """The first key of ``entries`` in the map's order whose minor equals ``minor`` (as the walk compares), ""
    when none does, None when the map has no index. The index has every entry whose minor prints so, a few
    at most."""
    keys = device_index.with_minor(entries, str(minor)) if entries else _NO_KEYS
    if keys is None:
        return None
    for key in [k for k in entries if k in keys] if len(keys) > 1 else keys:
        if entries[key].get("minor") == minor:
            return str(key)
    return ""


def _dm_aliases_indexed(ns: NodeState, numbers: set[str], aliases: dict[str, str]) -> dict[str, str] | None:
    """The rest of :func:`_dm_aliases` through the minor indexes (None: no index, walk instead)."""
    prefix = f"{DM_MAJOR}:"
    minors = [n[len(prefix):] for n in numbers if n.startswith(prefix)]
    for vg_name, vg in ns["vgs"].items():
        lvs = vg["lvs"]
        for minor in minors:
            keys = device_index.with_minor(lvs, minor) if lvs else _NO_KEYS
            if keys is None:
                return None
            for lv_name in [k for k in lvs if k in keys] if len(keys) > 1 else keys:
                number = prefix + minor
                aliases[f"/dev/{vg_name}/{lv_name}"] = number
                mapper = mapper_name(vg_name, lv_name)
                if mapper not in ns["dm"]:
                    aliases[f"/dev/mapper/{mapper}"] = number
    for minor in minors:
        keys = device_index.with_minor(ns["dm"], minor) if ns["dm"] else _NO_KEYS
        if keys is None:
            return None
        for name in [k for k in ns["dm"] if k in keys] if len(keys) > 1 else keys:
            aliases[f"/dev/mapper/{name}"] = prefix + minor
    return aliases


_NO_KEYS: frozenset[str] = frozenset()


def resolve_device(state: State, node: str, path: str) -> str | None:
    """The content key of the block device at ``path`` on ``node``, or None when there is none."""
    ns = node_state(state, node)
    parts = path.split("/")
    if len(parts) == 4 and parts[1] == "dev" and parts[2] != "mapper":
        key = _lv_path_key(ns, parts[2], parts[3])
        if key is not None:
            return key
    if len(parts) == 4 and parts[:3] == ["", "dev", "mapper"]:
        name = parts[3]
        dev = ns["dm"].get(name)
        if dev is not None:
            if not dev.get("table"):
                return None
            return dm_table_key(state, node, dev["table"]) or f"dm:{node}:{name}"
        split = split_mapper_name(name)
        if split is not None:
            return _lv_path_key(ns, *split)
        return None
    if len(parts) == 3 and parts[1] == "dev" and parts[2].startswith("dm-") and parts[2][3:].isdigit():
        found = device_path_for_number(state, node, f"{DM_MAJOR}:{parts[2][3:]}")
        return None if found is None else resolve_device(state, node, found)
    if len(parts) == 3 and parts[1] == "dev":
        for vg_state in ns["vgs"].values():
            for pv in vg_state["pvs"]:
                if pv["name"] == path:
                    return f"pv:{node}:{path}"
    for resolver in tuple(_device_resolvers):
        key = resolver(state, node, path)
        if key is not None:
            return key
    return None


def device_exists(state: State, node: str, path: str) -> bool:
    """Whether ``path`` is a block device on ``node`` (an LV, a dm device, a PV or a resolver's device)."""
    ns = node_state(state, node)
    parts = path.split("/")
    if len(parts) == 4 and parts[:3] == ["", "dev", "mapper"] and parts[3] in ns["dm"]:
        return True
    return resolve_device(state, node, path) is not None


# --- device numbers, sizes and holders --------------------------------------------------------

HolderSource = Callable[[State, str], "list[str]"]
_holder_sources: list[HolderSource] = []
DRBD_MAJOR = 147


def register_holder_source(fn: HolderSource) -> HolderSource:
    """``fn(state, node)`` lists device paths some module holds open there (DRBD backing disks)."""
    if fn not in _holder_sources:
        _holder_sources.append(fn)
    return fn


EntryHolders = Callable[[Any], "list[str]"]
_holder_entries: list[tuple[tuple[str, ...], EntryHolders]] = []


def register_holder_entries(where: tuple[str, ...], fn: EntryHolders) -> EntryHolders:
    """``fn(entry)`` lists the device paths one entry of the node's map at ``where`` (keys below the node's
    state, e.g. ``("drbd", "resources")``) holds open: counted per entry, and kept as an index."""
    if (where, fn) not in _holder_entries:
        _holder_entries.append((where, fn))
    return fn


def _dm_holders(dev: Any) -> list[str]:
    held: list[str] = []
    for table in (dev.get("table") or [], dev.get("inactive") or []):
        for line in table:
            held.extend(str(leg["device"]) for leg in line.get("legs", []))
    return held


def _domain_holders(domain: Any) -> list[str]:
    return [str(d["target"]) for d in domain.get("disks", []) if d.get("target")]


def _map_at(ns: Mapping[str, Any], where: tuple[str, ...]) -> Any:
    found: Any = ns
    for key in where:
        found = found.get(key) if isinstance(found, dict) else None
        if found is None:
            return {}
    return found


def _held_counts(state: State, node: str) -> list[Mapping[str, int]] | None:
    """Holder counts per device path of ``node``, one mapping per source (None: not a store's tree)."""
    ns = node_state(state, node)
    found: list[Mapping[str, int]] = []
    sources: list[tuple[Any, EntryHolders]] = [(ns["dm"], _dm_holders), (ns.get("domains", {}), _domain_holders)]
    sources.extend((_map_at(ns, where), fn) for where, fn in _holder_entries)
    for split, fn in sources:
        if not split:
            continue
        counts = device_index.holder_counts(split, fn)
        if counts is None:
            return None
        found.append(counts)
    others: dict[str, int] = {}
    for held in [str(m["device"]) for m in ns.get("mounts", [])] + [
            h for source in tuple(_holder_sources) for h in source(state, node)]:
        others[held] = others.get(held, 0) + 1
    found.append(others)
    return found


def pv_device_number(path: str) -> str:
    """Kernel numbers of the simulated disks: ``/dev/sdX`` is 8:16*n, ``/dev/loopN`` 7:N."""
    name = path.rsplit("/", 1)[-1]
    if name.startswith("sd") and len(name) == 3 and name[2].isalpha():
        return f"8:{16 * (ord(name[2].lower()) - ord('a'))}"
    if name.startswith("loop") and name[4:].isdigit():
        return f"7:{int(name[4:])}"
    if name.startswith("vd") and len(name) == 3 and name[2].isalpha():
        return f"254:{16 * (ord(name[2].lower()) - ord('a'))}"
    return f"259:{sum(ord(c) for c in name) % 256}"


def device_number(state: State, node: str, path: str) -> str | None:
    """``major:minor`` of a device path on ``node`` (or the number itself), None when unknown."""
    if ":" in path and not path.startswith("/"):
        return path
    ns = node_state(state, node)
    parts = path.split("/")
    if len(parts) == 4 and parts[1] == "dev" and parts[2] != "mapper":
        lv = ns["vgs"].get(parts[2], {}).get("lvs", {}).get(parts[3])
        if lv is not None:
            return f"{DM_MAJOR}:{lv['minor']}"
    if len(parts) == 4 and parts[:3] == ["", "dev", "mapper"]:
        dev = ns["dm"].get(parts[3])
        if dev is not None:
            return f"{DM_MAJOR}:{dev['minor']}"
        split = split_mapper_name(parts[3])
        if split is not None:
            lv = ns["vgs"].get(split[0], {}).get("lvs", {}).get(split[1])
            if lv is not None:
                return f"{DM_MAJOR}:{lv['minor']}"
        return None
    if len(parts) == 3 and parts[1] == "dev":
        name = parts[2]
        if name.startswith("dm-") and name[3:].isdigit():
            number = f"{DM_MAJOR}:{int(name[3:])}"
            return number if device_path_for_number(state, node, number) else None
        if name.startswith("drbd") and name[4:].isdigit():
            return f"{DRBD_MAJOR}:{int(name[4:])}" if device_exists(state, node, path) else None
        for vg_state in ns["vgs"].values():
            for pv in vg_state["pvs"]:
                if pv["name"] == path:
                    return pv_device_number(path)
    return None


def device_size(state: State, node: str, path: str) -> int | None:
    """Size in bytes of an LV, a dm device (its live table) or a PV on ``node``."""
    ns = node_state(state, node)
    number = device_number(state, node, path)
    if number is None:
        return None
    resolved = device_path_for_number(state, node, number) if number.startswith(f"{DM_MAJOR}:") else path
    if resolved is None:
        return None
    parts = resolved.split("/")
    if len(parts) == 4 and parts[2] != "mapper":
        vg = ns["vgs"][parts[2]]
        lv = vg["lvs"][parts[3]]
        return sum(int(seg["extents"]) for seg in lv["segments"]) * int(vg["extent_size"])
    if len(parts) == 4:
        table = ns["dm"][parts[3]].get("table") or []
        return sum(int(line["length"]) for line in table) * 512
    for vg_state in ns["vgs"].values():
        for pv in vg_state["pvs"]:
            if pv["name"] == resolved:
                return int(pv.get("dev_size", 0))
    return None


def holders(state: State, node: str) -> list[str]:
    """Every device path or number held open on ``node``: dm table legs, mounts, domain disks, others."""
    ns = node_state(state, node)
    held: list[str] = []
    for dev in ns["dm"].values():
        held.extend(_dm_holders(dev))
    held.extend(str(m["device"]) for m in ns.get("mounts", []))
    for domain in ns.get("domains", {}).values():
        held.extend(_domain_holders(domain))
    for where, fn in tuple(_holder_entries):
        for entry in _map_at(ns, where).values():
            held.extend(fn(entry))
    for source in tuple(_holder_sources):
        held.extend(source(state, node))
    return held


def open_counts(state: State, node: str) -> dict[str, int]:
    """Holders per device number (``253:4`` -> 2) on ``node``; compute once per report, not per device."""
    counts: dict[str, int] = {}
    for held in holders(state, node):
        number = device_number(state, node, held)
        if number is not None:
            counts[number] = counts.get(number, 0) + 1
    return counts


def _dm_aliases(state: State, node: str, numbers: set[str]) -> dict[str, str]:
    """Every name :func:`device_number` resolves to one of the dm ``numbers`` (``253:N``): the number itself,
    ``/dev/dm-N``, the LV's ``/dev/VG/LV`` and ``/dev/mapper/VG-LV``, a dm device's ``/dev/mapper/NAME``.
    Found with one look at each LV and dm device, which costs far less than resolving every holder."""
    ns = node_state(state, node)
    aliases = {n: n for n in numbers}
    for number in numbers:
        if device_path_for_number(state, node, number):
            aliases[f"/dev/dm-{int(number.partition(':')[2])}"] = number
    indexed = _dm_aliases_indexed(ns, numbers, aliases)
    if indexed is not None:
        return indexed
    for vg_name, vg in ns["vgs"].items():
        for lv_name, lv in vg["lvs"].items():
            number = f"{DM_MAJOR}:{lv['minor']}"
            if number in numbers:
                aliases[f"/dev/{vg_name}/{lv_name}"] = number
                mapper = mapper_name(vg_name, lv_name)
                if mapper not in ns["dm"]:  # a dm device of that name is what /dev/mapper/NAME names
                    aliases[f"/dev/mapper/{mapper}"] = number
    for name, dev in ns["dm"].items():
        number = f"{DM_MAJOR}:{dev['minor']}"
        if number in numbers:
            aliases[f"/dev/mapper/{name}"] = number
    return aliases


def open_counts_of(state: State, node: str, paths: list[str]) -> dict[str, int]:
    """:func:`open_count` of each of ``paths``, with one walk over the holders for all of them."""
    numbers = {p: device_number(state, node, p) for p in paths}
    wanted = {n for n in numbers.values() if n is not None}
    if any(not n.startswith(f"{DM_MAJOR}:") for n in wanted):
        return {p: open_count(state, node, p) for p in paths}
    aliases = _dm_aliases(state, node, wanted)
    found: dict[str, int] = {}
    counts = _held_counts(state, node) if wanted else None
    if counts is not None:
        for alias, aliased in aliases.items():
            for source in counts:
                found[aliased] = found.get(aliased, 0) + source.get(alias, 0)
    elif wanted:
        for held in holders(state, node):
            number = aliases.get(held)
            if number is not None:
                found[number] = found.get(number, 0) + 1
    return {p: found.get(n, 0) if n is not None else 0 for p, n in numbers.items()}


def open_count(state: State, node: str, path: str) -> int:
    """How many holders have the device at ``path`` open (compared by device number)."""
    number = device_number(state, node, path)
    if number is None:
        return 0
    if number.startswith(f"{DM_MAJOR}:"):
        aliases = _dm_aliases(state, node, {number})
        counts = _held_counts(state, node)
        if counts is not None:
            return sum(found.get(alias, 0) for found in counts for alias in aliases)
        return sum(1 for held in holders(state, node) if held in aliases)
    # Like open_counts(...)[number], without resolving every holder: a number held is compared as it is,
    # and a /dev/drbdN holder (major 147, whose resolution is the costly one) cannot be another major.
    drbd = number.startswith(f"{DRBD_MAJOR}:")
    count = 0
    for held in holders(state, node):
        if held == number or (held.startswith("/") and (drbd or not held.startswith("/dev/drbd"))
                              and device_number(state, node, held) == number):
            count += 1
    return count

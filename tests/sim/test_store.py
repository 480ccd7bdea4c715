"""The sharded state store: what a transaction saves, discards and sees of other processes' writes."""

from __future__ import annotations

import copy
import fcntl
import gc
import json
import multiprocessing
import os
import pickle
import sqlite3
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from reconciler.sim import store
from reconciler.sim.host import SimHost
from reconciler.sim.state import LEGACY_STATE_FILE, LOCK_FILE, STATE_FILE, SimCluster, new_state, serialise
from reconciler.sim.store import ShardStore, SplitDict, TrackedDict, TrackedList
from tests.sim.storage_helpers import GIB, cluster, ok

FORK = multiprocessing.get_context("fork")


def _fresh(directory: Path) -> dict[str, Any]:
    """The state as a new object reads it from the directory (nothing cached)."""
    return SimCluster(directory).read()


def _ping_pong(directory: str, name: str, turns: int, channel: Connection) -> list[float]:
    """Take turns with the other process: wait for its word, check its write is seen, write, pass the word on."""
    sim = SimCluster(directory)
    seen: list[float] = []
    for turn in range(turns):
        expected = channel.recv()
        with sim.transaction() as state:
            seen.append(state["time"])
            assert state["time"] == expected, f"{name} turn {turn}: saw {state['time']}, not {expected}"
            state["time"] = expected + 1.0
            state["nodes"]["erdbeere"]["files"][f"/tmp/{name}{turn}"] = {"content": name, "mode": 0o644}
        channel.send(expected + 1.0)
    return seen


@pytest.mark.timeout(60)
def test_two_processes_taking_turns_see_each_others_writes(tmp_path: Path) -> None:
    directory = str(cluster(tmp_path, vgs=("vg-sda",)))
    # Both processes keep their parsed state between turns; each must notice the other's write.
    left, right = FORK.Pipe()
    with FORK.Pool(2) as pool:
        a = pool.apply_async(_ping_pong, (directory, "a", 10, left))
        b = pool.apply_async(_ping_pong, (directory, "b", 10, right))
        right.send(0.0)  # a starts: a's first recv reads what is sent from the right end
        assert a.get(timeout=50) == [float(2 * i) for i in range(10)]
        assert b.get(timeout=50) == [float(2 * i + 1) for i in range(10)]
    state = _fresh(tmp_path)
    assert state["time"] == 20.0
    files = state["nodes"]["erdbeere"]["files"]
    assert {f"/tmp/{n}{i}" for n in "ab" for i in range(10)} <= set(files)


def test_two_objects_in_one_process_see_each_others_writes(tmp_path: Path) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    first, second = SimHost(tmp_path, "erdbeere"), SimHost(tmp_path, "himbeere")
    ok(first, "lvcreate", "-L", "1G", "-n", "root1", "vg-sda")
    ok(second, "lvcreate", "-L", "1G", "-n", "root1", "vg-sda")
    assert "root1" in first.run(["lvs", "--noheadings", "-o", "lv_name"]).stdout
    ok(first, "lvremove", "-f", "vg-sda/root1")
    assert first.cluster.read() == second.cluster.read() == _fresh(tmp_path)
    assert "root1" not in second.cluster.read()["nodes"]["erdbeere"]["vgs"]["vg-sda"]["lvs"]


def _change_everything_and_fail(sim: SimCluster) -> None:
    with sim.transaction() as state:
        state["time"] = 99.0
        node = state["nodes"]["erdbeere"]
        node["files"]["/new"] = {"content": "x", "mode": 0o600}
        node["files"]["/etc/lvm/lvm.conf"]["content"] = "changed"
        del node["vgs"]["vg-sda"]
        state["nodes"]["himbeere"]["dm"] = {"x": {"minor": 1}}
        state["disks"]["lv:new"] = {"signature": None}
        with sim.transaction() as inner:  # nested: the same state, discarded with the outer one
            inner["faults"].append({"kind": "crash"})
        raise RuntimeError("handler failed")


def test_an_exception_discards_every_change_of_the_transaction(tmp_path: Path) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    sim = SimCluster(tmp_path)
    before = _fresh(tmp_path)
    with pytest.raises(RuntimeError, match="handler failed"):
        _change_everything_and_fail(sim)
    assert sim.read() == before, "the object's own cached state is back as it was"
    assert _fresh(tmp_path) == before, "nothing reached the directory"
    with sim.transaction() as state:  # and the object still works
        state["time"] = 1.0
    assert _fresh(tmp_path)["time"] == 1.0


def test_a_container_put_in_is_tracked_in_later_transactions(tmp_path: Path) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    sim = SimCluster(tmp_path)
    record: dict[str, Any] = {"signature": None, "legs": []}
    with sim.transaction() as state:
        state["disks"]["lv:a"] = record
        record["failed"] = True  # mutated after it was put in: the same transaction saves it
    with sim.transaction() as state:
        state["disks"]["lv:a"]["legs"].append("x")
        state["nodes"]["erdbeere"]["vgs"]["vg-sda"]["pvs"][0]["pe_count"] = 7
    disks = _fresh(tmp_path)["disks"]
    assert disks["lv:a"] == {"signature": None, "legs": ["x"], "failed": True}
    assert _fresh(tmp_path)["nodes"]["erdbeere"]["vgs"]["vg-sda"]["pvs"][0]["pe_count"] == 7


def test_a_replaced_or_removed_map_takes_its_old_entries_along(tmp_path: Path) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    sim, other = SimCluster(tmp_path), SimCluster(tmp_path)
    with sim.transaction() as state:
        state["nodes"]["erdbeere"]["dm"] = {"a": {"minor": 1}, "b": {"minor": 2}}
    other.read()  # other caches the two devices
    with sim.transaction() as state:
        state["nodes"]["erdbeere"]["dm"] = {"c": {"minor": 3}}  # as a crash clears the dm tables
        del state["nodes"]["himbeere"]
    assert other.read() == _fresh(tmp_path) == sim.read()
    assert list(_fresh(tmp_path)["nodes"]) == ["erdbeere"]
    assert _fresh(tmp_path)["nodes"]["erdbeere"]["dm"] == {"c": {"minor": 3}}
    with sim.transaction() as state:
        state["nodes"]["erdbeere"]["drbd"] = {"resources": {"r": {"n": 1}}}
    with sim.transaction() as state:
        state["nodes"]["erdbeere"]["drbd"] = {}
    assert other.read()["nodes"]["erdbeere"]["drbd"] == {} == _fresh(tmp_path)["nodes"]["erdbeere"]["drbd"]


def test_maps_stay_in_key_order_as_the_single_file_store_kept_them(tmp_path: Path) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    sim = SimCluster(tmp_path)
    for name in ("/m", "/z", "/a"):
        with sim.transaction() as state:
            state["nodes"]["erdbeere"]["files"][name] = {"content": "", "mode": 0o644}
            state["disks"][name] = {"signature": None}
    assert [f for f in sim.snapshot()["nodes"]["erdbeere"]["files"] if len(f) == 2] == ["/a", "/m", "/z"]
    assert [f for f in _fresh(tmp_path)["nodes"]["erdbeere"]["files"] if len(f) == 2] == ["/a", "/m", "/z"]
    # Block-device contents are kept as added (nothing observes their order); a fresh read sorts them.
    assert list(sim.snapshot()["disks"]) == ["/m", "/z", "/a"]
    assert list(_fresh(tmp_path)["disks"]) == ["/a", "/m", "/z"]


def test_the_state_holds_tracked_containers_whose_copies_are_plain(tmp_path: Path) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    state = SimCluster(tmp_path).snapshot()
    node = state["nodes"]["erdbeere"]
    assert type(state["nodes"]) is SplitDict
    assert type(node["vgs"]["vg-sda"]["pvs"]) is TrackedList
    assert type(node["vgs"]["vg-sda"]["pvs"][0]) is TrackedDict
    pickled = pickle.loads(pickle.dumps(node))  # noqa: S301 (bytes this test just made)
    for copied in (copy.deepcopy(node), pickled, json.loads(json.dumps(node))):
        assert copied == node
        assert type(copied) is dict
        assert type(copied["vgs"]["vg-sda"]["pvs"]) is list
    assert serialise(state) == serialise(_fresh(tmp_path))


def test_a_stray_change_to_a_snapshot_is_never_saved(tmp_path: Path) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    sim = SimCluster(tmp_path)
    sim.snapshot()["time"] = 50.0
    with sim.transaction() as state:
        assert state["time"] == 0.0
        state["seq"] = 1
    assert _fresh(tmp_path)["time"] == 0.0


def test_a_savepoint_tells_a_change_from_an_empty_setdefault_and_rolls_back(tmp_path: Path) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    sim = SimCluster(tmp_path)
    with sim.transaction() as state:
        state["time"] = 5.0  # before the savepoint: kept by a rollback to it
        point = sim.savepoint()
        state["nodes"]["erdbeere"].setdefault("drbd", {}).setdefault("resources", {})
        state["oracle"].setdefault("acked", {})
        assert not sim.changed_since(point)
        state["time"] = 6.0
        state["disks"]["lv:x"] = {"signature": None}
        assert sim.changed_since(point)
        sim.rollback_to(point)
        assert not sim.changed_since(point)
        assert "lv:x" not in state["disks"]
    assert _fresh(tmp_path)["time"] == 5.0
    assert "lv:x" not in _fresh(tmp_path)["disks"]


def _die_in_commit(directory: str) -> None:
    """Start saving a change and die (as kill -9 would) after the rows are written, before the commit."""
    original = sqlite3.Connection.execute

    class Dying(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql == "COMMIT":
                os._exit(9)
            return original(self, sql, *args)

    real_connect = sqlite3.connect
    # Only in this forked child, which never returns.
    setattr(sqlite3, "connect", lambda *a, **k: real_connect(*a, factory=Dying, **k))  # noqa: B010
    sim = SimCluster(directory)
    with sim.transaction() as state:
        state["time"] = 42.0
        for index in range(200):
            state["disks"][f"lv:{index}"] = {"signature": {"type": "xfs", "uuid": str(index)}}


@pytest.mark.timeout(60)
def test_a_process_killed_while_saving_leaves_the_last_saved_state(tmp_path: Path) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    before = _fresh(tmp_path)
    child = FORK.Process(target=_die_in_commit, args=(str(tmp_path),))
    child.start()
    child.join(50)
    assert child.exitcode == 9
    assert _fresh(tmp_path) == before
    host = SimHost(tmp_path, "erdbeere")
    ok(host, "lvcreate", "-L", "1G", "-n", "root1", "vg-sda")
    assert "root1" in _fresh(tmp_path)["nodes"]["erdbeere"]["vgs"]["vg-sda"]["lvs"]


def test_a_cluster_of_the_single_file_format_is_converted_on_first_use(tmp_path: Path) -> None:
    state = new_state({})
    state["time"] = 3.0
    state["disks"] = {"lv:a": {"signature": None}}
    (tmp_path / LEGACY_STATE_FILE).write_text(serialise(state))
    (tmp_path / "commands.log").write_text("")
    sim = SimCluster(tmp_path)
    assert sim.exists()
    assert sim.read() == state
    assert (tmp_path / STATE_FILE).is_file()
    assert not (tmp_path / LEGACY_STATE_FILE).exists()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["read", "snapshot", "transaction"])
def test_the_single_file_format_is_converted_under_the_exclusive_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    (tmp_path / LEGACY_STATE_FILE).write_text(serialise(new_state({})))
    real_create = store.create
    others_could_read: list[bool] = []

    def create(path: str, state: Any) -> None:
        # Another reader, on a descriptor of its own: it must not get the lock while the conversion runs.
        fd = os.open(str(tmp_path / LOCK_FILE), os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            others_could_read.append(True)
        except BlockingIOError:
            others_could_read.append(False)
        finally:
            os.close(fd)
        real_create(path, state)

    monkeypatch.setattr(store, "create", create)
    sim = SimCluster(tmp_path)
    if how == "read":
        sim.read()
    elif how == "snapshot":
        sim.snapshot()
    else:
        with sim.transaction():
            pass
    assert others_could_read == [False]
    # The lock is shared again afterwards: a reader holding it does not keep another reader out.
    with sim.view():
        assert _fresh(tmp_path)["format"] == new_state({})["format"]


def test_init_force_replaces_the_database_other_objects_have_open(tmp_path: Path) -> None:
    SimCluster.init(tmp_path, ["erdbeere"], {"vg-sda": 400 * GIB})
    old = SimCluster(tmp_path)
    with old.transaction() as state:
        state["time"] = 9.0
    SimCluster.init(tmp_path, ["himbeere"], {"vg-sda": 400 * GIB})
    assert list(old.read()["nodes"]) == ["himbeere"]
    assert old.read()["time"] == 0.0


def test_only_touched_rows_are_written(tmp_path: Path) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    host = SimHost(tmp_path, "erdbeere")
    for index in range(20):
        ok(host, "lvcreate", "-L", "1G", "-n", f"root{index}", "vg-sda")
    database = sqlite3.connect(tmp_path / STATE_FILE)
    try:
        (latest,) = database.execute("SELECT max(gen) FROM shards").fetchone()
        written = [json.loads(p) for (p,) in database.execute("SELECT path FROM shards WHERE gen = ?", (latest,))]
    finally:
        database.close()
    # The last lvcreate wrote its LV, its content record and the counters it moved, not the 19 other LVs.
    assert ["nodes", "erdbeere", "vgs", "vg-sda", "lvs", "root19"] in written
    assert not any(p[-1].startswith("root") and p[-1] != "root19" for p in written)
    assert len(written) <= 6, written


@pytest.mark.timeout(120)
def test_threads_sharing_one_host_lose_nothing(tmp_path: Path) -> None:
    # A daemon's watcher threads run commands through the same SimHost as its main loop.
    cluster(tmp_path, vgs=("vg-sda",))
    host = SimHost(tmp_path, "erdbeere")
    failures: list[str] = []

    def work(prefix: str) -> None:
        start.wait(timeout=30)
        for index in range(15):
            result = host.run(["lvcreate", "-y", "-L", "4M", "-n", f"{prefix}{index}", "vg-sda"])
            if not result.ok:
                failures.append(result.describe())
            if host.read_file("/etc/lvm/lvm.conf") is None:
                failures.append("lvm.conf vanished")

    threads = [threading.Thread(target=work, args=(prefix,)) for prefix in ("a", "b", "c")]
    start = threading.Barrier(len(threads))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=100)
        assert not thread.is_alive(), f"{thread.name} still running: the lock was never released"
    assert not failures
    lvs = _fresh(tmp_path)["nodes"]["erdbeere"]["vgs"]["vg-sda"]["lvs"]
    assert len(lvs) == 45
    assert sorted(lv["minor"] for lv in lvs.values()) == list(range(45))


def test_a_savepoint_sees_a_map_replaced_or_removed_with_its_entries(tmp_path: Path) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    sim = SimCluster(tmp_path)
    with sim.transaction() as state:
        state["nodes"]["erdbeere"]["dm"]["x"] = {"minor": 1}
        state["nodes"]["erdbeere"]["drbd"]["resources"] = {"r": {"n": 1}}
    with sim.transaction() as state:
        point = sim.savepoint()
        state["nodes"]["erdbeere"]["dm"] = {}  # as a crash drops the dm tables
        assert sim.changed_since(point)
        sim.rollback_to(point)
        assert not sim.changed_since(point)
        del state["nodes"]["erdbeere"]["drbd"]["resources"]
        assert sim.changed_since(point)
        sim.rollback_to(point)
        assert state["nodes"]["erdbeere"]["dm"] == {"x": {"minor": 1}}
        assert state["nodes"]["erdbeere"]["drbd"]["resources"] == {"r": {"n": 1}}
    assert _fresh(tmp_path)["nodes"]["erdbeere"]["dm"] == {"x": {"minor": 1}}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["assign", "setdefault"])
def test_a_savepoint_over_a_new_plain_map_keeps_it_and_sees_no_change(tmp_path: Path, how: str) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    sim = SimCluster(tmp_path)
    with sim.transaction() as state:
        node = state["nodes"]["erdbeere"]
        # Before the savepoint, as a hung command's tickers run before the leftover command takes its own.
        if how == "assign":
            node["drbd"]["resources"] = {"r0": {"minor": 0}}
            state["oracle"]["acked"] = {"r0": {"gen": 1}}
            state["oracle"]["primaries"] = {"r0": "erdbeere"}
            node["drbd"]["last_keys"] = {"r0": "k"}
        else:
            node["drbd"].pop("resources", None)
            node["drbd"].setdefault("resources", {})["r0"] = {"minor": 0}
            state["oracle"].pop("acked", None)
            state["oracle"].setdefault("acked", {})["r0"] = {"gen": 1}
            state["oracle"].setdefault("primaries", {})["r0"] = "erdbeere"
            node["drbd"].setdefault("last_keys", {})["r0"] = "k"
        point = sim.savepoint()
        assert not sim.changed_since(point)
        state["time"] = 7.0
        assert sim.changed_since(point)
        sim.rollback_to(point)
        assert not sim.changed_since(point)
        node = state["nodes"]["erdbeere"]
        assert state["time"] == 0.0
        assert node["drbd"]["resources"] == {"r0": {"minor": 0}}
        assert node["drbd"]["last_keys"] == {"r0": "k"}
        assert state["oracle"]["acked"] == {"r0": {"gen": 1}}
        assert state["oracle"]["primaries"] == {"r0": "erdbeere"}
        # Changes after the savepoint, to the adopted maps and their entries, are seen and undone.
        node["drbd"]["resources"]["r1"] = {"minor": 1}
        assert sim.changed_since(point)
        sim.rollback_to(point)
        node = state["nodes"]["erdbeere"]
        node["drbd"]["resources"]["r0"]["minor"] = 5
        assert sim.changed_since(point)
        sim.rollback_to(point)
        node = state["nodes"]["erdbeere"]
        node["drbd"]["resources"] = {}
        assert sim.changed_since(point)
        sim.rollback_to(point)
        node = state["nodes"]["erdbeere"]
        assert node["drbd"]["resources"] == {"r0": {"minor": 0}}
        assert not sim.changed_since(point)
    saved = _fresh(tmp_path)
    assert saved["nodes"]["erdbeere"]["drbd"]["resources"] == {"r0": {"minor": 0}}
    assert saved["nodes"]["erdbeere"]["drbd"]["last_keys"] == {"r0": "k"}
    assert saved["oracle"]["acked"] == {"r0": {"gen": 1}}
    assert saved["oracle"]["primaries"] == {"r0": "erdbeere"}
    assert saved["time"] == 0.0
    with sim.transaction() as state:
        assert state["nodes"]["erdbeere"]["drbd"]["resources"] == {"r0": {"minor": 0}}


@pytest.mark.timeout(60)
def test_a_savepoint_over_a_plain_map_replacing_a_saved_one(tmp_path: Path) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    sim = SimCluster(tmp_path)
    with sim.transaction() as state:
        state["nodes"]["erdbeere"]["drbd"]["resources"] = {"old": {"minor": 9}}
    with sim.transaction() as state:
        # A new node whose split maps are all plain, and a saved map replaced by a plain one.
        state["nodes"]["kirsche"] = {"vgs": {"vg": {"lvs": {"lv": {"size": 1}}}}, "files": {}}
        state["nodes"]["erdbeere"]["drbd"]["resources"] = {"r0": {"minor": 0}}
        point = sim.savepoint()
        assert not sim.changed_since(point)
        state["seq"] = 99
        sim.rollback_to(point)
        assert state["nodes"]["erdbeere"]["drbd"]["resources"] == {"r0": {"minor": 0}}
        assert state["nodes"]["kirsche"]["vgs"] == {"vg": {"lvs": {"lv": {"size": 1}}}}
        assert not sim.changed_since(point)
    saved = _fresh(tmp_path)
    assert saved["nodes"]["erdbeere"]["drbd"]["resources"] == {"r0": {"minor": 0}}
    assert saved["nodes"]["kirsche"]["vgs"] == {"vg": {"lvs": {"lv": {"size": 1}}}}


@pytest.mark.timeout(60)
def test_a_failure_after_the_commit_makes_the_next_transaction_read_everything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    sim = SimCluster(tmp_path)
    real_install = ShardStore._install

    def failing(self: ShardStore, *args: Any, **kwargs: Any) -> None:
        raise MemoryError("after the commit")

    monkeypatch.setattr(ShardStore, "_install", failing)
    with pytest.raises(MemoryError), sim.transaction() as state:
        state["disks"]["lv:x"] = {"signature": None}  # a plain dict, tracked only once reinstalled
    monkeypatch.setattr(ShardStore, "_install", real_install)
    assert _fresh(tmp_path)["disks"]["lv:x"] == {"signature": None}
    with sim.transaction() as state:
        assert state["disks"]["lv:x"] == {"signature": None}
        state["disks"]["lv:x"]["signature"] = "ext4"
    assert _fresh(tmp_path)["disks"]["lv:x"] == {"signature": "ext4"}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["same object", "equal copy", "setdefault"])
def test_a_key_removed_and_put_back_keeps_the_map_in_key_order(tmp_path: Path, how: str) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    sim = SimCluster(tmp_path)
    with sim.transaction() as state:
        for name in ("/a", "/b", "/c"):
            state["nodes"]["erdbeere"]["files"][name] = {"content": ""}
    with sim.transaction() as state:
        files = state["nodes"]["erdbeere"]["files"]
        entry = files.pop("/a")
        if how == "same object":
            files["/a"] = entry
        elif how == "equal copy":
            files["/a"] = {"content": ""}
        else:
            files.setdefault("/a", {"content": ""})
    with sim.transaction() as state:
        assert list(state["nodes"]["erdbeere"]["files"]) == sorted(state["nodes"]["erdbeere"]["files"])
    fresh = _fresh(tmp_path)["nodes"]["erdbeere"]["files"]
    assert list(fresh) == sorted(fresh)


@pytest.mark.timeout(60)
def test_a_tuple_saved_as_the_list_it_replaces_becomes_a_tracked_list(tmp_path: Path) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    sim = SimCluster(tmp_path)
    with sim.transaction() as state:
        state["disks"]["lv:x"] = {"signature": None, "tags": ["a"]}
        state["extra"] = ["a"]
    with sim.transaction() as state:
        # The same JSON text: the shards' rows do not change.
        state["disks"]["lv:x"]["tags"] = ("a",)
        state["extra"] = ("a",)
    with sim.transaction() as state:
        assert type(state["disks"]["lv:x"]["tags"]) is TrackedList
        assert type(state["extra"]) is TrackedList
        state["disks"]["lv:x"]["tags"].append("b")
        state["extra"].append("b")
    saved = _fresh(tmp_path)
    assert saved["disks"]["lv:x"]["tags"] == ["a", "b"]
    assert saved["extra"] == ["a", "b"]


@pytest.mark.timeout(60)
def test_a_transaction_inside_a_view_of_the_same_object_is_refused_not_hung(tmp_path: Path) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    sim = SimCluster(tmp_path)
    with sim.view(), pytest.raises(RuntimeError, match="inside view"), sim.transaction():
        pass
    # The other way round is fine, and the object is usable afterwards.
    with sim.transaction() as state:
        with sim.view() as seen:
            assert seen is state
        state["time"] = 4.0
    assert _fresh(tmp_path)["time"] == 4.0


_INHERITED_CLUSTERS: list[SimCluster] = []


def _drop_the_inherited_cluster(channel: Connection) -> None:
    """In a forked child: the inherited object no longer holds the parent's connection; drop it and read."""
    sim = _INHERITED_CLUSTERS.pop()
    held = sim._store._connection if sim._store is not None else "no store"
    del sim
    gc.collect()
    channel.send((held is None, _fresh(Path(channel.recv()))["time"]))


@pytest.mark.timeout(60)
def test_a_forked_child_never_uses_or_closes_the_parents_connection(tmp_path: Path) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    sim = SimCluster(tmp_path)
    with sim.transaction() as state:
        state["time"] = 2.0
    _INHERITED_CLUSTERS.append(sim)
    parent, child = FORK.Pipe()
    process = FORK.Process(target=_drop_the_inherited_cluster, args=(child,), daemon=True)
    process.start()
    _INHERITED_CLUSTERS.clear()
    parent.send(str(tmp_path))
    assert parent.poll(50)
    assert parent.recv() == (True, 2.0)
    process.join(timeout=50)
    assert process.exitcode == 0
    # The parent's own connection still works, and what it writes is seen by others.
    with sim.transaction() as state:
        state["time"] = 3.0
    assert _fresh(tmp_path)["time"] == 3.0


def _read_through(sim: SimCluster, channel: Connection) -> None:
    channel.send(sim.read()["time"])


@pytest.mark.timeout(60)
def test_a_child_forked_while_another_thread_holds_the_object_can_use_it(tmp_path: Path) -> None:
    cluster(tmp_path, vgs=("vg-sda",))
    sim = SimCluster(tmp_path)
    viewing = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with sim.view():
            viewing.set()
            done.wait(timeout=50)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert viewing.wait(timeout=30)
        parent, child = FORK.Pipe()
        # The holder thread does not exist in the child: its mutex must not keep the child waiting.
        process = FORK.Process(target=_read_through, args=(sim, child), daemon=True)
        process.start()
        try:
            assert parent.poll(50), "the child waited for a thread it does not have"
            assert parent.recv() == 0.0
            process.join(timeout=50)
            assert process.exitcode == 0
        finally:
            if process.is_alive():
                process.kill()
                process.join(timeout=10)
    finally:
        done.set()
        holder.join(timeout=50)
    assert not holder.is_alive()

"""Several processes share one cluster directory without losing updates."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from reconciler.sim.host import SimHost
from reconciler.sim.state import SimCluster
from tests.sim.storage_helpers import cluster

PER_WORKER = 30


def _worker(directory: str, node: str, prefix: str, vg: str) -> int:
    host = SimHost(directory, node)
    failures = 0
    for index in range(PER_WORKER):
        result = host.run(["lvcreate", "-L", "4M", "-n", f"{prefix}{index}", vg])
        failures += result.returncode != 0
        if index % 10 == 0:
            host.write_file(f"/var/lib/reconciler/{prefix}{index}", str(index))
    return failures


def test_two_processes_creating_lvs_lose_nothing(tmp_path: Path) -> None:
    directory = str(cluster(tmp_path, nodes=("erdbeere",), vgs=("vg-sda",)))
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        results = [pool.apply_async(_worker, (directory, "erdbeere", prefix, "vg-sda")) for prefix in ("a", "b")]
        failures = [r.get(timeout=120) for r in results]
    assert failures == [0, 0]
    state = SimCluster(directory).read()
    node = state["nodes"]["erdbeere"]
    lvs = node["vgs"]["vg-sda"]["lvs"]
    assert len(lvs) == 2 * PER_WORKER
    minors = [lv["minor"] for lv in lvs.values()]
    assert sorted(minors) == list(range(2 * PER_WORKER)), "every LV got its own dm minor"
    starts = sorted(lv["segments"][0]["areas"][0][1] for lv in lvs.values())
    assert starts == list(range(0, 2 * PER_WORKER)), "no two LVs share an extent"
    written = [path for path in node["files"] if path.startswith("/var/lib/reconciler/")]
    assert len(written) == 2 * len(range(0, PER_WORKER, 10))
    assert len(SimCluster(directory).read_log()) == 2 * PER_WORKER


def test_two_processes_on_two_nodes_advance_one_clock(tmp_path: Path) -> None:
    directory = str(cluster(tmp_path, vgs=("vg-sda",)))
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        results = [pool.apply_async(_advance_many, (directory,)) for _ in range(2)]
        assert [r.get(timeout=120) for r in results] == [None, None]
    assert SimCluster(directory).read()["time"] == 2 * 50 * 0.5


def _advance_many(directory: str) -> None:
    cluster_ = SimCluster(directory)
    for _ in range(50):
        cluster_.advance(0.5)

"""The indexes over the simulated state (holders, minors, extents) answer as a walk over the same state does."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from reconciler.host.base import HostFileError
from reconciler.sim.drbd_machine import device_open, open_minors
from reconciler.sim.host import SimHost
from reconciler.sim.lvm import free_ranges, used_ranges
from reconciler.sim.state import DM_MAJOR, SimCluster, device_path_for_number, open_count, open_counts_of
from tests.sim.storage_helpers import cluster

NODE = "erdbeere"


def _answers(state: dict[str, Any]) -> dict[str, Any]:
    ns = state["nodes"][NODE]
    paths = [f"/dev/{vg}/{lv}" for vg, v in ns["vgs"].items() for lv in v["lvs"]]
    paths += [f"/dev/mapper/{name}" for name in ns["dm"]]
    minors = [int(lv["minor"]) for v in ns["vgs"].values() for lv in v["lvs"].values()]
    minors += [int(dev["minor"]) for dev in ns["dm"].values()]
    numbers = [f"{DM_MAJOR}:{m}" for m in [*minors, max(minors, default=0) + 1]]
    return {
        "open": {p: open_count(state, NODE, p) for p in paths + numbers},
        "open_of": open_counts_of(state, NODE, paths),
        "path": {n: device_path_for_number(state, NODE, n) for n in numbers},
        "used": {vg: used_ranges(v) for vg, v in ns["vgs"].items()},
        "free": {vg: free_ranges(v) for vg, v in ns["vgs"].items()},
    }


def _check(sim: SimCluster) -> int:
    """Compare, and return how many devices are held open (so that a test sees holders were counted)."""
    with sim.view() as state:
        indexed = _answers(state)
        walked = _answers(json.loads(json.dumps(state)))  # a plain copy: no index, the walk
    assert indexed == walked
    return sum(1 for count in indexed["open"].values() if count)


def test_indexed_answers_equal_a_walk_through_commands_of_two_processes(tmp_path: Path) -> None:
    directory = cluster(tmp_path, nodes=(NODE,))
    first, second = SimHost(directory, NODE), SimHost(directory, NODE)  # two stores, each refreshing
    rng = random.Random(7)  # noqa: S311 - a fixed sequence of commands, not a secret
    lvs: list[str] = []
    held = 0
    for step in range(60):
        host = first if step % 2 else second
        action = rng.choice(["create", "create", "map", "remove", "extend"])
        if action == "create" or not lvs:
            name = f"lv{step:02d}"
            assert host.run(["lvcreate", "-y", "-L", f"{rng.randint(1, 9) * 4}M", "-n", name,
                             rng.choice(["vg-sda", "vg-sdb"])]).ok
            lvs.append(name)
        elif action == "map":
            lv = rng.choice(lvs)
            vg = next(v for v in ("vg-sda", "vg-sdb") if _has(first, v, lv))
            table = f"0 8192 linear /dev/{vg}/{lv} 0"
            host.run(["dmsetup", "create", f"map{step}", "--table", table])
        elif action == "remove":
            lv = rng.choice(lvs)
            vg = next(v for v in ("vg-sda", "vg-sdb") if _has(first, v, lv))
            if host.run(["lvremove", "-f", f"{vg}/{lv}"]).ok:
                lvs.remove(lv)
        else:
            lv = rng.choice(lvs)
            vg = next(v for v in ("vg-sda", "vg-sdb") if _has(first, v, lv))
            assert host.run(["lvextend", "-L", "+4M", f"{vg}/{lv}"]).ok
        held = max(held, _check(first.cluster), _check(second.cluster))
    assert held > 0


def test_indexed_answers_follow_changes_inside_a_transaction_and_a_rollback(tmp_path: Path) -> None:
    directory = cluster(tmp_path, nodes=(NODE,))
    host = SimHost(directory, NODE)
    for name in ("a", "b"):
        assert host.run(["lvcreate", "-y", "-L", "8M", "-n", name, "vg-sda"]).ok
    sim = host.cluster
    _check(sim)
    try:
        with sim.transaction() as state:
            ns = state["nodes"][NODE]
            lv_a = ns["vgs"]["vg-sda"]["lvs"]["a"]
            # A plain container put in, then changed in place (untracked until the commit).
            ns["dm"]["holder"] = {"uuid": "x", "minor": 900, "table": None, "inactive": None, "suspended": False}
            _check(sim)
            ns["dm"]["holder"]["table"] = [{"start": 0, "length": 8, "type": "linear",
                                            "legs": [{"device": "/dev/vg-sda/a", "offset": 0}]}]
            assert _check(sim) > 0
            lv_a["segments"][0]["extents"] = int(lv_a["segments"][0]["extents"]) + 1
            _check(sim)
            del ns["vgs"]["vg-sda"]["lvs"]["b"]
            _check(sim)
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    _check(sim)
    with sim.view() as state:
        assert "holder" not in state["nodes"][NODE]["dm"]
        assert "b" in state["nodes"][NODE]["vgs"]["vg-sda"]["lvs"]


def _has(host: SimHost, vg: str, lv: str) -> bool:
    with host.cluster.view() as state:
        return lv in state["nodes"][NODE]["vgs"][vg]["lvs"]


def test_drbd_devices_opened_by_domains_are_indexed_as_the_walk_finds_them(tmp_path: Path) -> None:
    directory = cluster(tmp_path, nodes=(NODE,))
    sim = SimCluster(directory)
    disks = [["phy:/dev/drbd5,xvda,w"], ["phy:/dev/drbd50,xvda,w", "phy:/dev/drbd7,xvdb,w"], ["/dev/drbd05x"], []]
    for step, disk in enumerate(disks):
        with sim.transaction() as state:
            state["nodes"][NODE].setdefault("domains", {})[f"d{step}"] = {"disks": [{"spec": d} for d in disk]}
        with sim.transaction() as state:
            if step == 3:
                state["nodes"][NODE]["domains"]["d0"]["disks"][0]["spec"] = "phy:/dev/drbd6,xvda,w"
            indexed = (open_minors(state, NODE), [device_open(state, NODE, m) for m in range(60)])
            copy = json.loads(json.dumps(state))
            assert indexed == (open_minors(copy, NODE), [device_open(copy, NODE, m) for m in range(60)])
    with sim.view() as state:
        assert open_minors(state, NODE) == {6, 7, 50}


def test_a_file_path_is_a_directory_when_a_file_lies_below_it(tmp_path: Path) -> None:
    directory = cluster(tmp_path, nodes=(NODE,))
    host = SimHost(directory, NODE)
    host.write_file("/srv/a/b/c", "1")
    host.write_file("/srv/ab", "2")
    for target in ("/srv/a", "/srv/a/b", "/srv"):
        with pytest.raises(HostFileError, match="Is a directory"):
            host.write_file(target, "x")
    host.write_file("/srv/a/b/c", "3")  # a file is not a directory of its own
    host.remove_file("/srv/a/b/c")
    host.write_file("/srv/a", "4")  # nothing below it any more
    result = host.run(["tee", "/srv/ab/x", "/srv"], stdin="y")
    assert result.returncode == 1
    assert "tee: /srv: Is a directory" in result.stderr
    with SimCluster(directory).view() as state:
        files = state["nodes"][NODE]["files"]
        assert files["/srv/a"]["content"] == "4"
        assert "/srv/a/b/c" not in files

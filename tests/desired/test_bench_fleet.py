"""The benchmark's generated fleet stays valid, so the benchmark measures a real load and not an error path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from reconciler.desired.expand import expand_node
from reconciler.desired.load import collect
from tests.conftest import PROJECT_ROOT


def test_generated_fleet_is_valid_and_expands(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_desired", PROJECT_ROOT / "benchmarks" / "bench_desired.py")
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.generate(str(tmp_path / "fleet"), 120, 6)
    cluster, issues = collect(str(tmp_path / "fleet"))
    assert issues == []
    assert cluster is not None
    assert (len(cluster.vms), len(cluster.nodes)) == (120, 12)
    node = expand_node(cluster, "node000")
    assert len(node.vms) == 20
    assert sorted(vm.drbd.minor for vm in node.vms if vm.drbd) == list(range(20))

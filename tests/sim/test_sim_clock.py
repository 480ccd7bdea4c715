"""`reconciler sim clock`: simulated time follows wall time at the given rate."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from reconciler.sim.state import SimCluster


def test_simulated_time_follows_wall_time(tmp_path: Path) -> None:
    cluster = SimCluster.init(tmp_path / "sim", ["erdbeere"], {"vg-sda": 100 << 30})
    before = cluster.advance(0)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "reconciler.cli.main", "sim", "clock", str(tmp_path / "sim"),
                           "--rate", "20", "--for", "1"], capture_output=True, text=True, timeout=60, check=False)
    wall = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    moved = cluster.advance(0) - before
    assert 20 * 1.0 <= moved <= 20 * wall + 1e-6


def test_a_rate_that_is_not_positive_is_refused(tmp_path: Path) -> None:
    SimCluster.init(tmp_path / "sim", ["erdbeere"], {"vg-sda": 100 << 30})
    proc = subprocess.run([sys.executable, "-m", "reconciler.cli.main", "sim", "clock", str(tmp_path / "sim"),
                           "--rate", "0"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert "--rate must be a positive number" in proc.stderr

"""Simulated clusters built once per test session and copied for each test (bring-up takes seconds)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.apply.simlab import SimLab, init_cluster
from tests.conftest import EXAMPLE_DIR


@pytest.fixture(scope="session")
def converged_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("converged")
    init_cluster(root / "sim")
    lab = SimLab(root / "sim")
    steps = lab.converge()
    if not all(s.plan.is_empty for s in steps.values()):
        left = [a.id for s in steps.values() for a in s.plan.actions]
        pytest.fail(f"the example did not converge on the simulator: {left}")
    return root / "sim"


@pytest.fixture
def converged_lab(converged_snapshot: Path, tmp_path: Path) -> SimLab:
    shutil.copytree(converged_snapshot, tmp_path / "sim")
    desired = tmp_path / "desired"
    shutil.copytree(EXAMPLE_DIR, desired)
    return SimLab(tmp_path / "sim", desired_dir=desired)

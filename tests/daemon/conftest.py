"""Fixtures shared by the daemon's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.sim.demo import DemoCluster, example_desired_state


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DemoCluster]:
    seed = example_desired_state()
    if seed is None:
        pytest.skip("desired-state/ (the example repository) is not present")
    demo = DemoCluster(tmp_path / "demo")
    demo.create(seed)
    yield demo
    demo.stop()

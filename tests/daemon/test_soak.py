"""The soak on a short budget: two daemons on the simulator through seeded random commits and faults, with the
oracle and the invariants checked after every step (reconciler.sim.soak, docs/soak.md). A failure prints the seed
and the command that replays it exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.sim.soak import Soak, report

RUNS = ((1, "automatic"), (2, "manual"), (3, "automatic"))


@pytest.mark.timeout(150)
@pytest.mark.parametrize(("seed", "failover"), RUNS)
def test_a_short_soak_finds_no_violation(tmp_path: Path, seed: int, failover: str) -> None:
    soak = Soak(tmp_path, seed, failover=failover, fault_budget=5, converge_bound=1800.0)
    figures = soak.run()
    text = report(figures, seed, soak.failover, [f"--seed {seed}", "--faults 5", "--time 1800",
                                                 f"--failover {soak.failover}"])
    print(text)
    assert figures.violations == [], text
    assert sum(figures.faults.values()) >= 4, text

"""The soak on a short budget: two daemons on the simulator through seeded random commits and faults, with the
oracle and the invariants checked after every step (reconciler.sim.soak, docs/soak.md). A failure prints the seed
and the command that replays it exactly."""

from __future__ import annotations

import json
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
    assert figures.harness_errors == [], text
    assert sum(figures.faults.values()) >= 4, text


@pytest.mark.timeout(30)
def test_a_destructive_command_that_succeeds_twice_on_one_object_is_a_violation(tmp_path: Path) -> None:
    (tmp_path / "sim").mkdir()
    lines = [
        {"node": "erdbeere", "argv": ["mkfs.xfs", "-q", "/dev/drbd3"], "exit": 0, "mutating": True},
        {"node": "himbeere", "argv": ["mkfs.xfs", "-q", "/dev/drbd3"], "exit": 0, "mutating": True},  # other node
        {"node": "erdbeere", "argv": ["lvremove", "-f", "vg-sda/root103"], "exit": 5, "mutating": False},
        {"node": "erdbeere", "argv": ["lvremove", "-f", "vg-sda/root103"], "exit": 0, "mutating": True},  # retried
        {"node": "erdbeere", "argv": ["drbdadm", "primary", "--force", "vm103"], "exit": 0, "mutating": True},
    ]
    log = tmp_path / "sim" / "commands.log"
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    soak = Soak(tmp_path, 1)
    soak.check_destructive()
    assert soak.figures.violations == []
    soak.losses += 1  # the peer was lost again: a new forced promotion is a new decision
    with log.open("a") as handle:
        handle.write(json.dumps(lines[4]) + "\n")
    soak.check_destructive()
    assert soak.figures.violations == []
    with log.open("a") as handle:
        handle.write(json.dumps(lines[0]) + "\n")
    soak.check_destructive()
    assert len(soak.figures.violations) == 1
    assert "mkfs.xfs -q /dev/drbd3" in soak.figures.violations[0]
    assert soak.figures.destructive == {"mkfs": 3, "lvremove": 1, "forced-promotion": 2}

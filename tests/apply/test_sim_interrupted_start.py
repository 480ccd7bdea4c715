"""A start that did not finish: ``xl create`` killed mid-way leaves a paused domain that never ran.

The start that left it destroys it (as ``xl`` does when it fails by itself) and the next pass starts the
domain again; a paused or half-made domain found any other way is reported, never changed.
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.sim import faults, oracle
from tests.apply.simlab import SimLab, edit_vm, run_on

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def lab(converged_lab: SimLab) -> SimLab:
    """Both nodes converged, then vm100 stopped by hand: the next pass on erdbeere starts it."""
    run_on(converged_lab, "erdbeere", "xl", "destroy", "vm100")
    return converged_lab


def _domain(lab: SimLab) -> dict[str, Any] | None:
    found: dict[str, Any] | None = lab.cluster.read()["nodes"]["erdbeere"]["domains"].get("vm100")
    return found


def _hang_starts(lab: SimLab) -> int:
    with lab.cluster.transaction() as state:
        return int(faults.add_fault(state, "hang", node="erdbeere", prefix=["xl", "create"])["id"])


def test_a_killed_start_is_cleared_and_the_next_pass_starts_the_domain(lab: SimLab) -> None:
    hang = _hang_starts(lab)
    first = lab.apply("erdbeere")
    assert first.result is not None
    start = next(r for r in first.result.actions if r.kind == "start-domain")
    assert start.result == "failed"
    assert "; the half-made vm100 (domain " in start.message
    assert "paused, never ran) was destroyed" in start.message
    assert start.argv[-1][:2] == ("xl", "destroy")
    assert start.argv[-1][2].isdigit(), "destroyed by its domain id"
    assert _domain(lab) is None
    assert not first.result.converged

    with lab.cluster.transaction() as state:
        faults.remove_fault(state, hang)
    second = lab.apply("erdbeere")
    assert second.result is not None
    assert [r.result for r in second.result.actions if r.kind == "start-domain"] == ["ok"], second.result.actions
    dom = _domain(lab)
    assert dom is not None
    assert dom["state"] == "running"
    assert lab.apply("erdbeere").plan.is_empty
    assert oracle.check(lab.cluster.read()) == []


def test_a_half_made_domain_found_after_a_restart_is_reported_and_kept(lab: SimLab) -> None:
    # The daemon died with its `xl create`: no failed start of its own to clear up after, so it reports.
    run_on(lab, "erdbeere", "xl", "create", "-p", "/etc/xen/vm100.cfg")
    step = lab.apply("erdbeere")
    assert step.result is not None
    assert not step.result.converged
    assert not step.plan.actions
    condition = next(c for c in step.plan.conditions if c.kind == "domain-not-running")
    assert "paused and has never run" in condition.message
    assert "`xl destroy vm100` lets the reconciler start it again" in condition.message
    dom = _domain(lab)
    assert dom is not None
    assert dom["state"] == "paused"

    run_on(lab, "erdbeere", "xl", "destroy", "vm100")
    assert lab.apply("erdbeere").result is not None
    assert lab.apply("erdbeere").plan.is_empty


def test_a_paused_domain_that_ran_is_neither_changed_nor_destroyed(lab: SimLab) -> None:
    run_on(lab, "erdbeere", "xl", "create", "/etc/xen/vm100.cfg")
    lab.cluster.advance(60)
    run_on(lab, "erdbeere", "xl", "pause", "vm100")
    edit_vm(lab, "vm100", r"^  memory: 4G", "  memory: 3G")
    step = lab.apply("erdbeere")
    assert step.result is not None
    assert not step.result.converged
    assert not [a for a in step.plan.actions if a.kind in ("set-domain-memory", "start-domain")]
    condition = next(c for c in step.plan.conditions if c.kind == "domain-not-running")
    assert condition.message.endswith("is paused; `xl unpause vm100` resumes it")
    dom = _domain(lab)
    assert dom is not None
    assert dom["state"] == "paused"
    assert float(dom["cpu_s"]) > 0
    # Resumed as the condition says: the memory change the revision asks for is made live, and it is healthy.
    run_on(lab, "erdbeere", "xl", "unpause", "vm100")
    resumed = lab.apply("erdbeere")
    assert resumed.result is not None
    assert [r.result for r in resumed.result.actions if r.kind == "set-domain-memory"] == ["ok"]
    settled = lab.apply("erdbeere")
    assert settled.plan.is_empty
    assert settled.result is not None
    assert settled.result.converged

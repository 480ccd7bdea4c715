"""End to end: two real daemon processes on one simulated cluster meet a split brain, name the same incident
through their peer status, and resolve it once a commit says whose changes are discarded."""

from __future__ import annotations

import re

import pytest

from reconciler.sim import drbd_machine as m
from reconciler.sim import faults, oracle
from reconciler.sim.demo import DemoCluster
from reconciler.sim.host import SimHost
from reconciler.sim.state import SimCluster

STEP_TIMEOUT = 90.0
RESOURCE = "vm100"
HAND_WRITES = 20
_INCIDENT = re.compile(r"incident (sb-[0-9a-f]{12})")


def _run(cluster: DemoCluster, node: str, *argv: str) -> None:
    result = SimHost(cluster.sim, node).run(list(argv), timeout=30)
    assert result.ok, result.describe()


def _reason(cluster: DemoCluster, node: str) -> str:
    status = cluster.status(node)
    found = [r.reason for r in (status.resources if status else ()) if r.key == f"drbd:{RESOURCE}"]
    return found[0] if found else ""


def _incident(cluster: DemoCluster, node: str) -> str | None:
    match = _INCIDENT.search(_reason(cluster, node))
    return match.group(1) if match else None


def _disk_writes(state: dict, node: str) -> list[list[int]]:  # type: ignore[type-arg]
    res = m.runtime(state, node, RESOURCE)
    assert res is not None
    return [list(r) for r in m.writes_of(state, next(iter(res["devices"].values()))["key"])]


def _fail(cluster: DemoCluster, what: str) -> None:
    logs = "\n".join(f"--- {n}\n{cluster.log_tail(n, 30)}" for n in cluster.nodes)
    pytest.fail(f"{what}\n{logs}")


@pytest.mark.slow
def test_two_daemons_name_the_incident_alike_and_resolve_it_by_commit(cluster: DemoCluster) -> None:
    first = cluster.git("rev-parse", "HEAD")
    cluster.start()
    if not cluster.wait_converged(first, STEP_TIMEOUT):
        _fail(cluster, "bring-up did not converge")
    sim = SimCluster(cluster.sim)

    # The secondary's daemon is stopped while an operator promotes it by hand during a partition, writes to
    # it from dom0 and demotes it again; the primary's domain writes meanwhile. Then the network heals.
    cluster.stop_node("himbeere")
    with sim.transaction() as state:
        faults.partition(state, "erdbeere", "himbeere")
    _run(cluster, "himbeere", "drbdadm", "primary", "--force", RESOURCE)
    with sim.transaction() as state:
        assert oracle.write_by_hand(state, "himbeere", RESOURCE, HAND_WRITES)
    _run(cluster, "himbeere", "drbdadm", "secondary", RESOURCE)
    with sim.transaction() as state:
        faults.heal(state)
    cluster.start_node("himbeere")

    # Both name the incident alike: each from its own record and the peer's, heard through peer status.
    if not cluster.wait_for(lambda: all(_incident(cluster, n) for n in cluster.nodes), STEP_TIMEOUT):
        _fail(cluster, "the incident was not named on both nodes")
    incident = _incident(cluster, "erdbeere")
    assert incident == _incident(cluster, "himbeere")
    assert "generation identifiers at detection: erdbeere " in _reason(cluster, "erdbeere")
    survivor_before = _disk_writes(sim.read(), "erdbeere")
    violations_before = [str(v) for v in oracle.check(sim.read())]

    vm_file = cluster.repo / "vms" / f"{RESOURCE}.yaml"
    text = vm_file.read_text()
    assert "\nlifecycle: present" in text
    statement = text.replace("\nlifecycle: present",
                             f"\nsplit_brain_recovery: {{incident: {incident}, discard: himbeere}}\nlifecycle: present",
                             1)
    fixed = cluster.commit("Resolve the split brain of vm100: discard himbeere's changes",
                           {f"vms/{RESOURCE}.yaml": statement})
    if not cluster.wait_converged(fixed, 2 * STEP_TIMEOUT):
        _fail(cluster, "the split brain was not resolved")

    state = sim.read()
    assert "vm100: Split-Brain detected, manually solved. Sync from peer node" in state["nodes"]["himbeere"][
        "drbd"]["log"]
    assert _disk_writes(state, "himbeere") == _disk_writes(state, "erdbeere")
    assert not m.missing_ranges(_disk_writes(state, "himbeere"), survivor_before)
    assert oracle.summary(state)["discarded"] == {RESOURCE: HAND_WRITES}
    assert [str(v) for v in oracle.check(state)] == violations_before
    discards = [e["argv"] for e in sim.read_log() if e["argv"][:3] == ["drbdadm", "connect", "--discard-my-data"]]
    assert discards == [["drbdadm", "connect", "--discard-my-data", RESOURCE]]
    # Afterwards the statement is inert, and each daemon's log says it can be removed (once, not every pass).
    for node in cluster.nodes:
        log = cluster.procs[node].log
        if not cluster.wait_for(lambda log=log: "can be removed" in log.read_text(errors="replace"), STEP_TIMEOUT):
            _fail(cluster, f"{node} never said that the statement can be removed")
        lines = [line for line in log.read_text(errors="replace").splitlines()
                 if "event=split-brain-recovery.note" in line and "is not in split brain on this node now" in line]
        assert len(lines) == 1, lines
        assert "vm=vm100" in lines[0]

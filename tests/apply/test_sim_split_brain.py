"""Split brain, resolved by commit, on the simulator with the example desired state: the incident is named
alike on both nodes, a statement for it makes the discarding node drop its changes and resync from the
survivor (as DRBD's ``connect --discard-my-data`` does), and the data oracle holds: no write the survivor
acknowledged is lost, never two writers, never the domain on two nodes. A statement for another incident,
or naming the other node, does exactly what it says and no more."""

from __future__ import annotations

import re
from typing import Any

import pytest

from reconciler.apply.executor import ApplyOptions, apply_plan
from reconciler.apply.oneshot import Step, observe_and_plan, observed_peer
from reconciler.apply.retry import RetryPolicy
from reconciler.desired.expand import expand_node
from reconciler.desired.load import load_cluster
from reconciler.sim import drbd_machine as m
from reconciler.sim import faults, oracle
from tests.apply.simlab import SimLab, edit_vm, run_on

RESOURCE = "vm100"
DISCARD_ARGV = ["drbdadm", "connect", "--discard-my-data", RESOURCE]
CONNECT_ARGV = ["drbdadm", "connect", RESOURCE]
HAND_WRITES = 20
_INCIDENT = re.compile(r"incident (sb-[0-9a-f]{12})")


@pytest.fixture
def lab(converged_lab: SimLab) -> SimLab:
    return converged_lab


def _mutating(lab: SimLab, mark: int, node: str) -> list[list[str]]:
    return [e["argv"] for e in lab.log()[mark:] if e["node"] == node and e.get("mutating")]


def _ran(lab: SimLab, mark: int, node: str) -> list[list[str]]:
    return [e["argv"] for e in lab.log()[mark:] if e["node"] == node]


def _split_brain(lab: SimLab) -> None:
    """The primary erdbeere goes on writing through a partition while an operator promotes himbeere by hand,
    writes to it from dom0, and demotes it again; the network heals and DRBD finds both sides changed."""
    with lab.cluster.transaction() as state:
        faults.partition(state, "erdbeere", "himbeere")
    lab.cluster.advance(10)
    run_on(lab, "himbeere", "drbdadm", "primary", "--force", RESOURCE)
    with lab.cluster.transaction() as state:
        assert oracle.write_by_hand(state, "himbeere", RESOURCE, HAND_WRITES)
    run_on(lab, "himbeere", "drbdadm", "secondary", RESOURCE)
    lab.cluster.advance(10)
    with lab.cluster.transaction() as state:
        faults.heal(state)
    lab.cluster.advance(10)


def _reason(step: Step, key: str = f"drbd:{RESOURCE}") -> str:
    assert step.result is not None
    return next(r.reason for r in step.result.resources if r.key == key)


def _incident(lab: SimLab) -> str:
    """The incident as each node reports it (status reason): named alike on both."""
    found = {}
    for node in ("erdbeere", "himbeere"):
        step = lab.apply(node)
        reason = _reason(step)
        match = _INCIDENT.search(reason)
        assert match, reason
        assert "generation identifiers at detection: " in reason
        found[node] = match.group(1)
    assert found["erdbeere"] == found["himbeere"], found
    return found["erdbeere"]


def _disk_writes(lab: SimLab, node: str) -> list[list[int]]:
    state = lab.cluster.read()
    res = m.runtime(state, node, RESOURCE)
    assert res is not None
    return [list(r) for r in m.writes_of(state, next(iter(res["devices"].values()))["key"])]


def _violations(lab: SimLab) -> list[str]:
    return [str(v) for v in oracle.check(lab.cluster.read())]


def _state(lab: SimLab) -> dict[str, Any]:
    return lab.cluster.read()


def _resolve(lab: SimLab, passes: int = 6) -> dict[str, Step]:
    last: dict[str, Step] = {}
    for _ in range(passes):
        for node in ("himbeere", "erdbeere"):
            last[node] = lab.apply(node)
        lab.cluster.advance(3600)
    return last


def test_a_statement_for_the_incident_resolves_it_and_keeps_every_write_of_the_survivor(lab: SimLab) -> None:
    _split_brain(lab)
    incident = _incident(lab)
    survivor_before = _disk_writes(lab, "erdbeere")
    acked_before = oracle.acknowledged(_state(lab), RESOURCE)
    violations_before = _violations(lab)
    edit_vm(lab, RESOURCE, r"^lifecycle: present",
            f"split_brain_recovery: {{incident: {incident}, discard: himbeere}}\nlifecycle: present")
    mark = len(lab.log())
    last = _resolve(lab)

    himbeere, erdbeere = _mutating(lab, mark, "himbeere"), _mutating(lab, mark, "erdbeere")
    assert himbeere.count(DISCARD_ARGV) == 1, himbeere
    ran = _ran(lab, mark, "himbeere")
    discard_at = ran.index(DISCARD_ARGV)
    # Already Secondary here: the demotion changes nothing (the simulator logs it as such); no `disconnect` of
    # the StandAlone connection, which DRBD 8.4 refuses.
    assert ran[discard_at - 1:discard_at] == [["drbdadm", "secondary", RESOURCE]]
    assert ["drbdadm", "disconnect", RESOURCE] not in ran
    assert erdbeere.count(CONNECT_ARGV) == 1, erdbeere
    assert DISCARD_ARGV not in erdbeere
    log = _state(lab)["nodes"]["himbeere"]["drbd"]["log"]
    assert f"{RESOURCE}: Split-Brain detected, manually solved. Sync from peer node" in log
    # Both disks hold exactly the survivor's data, every write it had acknowledged included.
    assert _disk_writes(lab, "himbeere") == _disk_writes(lab, "erdbeere")
    assert not m.missing_ranges(_disk_writes(lab, "himbeere"), survivor_before)
    summary = oracle.summary(_state(lab))
    assert summary["discarded"] == {RESOURCE: HAND_WRITES}
    assert oracle.acknowledged(_state(lab), RESOURCE) > acked_before - HAND_WRITES
    assert _violations(lab) == violations_before
    assert summary["primaries"] == {"vm100": ["erdbeere"], "vm101": ["himbeere"]}
    for node, step in last.items():
        assert step.result is not None
        assert step.result.converged, (node, step.result)
        notes = [n.message for n in step.plan.notes if n.vm == RESOURCE]
        assert any("can be removed" in n and "not in split brain on this node now" in n for n in notes), notes


def test_a_statement_for_an_earlier_incident_does_nothing_and_says_so(lab: SimLab) -> None:
    _split_brain(lab)
    first = _incident(lab)
    edit_vm(lab, RESOURCE, r"^lifecycle: present",
            f"split_brain_recovery: {{incident: {first}, discard: himbeere}}\nlifecycle: present")
    _resolve(lab)
    _split_brain(lab)  # a second split brain, the statement for the first still in the file
    second = _incident(lab)
    assert second != first
    mark = len(lab.log())
    for node in ("himbeere", "erdbeere", "himbeere"):
        step = lab.apply(node)
        assert not [a for a in step.plan.actions if a.kind in ("discard-my-data", "split-brain-connect")]
        note = next(n.message for n in step.plan.notes if "split_brain_recovery" in n.message)
        assert f"is in split brain incident {second}, not {first}" in note, note
        assert "never applies to another" in note
        reason = _reason(step)
        assert f"incident {second}" in reason, reason
        assert "discard: NODE" in reason, reason
    for node in ("erdbeere", "himbeere"):
        ran = _mutating(lab, mark, node)
        assert not [a for a in ran if a[:2] in (["drbdadm", "connect"], ["drbdadm", "adjust"],
                                                 ["drbdadm", "disconnect"], ["drbdadm", "secondary"])], ran
    res = lab.apply("erdbeere").observed.drbd.resource(RESOURCE)
    assert res is not None
    assert res.split_brain


def test_a_statement_discarding_the_primary_is_honoured_as_written_for_its_incident_only(lab: SimLab) -> None:
    """The operator names erdbeere, the designated primary running the VM: it stops the domain, demotes and
    takes himbeere's data; afterwards it runs the VM again on that data. Its own writes since the partition are
    lost, by that decision; never a write himbeere acknowledged, never two writers, never the domain twice."""
    _split_brain(lab)
    incident = _incident(lab)
    survivor_before = _disk_writes(lab, "himbeere")
    violations_before = _violations(lab)
    edit_vm(lab, RESOURCE, r"^lifecycle: present",
            f"split_brain_recovery: {{incident: {incident}, discard: erdbeere}}\nlifecycle: present")
    mark = len(lab.log())
    last = _resolve(lab)

    erdbeere, himbeere = _mutating(lab, mark, "erdbeere"), _mutating(lab, mark, "himbeere")
    assert erdbeere.count(DISCARD_ARGV) == 1, erdbeere
    shutdown = next(i for i, a in enumerate(erdbeere) if a[:2] == ["xl", "shutdown"])
    assert shutdown < erdbeere.index(["drbdadm", "secondary", RESOURCE]) < erdbeere.index(DISCARD_ARGV)
    assert himbeere.count(CONNECT_ARGV) == 1, himbeere
    assert DISCARD_ARGV not in himbeere
    assert _disk_writes(lab, "erdbeere") == _disk_writes(lab, "himbeere")
    assert not m.missing_ranges(_disk_writes(lab, "erdbeere"), survivor_before)
    summary = oracle.summary(_state(lab))
    assert summary["discarded"][RESOURCE] > 0
    assert _violations(lab) == violations_before
    assert _state(lab)["nodes"]["erdbeere"]["domains"][RESOURCE]["state"] == "running"
    assert RESOURCE not in _state(lab)["nodes"]["himbeere"].get("domains", {}) or \
        _state(lab)["nodes"]["himbeere"]["domains"][RESOURCE]["state"] not in ("running", "blocked")
    assert last["erdbeere"].result is not None
    assert last["erdbeere"].result.converged

    # The same statement, still in the file, does nothing for the next split brain.
    _split_brain(lab)
    mark = len(lab.log())
    for node in ("erdbeere", "himbeere"):
        step = lab.apply(node)
        assert not [a for a in step.plan.actions if a.kind in ("discard-my-data", "split-brain-connect")]
        assert "drbdadm connect" not in " ".join(" ".join(a) for a in _mutating(lab, mark, node))


def test_the_last_look_refuses_a_discard_planned_for_an_incident_that_has_since_changed(lab: SimLab) -> None:
    """Planned while incident A persists, run after an operator resolved A by hand and a new split brain B
    happened: right before the step the incident is named again, and the discard is refused."""
    _split_brain(lab)
    first = _incident(lab)
    edit_vm(lab, RESOURCE, r"^lifecycle: present",
            f"split_brain_recovery: {{incident: {first}, discard: himbeere}}\nlifecycle: present")
    cluster = load_cluster(str(lab.desired_dir))
    step = observe_and_plan(lab.host("himbeere"), expand_node(cluster, "himbeere"),
                            peer=lambda: observed_peer(lab.host("erdbeere"), expand_node(cluster, "erdbeere")))
    discard = step.plan.action(f"discard-my-data@drbd:{RESOURCE}")
    assert discard is not None
    assert not discard.waiting
    assert not discard.refused
    run_on(lab, "himbeere", "drbdadm", "connect", "--discard-my-data", RESOURCE)
    run_on(lab, "erdbeere", "drbdadm", "connect", RESOURCE)
    lab.cluster.advance(3600)
    _split_brain(lab)
    second = _incident(lab)
    mark = len(lab.log())
    result = apply_plan(lab.host("himbeere"), step.plan,
                        options=ApplyOptions(policy=RetryPolicy(attempts=1), sleep=lambda _s: None))
    record = next(r for r in result.actions if r.kind == "discard-my-data")
    assert record.result == "refused"
    assert second != first
    assert record.message == (f"discarding this node's changes refused right before the step: DRBD reported a split "
                              f"brain of {RESOURCE} again since the plan (this node's generation identifiers "
                              f"changed): it is no longer incident {first}; the next pass names it afresh")
    assert DISCARD_ARGV not in _ran(lab, mark, "himbeere")

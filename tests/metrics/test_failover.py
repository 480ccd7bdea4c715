"""Failover health of the standby node, and revision skew between the nodes of a VM."""

from __future__ import annotations

import pytest

from reconciler.metrics.failover import FailoverHealth, failover_health, revision_skew
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import DomainState, ObservedNode, OwnedFile
from reconciler.model.status import PeerStatus
from tests.metrics.representative import (
    PEER,
    REV_A,
    REV_B,
    desired_node,
    desired_vm,
    drbd_resource,
    observed_node,
)


def _standby(*, safety: str = "fencing", memory_mib: int = 1024) -> DesiredNode:
    return desired_node(desired_vm(101, PEER, safety=safety, memory_mib=memory_mib))


def _health(desired: DesiredNode, observed: ObservedNode) -> FailoverHealth:
    [health] = failover_health(desired, observed)
    return health


def test_healthy_standby_is_ready() -> None:
    desired = _standby()
    health = _health(desired, observed_node(drbd_resource("vm101", 101), desired=desired))
    assert health.ready
    assert (health.vm, health.node, health.primary) == ("vm101", "xen1", PEER)
    assert health.failing() == ()


@pytest.mark.parametrize(
    ("resource_kwargs", "failing"),
    [
        ({"disk": "Inconsistent", "repl": "SyncTarget"}, "disk_uptodate"),
        ({"disk": "Outdated", "conn": "Connecting", "peer_role": "Unknown"}, "connected"),
    ],
)
def test_disk_or_connection_problem_fails_its_check(resource_kwargs: dict[str, object], failing: str) -> None:
    desired = _standby()
    resource = drbd_resource("vm101", 101, **resource_kwargs)  # type: ignore[arg-type]
    health = _health(desired, observed_node(resource, desired=desired))
    assert not health.ready
    assert failing in health.failing()


def test_missing_resource_fails_disk_and_connection() -> None:
    desired = _standby()
    health = _health(desired, observed_node(desired=desired))
    assert {"disk_uptodate", "connected"} <= set(health.failing())


def test_stale_config_fails_config_rendered() -> None:
    desired = _standby()
    observed = observed_node(drbd_resource("vm101", 101), desired=desired)
    stale = tuple(OwnedFile(path=f.path, content="old\n") if f.path.endswith(".cfg") else f for f in observed.files)
    health = _health(desired, observed.model_copy(update={"files": stale}))
    assert health.failing() == ("config_rendered",)


def test_domain_already_running_here_fails() -> None:
    desired = _standby()
    observed = observed_node(drbd_resource("vm101", 101), desired=desired,
                             domains=(DomainState(name="vm101", domid=7, state="running", memory_mib=1024),))
    assert _health(desired, observed).failing() == ("domain_not_running",)


def test_not_enough_free_memory_fails() -> None:
    desired = _standby(memory_mib=4096)
    observed = observed_node(drbd_resource("vm101", 101), desired=desired, free_mib=4095)
    assert _health(desired, observed).failing() == ("memory",)


def test_no_safety_mechanism_fails() -> None:
    desired = _standby(safety="none")
    health = _health(desired, observed_node(drbd_resource("vm101", 101), desired=desired))
    assert health.failing() == ("safety",)


def test_quorum_safety_needs_quorum_now() -> None:
    desired = _standby(safety="quorum")
    assert _health(desired, observed_node(drbd_resource("vm101", 101, quorum=True), desired=desired)).ready
    lost = _health(desired, observed_node(drbd_resource("vm101", 101, quorum=False), desired=desired))
    assert lost.failing() == ("safety",)


def test_primary_node_exports_no_readiness_for_its_own_vm() -> None:
    desired = desired_node(desired_vm(100, "xen1"))
    assert failover_health(desired, observed_node(drbd_resource("vm100", 100), desired=desired)) == []


def test_revision_skew_per_vm_and_peer() -> None:
    desired = desired_node(desired_vm(100, "xen1"), desired_vm(101, PEER))
    same = revision_skew(desired, REV_A, {PEER: PeerStatus(node=PEER, reachable=True, applied_revision=REV_A)})
    assert [(s.vm, s.peer, s.skewed) for s in same] == [("vm100", PEER, False), ("vm101", PEER, False)]
    other = revision_skew(desired, REV_A, {PEER: PeerStatus(node=PEER, reachable=True, applied_revision=REV_B)})
    assert all(s.skewed for s in other)


def test_unknown_revisions_yield_no_skew_guess() -> None:
    desired = desired_node(desired_vm(100, "xen1"))
    assert revision_skew(desired, None, {PEER: PeerStatus(node=PEER, reachable=True, applied_revision=REV_A)}) == []
    assert revision_skew(desired, REV_A, {}) == []
    assert revision_skew(desired, REV_A, {PEER: PeerStatus(node=PEER, reachable=False)}) == []

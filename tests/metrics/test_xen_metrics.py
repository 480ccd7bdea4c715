"""Xen families: desired domains' state on this node and memory."""

from __future__ import annotations

from reconciler.metrics.state import MetricsState
from reconciler.model.observed import DomainState
from tests.metrics.representative import REV_A, desired_pair, node_status, observed_node, pass_result
from tests.metrics.scrape import scrape, value


def _state_with(*domains: DomainState) -> MetricsState:
    state = MetricsState("xen1")
    desired = desired_pair()
    state.record_pass(pass_result(REV_A, 1.0, 2.0), observed_node(domains=domains, desired=desired, free_mib=2048),
                      desired, node_status(REV_A, seen_at=1.0))
    return state


def test_running_blocked_paused_crashed_absent() -> None:
    s = scrape(_state_with(DomainState(name="vm100", domid=1, state="blocked", memory_mib=512),
                           DomainState(name="vm101", domid=2, state="crashed", memory_mib=256)))
    assert value(s, "reconciler_domain_state", vm="vm100", domain="vm100", state="running") == 1.0
    assert value(s, "reconciler_domain_state", vm="vm101", domain="vm101", state="crashed") == 1.0
    assert value(s, "reconciler_domain_state", vm="vm101", domain="vm101", state="running") == 0.0
    assert value(s, "reconciler_domain_memory_bytes", vm="vm100", domain="vm100") == 512.0 * 1024 * 1024
    s = scrape(_state_with(DomainState(name="vm100", domid=1, state="paused", memory_mib=512)))
    assert value(s, "reconciler_domain_state", vm="vm100", domain="vm100", state="paused") == 1.0
    assert value(s, "reconciler_domain_state", vm="vm101", domain="vm101", state="absent") == 1.0
    assert value(s, "reconciler_domain_memory_bytes", vm="vm101", domain="vm101") is None


def test_expected_running_only_on_the_primary() -> None:
    s = scrape(_state_with())
    assert value(s, "reconciler_domain_expected_running", vm="vm100", domain="vm100") == 1.0
    assert value(s, "reconciler_domain_expected_running", vm="vm101", domain="vm101") == 0.0
    assert value(s, "reconciler_host_free_memory_bytes") == 2048.0 * 1024 * 1024
    assert value(s, "reconciler_domain_desired_memory_bytes", vm="vm100", domain="vm100") == 1024.0 * 1024 * 1024


def test_domains_not_in_the_desired_state_are_not_exported() -> None:
    s = scrape(_state_with(DomainState(name="Domain-0", domid=0, state="running", memory_mib=2048)))
    assert not any(dict(labels).get("domain") == "Domain-0" for _, labels in s)

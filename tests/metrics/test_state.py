"""MetricsState: accumulation across passes, revision latency, suspension, thread safety."""

from __future__ import annotations

import threading

from reconciler.metrics.state import MetricsState
from reconciler.model.status import Suspension
from tests.metrics.representative import (
    NODE,
    REV_A,
    REV_B,
    desired_pair,
    healthy_observed,
    node_status,
    pass_result,
)
from tests.metrics.scrape import scrape, series, value


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counters_accumulate_over_passes() -> None:
    state = MetricsState(NODE)
    desired = desired_pair()
    for i in range(3):
        state.record_pass(pass_result(REV_A, 100.0 + i, 101.5 + i, outcome="failed" if i == 1 else "converged"),
                          healthy_observed(desired), desired, node_status(REV_A, seen_at=90.0))
    s = scrape(state)
    assert value(s, "reconciler_passes_total", outcome="converged") == 2.0
    assert value(s, "reconciler_passes_total", outcome="failed") == 1.0
    assert value(s, "reconciler_passes_total", outcome="invalid") == 0.0
    assert value(s, "reconciler_actions_total", kind="lv_create", result="ok") == 3.0
    assert value(s, "reconciler_action_retries_total") == 3.0
    assert value(s, "reconciler_drift_resources_total") == 6.0
    assert value(s, "reconciler_pass_duration_seconds_count") == 3.0
    assert value(s, "reconciler_pass_duration_seconds_bucket", le="1.0") == 0.0
    assert value(s, "reconciler_pass_duration_seconds_bucket", le="2.5") == 3.0
    assert value(s, "reconciler_last_success_timestamp_seconds") == 103.5
    assert value(s, "reconciler_resources", state="progressing") == 1.0
    assert value(s, "reconciler_vm_resources", vm="vm101", state="waiting") == 1.0


def test_converge_latency_counts_from_first_seen_once_per_revision() -> None:
    state = MetricsState(NODE)
    desired = desired_pair()
    state.record_revision_seen(REV_B, 1000.0)
    state.record_revision_seen(REV_B, 1003.0)  # seen again by the next poll: the clock must not restart
    status = node_status(REV_B, seen_at=1000.0, committed_at=900.0)
    state.record_pass(pass_result(REV_B, 1001.0, 1002.0, outcome="progressing"), None, desired, status)
    state.record_pass(pass_result(REV_B, 1004.0, 1007.5), None, desired, status)
    state.record_pass(pass_result(REV_B, 1100.0, 1101.0), None, desired, status)
    s = scrape(state)
    assert value(s, "reconciler_revision_converged_latency_seconds_count") == 1.0
    assert value(s, "reconciler_revision_converged_latency_seconds_sum") == 7.5
    assert value(s, "reconciler_last_converged_revision_commit_lag_seconds") == 107.5


def test_failed_pass_does_not_move_last_success() -> None:
    state = MetricsState(NODE)
    desired = desired_pair()
    state.record_pass(pass_result(REV_A, 10.0, 11.0), None, desired, node_status(REV_A, seen_at=5.0))
    state.record_pass(pass_result(REV_A, 20.0, 21.0, outcome="failed"), None, desired, node_status(REV_A, seen_at=5.0))
    s = scrape(state)
    assert value(s, "reconciler_last_success_timestamp_seconds") == 11.0
    assert value(s, "reconciler_last_pass_outcome", outcome="failed") == 1.0
    assert value(s, "reconciler_last_pass_timestamp_seconds") == 21.0


def test_invalid_and_refused_revisions_are_visible() -> None:
    state = MetricsState(NODE)
    status = node_status(REV_A, seen_at=1.0, invalid=("vms/vm1.yaml:3:1: unknown field",))
    state.record_pass(pass_result(REV_A, 1.0, 2.0, outcome="invalid"), None, None, status)
    s = scrape(state)
    assert value(s, "reconciler_revision_blocked", reason="invalid") == 1.0
    assert value(s, "reconciler_revision_blocked", reason="refused") == 0.0


def test_suspension_scopes_and_since() -> None:
    clock = Clock(500.0)
    state = MetricsState(NODE, clock=clock)
    state.set_suspended("node", True)
    clock.now = 600.0
    state.set_suspended("node", True)  # still the same suspension: its start does not move
    state.set_suspended("vm100", True)
    s = scrape(state)
    assert value(s, "reconciler_suspended", scope="node") == 1.0
    assert value(s, "reconciler_suspended_since_timestamp_seconds", scope="node") == 500.0
    assert value(s, "reconciler_suspended_since_timestamp_seconds", scope="vm100") == 600.0
    state.set_suspended("node", False)
    state.set_suspended("vm100", False)
    s = scrape(state)
    assert value(s, "reconciler_suspended", scope="node") == 0.0
    assert series(s, "reconciler_suspended_since_timestamp_seconds") == []
    assert value(s, "reconciler_suspended", scope="vm100") is None


def test_status_suspensions_carry_their_start_time() -> None:
    state = MetricsState(NODE, clock=Clock(1000.0))
    status = node_status(REV_A, seen_at=1.0, suspensions=(Suspension(scope="vm101", reason="r", by="op", at=42.0),))
    state.record_pass(pass_result(REV_A, 1.0, 2.0, outcome="suspended"), None, None, status)
    assert value(scrape(state), "reconciler_suspended_since_timestamp_seconds", scope="vm101") == 42.0


def test_vm_suspended_in_the_repository_counts_as_suspended() -> None:
    state = MetricsState(NODE)
    desired = desired_pair()
    vm = desired.vms[0].model_copy(update={"suspended": True})
    desired = desired.model_copy(update={"vms": (vm, *desired.vms[1:])})
    state.record_pass(pass_result(REV_A, 1.0, 2.0), None, desired, node_status(REV_A, seen_at=1.0))
    assert value(scrape(state), "reconciler_suspended", scope=vm.name) == 1.0


def test_revisions_seen_are_bounded() -> None:
    state = MetricsState(NODE)
    for i in range(500):
        state.record_revision_seen(f"{i:040x}", float(i))
    assert len(state._first_seen) <= 64


def test_concurrent_writers_and_scrapes() -> None:
    state = MetricsState(NODE)
    desired = desired_pair()
    observed = healthy_observed(desired)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(200):
                state.record_pass(pass_result(REV_A, float(i), float(i) + 0.5), observed, desired,
                                  node_status(REV_A, seen_at=0.0))
                state.update_observed(observed)
        except BaseException as exc:
            errors.append(exc)

    done = threading.Event()
    scrapes = []

    def reader() -> None:
        try:
            while True:  # at least one scrape, then keep going while the writers write
                scrapes.append(len(scrape(state)))
                if done.is_set():
                    return
        except BaseException as exc:
            errors.append(exc)

    reader_thread = threading.Thread(target=reader)
    reader_thread.start()
    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader_thread.join()
    assert errors == []
    assert scrapes
    assert value(scrape(state), "reconciler_passes_total", outcome="converged") == 600.0


def test_reused_observation_does_not_look_fresh() -> None:
    state = MetricsState(NODE)
    desired = desired_pair()
    observed = healthy_observed(desired)
    state.record_pass(pass_result(REV_A, 10.0, 11.0), observed, desired, node_status(REV_A, seen_at=1.0))
    # The next pass could not observe and handed back the same observation.
    state.record_pass(pass_result(REV_A, 20.0, 21.0, outcome="error"), observed, desired,
                      node_status(REV_A, seen_at=1.0))
    assert value(scrape(state), "reconciler_last_observation_timestamp_seconds") == 11.0
    state.record_pass(pass_result(REV_A, 30.0, 31.0), healthy_observed(desired), desired,
                      node_status(REV_A, seen_at=1.0))
    assert value(scrape(state), "reconciler_last_observation_timestamp_seconds") == 31.0


def test_event_stream_observation_survives_a_pass_that_could_not_observe() -> None:
    clock = Clock(50.0)
    state = MetricsState(NODE, clock=clock)
    desired = desired_pair()
    from_pass = healthy_observed(desired)
    state.record_pass(pass_result(REV_A, 10.0, 11.0), from_pass, desired, node_status(REV_A, seen_at=1.0))
    from_event = from_pass.model_copy(update={"drbd": from_pass.drbd.model_copy(update={"resources": ()})})
    state.update_observed(from_event)
    state.record_pass(pass_result(REV_A, 60.0, 61.0, outcome="error"), from_pass, desired,
                      node_status(REV_A, seen_at=1.0))
    s = scrape(state)
    assert value(s, "reconciler_last_observation_timestamp_seconds") == 50.0
    assert value(s, "drbd_resource_resources") == 0.0

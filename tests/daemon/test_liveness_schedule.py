"""Liveness (what feeds the watchdog) and the loop's schedule and error throttling, on a virtual clock."""

from __future__ import annotations

import random

from reconciler.daemon.schedule.backoff import Backoff
from reconciler.daemon.schedule.clock import VirtualClock
from reconciler.daemon.schedule.liveness import Liveness
from reconciler.daemon.schedule.next_pass import Schedule
from reconciler.model.status import ActionRecord, PassResult


def test_a_long_action_is_tolerated_until_its_own_timeout_plus_grace() -> None:
    clock = VirtualClock()
    live = Liveness(clock.monotonic, idle_budget=120)
    live.busy("action make-fs fs:/dev/drbd0", timeout=900, grace=60)
    clock.advance(950)
    assert live.healthy()[0]
    clock.advance(20)  # 970 s > 900 + 60: hung, not slow
    healthy, why = live.healthy()
    assert not healthy
    assert "make-fs" in why


def test_an_idle_loop_must_keep_beating() -> None:
    clock = VirtualClock()
    live = Liveness(clock.monotonic, idle_budget=120)
    clock.advance(100)
    live.beat("pass: observe")
    clock.advance(100)
    assert live.healthy()[0]
    clock.advance(30)
    assert not live.healthy()[0]


def result(outcome: str) -> PassResult:
    return PassResult(started_at=0, finished_at=1, revision="a" * 40, outcome=outcome)  # type: ignore[arg-type]


def test_errors_back_off_exponentially_and_success_resets() -> None:
    schedule = Schedule(backoff=Backoff(base=2, cap=60, jitter=0, rng=random.Random(1)))  # noqa: S311
    delays = [schedule.after(result("error"), 100.0, has_revision=True, waiting=False, progress_interval=5,
                             drift_interval=300) for _ in range(7)]
    assert delays == [2, 4, 8, 16, 32, 60, 60]
    # A wake-up during the backoff does not bypass the throttle.
    schedule.woken(101.0)
    assert schedule.next_due == 160.0
    assert schedule.after(result("converged"), 200.0, has_revision=True, waiting=False, progress_interval=5,
                          drift_interval=300) == 300
    assert schedule.backoff.failures == 0
    schedule.woken(201.0)
    assert schedule.next_due == 201.0


def test_a_drbd_state_change_starts_a_pass_at_once_even_during_the_error_backoff() -> None:
    schedule = Schedule(backoff=Backoff(base=2, cap=60, jitter=0, rng=random.Random(1)))  # noqa: S311
    for _ in range(6):
        schedule.after(result("error"), 100.0, has_revision=True, waiting=False, progress_interval=5,
                       drift_interval=300)
    schedule.woken(101.0, {"peer"})
    assert schedule.next_due == 160.0
    schedule.woken(102.0, {"drbd"})
    assert schedule.next_due == 102.0


def test_a_new_revision_ends_the_backoff_of_the_old_one() -> None:
    schedule = Schedule(backoff=Backoff(base=2, cap=300, jitter=0, rng=random.Random(1)))  # noqa: S311
    for _ in range(9):
        schedule.after(result("failed"), 100.0, has_revision=True, waiting=False, progress_interval=5,
                       drift_interval=300)
    assert schedule.next_due == 400.0
    schedule.woken(110.0, {"revision"})
    assert schedule.next_due == 110.0
    assert schedule.backoff.failures == 0
    # If the new revision fails too, its own backoff starts from the beginning.
    assert schedule.after(result("failed"), 111.0, has_revision=True, waiting=False, progress_interval=5,
                          drift_interval=300) == 2


def test_a_pass_that_changed_something_is_confirmed_at_once() -> None:
    changed = result("progressing").model_copy(update={"actions": (
        ActionRecord(kind="create-lv", key="lv:vg-sda/root100", vm="vm100", result="ok"),)})
    assert Schedule().after(changed, 0.0, has_revision=True, waiting=False, progress_interval=5,
                            drift_interval=300) == 1.0


def test_waiting_and_degraded_passes_recheck_soon_without_backing_off() -> None:
    schedule = Schedule()
    assert schedule.after(result("degraded"), 0.0, has_revision=True, waiting=False, progress_interval=5,
                          drift_interval=300) == 5
    assert schedule.after(result("converged"), 0.0, has_revision=True, waiting=True, progress_interval=5,
                          drift_interval=300) == 5
    assert schedule.backoff.failures == 0


def test_progressing_passes_recheck_soon_and_no_revision_is_not_throttled() -> None:
    schedule = Schedule()
    assert schedule.after(result("progressing"), 0.0, has_revision=True, waiting=False, progress_interval=5,
                          drift_interval=300) == 5
    assert schedule.after(result("error"), 0.0, has_revision=False, waiting=False, progress_interval=5,
                          drift_interval=300) == 300
    assert schedule.backoff.failures == 0


def test_backoff_jitter_stays_within_bounds() -> None:
    backoff = Backoff(base=10, cap=100, jitter=0.2, rng=random.Random(7))  # noqa: S311
    delays = [backoff.failure() for _ in range(10)]
    assert all(8 <= d <= 120 for d in delays)
    assert delays[0] <= 12

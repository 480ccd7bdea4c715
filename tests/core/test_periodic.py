"""The one start/stop/wake loop the fetcher and the peer monitor run on."""

from __future__ import annotations

import threading

import pytest

from reconciler.periodic import PeriodicThread

pytestmark = pytest.mark.timeout(30)


def test_the_step_repeats_after_the_delay_it_returns() -> None:
    done = threading.Event()
    calls: list[int] = []

    def step() -> float:
        calls.append(1)
        if len(calls) == 3:
            done.set()
        return 0.0

    worker = PeriodicThread("t", step)
    worker.start()
    assert done.wait(10)
    worker.stop()
    assert not worker.running
    assert worker.name == "t"


def test_a_poke_cuts_a_long_wait_short_and_stop_ends_the_thread() -> None:
    ran = [threading.Event(), threading.Event()]
    count = 0

    def step() -> float:
        nonlocal count
        ran[min(count, 1)].set()
        count += 1
        return 3600.0  # without the poke the second run would be an hour away

    worker = PeriodicThread("t", step)
    worker.start()
    assert ran[0].wait(10)
    assert worker.running
    worker.poke()
    assert ran[1].wait(10)
    worker.stop()
    assert not worker.running


def test_stop_without_start_is_harmless() -> None:
    worker = PeriodicThread("t", lambda: 1.0)
    worker.stop()
    assert not worker.running

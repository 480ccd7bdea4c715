"""A fresh plan starts vgs and lvs early: the observer gets those answers, each command runs once."""

from __future__ import annotations

import pytest

from reconciler.backends.lvm.argv import LVS_ARGV, VGS_ARGV
from reconciler.host.prefetch import PrefetchingHost
from reconciler.observe.observer import Observer
from reconciler.observe.timeout import OBSERVE_TIMEOUT
from tests.observe.scripted import full_node


def test_the_observer_gets_the_prefetched_reports_and_nothing_runs_twice() -> None:
    direct = Observer(full_node()).observe()
    inner = full_node()
    observed = Observer(PrefetchingHost(inner, (VGS_ARGV, LVS_ARGV), timeout=OBSERVE_TIMEOUT)).observe()
    assert observed == direct
    assert inner.calls.count(VGS_ARGV) == 1
    assert inner.calls.count(LVS_ARGV) == 1
    # The pass still counts them as its own commands.
    assert observed.commands_run == direct.commands_run


def test_an_answer_is_given_once_and_only_for_the_same_call() -> None:
    inner = full_node()
    host = PrefetchingHost(inner, (VGS_ARGV,), timeout=OBSERVE_TIMEOUT)
    host.run(VGS_ARGV, timeout=5.0)  # another timeout: not the prefetched call, runs again
    assert inner.calls.count(VGS_ARGV) == 2
    host.run(VGS_ARGV, timeout=OBSERVE_TIMEOUT)  # the prefetched answer
    assert inner.calls.count(VGS_ARGV) == 2
    host.run(VGS_ARGV, timeout=OBSERVE_TIMEOUT)  # used up: runs for real
    assert inner.calls.count(VGS_ARGV) == 3


def test_an_error_in_the_background_is_raised_to_the_caller() -> None:
    inner = full_node()
    unscripted = ("vgs", "--not-scripted")
    host = PrefetchingHost(inner, (unscripted,), timeout=OBSERVE_TIMEOUT)
    with pytest.raises(AssertionError, match="not scripted"):
        host.run(unscripted, timeout=OBSERVE_TIMEOUT)

"""The domain watcher wakes the loop when a domain appears, goes or changes state, not on counters."""

from __future__ import annotations

from reconciler.backends.xen.hypervisor import XenHypervisor
from reconciler.daemon.schedule.domain_watch import DomainWatcher
from reconciler.host.base import CommandResult
from tests.apply.fakes import FakeHost, ok

HEADER = "Name                                        ID   Mem VCPUs      State   Time(s)\n"
DOM0 = "Domain-0                                     0  1024     2     r-----      51.2\n"


def listing(*rows: str) -> str:
    return HEADER + DOM0 + "".join(rows)


def domain_signature(text: str) -> str:
    return XenHypervisor().state_signature(text)


def test_signature_ignores_ids_memory_and_cpu_time() -> None:
    a = listing("vm100                                        3  4096     2     -b----      12.0\n")
    b = listing("vm100                                        3  4096     2     -b----      99.9\n")
    assert domain_signature(a) == domain_signature(b)
    crashed = listing("vm100                                        3  4096     2     ----c-      99.9\n")
    assert domain_signature(a) != domain_signature(crashed)


def test_signature_is_the_name_and_state_of_every_domain_dom0_included_sorted() -> None:
    # A name with a space, which this project never gives: every word before the five columns is the name.
    text = listing("web-1                                        7  2048     1     -b----       3.0\n",
                   "db                                           5  8192     4     r-----      40.1\n",
                   "rescue copy                                  9   512     1     --p---       0.0\n")
    assert domain_signature(text) == "Domain-0 r-----\ndb r-----\nrescue copy --p---\nweb-1 -b----"


def test_ballooning_and_a_new_domain_id_do_not_wake_the_loop() -> None:
    # xl mem-set changes the Mem column; a domain restarted by Xen itself gets a new ID: neither is a state change.
    before = listing("vm100                                        3  4096     2     -b----      12.0\n")
    after = listing("vm100                                       11  2048     2     -b----      12.0\n")
    assert domain_signature(before) == domain_signature(after)


def test_one_domain_replaced_by_another_in_the_same_state_wakes_the_loop() -> None:
    # Between two polls vm100 was shut down by hand and vm101 started: the same count and states, other names.
    answers = [listing("vm100                                        3  4096     2     -b----      1.0\n"),
               listing("vm101                                        4  4096     2     -b----      0.1\n")]
    woken: list[int] = []
    host = FakeHost(responders=[lambda argv: ok(argv, answers.pop(0)) if argv[:2] == ("xl", "list") else None])
    watcher = DomainWatcher(host, interval=1.0, on_change=lambda: woken.append(1))
    assert not watcher.check_once()
    assert watcher.check_once()
    assert woken == [1]


def test_a_domain_going_away_wakes_the_loop_once() -> None:
    answers = [listing("vm100                                        3  4096     2     -b----      1.0\n"),
               listing("vm100                                        3  4096     2     -b----      2.0\n"),
               listing()]
    woken: list[int] = []
    host = FakeHost(responders=[lambda argv: ok(argv, answers.pop(0)) if argv[:2] == ("xl", "list") else None])
    watcher = DomainWatcher(host, interval=1.0, on_change=lambda: woken.append(1))
    assert not watcher.check_once()  # the first answer is the baseline
    assert not watcher.check_once()  # only the CPU time moved
    assert watcher.check_once()
    assert woken == [1]


def test_no_xl_disables_the_watcher() -> None:
    host = FakeHost(responders=[lambda argv: CommandResult(argv, 127, "", "xl: not found", not_found=True)])
    watcher = DomainWatcher(host, interval=1.0, on_change=lambda: None)
    assert not watcher.check_once()
    assert watcher.disabled_reason == "xl is not installed"

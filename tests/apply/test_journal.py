"""The crash journal through the host seam."""

from __future__ import annotations

from reconciler.apply.journal import DEFAULT_JOURNAL_PATH, Journal, JournalEntry
from reconciler.apply.retry import RetryPolicy
from tests.apply.fakes import FakeHost


def entry(action_id: str, device: str = "/dev/drbd0", identity: str = "U1") -> JournalEntry:
    return JournalEntry(node="erdbeere", action_id=action_id, kind="make-fs", key="fs:/dev/drbd0", vm="vm100",
                        devices=(device,), identity=identity)


def test_entries_survive_until_finished_and_the_file_goes_when_empty() -> None:
    host = FakeHost()
    journal = Journal(host)
    journal.begin(entry("a"))
    journal.begin(entry("b"))
    reread = Journal(host).load()
    assert [e.action_id for e in reread] == ["a", "b"]
    assert all(e.started_at > 0 for e in reread)
    journal.finish("a")
    assert [e.action_id for e in Journal(host).load()] == ["b"]
    journal.finish("b")
    assert DEFAULT_JOURNAL_PATH not in host.files


def test_names_requires_the_same_kind_device_and_identity() -> None:
    e = entry("a")
    assert e.names("make-fs", "/dev/drbd0", "U1")
    assert not e.names("make-fs", "/dev/drbd0", "U2")
    assert not e.names("make-fs", "/dev/drbd1", "U1")
    assert not e.names("make-swap", "/dev/drbd0", "U1")
    assert not entry("x", identity="").names("make-fs", "/dev/drbd0", "")


def test_torn_or_foreign_journal_proves_nothing() -> None:
    for text in ('{"in_flight": [{"node": "x"', "[1, 2, 3]", '{"in_flight": [{"unexpected": 1}]}', ""):
        host = FakeHost()
        host.files[DEFAULT_JOURNAL_PATH] = text
        assert Journal(host).load() == ()


def test_forget_except_drops_what_the_plan_no_longer_needs() -> None:
    host = FakeHost()
    journal = Journal(host)
    journal.begin(entry("a"))
    journal.begin(entry("b"))
    journal.forget_except({"b"})
    assert [e.action_id for e in Journal(host).load()] == ["b"]


def test_documented_retry_defaults() -> None:
    policy = RetryPolicy()
    assert (policy.attempts, policy.initial_s, policy.max_s, policy.jitter_s) == (5, 1.0, 30.0, 1.0)

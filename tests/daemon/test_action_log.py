"""Every failure event in the daemon's log carries its error text."""

from __future__ import annotations

import io
from pathlib import Path

from reconciler.apply.retry import RetryPolicy
from reconciler.daemon.loop.real_engine import _HookProgress
from reconciler.daemon.loop.reconcile import Reconciler
from reconciler.daemon.records.logs import setup_logging
from reconciler.daemon.schedule.clock import VirtualClock
from reconciler.daemon.schedule.liveness import Liveness
from reconciler.model.status import ActionRecord
from tests.daemon.fakes import FakeEngine, FakeSource, action


def test_a_failed_action_logs_its_error(tmp_path: Path) -> None:
    clock = VirtualClock()
    rec = Reconciler(node="erdbeere", state_dir=tmp_path, source=FakeSource(tmp_path),  # type: ignore[arg-type]
                     engine=FakeEngine(), clock=clock, liveness=Liveness(clock.monotonic))
    stream = io.StringIO()
    setup_logging("kv", stream=stream)
    hooks = rec._hooks("0123456789abcdef")
    act = action("create-lv", "vm100", "lv:vg-sda/root100")
    # Through the engine's progress adapter, as apply reports it.
    progress = _HookProgress(hooks, RetryPolicy())
    progress.finished(act, ActionRecord(kind="create-lv", key=act.key, vm=act.vm, result="failed",
                                        message="permanent: lvcreate: volume group vg-sda not found"))
    progress.finished(act, ActionRecord(kind="create-lv", key=act.key, vm=act.vm, result="ok"))
    progress.finished(act, ActionRecord(kind="make-swap", key=act.key, vm=act.vm, result="unchanged",
                                        message="/dev/vg-sda/swap100 already carries a swap signature"))
    failed, succeeded, unchanged = stream.getvalue().strip().splitlines()
    assert "result=failed" in failed
    assert 'error="permanent: lvcreate: volume group vg-sda not found"' in failed
    assert "result=ok" in succeeded
    assert "error=" not in succeeded
    assert 'reason="/dev/vg-sda/swap100 already carries a swap signature"' in unchanged
    assert "error=" not in unchanged

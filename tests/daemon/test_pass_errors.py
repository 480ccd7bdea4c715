"""No exception ends a pass without its text in status and the log: a crashing pass, even the very first,
publishes its reason, and the daemon goes on (throttled) instead of dying."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.daemon.loop.config import DaemonConfig
from reconciler.daemon.loop.runtime import Daemon
from reconciler.daemon.records import status_store
from tests.daemon.fakes import FakeEngine
from tests.source.gitrepo import WorkRepo


class ExplodingEngine(FakeEngine):
    def observe(self) -> Any:
        raise AssertionError("bug in a parser: \x1b[2Jscreen cleared")


def test_a_crashing_first_pass_puts_its_reason_in_status_and_the_log(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    repo = WorkRepo(tmp_path / "repo", bare_server=False)
    repo.commit("one", {"vms.txt": "vm100\n"})

    def loader(directory: Path) -> tuple[str, ...]:
        raise RuntimeError("loader bug")

    config = DaemonConfig(node="erdbeere", repo=str(repo.work), state_dir=tmp_path / "state", fetch_interval=3600,
                          drift_interval=3600, metrics_address=None, drbd_events=False, boot_fetch_timeout=0)
    daemon = Daemon(config, host=None, engine=ExplodingEngine(), loader=loader)  # type: ignore[arg-type]
    daemon.start()
    try:
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline:
            status = status_store.load(config.state_dir)
            if status is not None and any("pass crashed" in e for e in status.recent_errors):
                break
            time.sleep(0.02)
        assert status is not None, "the crash left no status"
        assert any("pass crashed: RuntimeError: loader bug" in e for e in status.recent_errors), status.recent_errors
    finally:
        daemon.stop()
    assert any(r.getMessage() == "pass crashed" and r.exc_info for r in caplog.records)
    # What the failing observation said is kept too, escaped: it could quote a tool's output.
    assert any("observation failed: bug in a parser: \\x1b[2Jscreen cleared" in e for e in status.recent_errors)

"""The DRBD watcher: the events2 stream wakes the loop at once; the polling fallback ignores counters."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from reconciler.backends.drbd.events2 import state_signature
from reconciler.daemon.schedule.drbd_watch import DrbdWatcher
from reconciler.host.base import CommandResult
from reconciler.host.real import RealHost, follow
from reconciler.model.observed import DrbdState

INITIAL = """exists resource name:vm100 role:Primary suspended:no
exists connection name:vm100 peer-node-id:1 conn-name:himbeere connection:Connected role:Secondary
exists -
"""
DISCONNECT = "change connection name:vm100 peer-node-id:1 conn-name:himbeere connection:Connecting role:Unknown\n"


def fake_drbdsetup(bin_dir: Path, after: float) -> None:
    """A `drbdsetup` that dumps the state, then reports a disconnect after ``after`` seconds and blocks."""
    bin_dir.mkdir()
    script = bin_dir / "drbdsetup"
    script.write_text("#!/bin/sh\n"
                      f"printf '%s' '{INITIAL}'\n"
                      f"sleep {after}\n"
                      f"printf '%s' '{DISCONNECT}'\n"
                      "exec sleep 30\n")
    script.chmod(0o755)


def test_the_stream_reports_a_disconnect_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_drbdsetup(tmp_path / "bin", after=0.5)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    seen: list[DrbdState | None] = []
    changed = threading.Event()

    def on_change(state: DrbdState | None) -> None:
        seen.append(state)
        changed.set()

    watcher = DrbdWatcher(RealHost("erdbeere"), interval=60, on_change=on_change, follow=follow)
    watcher.start()
    started = time.monotonic()
    try:
        assert changed.wait(5), "no change reported from the stream"
        assert time.monotonic() - started < 2.5  # the 60 s poll interval played no part
    finally:
        watcher.stop()
    state = seen[0]
    assert state is not None
    resource = state.resource("vm100")
    assert resource is not None
    assert resource.role == "Primary"
    assert resource.connections[0].connection_state == "Connecting"
    assert watcher.mode == "stream"


class DumpHost:
    def __init__(self, dumps: list[str]) -> None:
        self.dumps = dumps

    @property
    def node(self) -> str:
        return "erdbeere"

    def run(self, argv: Sequence[str], *, timeout: float = 60, stdin: str | None = None) -> CommandResult:
        return CommandResult(tuple(argv), 0, self.dumps.pop(0), "")

    def read_file(self, path: str) -> str | None:
        return None

    def list_dir(self, path: str) -> tuple[str, ...]:
        return ()

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        return None

    def remove_file(self, path: str) -> None:
        return None


def test_polling_ignores_counters_and_reports_state_changes() -> None:
    peer = "exists peer-device name:vm100 peer-node-id:1 conn-name:himbeere volume:0 replication:Established"
    dumps = [INITIAL + peer + " received:100 sent:5\n", INITIAL + peer + " received:900 sent:7\n",
             INITIAL.replace("connection:Connected", "connection:Connecting") + peer + " received:900\n"]
    changes: list[DrbdState | None] = []
    watcher = DrbdWatcher(DumpHost(dumps), interval=1, on_change=changes.append)  # type: ignore[arg-type]
    assert not watcher.check_once()  # the first dump is the baseline
    assert not watcher.check_once()  # only counters moved
    assert watcher.check_once()
    assert len(changes) == 1


def test_state_signature_drops_counters_only() -> None:
    a = state_signature("exists device name:r volume:0 minor:0 disk:UpToDate read:10 written:20\n")
    b = state_signature("exists device name:r volume:0 minor:0 disk:UpToDate read:99 written:5\n")
    c = state_signature("exists device name:r volume:0 minor:0 disk:Outdated read:99 written:5\n")
    assert a == b
    assert a != c

"""The running daemon (threads, watcher, fetcher, control socket) over a real local git repository,
with a fake engine: a commit starts a pass within a second, passes never overlap, SIGTERM-style stop."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from reconciler.core.plan_model import Plan
from reconciler.daemon.loop.config import DaemonConfig
from reconciler.daemon.loop.engine import ActionHooks, ApplyOutcome
from reconciler.daemon.loop.runtime import Daemon
from reconciler.daemon.node.control import send_command
from reconciler.daemon.records import status_store
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode
from tests.daemon.fakes import FakeEngine
from tests.source.gitrepo import WorkRepo


class CountingEngine(FakeEngine):
    """Records the revision's cluster text per pass and fails if two passes ever overlap."""

    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.overlaps = 0
        self.clusters: list[Any] = []
        self.lock = threading.Lock()

    def apply(self, plan: Plan, desired: DesiredNode, observed: ObservedNode, hooks: ActionHooks) -> ApplyOutcome:
        with self.lock:
            self.active += 1
            if self.active > 1:
                self.overlaps += 1
        time.sleep(0.05)
        with self.lock:
            self.active -= 1
        return super().apply(plan, desired, observed, hooks)


def loader(directory: Path) -> tuple[str, ...]:
    return tuple((directory / "vms.txt").read_text().split())


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_a_local_commit_is_reconciled_within_a_second(tmp_path: Path) -> None:
    repo = WorkRepo(tmp_path / "repo", bare_server=False)
    repo.commit("one", {"vms.txt": "vm100\n"})
    engine = CountingEngine()
    config = DaemonConfig(node="erdbeere", repo=str(repo.work), state_dir=tmp_path / "state", fetch_interval=3600,
                          drift_interval=3600, metrics_address=None, drbd_events=False, boot_fetch_timeout=0)
    daemon = Daemon(config, host=None, engine=engine, loader=loader)  # type: ignore[arg-type]
    daemon.start()
    try:
        assert wait_for(lambda: daemon.reconciler.last_applied is not None, 5)
        passes_before = daemon.passes
        committed = time.monotonic()
        sha = repo.commit("two", {"vms.txt": "vm100 vm101\n"})
        assert wait_for(lambda: daemon.reconciler.last_applied is not None
                        and daemon.reconciler.last_applied.sha == sha, 5)
        latency = time.monotonic() - committed
        assert latency < 1.0, f"commit to converged took {latency:.2f}s with a 1 h fetch interval"
        assert engine.expanded[-1] == ("vm100", "vm101")
        # reconcile-now over the control socket runs one more pass at once.
        before = daemon.passes
        assert send_command(config.state_dir, "reconcile-now")
        assert wait_for(lambda: daemon.passes > before, 2)
        assert daemon.passes > passes_before
        published = status_store.load(config.state_dir)
        assert published is not None
        assert published.last_applied is not None
        assert published.last_applied.sha == sha
    finally:
        daemon.stop()
    assert engine.overlaps == 0
    assert not (config.state_dir / "control.sock").exists()


class SlowActionEngine(FakeEngine):
    """An action that takes a while: stop() must let it finish and then not start the next one."""

    def __init__(self) -> None:
        super().__init__()
        self.in_action = threading.Event()
        self.release = threading.Event()
        self.finished_actions: list[str] = []

    def apply(self, plan: Plan, desired: DesiredNode, observed: ObservedNode, hooks: ActionHooks) -> ApplyOutcome:
        for act in plan.actions:
            if hooks.should_stop():
                break
            hooks.started(act, 30.0)
            self.in_action.set()
            self.release.wait(10)
            self.finished_actions.append(act.id)
            hooks.finished(act, "ok", "")
        return ApplyOutcome()


def test_stop_lets_the_running_action_finish_and_starts_no_other(tmp_path: Path) -> None:
    from tests.daemon.fakes import action

    repo = WorkRepo(tmp_path / "repo", bare_server=False)
    repo.commit("one", {"vms.txt": "vm100\n"})
    engine = SlowActionEngine()
    engine.planned = [action("create-lv", key="lv:vg0/a"), action("create-lv", key="lv:vg0/b")]
    config = DaemonConfig(node="erdbeere", repo=str(repo.work), state_dir=tmp_path / "state", fetch_interval=3600,
                          metrics_address=None, drbd_events=False)
    daemon = Daemon(config, host=None, engine=engine, loader=loader)  # type: ignore[arg-type]
    daemon.start()
    assert engine.in_action.wait(5)
    stopper = threading.Thread(target=daemon.stop)
    stopper.start()
    stopper.join(timeout=0.3)  # a bounded window in which stop() must not return
    assert stopper.is_alive(), "stop() returned while an action was still running"
    engine.release.set()
    stopper.join(10)
    assert not stopper.is_alive()
    assert engine.finished_actions == ["create-lv@lv:vg0/a"]


def test_ready_is_sent_after_the_first_observation_then_status_lines(tmp_path: Path) -> None:
    import socket

    from reconciler.daemon.loop.notify import Notifier

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    listener.settimeout(5)
    repo = WorkRepo(tmp_path / "repo", bare_server=False)
    repo.commit("one", {"vms.txt": "vm100\n"})
    engine = FakeEngine()
    config = DaemonConfig(node="erdbeere", repo=str(repo.work), state_dir=tmp_path / "state", fetch_interval=3600,
                          metrics_address=None, drbd_events=False)
    daemon = Daemon(config, host=None, engine=engine, loader=loader,  # type: ignore[arg-type]
                    notifier=Notifier(str(tmp_path / "notify")))
    daemon.start()
    try:
        first = dict(line.split("=", 1) for line in listener.recv(4096).decode().splitlines())
        assert first["READY"] == "1"
        assert first["STATUS"].startswith("converged; applied ")
        repo.commit("two", {"vms.txt": "vm100 vm101\n"})
        second = dict(line.split("=", 1) for line in listener.recv(4096).decode().splitlines())
        assert "READY" not in second
        assert "STATUS" in second
    finally:
        daemon.stop()
        listener.close()


def test_the_watchdog_is_fed_only_while_the_loop_is_alive(tmp_path: Path) -> None:
    import socket

    from reconciler.daemon.loop.notify import Notifier
    from reconciler.daemon.schedule.clock import VirtualClock
    from reconciler.daemon.schedule.liveness import Liveness

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    listener.settimeout(0.5)
    repo = WorkRepo(tmp_path / "repo", bare_server=False)
    repo.commit("one", {"vms.txt": "vm100\n"})
    config = DaemonConfig(node="erdbeere", repo=str(repo.work), state_dir=tmp_path / "state", metrics_address=None,
                          drbd_events=False)
    daemon = Daemon(config, host=None, engine=FakeEngine(), loader=loader,  # type: ignore[arg-type]
                    notifier=Notifier(str(tmp_path / "notify")))
    clock = VirtualClock()
    daemon.liveness = Liveness(clock.monotonic, idle_budget=120)
    daemon.liveness.busy("action make-fs fs:/dev/drbd0", timeout=900)
    feeder = threading.Thread(target=daemon._watchdog, args=(0.05,), daemon=True)
    feeder.start()
    try:
        assert listener.recv(64) == b"WATCHDOG=1"
        clock.advance(2000)  # far past the action's own timeout: hung, not slow
        while True:  # drain what was sent before the clock moved, until half a second passes without one
            try:
                listener.recv(64)
            except TimeoutError:
                break
        try:
            got = listener.recv(64)
        except TimeoutError:
            got = b""
        assert got == b"", "the watchdog was fed although the loop is stuck"
    finally:
        daemon.stop_requested.set()
        feeder.join(2)
        listener.close()

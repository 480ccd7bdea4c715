"""The daemon's peer monitor and peer server are made by the factories it is given: a test (or another
product) hands in its own and the daemon wires, starts, reads and stops them as it does the real ones."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.daemon.loop.config import DaemonConfig
from reconciler.daemon.loop.runtime import Daemon
from reconciler.daemon.peers.fence import OutdateAnswer
from reconciler.daemon.peers.peer import PeerAnswer
from reconciler.daemon.peers.peer_monitor import PeerEndpoint
from reconciler.daemon.records import status_store
from reconciler.model.status import PeerStatus
from tests.daemon.fakes import FakeEngine
from tests.source.gitrepo import WorkRepo

pytestmark = pytest.mark.timeout(60)


class FakeWatch:
    def __init__(self, on_change: Callable[[PeerStatus], None]) -> None:
        self.on_change = on_change
        self.endpoints: tuple[PeerEndpoint, ...] = (PeerEndpoint("himbeere", "127.0.0.1", 1),)
        self.events: list[str] = []
        self.status = PeerStatus(node="himbeere", reachable=True, applied_revision="f" * 40, ready=True)

    def statuses(self) -> tuple[PeerStatus, ...]:
        return (self.status,)

    def backing(self) -> dict[str, dict[str, int]]:
        return {}

    def split_brain(self) -> dict[str, dict[str, str]]:
        return {}

    def seen(self) -> frozenset[str]:
        return frozenset({"himbeere"})

    def start(self) -> None:
        self.events.append("start")

    def stop(self) -> None:
        self.events.append("stop")


class FakeListener:
    def __init__(self, address: str, port: int, answer: Callable[[], PeerAnswer],
                 outdate: Callable[[str], OutdateAnswer]) -> None:
        self.address, self._port, self.answer, self.outdate = address, port, answer, outdate
        self.events: list[str] = []

    @property
    def port(self) -> int:
        return 4242

    def start(self) -> None:
        self.events.append("start")

    def shutdown(self) -> None:
        self.events.append("shutdown")


class PassNotifier:
    """Sets ``passed`` after each pass (the daemon tells its service manager its status then)."""

    def __init__(self, passed: threading.Event) -> None:
        self.passed = passed

    def ready(self, status: str) -> bool:
        self.passed.set()
        return True

    def status(self, status: str) -> bool:
        self.passed.set()
        return True

    def watchdog(self) -> bool:
        return True

    def stopping(self, status: str = "stopping") -> bool:
        return True


def loader(directory: Path) -> tuple[str, ...]:
    return tuple((directory / "vms.txt").read_text().split())


def test_the_daemon_wires_starts_reads_and_stops_the_peer_parts_it_is_given(tmp_path: Path) -> None:
    repo = WorkRepo(tmp_path / "repo", bare_server=False)
    repo.commit("one", {"vms.txt": "vm100\n"})
    config = DaemonConfig(node="erdbeere", repo=str(repo.work), state_dir=tmp_path / "state", fetch_interval=3600,
                          drift_interval=3600, metrics_address=None, drbd_events=False, boot_fetch_timeout=0,
                          peer_listen="127.0.0.1:7999", peers=(PeerEndpoint("himbeere", "127.0.0.1", 1),))
    watches: list[FakeWatch] = []
    listeners: list[FakeListener] = []

    def make_watch(on_change: Callable[[PeerStatus], None]) -> FakeWatch:
        watches.append(FakeWatch(on_change))
        return watches[-1]

    def make_listener(address: str, port: int, answer: Callable[[], PeerAnswer],
                      outdate: Callable[[str], OutdateAnswer]) -> FakeListener:
        listeners.append(FakeListener(address, port, answer, outdate))
        return listeners[-1]

    daemon = Daemon(config, host=None, engine=FakeEngine(), loader=loader,  # type: ignore[arg-type]
                    peer_monitor=make_watch, peer_server=make_listener)
    assert daemon.peer_monitor is watches[0]
    passed = threading.Event()
    daemon.notifier = PassNotifier(passed)
    daemon.start()
    try:
        assert passed.wait(10)
        assert len(listeners) == 1
        listener = listeners[0]
        assert (listener.address, listener._port, listener.events) == ("127.0.0.1", 7999, ["start"])
        assert daemon.peer_server is listener
        assert listener.answer().node == "erdbeere"
        assert watches[0].events == ["start"]
        # What the given monitor reports is what the published status says of the peers.
        published = status_store.load(config.state_dir)
        assert published is not None
        assert published.peers == (watches[0].status,)
        # Its on_change wakes the loop for another pass.
        before = daemon.passes
        passed.clear()
        watches[0].on_change(watches[0].status)
        assert passed.wait(10)
        assert daemon.passes > before
    finally:
        daemon.stop()
    assert watches[0].events == ["start", "stop"]
    assert listeners[0].events == ["start", "shutdown"]

"""Polls the peers' status servers and remembers what they said (and who was seen since start)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.daemon.peers.peer import fetch_peer_report
from reconciler.model.status import PeerStatus
from reconciler.periodic import PeriodicThread


@dataclass(frozen=True)
class PeerEndpoint:
    """Where a peer's status server listens (``--peer NODE=HOST:PORT``, or its replication address)."""

    node: str
    host: str
    port: int


class PeerMonitor:
    def __init__(self, endpoints: tuple[PeerEndpoint, ...], key: bytes | None, *, interval: float,
                 on_change: Callable[[PeerStatus], None], sender: str) -> None:
        self.endpoints = endpoints
        self.sender = sender  # this node: every request is signed as coming from it
        self._key = key
        self.interval = interval
        self._on_change = on_change
        self._lock = threading.Lock()
        self._status: dict[str, PeerStatus] = {}
        self._backing: dict[str, dict[str, int]] = {}
        self._split_brain: dict[str, dict[str, str]] = {}
        self._seen: set[str] = set()
        self._thread = PeriodicThread("peer-monitor", self._poll_step)

    def poll_once(self) -> None:
        for endpoint in self.endpoints:
            report = fetch_peer_report(endpoint.node, endpoint.host, endpoint.port, self._key, sender=self.sender)
            status = report.status
            with self._lock:
                before = self._status.get(endpoint.node)
                self._status[endpoint.node] = status
                if status.reachable:
                    self._seen.add(endpoint.node)
                    self._backing[endpoint.node] = report.backing_bytes
                    self._split_brain[endpoint.node] = report.split_brain
            # A takeover reported or ended, or a live migration's next phase, changes what this node plans: a pass
            # looks at once.
            changed = before is None or (before.reachable, before.applied_revision, before.ready, before.takeovers,
                                         before.migrations) != (
                status.reachable, status.applied_revision, status.ready, status.takeovers, status.migrations)
            if changed:
                self._on_change(status)

    def statuses(self) -> tuple[PeerStatus, ...]:
        with self._lock:
            return tuple(self._status[e.node] for e in self.endpoints if e.node in self._status)

    def backing(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {node: dict(sizes) for node, sizes in self._backing.items()}

    def split_brain(self) -> dict[str, dict[str, str]]:
        """Peer -> DRBD resource -> the peer's record of its last split brain there (as last reported)."""
        with self._lock:
            return {node: dict(records) for node, records in self._split_brain.items()}

    def seen(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._seen)

    def poke(self) -> None:
        self._thread.poke()

    def _poll_step(self) -> float:
        self.poll_once()
        return self.interval

    def start(self) -> None:
        if not self.endpoints:
            return
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()

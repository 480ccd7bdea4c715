"""What keeps a network client from exhausting the daemon: the peer port and the metrics endpoint alike.

- A cap on concurrent connections, in all and per client address: beyond it a connection is closed at
  once, before a handler thread exists for it (1,500 idle connections used to mean 1,500 threads).
- A deadline for each connection as a whole, not per read: a client that trickles one header byte every
  few seconds is cut off when the deadline passes. One reaper thread watches every connection.
- Failed authentications limited per client address and in all: a client over its budget is answered
  429 without the (deliberately slow) check running, so guessing costs the node a bounded share of CPU.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_MAX_PER_CLIENT = 8
DEFAULT_CONNECTION_DEADLINE_S = 10.0
_REAP_INTERVAL_S = 0.25


class FailureLimiter:
    """Counts failed authentications; :meth:`allow` says whether another attempt may be checked now.

    Per client: at most ``per_client`` failures per ``window`` seconds. In all: a token bucket of
    ``global_rate`` failures per second (burst ``global_burst``), so that many addresses together cannot
    buy more CPU than that either. Remembered clients are bounded (the oldest are forgotten first).
    """

    def __init__(self, *, per_client: int = 10, window: float = 60.0, global_rate: float = 2.0,
                 global_burst: float = 20.0, max_clients: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_client = per_client
        self.window = window
        self.global_rate = global_rate
        self.global_burst = global_burst
        self._max_clients = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: OrderedDict[str, list[float]] = OrderedDict()
        self._tokens = global_burst
        self._refilled = clock()
        self.refused = 0

    def _refill(self, now: float) -> None:
        self._tokens = min(self.global_burst, self._tokens + (now - self._refilled) * self.global_rate)
        self._refilled = now

    def allow(self, client: str) -> bool:
        now = self._clock()
        with self._lock:
            self._refill(now)
            recent = [t for t in self._clients.get(client, ()) if now - t < self.window]
            if recent:
                self._clients[client] = recent
            else:
                self._clients.pop(client, None)
            if len(recent) >= self.per_client or self._tokens < 1.0:
                self.refused += 1
                return False
            return True

    def failed(self, client: str) -> None:
        now = self._clock()
        with self._lock:
            self._refill(now)
            self._tokens = max(0.0, self._tokens - 1.0)
            self._clients.setdefault(client, []).append(now)
            self._clients.move_to_end(client)
            while len(self._clients) > self._max_clients:
                self._clients.popitem(last=False)


class GuardedServerMixin:
    """Mixed in before ``ThreadingMixIn``: caps connections and gives each one a deadline."""

    request_queue_size = 256  # a burst of connections is accepted (and refused) instead of stalling in SYN retries
    max_connections = DEFAULT_MAX_CONNECTIONS
    max_per_client = DEFAULT_MAX_PER_CLIENT
    connection_deadline = DEFAULT_CONNECTION_DEADLINE_S
    name = "server"

    def guard_start(self) -> None:
        self._guard_lock = threading.Lock()
        self._open: dict[int, tuple[Any, str, float]] = {}
        self._per_client: dict[str, int] = {}
        self._guard_stop = threading.Event()
        self.accepted_connections = 0
        self.refused_connections = 0
        self.cut_connections = 0
        self._reaper = threading.Thread(target=self._reap, name=f"{self.name}-reaper", daemon=True)
        self._reaper.start()

    @property
    def open_connections(self) -> int:
        with self._guard_lock:
            return len(self._open)

    def process_request(self, request: Any, client_address: Any) -> None:
        client = str(client_address[0]) if isinstance(client_address, tuple) else str(client_address)
        with self._guard_lock:
            full = len(self._open) >= self.max_connections
            crowded = self._per_client.get(client, 0) >= self.max_per_client
            if not (full or crowded):
                self._open[id(request)] = (request, client, time.monotonic() + self.connection_deadline)
                self._per_client[client] = self._per_client.get(client, 0) + 1
                self.accepted_connections += 1
        if full or crowded:
            self.refused_connections += 1
            self._close(request)
            return
        super().process_request(request, client_address)  # type: ignore[misc]

    def shutdown_request(self, request: Any) -> None:
        self._forget(request)
        super().shutdown_request(request)  # type: ignore[misc]

    def _forget(self, request: Any) -> None:
        with self._guard_lock:
            entry = self._open.pop(id(request), None)
            if entry is not None:
                client = entry[1]
                left = self._per_client.get(client, 1) - 1
                if left > 0:
                    self._per_client[client] = left
                else:
                    self._per_client.pop(client, None)

    @staticmethod
    def _close(request: Any) -> None:
        with contextlib.suppress(OSError):
            request.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            request.close()

    def _reap(self) -> None:
        while not self._guard_stop.wait(_REAP_INTERVAL_S):
            now = time.monotonic()
            with self._guard_lock:
                late = [request for request, _, deadline in self._open.values() if deadline <= now]
            for request in late:
                # Wakes the handler thread blocked in recv; it ends and closes the connection itself.
                self.cut_connections += 1
                with contextlib.suppress(OSError):
                    request.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        # socketserver calls this from __init__ when bind fails, before guard_start ever ran.
        stop: threading.Event | None = getattr(self, "_guard_stop", None)
        if stop is not None:
            stop.set()
        super().server_close()  # type: ignore[misc]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up, times out or sends garbage is not the daemon's problem: one line, no trace.
        log.debug("%s: connection from %s failed", self.name, client_address, exc_info=True)

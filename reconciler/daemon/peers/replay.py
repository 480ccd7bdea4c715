"""Nonces of accepted peer requests, kept for as long as their time stamp is acceptable, across restarts.

A signed request stays valid for ``window`` seconds either side of its time stamp. Were the nonces only
in memory, a request captured on the replication network could be replayed after the daemon restarts
(systemd restarts it on a crash or an upgrade). So every accepted nonce is written, atomically and
readable by root alone, to a small file in the state directory before the request is acted on; entries
whose time stamp has left the window are dropped, since such a request is refused as stale anyway.
If the file cannot be written the request is refused: acting on it could not be made unrepeatable.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from reconciler.host import atomic
from reconciler.host.base import HostFileError

MAX_NONCES = 20_000  # a few peers polling every few seconds need some hundreds per window


class ReplayGuard:
    def __init__(self, path: Path | None, window: float, *, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, float] = self._load()

    def _load(self) -> dict[str, float]:
        if self._path is None:
            return {}
        try:
            data = json.loads(self._path.read_text(encoding="ascii"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            # Unreadable: start empty but refuse nothing old; the window bounds what could be replayed.
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}

    def fresh(self, nonce: str, stamp: float) -> tuple[bool, str]:
        """Accept ``nonce`` once within the window (recording it); the reason when it is refused."""
        now = self._clock()
        if abs(now - stamp) > self._window:
            return False, "stale or future time stamp"
        with self._lock:
            if nonce in self._seen:
                return False, "replayed request"
            cutoff = now - self._window
            current = {n: t for n, t in self._seen.items() if t >= cutoff}
            if len(current) >= MAX_NONCES:
                return False, "too many requests within the validity window"
            current[nonce] = stamp
            if self._path is not None:
                try:
                    atomic.write_atomic(str(self._path), json.dumps(current, separators=(",", ":")), 0o600)
                except (OSError, HostFileError) as exc:
                    return False, f"cannot record the nonce: {exc}"
            self._seen = current
        return True, ""

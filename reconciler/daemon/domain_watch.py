"""Notice a domain's state change between passes (a guest that powered off, crashed, or was started or
destroyed by hand) and wake the loop at once, as the DRBD watcher does for DRBD.

Xen has no event stream the daemon can follow without a library, so the watcher asks ``xl list`` every
couple of seconds and compares the names and states it prints (not the counters): one cheap read-only
command, and nothing when ``xl`` is not installed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from reconciler.daemon.logs import event
from reconciler.host.base import Host

XL_LIST = ("xl", "list")


def domain_signature(text: str) -> str:
    """Name and state of each domain from ``xl list`` (ids, memory, vcpus and CPU time left out)."""
    rows = []
    for line in text.splitlines()[1:]:
        words = line.split()
        if len(words) >= 6:
            rows.append(f"{' '.join(words[:-5])} {words[-2]}")
    return "\n".join(sorted(rows))


class DomainWatcher:
    def __init__(self, host: Host, *, interval: float, on_change: Callable[[], None], timeout: float = 10.0) -> None:
        self.host = host
        self.interval = interval
        self._on_change = on_change
        self._timeout = timeout
        self._last: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.disabled_reason = ""

    def check_once(self) -> bool:
        """Ask once; True when a domain appeared, went or changed state since the last time."""
        result = self.host.run(XL_LIST, timeout=self._timeout)
        if result.not_found:
            self.disabled_reason = "xl is not installed"
            return False
        if not result.ok:
            return False
        signature = domain_signature(result.stdout)
        changed = self._last is not None and signature != self._last
        self._last = signature
        if changed:
            self._on_change()
        return changed

    def _run(self) -> None:
        while not self._stop.is_set() and not self.disabled_reason:
            try:
                if self.check_once():
                    event("domain.changed")
            except Exception as exc:  # the next pass observes anyway; the watcher must outlive one bad answer
                event("domain.watch_error", level=logging.WARNING, error=str(exc))
            self._stop.wait(self.interval)
        if self.disabled_reason:
            event("domain.watch_disabled", reason=self.disabled_reason)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="domain-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout + 2)

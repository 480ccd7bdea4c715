"""Notice a domain's state change between passes (a guest that powered off, crashed, or was started or
destroyed by hand) and wake the loop at once, as the DRBD watcher does for DRBD.

The hypervisor names the listing (:meth:`~reconciler.core.seams.Hypervisor.watch_argv`: ``xl list``
for Xen, which has no event stream the daemon can follow without a library) and what of it is state
(:meth:`~reconciler.core.seams.Hypervisor.state_signature`, counters left out). The watcher asks every
couple of seconds: one cheap read-only command, and nothing when the tool is not installed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from reconciler.backends.registry import DEFAULT_BACKENDS
from reconciler.core.seams import Hypervisor
from reconciler.daemon.records.logs import event
from reconciler.host.base import Host


class DomainWatcher:
    def __init__(self, host: Host, *, interval: float, on_change: Callable[[], None], timeout: float = 10.0,
                 hypervisor: Hypervisor = DEFAULT_BACKENDS.hypervisor) -> None:
        self.host = host
        self.hypervisor = hypervisor
        self.interval = interval
        self._on_change = on_change
        self._timeout = timeout
        self._last: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.disabled_reason = ""

    def check_once(self) -> bool:
        """Ask once; True when a domain appeared, went or changed state since the last time."""
        argv = self.hypervisor.watch_argv()
        result = self.host.run(argv, timeout=self._timeout)
        if result.not_found:
            self.disabled_reason = f"{argv[0]} is not installed"
            return False
        if not result.ok:
            return False
        signature = self.hypervisor.state_signature(result.stdout)
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

"""Why the loop should run a pass: reasons collected from any thread, consumed by the loop."""

from __future__ import annotations

import threading


class Wakeup:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._reasons: set[str] = set()

    def signal(self, reason: str) -> None:
        """Safe from any thread (not from a signal handler: use :meth:`signal_nowait` there)."""
        with self._cond:
            self._reasons.add(reason)
            self._cond.notify_all()

    def wait(self, timeout: float | None) -> set[str]:
        """Return (and clear) the pending reasons, waiting at most ``timeout`` seconds for one."""
        with self._cond:
            if not self._reasons and (timeout is None or timeout > 0):
                self._cond.wait(timeout)
            reasons, self._reasons = self._reasons, set()
            return reasons

    def pending(self) -> bool:
        with self._cond:
            return bool(self._reasons)

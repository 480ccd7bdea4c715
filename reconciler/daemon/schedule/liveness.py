"""Is the loop alive? The watchdog is fed only while this says yes.

The loop beats at every step. Before a step that may legitimately take long (an action with a 15 minute
mkfs timeout, a migration), it declares a deadline: the step's own timeout plus a grace. The watchdog
keeps being fed until that deadline, but not beyond: a step that hangs past its own timeout (a stuck
kernel call, a deadlock) starves the watchdog and systemd restarts the service. Restarting never
touches running domains, so that recovery is safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

DEFAULT_GRACE = 60.0


class Liveness:
    def __init__(self, clock: Callable[[], float], *, idle_budget: float = 120.0) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._idle_budget = idle_budget
        self._deadline = clock() + idle_budget
        self._what = "starting"

    def beat(self, what: str = "idle") -> None:
        """The loop made progress; it owes another beat within the idle budget."""
        with self._lock:
            self._deadline = self._clock() + self._idle_budget
            self._what = what

    def busy(self, what: str, timeout: float, grace: float = DEFAULT_GRACE) -> None:
        """A step that may take up to ``timeout`` seconds starts now."""
        with self._lock:
            self._deadline = self._clock() + max(self._idle_budget, timeout + grace)
            self._what = what

    def healthy(self) -> tuple[bool, str]:
        with self._lock:
            late = self._clock() - self._deadline
            if late > 0:
                return False, f"loop stuck in {self._what} ({late:.0f}s past its deadline)"
            return True, self._what

"""A background thread that repeats one step, waits the delay the step asks for, and can be woken or stopped.

The fetcher and the peer monitor both run so; the thread only ever calls its step, so what the step signals
is all the rest of the daemon sees of it. A leaf (standard library only), so that every part of the daemon
may use it without importing another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

# How long stop() waits for a step that is still running (a fetch, a peer's answer) before it gives up on it;
# the thread is a daemon thread, so one stuck in a step never keeps the process alive.
JOIN_TIMEOUT = 5.0


class PeriodicThread:
    """Runs ``step`` again and again in a thread called ``name``; ``step`` returns the seconds until the next
    run. :meth:`poke` cuts the current wait short, :meth:`stop` ends the thread after the running step."""

    def __init__(self, name: str, step: Callable[[], float]) -> None:
        self.name = name
        self._step = step
        self._now = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        """Run the step as soon as possible (at once if the thread is waiting)."""
        self._now.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._now.clear()
            delay = self._step()
            self._now.wait(delay)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._now.set()
        if self._thread is not None:
            self._thread.join(timeout=JOIN_TIMEOUT)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

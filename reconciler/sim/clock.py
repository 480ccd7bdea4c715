"""Drives the simulator's clock for demos and tests: resyncs and other timed behaviour progress only when
simulated time advances, so something has to advance it while daemons run against the simulation."""

from __future__ import annotations

import threading
from pathlib import Path

from reconciler.sim.state import SimCluster


class SimClockDriver:
    """Advances the simulated cluster in ``directory`` by ``rate`` simulated seconds per real second."""

    def __init__(self, directory: Path, *, rate: float = 30.0, period: float = 0.25) -> None:
        self.directory = directory
        self.rate = rate
        self.period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0

    def _run(self) -> None:
        cluster = SimCluster(self.directory)
        while not self._stop.wait(self.period):
            try:
                cluster.advance(self.rate * self.period)
            except (OSError, ValueError, RuntimeError):
                self.errors += 1

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sim-clock", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

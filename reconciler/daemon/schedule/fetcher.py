"""Keeps the mirror current: fetch on an interval with jitter, at once on a local ref change, and with
capped backoff while the remote is unreachable (the revision in force stays meanwhile)."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from reconciler.daemon.records.logs import event
from reconciler.daemon.schedule.backoff import Backoff, jittered
from reconciler.periodic import PeriodicThread
from reconciler.source.errors import GitFailed, SourceError, essence
from reconciler.source.mirror import Mirror


class Fetcher:
    def __init__(self, mirror: Mirror, *, interval: float, jitter: float, on_new_tip: Callable[[str], None],
                 on_error: Callable[[str], None], monotonic: Callable[[], float],
                 rng: random.Random | None = None) -> None:
        self.mirror = mirror
        self.interval = interval
        self.jitter = jitter
        self._on_new_tip = on_new_tip
        self._on_error = on_error
        self._monotonic = monotonic
        self._rng = rng or random.Random()  # noqa: S311  (jitter only)
        self._backoff = Backoff(base=2.0, cap=max(interval, 10.0) * 5, rng=self._rng)
        self._thread = PeriodicThread("fetcher", self.fetch_once)
        self.last_tip: str | None = mirror.tip()
        self.fetched_ok = threading.Event()
        self.attempted = threading.Event()
        self.fetches = 0

    def poke(self) -> None:
        """Fetch as soon as possible (a local ref moved, SIGHUP, reconcile-now)."""
        self._thread.poke()

    def fetch_once(self) -> float:
        """One fetch; returns the delay until the next one."""
        self.fetches += 1
        try:
            tip = self.mirror.fetch()
        except SourceError as exc:
            self.attempted.set()
            delay = self._backoff.failure()
            why = (essence(exc.stderr) or f"exit {exc.returncode}") if isinstance(exc, GitFailed) else str(exc)
            self._on_error(f"fetch from {self.mirror.url} failed (retry in {delay:.0f}s): {why}")
            event("fetch.error", level=logging.WARNING, error=str(exc), retry_in=f"{delay:.1f}",
                  failures=self._backoff.failures)
            return delay
        self._backoff.reset()
        self.fetched_ok.set()
        self.attempted.set()
        if tip is not None and tip != self.last_tip:
            self.last_tip = tip
            event("fetch.new", revision=tip[:12])
            self._on_new_tip(tip)
        return jittered(self.interval, self.jitter, self._rng)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()

"""Capped exponential backoff with jitter that resets on success (daemon-level error throttling)."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, base: float = 2.0, cap: float = 300.0, jitter: float = 0.2,
                 rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self.failures = 0
        self._rng = rng or random.Random()  # noqa: S311  (jitter, not cryptography)

    def failure(self) -> float:
        """Record a failure; return how long to wait before trying again."""
        self.failures += 1
        delay = min(self.cap, self.base * 2.0 ** (self.failures - 1))
        return delay * (1.0 + self._rng.uniform(-self.jitter, self.jitter))

    def reset(self) -> None:
        self.failures = 0


def jittered(interval: float, jitter: float, rng: random.Random) -> float:
    """``interval`` spread by +/- ``jitter`` (a fraction), so nodes do not fetch in lockstep."""
    return max(0.1, interval * (1.0 + rng.uniform(-jitter, jitter)))

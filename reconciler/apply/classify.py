"""Classify what a failed command means for the caller: retry it, give up, or wait.

The apply layer never interprets stderr itself; it asks :func:`classify`. Exit codes alone are too coarse
(lvm2 uses 5 for nearly everything), so the messages the tools really print decide, and exit codes only
break ties. Unknown failures are permanent: retrying something we do not understand hides the problem. The
messages that mean "wait" are each backend's, registered in
:data:`reconciler.backends.registry.PRECONDITION_PATTERNS`; those that mean "try again" are the C library's
(below, shared) and each backend's own (:data:`reconciler.backends.registry.TRANSIENT_PATTERNS` and
``TRANSIENT_EXIT_CODES``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from reconciler.backends.registry import PRECONDITION_PATTERNS, TRANSIENT_EXIT_CODES, TRANSIENT_PATTERNS
from reconciler.host.base import CommandResult

FailureKind = Literal["ok", "transient", "permanent", "precondition"]


@dataclass(frozen=True)
class Classification:
    kind: FailureKind
    reason: str

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


# Contention and flakiness in the words of the C library (EAGAIN, EBUSY, ETIMEDOUT, EINTR), which every tool
# prints alike: the same command is expected to succeed shortly.
COMMON_TRANSIENT = (
    re.compile(r"Resource temporarily unavailable", re.I),
    re.compile(r"Device or resource busy", re.I),
    re.compile(r"Try again", re.I),
    re.compile(r"Connection timed out|Timed out|timeout", re.I),
    re.compile(r"Interrupted system call", re.I),
    re.compile(r"temporar(y|ily)", re.I),
)
# 75 is EX_TEMPFAIL, the sysexits "try again later".
COMMON_TRANSIENT_EXIT_CODES = (75,)


def transient_patterns() -> tuple[re.Pattern[str], ...]:
    """The shared messages that mean "try again", then each registered backend's, in the registry's order."""
    return COMMON_TRANSIENT + tuple(p for patterns in TRANSIENT_PATTERNS.values() for p in patterns)


def transient_exit_codes() -> frozenset[int]:
    """The exit codes that mean "try again": the shared one and each registered backend's."""
    return frozenset(COMMON_TRANSIENT_EXIT_CODES).union(*TRANSIENT_EXIT_CODES.values())


def classify(result: CommandResult) -> Classification:
    """What ``result`` means: ok, transient (retry), permanent (give up) or precondition (wait)."""
    if result.ok:
        return Classification("ok", "")
    said = result.describe()
    if result.timed_out:
        return Classification("transient", said)
    if result.not_found:
        return Classification("permanent", f"{said} (is the tool installed?)")
    text = f"{result.stderr}\n{result.stdout}"
    for patterns in PRECONDITION_PATTERNS.values():
        for pattern in patterns:
            if pattern.search(text):
                return Classification("precondition", said)
    if any(pattern.search(text) for pattern in _TRANSIENT):
        return Classification("transient", said)
    if result.returncode in _TRANSIENT_CODES:
        return Classification("transient", said)
    return Classification("permanent", said)


# Combined once: the registry is fixed when it is imported.
_TRANSIENT = transient_patterns()
_TRANSIENT_CODES = transient_exit_codes()

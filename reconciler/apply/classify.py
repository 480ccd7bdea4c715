"""Classify what a failed command means for the caller: retry it, give up, or wait.

The apply layer never interprets stderr itself; it asks :func:`classify`. Exit codes alone are too coarse
(lvm2 uses 5 for nearly everything), so the messages the tools really print decide, and exit codes only
break ties. Unknown failures are permanent: retrying something we do not understand hides the problem. The
messages that mean "wait" are each backend's, registered in
:data:`reconciler.backends.registry.PRECONDITION_PATTERNS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from reconciler.backends.registry import PRECONDITION_PATTERNS
from reconciler.host.base import CommandResult

FailureKind = Literal["ok", "transient", "permanent", "precondition"]


@dataclass(frozen=True)
class Classification:
    kind: FailureKind
    reason: str

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


# Contention and flakiness: the same command is expected to succeed shortly.
_TRANSIENT = (
    re.compile(r"Resource temporarily unavailable", re.I),
    re.compile(r"Device or resource busy", re.I),
    re.compile(r"Try again", re.I),
    re.compile(r"lock(ing)? .*(failed|held|timed out)|Can't get lock|Failed to acquire lock", re.I),
    re.compile(r"Connection timed out|Timed out|timeout", re.I),
    re.compile(r"Interrupted system call", re.I),
    re.compile(r"temporar(y|ily)", re.I),
)


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
    for pattern in _TRANSIENT:
        if pattern.search(text):
            return Classification("transient", said)
    # 11 is EAGAIN from the drbd tools; 75 (EX_TEMPFAIL) is the sysexits "try again later".
    if result.returncode in (11, 75):
        return Classification("transient", said)
    return Classification("permanent", said)

"""Taking over what was built by hand: ownership first, then nothing changes that would not change anyway.

A VM imported from a hand-built node arrives with a dm device without uuid, LVs without the project's tag and
config files written by hand. The first pass only takes ownership (``adopt-stripe``, ``adopt-lv``: a uuid
and a tag, metadata only); every other step of that VM waits for the next pass, so nothing is created or
changed on top of a device before it is the project's. A hand-written config file is replaced by the
rendered one only when both mean the same (:func:`reconciler.core.vm_builder.foreign_file`); otherwise the
difference is reported and the write refused until a commit makes the desired state match (or the operator
moves the old file away, which lets the next pass write and apply the rendered one).
"""

from __future__ import annotations

from reconciler.core.actions import ActionKind
from reconciler.core.own_mark import is_own
from reconciler.core.vm_builder import VmBuilder

ADOPT_KINDS: frozenset[ActionKind] = frozenset({"adopt-lv", "adopt-stripe"})
HOLD = "taking over what was built by hand first ({}); planned again on the next pass"


def hold_until_owned(b: VmBuilder) -> None:
    """While a VM's devices are being taken over, every other step of it waits for the next pass."""
    adopting = [a for a in b.actions if a.kind in ADOPT_KINDS and not a.refused]
    if not adopting:
        return
    what = ", ".join(a.key for a in adopting)
    b.actions = [a if a.kind in ADOPT_KINDS or a.refused or a.waiting
                 else a.with_(waiting=HOLD.format(what), wait_for="local-state") for a in b.actions]


def is_foreign(current: str | None) -> bool:
    return current is not None and not is_own(current)

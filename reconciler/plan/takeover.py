"""Taking over what was built by hand: ownership first, then nothing changes that would not change anyway.

A VM imported from a hand-built node arrives with a dm device without uuid, LVs without the project's tag and
config files written by hand. The first pass only takes ownership (``adopt-stripe``, ``adopt-lv``: a uuid
and a tag, metadata only); every other step of that VM waits for the next pass, so nothing is created or
changed on top of a device before it is the project's. A hand-written config file is replaced by the
rendered one only when both mean the same (:mod:`reconciler.observe.config_semantics`); otherwise the
difference is reported and the write refused until a commit makes the desired state match (or the operator
moves the old file away, which lets the next pass write and apply the rendered one).
"""

from __future__ import annotations

from reconciler.observe.config_semantics import drbd_differences, is_own, xl_differences
from reconciler.plan.actions import ActionKind
from reconciler.plan.builder import VmBuilder

ADOPT_KINDS: frozenset[ActionKind] = frozenset({"adopt-lv", "adopt-stripe"})
HOLD = "taking over what was built by hand first ({}); planned again on the next pass"
SEMANTIC_REWRITE = "takeover"


def hold_until_owned(b: VmBuilder) -> None:
    """While a VM's devices are being taken over, every other step of it waits for the next pass."""
    adopting = [a for a in b.actions if a.kind in ADOPT_KINDS and not a.refused]
    if not adopting:
        return
    what = ", ".join(a.key for a in adopting)
    b.actions = [a if a.kind in ADOPT_KINDS or a.refused or a.waiting
                 else a.with_(waiting=HOLD.format(what), wait_for="local-state") for a in b.actions]


def foreign_file(b: VmBuilder, kind: ActionKind, key: str, path: str, *, content: str, current: str) -> str | None:
    """A config file at a path the reconciler writes, written by hand: replaced only when it means the same."""
    if kind == "write-drbd-config":
        differences = drbd_differences(current, content, path)
    else:
        differences = xl_differences(current, content, path)
    if not differences:
        b.note("info", key, f"{path} was written by hand and means the same as the rendered file; replacing it "
                            "(nothing to apply)")
        return b.add(kind, key, "change", f"replace hand-written {path} (same meaning)", file_path=path,
                     file_content=content, reason=SEMANTIC_REWRITE)
    shown = "; ".join(differences[:8]) + ("; ..." if len(differences) > 8 else "")
    return b.add(kind, key, "change", f"replace hand-written {path}", file_path=path, file_content=content,
                 refused=(f"{path} was written by hand and differs from the rendered file in what it means ({shown}): "
                          "make the desired state match it by a commit, or move the file away to have the rendered "
                          "one written and applied (see docs/import.md)"))


def is_foreign(current: str | None) -> bool:
    return current is not None and not is_own(current)

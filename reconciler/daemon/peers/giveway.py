"""Whether a Primary inside a live migration's window may give way when its peer's fence-peer handler asks.

Giving way (demote, then outdate) is right only while the peer runs the domain, and DRBD alone cannot tell:
with the domain running nowhere (the guest crashed or shut down inside the window) neither device is held
open, both sides could demote, and no UpToDate copy would be left. A node cannot see the peer's domain
once the link is gone, so it goes by its own migration record and the last report of the peer's part that it holds:

- the target gives way only before it has received the domain (its phase ``waiting``, ``window-open``
  or ``target-promoted``), and only if the source's last report says the domain had not left it yet either;
  a migration aborted because the link was lost before the domain moved (as the keeper of that node saw it:
  it aborts only then) counts as "not moved" on either side, since the keeper may have seen the cut first;
- the source gives way only after the domain has left it (its phase ``migrated`` or ``source-demoted``), and
  only if the target's last report says it had received the domain (``migrating`` or later).

Both cannot hold at once from reports that agree, so at most one side gives way; anything else (no record,
a stopped migration, ``migrating`` here, no report of the peer or one of another revision) answers
"primary": both Primaries stay UpToDate and the operator decides, which is never worse than outdating both.
The residual race: the peer's report is only as fresh as its last poll, so a domain that reached the target
and crashed there in the seconds before the cut, with each side holding the other's report from before the
move, could still let both give way.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.model.status import MigrationPhase

# A target's record is from before its pass's apply (which opens its window and promotes it), so "waiting"
# may be read while it is already Primary in the window: still before the domain can reach it.
_TARGET_BEFORE: frozenset[MigrationPhase] = frozenset({"waiting", "window-open", "target-promoted"})
_SOURCE_BEFORE: frozenset[MigrationPhase] = frozenset({"waiting", "window-open", "target-promoted"})
_SOURCE_AFTER: frozenset[MigrationPhase] = frozenset({"migrated", "source-demoted"})
_TARGET_RECEIVED: frozenset[MigrationPhase] = frozenset({"migrating", "migrated", "source-demoted", "done"})


@dataclass(frozen=True)
class OwnPart:
    """This node's migration record of the VM, as far as the decision needs it."""

    vm: str
    revision: str
    source: str
    target: str
    phase: MigrationPhase
    stopped: str = ""  # "", "aborted" or "held"
    cut_before_move: bool = False  # aborted because the link went before the domain moved, as this node saw it


@dataclass(frozen=True)
class PeerPart:
    """The peer's last report of the same VM's migration."""

    revision: str
    phase: MigrationPhase
    cut_before_move: bool = False  # the peer's abort for a link lost before the domain moved, as it saw it


def peer_keeps_data(node: str, own: OwnPart | None, peer: PeerPart | None) -> tuple[bool, str]:
    """Whether the records say the peer, not this node, keeps the data; with why (for the answer's detail)."""
    if own is None:
        return False, "this node has no record of a live migration of it"
    if own.stopped and not own.cut_before_move:
        return False, f"its live migration of {own.vm} is {own.stopped} here"
    if peer is None or peer.revision != own.revision:
        return False, f"the peer's last report shows no part in this migration of {own.vm}"
    if node == own.target:
        here_before = own.cut_before_move or (not own.stopped and own.phase in _TARGET_BEFORE)
        there_before = peer.cut_before_move or peer.phase in _SOURCE_BEFORE
        if here_before and there_before:
            return True, ""
        return False, (f"{own.vm} may have reached this node (its phase here {own.phase}, the source's last "
                       f"report {peer.phase})")
    if node == own.source:
        if not own.stopped and own.phase in _SOURCE_AFTER and peer.phase in _TARGET_RECEIVED:
            return True, ""
        return False, (f"{own.vm} may not have reached the target (its phase here {own.phase}, the target's last "
                       f"report {peer.phase})")
    return False, f"this node is neither the source nor the target of {own.vm}'s migration"

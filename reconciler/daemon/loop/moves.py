"""The VMs a revision moved away from this node whose domain still runs here, kept across a restart.

A daemon that restarts in the middle of a move (a switchover, a failback) would otherwise find the domain
running against a revision that names another node and leave it alone (a restart never starts stopping a
running domain by itself), and the move would stall. Only moves the daemon saw happen are kept, each with
the id of the domain that was to stop; an entry is dropped once that domain no longer runs here, so a domain
started later under the same name (by hand, after the daemon was stopped) is never taken for it.
"""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.host.atomic import write_atomic
from reconciler.names import UnsafeNameError, check_name

MOVED_AWAY_FILE = "moved-away.json"
MAX_BYTES = 64 * 1024


def load_moved_away(state_dir: Path) -> dict[str, int]:
    """VM -> the id of the domain whose move was seen; a missing, oversized, unreadable or foreign file counts as
    none (nothing is stopped on a guess)."""
    path = state_dir / MOVED_AWAY_FILE
    try:
        if path.is_symlink() or path.stat().st_size > MAX_BYTES:
            return {}
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            return {}
        return {check_name(name, "VM"): domid for name, domid in data.items()
                if isinstance(domid, int) and not isinstance(domid, bool) and domid > 0}
    except (OSError, ValueError, UnsafeNameError):
        return {}


def save_moved_away(state_dir: Path, moved: dict[str, int]) -> None:
    path = state_dir / MOVED_AWAY_FILE
    if not moved:
        path.unlink(missing_ok=True)
        return
    write_atomic(str(path), json.dumps(dict(sorted(moved.items()))), mode=0o640)

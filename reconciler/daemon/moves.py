"""The VMs a revision moved away from this node whose domain still runs here, kept across a restart.

A daemon that restarts in the middle of a move (a switchover, a failback) would otherwise find the domain
running against a revision that names another node and leave it alone (a restart never starts stopping a
running domain by itself), and the move would stall. Only moves the daemon saw happen are kept; a name is
dropped once its domain no longer runs here.
"""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.host.atomic import write_atomic
from reconciler.names import UnsafeNameError, check_name

MOVED_AWAY_FILE = "moved-away.json"
MAX_BYTES = 64 * 1024


def load_moved_away(state_dir: Path) -> frozenset[str]:
    """The kept names; a missing, oversized, unreadable or foreign file counts as none (nothing is stopped on a
    guess)."""
    path = state_dir / MOVED_AWAY_FILE
    try:
        if path.is_symlink() or path.stat().st_size > MAX_BYTES:
            return frozenset()
        data = json.loads(path.read_text())
        if not isinstance(data, list):
            return frozenset()
        return frozenset(check_name(name, "VM") for name in data if isinstance(name, str))
    except (OSError, ValueError, UnsafeNameError):
        return frozenset()


def save_moved_away(state_dir: Path, names: frozenset[str]) -> None:
    path = state_dir / MOVED_AWAY_FILE
    if not names:
        path.unlink(missing_ok=True)
        return
    write_atomic(str(path), json.dumps(sorted(names)), mode=0o640)

"""The VMs a revision moved away from this node whose domain still runs here, kept across a restart.

A daemon that restarts in the middle of a move (a switchover, a failback) would otherwise find the domain
running against a revision that names another node and leave it alone (a restart never starts stopping a
running domain by itself), and the move would stall. Only moves the daemon saw happen are kept, each with
the id of the domain that was to stop; an entry is dropped once that domain no longer runs here, so a domain
started later under the same name (by hand, after the daemon was stopped) is never taken for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from reconciler.daemon.records.logs import event
from reconciler.host.atomic import write_atomic
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode
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


class MoveTracker:
    """Which VMs a revision moved away from this node while their domain still runs here (what the planner may
    stop), from the designated node of each VM pass after pass.

    The designations of the previous pass are in memory only: after a restart no new move is seen until a
    revision changes a VM's node, so a restart never starts stopping a running domain. The moves seen are kept
    in moved-away.json until their domain stopped here, so a move interrupted by a restart carries on.
    """

    def __init__(self, state_dir: Path, node: str, on_error: Callable[[str], None]) -> None:
        self.state_dir = state_dir
        self.node = node
        self._on_error = on_error
        self._last_primaries: dict[str, str] | None = None
        self._saved = load_moved_away(state_dir)
        self._moved_away: dict[str, int] = dict(self._saved)  # VM -> the id of its domain running here

    def track(self, desired: DesiredNode, observed: ObservedNode) -> frozenset[str]:
        # The domain each VM runs as here (its id): a move is about that domain, not one started later.
        running = {vm.name: dom.domid for vm in desired.vms
                   if vm.domain is not None and (dom := observed.domain(vm.domain.name)) is not None and dom.is_running}
        current = {vm.name: vm.primary_node for vm in desired.vms}
        for name, primary in current.items():
            before = self._last_primaries.get(name) if self._last_primaries is not None else None
            if before == self.node and primary != self.node and name in running:
                self._moved_away[name] = running[name]
                event("vm.moved-away", vm=name, to=primary)
            elif primary == self.node:
                self._moved_away.pop(name, None)
        self._last_primaries = current
        # A move is done once its domain no longer runs here; a later start (by hand) is not undone.
        self._moved_away = {name: domid for name, domid in self._moved_away.items() if running.get(name) == domid}
        if self._moved_away != self._saved:
            try:
                save_moved_away(self.state_dir, self._moved_away)
                self._saved = dict(self._moved_away)
            except OSError as exc:  # kept in memory; the next pass tries again
                self._on_error(f"cannot keep the VMs moved away in {self.state_dir}: {exc}")
        return frozenset(self._moved_away)

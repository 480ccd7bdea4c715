"""What this node's migration records (``migrations.json``) and its peer's last report say about who keeps
a resource's data when the peer's fence-peer handler asks inside a live migration's window; the decision
itself is :func:`reconciler.daemon.peers.giveway.peer_keeps_data`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from reconciler.daemon.loop.migrations import MigrationRecord, load_records
from reconciler.daemon.peers.giveway import OwnPart, PeerPart, peer_keeps_data
from reconciler.model.status import PeerMigration, PeerStatus


def _cut_before_move(stop: str, reason: str, other: str) -> bool:
    # The keeper's own words when it aborts for a lost link; it aborts so only while the domain has not moved
    # (after the move the migration ends on the target instead).
    return stop == "aborted" and reason == f"the replication link to {other} was lost inside the window"


def _own(record: MigrationRecord, peer: str) -> OwnPart:
    return OwnPart(vm=record.vm, revision=record.revision, source=record.source, target=record.target,
                   phase=record.phase, stopped=record.stop,
                   cut_before_move=_cut_before_move(record.stop, record.reason, peer))


def _peer(report: PeerMigration, node: str) -> PeerPart:
    stop = "aborted" if report.phase in ("aborting", "aborted") else ""
    return PeerPart(revision=report.revision, phase=report.phase,
                    cut_before_move=_cut_before_move(stop, report.reason, node))


def peer_keeps(state_dir: Path, node: str, resource: str, vms: Mapping[str, tuple[str, str]],
               peers: Iterable[PeerStatus]) -> tuple[bool, str]:
    """Whether the records say the peer keeps ``resource``'s data (``vms``: resource -> its VM and the VM's
    peer); with why not. Read from the file, so the peer channel's thread never sees a pass half done."""
    found = vms.get(resource)
    if found is None:
        return False, f"{resource} belongs to no VM of this node with one peer"
    vm, peer = found
    record = load_records(state_dir).get(vm)
    report = next((m for p in peers if p.node == peer for m in p.migrations if m.vm == vm), None)
    return peer_keeps_data(node, _own(record, peer) if record is not None else None,
                           _peer(report, node) if report is not None else None)

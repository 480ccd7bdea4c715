"""`reconciler status`: what the daemon last published about this node (per VM and resource, revisions,
peers, suspensions, recent errors). Reads ``<state>/status.json``; never touches the node.

Exit status: 0 the daemon runs and its status is fresh; 3 the status is stale or no daemon listens on the
state directory's control socket (what is shown is then history, not the node now); 1 no status at all."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.cli.common import add_state_dir
from reconciler.daemon.node.control import daemon_listening
from reconciler.daemon.records import status_store
from reconciler.model.status import FailoverStatus, NodeStatus, RevisionInfo, VerifyStatus
from reconciler.sizes import format_size

if TYPE_CHECKING:
    from reconciler.cli.common import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("status", help="show what the daemon last published about this node",
                                   description="Per VM and resource phase with its reason, the last attempted and "
                                               "applied revisions, the peers' revisions, suspensions and errors.")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    add_state_dir(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir)
    path = state_dir / status_store.STATUS_FILE
    try:
        status = status_store.load(state_dir)
    except OSError as exc:
        print(f"reconciler status: cannot read {path}: {exc.strerror or exc} (run it as root, or give --state-dir)",
              file=sys.stderr)
        return 1
    if status is None:
        if path.exists():
            print(f"reconciler status: {path} cannot be read as a status (damaged, or written by another version); "
                  "the daemon rewrites it at the end of its next pass", file=sys.stderr)
        else:
            print(f"reconciler status: no status in {state_dir} (is `reconciler run` running with this --state-dir?)",
                  file=sys.stderr)
        return 1
    now = time.time()
    stale = staleness(status, now=now, running=daemon_listening(state_dir))
    if args.json:
        data = status.model_dump(mode="json")
        data["revision_skew"] = skew(status)
        data["stale"] = stale or None
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        if stale:
            print(f"STALE: {stale}; what follows is the last status the daemon published, not the node now")
        print(render(status, now=now))
    return EXIT_STALE if stale else 0


EXIT_STALE = 3


def staleness(status: NodeStatus, *, now: float, running: bool) -> str:
    """Why the status cannot be taken as the node's state now ("" when it can)."""
    if not running:
        return "no daemon is running for this state directory (`systemctl status reconciler`)"
    if status.fresh_until is not None and now > status.fresh_until:
        return (f"the daemon has not published a status since {_ago(now, status.updated_at)}, later than it "
                "promised (hung, or cannot write its state directory: `journalctl -u reconciler`)")
    return ""


def skew(status: NodeStatus) -> dict[str, str | None]:
    """Each peer's applied revision where it differs from ours (None: unknown)."""
    mine = status.last_applied.sha if status.last_applied else None
    return {p.node: p.applied_revision for p in status.peers if not p.reachable or p.applied_revision != mine}


def _ago(now: float, then: float | None) -> str:
    if then is None:
        return "never"
    seconds = max(0.0, now - then)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def _rev(info: RevisionInfo | None) -> str:
    if info is None:
        return "none"
    return f"{info.sha[:12]} {info.summary!r}" if info.summary else info.sha[:12]


def _verify_lines(entry: VerifyStatus, now: float) -> list[str]:
    head = f"{entry.resource} ({entry.schedule}): "
    if entry.running:
        done = f", {entry.progress_percent:.1f}% compared" if entry.progress_percent is not None else ""
        head += f"run {entry.run_id} running since {_ago(now, entry.started_at)}{done}"
    elif entry.next_due_at is not None:
        ahead = _ago(now, 2 * now - entry.next_due_at).removesuffix(" ago")  # the same units, forwards
        head += "next due now" if entry.next_due_at <= now else f"next due in {ahead}"
    lines = [head]
    if entry.last_run_id:
        found = entry.found_out_of_sync_bytes or 0
        result = (f"found {format_size(found)} out of sync" if found else "found nothing out of sync")
        if found and entry.resynced_run_id == entry.last_run_id:
            result += ", resynced by statement"
        elif found:
            result += f" (resync them with verify: {{resync_found: {entry.last_run_id}}})"
        lines.append(f"  last run {entry.last_run_id} ended {_ago(now, entry.last_run_at)}: {result}")
    lines += [f"  {text}" for text in (entry.waiting, entry.error) if text]
    return lines


def _failover_lines(entry: FailoverStatus, now: float) -> list[str]:
    lines = []
    if entry.state is not None:
        lines.append(f"{entry.vm}: {entry.id} from {entry.from_node} to {entry.to_node}, decided "
                     f"{_ago(now, entry.decided_at)}: {entry.state.upper()}")
        lines += [f"  {text}" for text in (f"why: {entry.reason}" if entry.reason else "", entry.detail) if text]
    if entry.watching:
        lines.append(f"{entry.vm}: {entry.watching}")
    return lines


def render(status: NodeStatus, *, now: float) -> str:
    lines = [f"node {status.node}" + (f" (cluster {status.cluster})" if status.cluster else "")
             + f", status updated {_ago(now, status.updated_at)}"]
    lines.append(f"applied revision:   {_rev(status.last_applied)}")
    attempted = status.last_attempted
    if attempted is not None and (status.last_applied is None or attempted.sha != status.last_applied.sha):
        lines.append(f"attempted revision: {_rev(attempted)}")
    if status.pending_refusal:
        lines.append(f"  REFUSED: {status.pending_refusal}")
    if status.invalid_errors:
        lines.append("  INVALID (not applied; the applied revision stays in force):")
        lines.extend(f"    {err}" for err in status.invalid_errors)
    last = status.last_pass
    if last is not None:
        lines.append(f"last pass:          {last.outcome} {_ago(now, last.finished_at)} "
                     f"({last.duration_s:.2f}s, {len(last.actions)} actions, {last.retries} retries)")
    lines.append(f"last success:       {_ago(now, status.last_success_at)}")
    mine = status.last_applied.sha if status.last_applied else None
    for peer in status.peers:
        if not peer.reachable:
            state = f"unreachable ({peer.error})" if peer.error else "unreachable"
        else:
            rev = peer.applied_revision[:12] if peer.applied_revision else "none"
            state = f"applied {rev}, {'ready' if peer.ready else 'not ready'}"
            if peer.applied_revision != mine:
                state += "  SKEW: differs from this node"
        lines.append(f"peer {peer.node}: {state} (checked {_ago(now, peer.checked_at)})")
    if status.boot_gate:
        lines.append(status.boot_gate)
    for susp in status.suspensions:
        scope = "whole node" if susp.scope == "node" else susp.scope
        lines.append(f"SUSPENDED {scope}: {susp.reason!r} by {susp.by} {_ago(now, susp.at)}")
    if status.resources:
        lines.append("")
        width_vm = max(len("VM"), *(len(r.vm) for r in status.resources))
        width_key = max(len("RESOURCE"), *(len(r.key) for r in status.resources))
        lines.append(f"{'VM':<{width_vm}}  {'RESOURCE':<{width_key}}  {'PHASE':<11}  REASON")
        for res in status.resources:
            lines.append(f"{res.vm:<{width_vm}}  {res.key:<{width_key}}  {res.phase.capitalize():<11}  {res.reason}"
                         .rstrip())
    if status.failovers:
        lines.append("")
        lines.append("automatic failover:")
        lines.extend(f"  {line}" for entry in status.failovers for line in _failover_lines(entry, now))
    if status.escalations:
        lines.append("")
        lines.append("reboots after a failed demotion without quorum:")
        for esc in status.escalations:
            lines.append(f"  {esc.vm}: `{esc.action}` {_ago(now, esc.decided_at)}: {esc.state.upper()}")
            lines.extend(f"    {text}" for text in (f"why: {esc.reason}" if esc.reason else "", esc.message) if text)
    if status.migrations:
        lines.append("")
        lines.append("live migrations:")
        for mig in status.migrations:
            lines.append(f"  {mig.vm}: {mig.source} -> {mig.target} at {mig.revision[:12]}: {mig.phase.upper()} "
                         f"(since {_ago(now, mig.since)}, begun {_ago(now, mig.started_at)})")
            if mig.reason:
                lines.append(f"    why: {mig.reason}")
    if status.verify:
        lines.append("")
        lines.append("online verify:")
        lines.extend(f"  {line}" for entry in status.verify for line in _verify_lines(entry, now))
    if status.recent_errors:
        lines.append("")
        lines.append("recent errors:")
        for err in status.recent_errors[-10:]:
            stamp, _, text = err.partition(" ")
            when = _ago(now, float(stamp)) if stamp.replace(".", "", 1).isdigit() else ""
            lines.append(f"  {when + ': ' if when else ''}{text if when else err}")
    return "\n".join(lines)

"""`reconciler apply`: one convergence pass (with its retries) on this node.

Exit status: 0 converged (nothing left to do and everything healthy), 3 still progressing (steps waiting for
the peer or a resync), 4 degraded (nothing left that may be done automatically, but something is unhealthy:
split brain, a disk not UpToDate, ...), 1 failed or refused steps, or an error before anything ran.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from reconciler.cli.cmd_plan import CliError, Target, load_target
from reconciler.cli.common import add_host_options, add_state_dir
from reconciler.statedir import DEFAULT_STATE_DIR

if TYPE_CHECKING:
    from reconciler.cli.common import Subparsers

EXIT_CONVERGED = 0
EXIT_FAILED = 1
EXIT_PROGRESSING = 3
EXIT_DEGRADED = 4


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "apply",
        help="converge this node to the desired state (one pass with retries)",
        description="Observe, plan and execute in dependency order, with retries for transient failures and "
                    "a crash journal. Exit 0 when converged and healthy, 3 when steps wait (peer, resync), 4 when "
                    "nothing is left to do but something is degraded (split brain, a disk not UpToDate), "
                    "1 on failures.",
    )
    parser.add_argument("directory", nargs="?", default=".", metavar="DIR",
                        help="desired-state directory (default: the current directory)")
    parser.add_argument("--allow-mass-delete", action="store_true",
                        help="allow more VM removals in this revision than the repository's limit")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    parser.add_argument("--deep", action="store_true",
                        help="also ask `drbdadm -d adjust` what it would change for every DRBD resource that is up "
                             "(one read-only command per resource)")
    add_host_options(parser)
    add_state_dir(parser)
    parser.set_defaults(func=_run)


def run_apply(target: Target, *, allow_mass_delete: bool = False, out: TextIO | None = None,
              quiet: bool = False, deep: bool = False, state_dir: str | None = None) -> int:
    """One pass behind the daemon's gates (suspensions from ``state_dir``; what needs the peer held back)."""
    from reconciler.apply.oneshot import converge_once  # noqa: PLC0415
    from reconciler.apply.progress import SilentProgress, progress_for  # noqa: PLC0415
    from reconciler.cli.oneshot_gate import one_shot_gate  # noqa: PLC0415
    from reconciler.observe.observer import Observer  # noqa: PLC0415

    stream = out or sys.stdout
    progress = SilentProgress() if quiet else progress_for(target.desired.node, stream)
    observer = Observer(target.host)
    gate = one_shot_gate(Path(state_dir or DEFAULT_STATE_DIR))
    step = converge_once(target.host, target.desired, allow_mass_delete=allow_mass_delete,
                         progress=progress, deep=deep, observer=observer, gate=gate)
    result = step.result
    if result is None:  # pragma: no cover - converge_once always applies
        return EXIT_FAILED
    if result.actions:
        # One more look, only after a pass that changed something: show resyncs the pass started.
        after = observer.observe()
        for res in after.drbd.resources:
            for conn in res.connections:
                for peer_dev in conn.peer_devices:
                    if peer_dev.resync_percent is not None and peer_dev.resync_percent < 100:
                        progress.resync(res.name, conn.peer_name, peer_dev.resync_percent)
    for note in result.notes:
        stream.write(f"note [{note.kind}] {note.key}: {note.message}\n")
    for refusal in step.plan.refused_vms:
        stream.write(f"! {refusal.vm}: refused, nothing of it is changed: {refusal.reason}\n")
    for record in result.actions:
        if record.result in ("failed", "refused"):
            stream.write(f"{'!' if record.result == 'refused' else 'x'} {record.kind} {record.key}: "
                         f"{record.message}\n")
    stream.write(result.summary() + "\n")
    stream.flush()
    if result.outcome == "converged":
        return EXIT_CONVERGED
    if result.outcome == "progressing":
        return EXIT_PROGRESSING
    if result.outcome == "degraded":
        for resource in result.resources:
            if resource.phase == "degraded":
                stream.write(f"~ degraded {resource.key}: {resource.reason}\n")
        return EXIT_DEGRADED
    return EXIT_FAILED


def _run(args: argparse.Namespace) -> int:
    try:
        target = load_target(args)
    except CliError as exc:
        print(f"reconciler apply: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return run_apply(target, allow_mass_delete=args.allow_mass_delete, quiet=args.quiet, deep=args.deep,
                     state_dir=args.state_dir)

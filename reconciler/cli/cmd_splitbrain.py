"""`reconciler split-brain`: DRBD's split-brain handler (``handlers { split-brain "... split-brain"; }``).

Run by DRBD, not by hand, with the resource in ``DRBD_RESOURCE``. It records the incident for the observer
(status, metrics, alerts and the log then say "split brain") and always exits 0: DRBD ignores the code, and
the decision whose data is discarded belongs to an operator. The record is the node's replicator's (the pair the
last revision applied here chose, recorded in the daemon's state directory: ``RECONCILER_STATE_DIR`` from the
environment or the daemon's environment file, else the default).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.statedir import DEFAULT_ENV_FILE, DEFAULT_STATE_DIR

if TYPE_CHECKING:
    from reconciler.cli.common import Subparsers

PROG = "reconciler split-brain"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "split-brain", help="DRBD split-brain handler: record the incident for status, metrics and alerts",
        description="Run by DRBD (not by hand) when it detects a split brain it does not resolve by itself. "
                    "Records the resource, the peer, the time and this node's generation identifiers in "
                    "/var/lib/reconciler/split-brain/RESOURCE.json. Always exits 0.")
    parser.set_defaults(func=_split_brain)


def _state_dir() -> Path:
    from reconciler.cli.cmd_fence import read_env_file  # noqa: PLC0415

    key = "RECONCILER_STATE_DIR"
    return Path(os.environ.get(key) or read_env_file(DEFAULT_ENV_FILE).get(key) or str(DEFAULT_STATE_DIR))


def _split_brain(args: argparse.Namespace) -> int:
    from reconciler.daemon.peers.splitbrain import record_split_brain  # noqa: PLC0415
    from reconciler.daemon.records.backend_choice import BackendChoiceError, node_choice  # noqa: PLC0415
    from reconciler.host.base import HostFileError  # noqa: PLC0415
    from reconciler.host.real import RealHost  # noqa: PLC0415
    from reconciler.names import UnsafeNameError  # noqa: PLC0415

    state_dir = _state_dir()
    try:
        choice = node_choice(state_dir)
    except BackendChoiceError as exc:
        print(f"{PROG}: could not record the split brain: {exc}", file=sys.stderr)
        return 0
    if not choice.recorded:
        print(f"{PROG}: no backends recorded in {state_dir} yet: recording as the default replicator "
              f"({choice.names.replicator})", file=sys.stderr)
    try:
        marker = record_split_brain(RealHost(), os.environ, time.time, choice.backends.replicator)
    except (UnsafeNameError, HostFileError, OSError) as exc:
        print(f"{PROG}: could not record the split brain: {exc}", file=sys.stderr)
        return 0
    print(f"{PROG}: split brain on {marker.resource} with {marker.peer or 'the peer'} recorded; resolve it by "
          "commit (split_brain_recovery) or by hand (docs/split-brain.md)", file=sys.stderr)
    return 0

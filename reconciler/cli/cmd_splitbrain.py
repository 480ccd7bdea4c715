"""`reconciler split-brain`: DRBD's split-brain handler (``handlers { split-brain "... split-brain"; }``).

Run by DRBD, not by hand, with the resource in ``DRBD_RESOURCE``. It records the incident for the observer
(status, metrics, alerts and the log then say "split brain") and always exits 0: DRBD ignores the code, and
the decision whose data is discarded belongs to an operator.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING

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


def _split_brain(args: argparse.Namespace) -> int:
    from reconciler.daemon.peers.splitbrain import record_split_brain  # noqa: PLC0415
    from reconciler.host.base import HostFileError  # noqa: PLC0415
    from reconciler.host.real import RealHost  # noqa: PLC0415
    from reconciler.names import UnsafeNameError  # noqa: PLC0415

    try:
        marker = record_split_brain(RealHost(), os.environ, time.time)
    except (UnsafeNameError, HostFileError, OSError) as exc:
        print(f"{PROG}: could not record the split brain: {exc}", file=sys.stderr)
        return 0
    print(f"{PROG}: split brain on {marker.resource} with {marker.peer or 'the peer'} recorded; resolve it by "
          "commit (split_brain_recovery) or by hand (docs/split-brain.md)", file=sys.stderr)
    return 0

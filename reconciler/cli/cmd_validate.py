"""`reconciler validate [DIR]`: check a desired-state directory and print every problem at once."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from reconciler.desired.load import collect

if TYPE_CHECKING:
    from reconciler.cli.common import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a desired-state directory; print every problem as path:line:col",
        description="Exit 0 when the desired state is valid; otherwise print every problem and exit 1.",
    )
    parser.add_argument("directory", nargs="?", default=".", metavar="DIR",
                        help="the desired-state directory (default: the current directory)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    cluster, issues = collect(args.directory)
    if cluster is None:
        for issue in issues:
            print(issue.format(args.directory), file=sys.stderr)
        print(f"{len(issues)} problem(s) found", file=sys.stderr)
        return 1
    print(f"{args.directory}: valid: cluster {cluster.name}, {len(cluster.nodes)} node(s), {len(cluster.vms)} VM(s)")
    return 0

"""`reconciler render --node NAME [--out DIR] [DIR]`: show what one node would get, for review."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from reconciler.desired.errors import UnknownNodeError
from reconciler.desired.expand import expand_node
from reconciler.desired.load import collect
from reconciler.desired.render import render_node
from reconciler.names import UnsafeNameError, check_name

if TYPE_CHECKING:
    from reconciler.cli.common import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "render",
        help="render the DRBD, Xen and dm files one node would get",
        description="Without --out, list the files; with --out, write them under that directory.",
    )
    parser.add_argument("--node", required=True, help="the node, as named in cluster.yaml")
    parser.add_argument("--out", metavar="DIR", help="write the files under DIR (created if missing)")
    parser.add_argument("directory", nargs="?", default=".", metavar="DIR",
                        help="the desired-state directory (default: the current directory)")
    parser.set_defaults(func=_run)


def _write(out: str, files: dict[str, str]) -> None:
    for rel, content in sorted(files.items()):
        target = os.path.join(out, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = f"{target}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.replace(tmp, target)


def _run(args: argparse.Namespace) -> int:
    try:
        node = check_name(args.node, "node")
    except UnsafeNameError as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 2
    cluster, issues = collect(args.directory)
    if cluster is None:
        for issue in issues:
            print(issue.format(args.directory), file=sys.stderr)
        print(f"{len(issues)} problem(s) found; nothing rendered", file=sys.stderr)
        return 1
    try:
        desired = expand_node(cluster, node)
    except UnknownNodeError as exc:
        print(f"render: {exc.message}", file=sys.stderr)
        return 2
    files = render_node(desired)
    if args.out:
        try:
            _write(args.out, files)
        except OSError as exc:
            where = exc.filename or args.out
            print(f"render: cannot write {where}: {exc.strerror or exc}; give --out a directory you can write to",
                  file=sys.stderr)
            return 1
        for rel in sorted(files):
            print(os.path.join(args.out, rel))
    else:
        for rel, content in sorted(files.items()):
            print(f"{rel} ({len(content.encode())} bytes)")
    return 0

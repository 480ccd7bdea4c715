"""`reconciler observe`: what the node has, from one pass of the Observer."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from reconciler.cli.common import add_host_options, make_host, make_observer, remember_versions
from reconciler.names import UnsafeNameError

if TYPE_CHECKING:
    from reconciler.cli.common import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "observe",
        help="show what the node has (LVM, device-mapper, DRBD, Xen) from one observation pass",
        description="Observe the node with a fixed handful of read-only commands and print what it has. "
                    "--capture saves every command's output for a support bundle; --replay rebuilds the "
                    "observation from such a bundle without touching any host.",
    )
    parser.add_argument("--json", action="store_true", help="print the observation as one JSON object")
    parser.add_argument("--capture", metavar="DIR", help="also save every command (argv, exit code, output) "
                                                         "and file read into DIR")
    parser.add_argument("--replay", metavar="DIR", help="answer from a capture in DIR instead of a host")
    add_host_options(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from reconciler.host.capture import CapturingHost  # noqa: PLC0415
    from reconciler.host.replay import ReplayError  # noqa: PLC0415
    from reconciler.observe.summary import format_summary, to_json  # noqa: PLC0415

    if args.replay and args.sim:
        print("reconciler observe: --replay and --sim exclude each other", file=sys.stderr)
        return 2
    try:
        host = make_host(args)
    except (ReplayError, UnsafeNameError, OSError) as exc:
        print(f"reconciler observe: {exc}", file=sys.stderr)
        return 2
    try:
        if args.capture:
            host = CapturingHost(host, args.capture)
        observer = make_observer(args, host)
        observed = observer.observe()
        remember_versions(args, observer)
    except (ReplayError, UnsafeNameError) as exc:
        print(f"reconciler observe: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.strerror and exc.filename:
            hint = "; give --capture a new directory you can write to" if args.capture else ""
            print(f"reconciler observe: {exc.filename}: {exc.strerror}{hint}", file=sys.stderr)
        else:
            print(f"reconciler observe: {exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(to_json(observed, observer.version_commands_run), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_summary(observed, observer.version_commands_run))
    if args.capture:
        print(f"capture saved to {args.capture}", file=sys.stderr)
    return 0

"""`reconciler plan`: what would change on this node, like `terraform plan`.

Exit status: 0 nothing would change, 2 something would (including refused and waiting steps), 1 error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.cli.common import (
    add_host_options,
    add_state_dir,
    make_host,
    make_observer,
    node_access,
    node_name,
    remember_versions,
)
from reconciler.host.base import Host
from reconciler.names import UnsafeNameError

if TYPE_CHECKING:
    from reconciler.cli.common import Subparsers

if TYPE_CHECKING:  # the models load in _run, after the LVM reports have been started (see _prefetching_host)
    from reconciler.desired.safefs import DesiredFiles
    from reconciler.model.desired import DesiredNode

EXIT_NO_CHANGES = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="show what apply would change on this node (+ create, ~ change, - delete, ! refused, = waiting)",
        description="Observe the node, compare it with the desired state in DIR and print the ordered actions "
                    "with the exact commands. Exit 0 when nothing would change, 2 when something would, 1 on error.",
    )
    parser.add_argument("directory", nargs="?", default=".", metavar="DIR",
                        help="desired-state directory (default: the current directory)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--allow-mass-delete", action="store_true",
                        help="plan removals beyond the repository's per-revision limit")
    parser.add_argument("--deep", action="store_true",
                        help="also ask `drbdadm -d adjust` what it would change for every DRBD resource that is up "
                             "(one read-only command per resource)")
    add_host_options(parser)
    add_state_dir(parser)
    parser.set_defaults(func=_run)


@dataclass(frozen=True)
class Target:
    host: Host
    desired: DesiredNode


class CliError(Exception):
    """A problem to print in one line with exit status 1."""


def load_target(args: argparse.Namespace, host: Host | None = None) -> Target:
    from reconciler.desired import cache  # noqa: PLC0415
    from reconciler.desired.errors import UnknownNodeError, ValidationFailed  # noqa: PLC0415

    directory = args.directory
    state_dir = getattr(args, "state_dir", None)

    def load(files: DesiredFiles | None) -> DesiredNode:
        # Only a full load needs the parser, the schema and the checks: a cached node needs none of them.
        from reconciler.desired.expand import expand_node  # noqa: PLC0415
        from reconciler.desired.load import load_cluster  # noqa: PLC0415

        return expand_node(load_cluster(directory, files), node)

    try:
        node = node_name(args)
        desired = cache.desired_node(directory, node, Path(state_dir) if state_dir else None, load)
        if state_dir:
            # A VM the daemon took over after an automatic failover is planned as the daemon plans it.
            from reconciler.daemon.peers.failover import read_records, with_takeovers  # noqa: PLC0415

            desired = with_takeovers(desired, read_records(Path(state_dir)))
        host = host or make_host(args)
    except ValidationFailed as exc:
        raise CliError(f"the desired state in {directory} is invalid:\n{exc.format(directory)}") from exc
    except UnknownNodeError as exc:
        raise CliError(f"{getattr(exc, 'message', None) or f'node {exc}: not in the cluster'} (use --node)") from exc
    except (UnsafeNameError, OSError, RuntimeError) as exc:  # RuntimeError: e.g. no simulated cluster there
        raise CliError(str(exc)) from exc
    if node_access(args).this_machine:
        check_real_identity(desired.node, desired.hostname, os.uname().nodename)
    # No peer view, on any kind of node: a one-shot command hears no peer status, so what needs the peer's
    # state (an online resize) waits for the daemon, on a simulated node as on a real one.
    return Target(host, desired)


def check_real_identity(node: str, hostname: str, uname: str) -> None:
    """On a real host, act only as the node whose declared host name this host has.

    DRBD matches its ``on <host>`` sections against ``uname -n``: planning or applying another node's state
    here would bring up the wrong side of a resource. ``render --node`` shows any node's files for review.
    """
    if hostname != uname:
        raise CliError(f"node {node!r} is declared with host name {hostname!r}, but this host is {uname!r} "
                       f"(uname -n): acting as {node!r} here could bring up the wrong side of a DRBD resource; "
                       f"run this on {hostname}, use --sim for a simulated node, or `reconciler render --node "
                       f"{node}` to review what that node would get")


def _prefetching_host(args: argparse.Namespace) -> Host | None:
    """On a real node, the pass's `vgs`, `lvs` and `dmsetup info` reports start now and run while the rest of
    the command is imported and the desired state loaded (a fresh plan spends most of its time there); the
    observer then gets their answers."""
    if not node_access(args).this_machine:
        return None
    from reconciler.backends.dm.argv import DM_INFO_ARGV  # noqa: PLC0415
    from reconciler.backends.lvm.argv import LVS_ARGV, VGS_ARGV  # noqa: PLC0415
    from reconciler.host.prefetch import PrefetchingHost  # noqa: PLC0415
    from reconciler.observe.timeout import OBSERVE_TIMEOUT  # noqa: PLC0415

    # Not `dmsetup table`: the pass asks for it only after `dmsetup info` answered (the kernel has the driver).
    reports = (VGS_ARGV, LVS_ARGV, DM_INFO_ARGV)
    try:
        return PrefetchingHost(make_host(args), reports, timeout=OBSERVE_TIMEOUT)
    except UnsafeNameError:
        return None  # reported by load_target


def _run(args: argparse.Namespace) -> int:
    host = _prefetching_host(args)
    from reconciler.apply.oneshot import observe_and_plan  # noqa: PLC0415
    from reconciler.cli.oneshot_gate import one_shot_gate  # noqa: PLC0415
    from reconciler.plan.render_plan import render_json, render_text  # noqa: PLC0415

    try:
        target = load_target(args, host)
        observer = make_observer(args, target.host)
        step = observe_and_plan(target.host, target.desired, allow_mass_delete=args.allow_mass_delete,
                                deep=args.deep, observer=observer, gate=one_shot_gate(Path(args.state_dir)))
        remember_versions(args, observer)
    except CliError as exc:
        print(f"reconciler plan: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        json.dump(render_json(step.plan), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(step.plan))
    return EXIT_NO_CHANGES if step.plan.is_empty else EXIT_CHANGES

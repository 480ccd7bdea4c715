"""`reconciler doctor`: preflight checks of this node, one verdict each; exit 1 when any check fails."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.cli.common import add_host_options, add_state_dir, make_host, node_name
from reconciler.names import UnsafeNameError
from reconciler.statedir import DEFAULT_ENV_FILE

if TYPE_CHECKING:
    from reconciler.cli.common import Subparsers
    from reconciler.desired.schema import PowerFenceSection
    from reconciler.model.desired import DesiredNode

MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "doctor", help="preflight checks of this node (host name, tools, LVM filter, services, ballooning, ...)",
        description="Check that this node can be managed safely. The desired state comes from DIR, or from the "
                    "revision in force in the daemon's state directory. Exit 1 when a check fails.")
    parser.add_argument("directory", nargs="?", metavar="DIR", help="desired-state directory (optional)")
    add_host_options(parser)
    add_state_dir(parser)
    parser.add_argument("--env-file", default=DEFAULT_ENV_FILE, metavar="FILE",
                        help=f"the daemon's environment file, read for RECONCILER_PEERS and "
                             f"RECONCILER_MIGRATE_TRANSPORT (default: "
                             f"{DEFAULT_ENV_FILE}; a missing file is fine)")
    parser.set_defaults(func=_run)


def _desired(args: argparse.Namespace, node: str) -> tuple[DesiredNode | None, str, dict[str, PowerFenceSection]]:
    from reconciler.desired.expand import expand_node  # noqa: PLC0415
    from reconciler.desired.load import load_cluster  # noqa: PLC0415
    from reconciler.source.gitsource import GitSource  # noqa: PLC0415
    from reconciler.source.mirror import Mirror  # noqa: PLC0415

    try:
        if args.directory:
            cluster = load_cluster(args.directory)
            origin = args.directory
        else:
            state_dir = Path(args.state_dir)
            loaded = GitSource(Mirror(state_dir, "unused", "main"), state_dir).load_in_force()
            if loaded is None:
                return None, "no desired state (give DIR, or run the daemon first)", {}
            cluster = loaded.cluster
            origin = f"revision {loaded.info.sha[:12]} in {state_dir}"
        fences = {name: spec.power_fence for name, spec in cluster.spec.nodes.items() if spec.power_fence}
        return expand_node(cluster, node), origin, fences
    except Exception as exc:  # doctor reports every problem rather than stopping at the first
        return None, f"desired state unusable: {exc}", {}


def _fence_peers(args: argparse.Namespace) -> dict[str, str]:
    """node -> host of RECONCILER_PEERS, as the fence-peer handler reads it (the environment, else the
    daemon's environment file); items that do not parse are left to the handler and the daemon to report."""
    from reconciler.cli.cmd_fence import read_env_file  # noqa: PLC0415
    from reconciler.daemon.peers.peer import parse_peer_item  # noqa: PLC0415

    raw = os.environ.get("RECONCILER_PEERS") or read_env_file(args.env_file).get("RECONCILER_PEERS", "")
    found: dict[str, str] = {}
    for item in raw.split():
        try:
            name, host, _ = parse_peer_item(item, "RECONCILER_PEERS")
        except ValueError:
            continue
        found[name] = host
    return found


def _daemon_settings(args: argparse.Namespace) -> dict[str, str]:
    """The daemon's RECONCILER_* settings as it reads them: each from the environment, else from the daemon's
    environment file (the backends' checks read theirs, e.g. Xen's RECONCILER_MIGRATE_TRANSPORT)."""
    from reconciler.cli.cmd_fence import read_env_file  # noqa: PLC0415

    found = {key: value for key, value in read_env_file(args.env_file).items() if key.startswith("RECONCILER_")}
    found.update((key, value) for key, value in os.environ.items() if key.startswith("RECONCILER_") and value)
    return found


def _run(args: argparse.Namespace) -> int:
    from reconciler.core.doctor import Check  # noqa: PLC0415
    from reconciler.daemon.node.doctor import run_checks  # noqa: PLC0415

    try:
        node = node_name(args)
        host = make_host(args)
    except (UnsafeNameError, OSError) as exc:  # a bad --node, or --sim naming no simulated cluster
        print(f"reconciler doctor: {exc}", file=sys.stderr)
        return 2
    desired, origin, fences = _desired(args, node)
    print(f"doctor for node {node}; desired state: {origin}")

    def show(check: Check) -> None:
        print(f"[{MARK[check.verdict]}] {check.name}: {check.detail}")

    checks = run_checks(host, node, desired, progress=show, fence_peers=_fence_peers(args),
                        power_fences=fences, settings=_daemon_settings(args))
    if args.directory and desired is None:
        # The operator asked for this desired state to be checked: that it cannot be used is a failure,
        # not a reason to skip the checks that need it.
        checks.append(Check("desired state", "fail", f"{origin}; run `reconciler validate {args.directory}`"))
        show(checks[-1])
    failed = [c for c in checks if c.verdict == "fail"]
    warned = [c for c in checks if c.verdict == "warn"]
    print(f"{len(checks)} checks: {len(failed)} failed, {len(warned)} warnings, "
          f"{sum(c.verdict == 'skip' for c in checks)} skipped")
    if failed:
        print("this node is NOT ready to be managed; fix the failed checks first", file=sys.stderr)
        return 1
    return 0

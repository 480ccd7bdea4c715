"""Operator control of a running daemon: `suspend`, `resume`, `reconcile-now` and `allow-revision`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.cli.common import add_host_options, add_state_dir, make_host, node_access
from reconciler.daemon.node.control import NODE_SCOPE, ControlStore, operator_name, send_command
from reconciler.names import UnsafeNameError
from reconciler.source.errors import SourceError

if TYPE_CHECKING:
    from reconciler.cli.common import Subparsers


def register(subparsers: Subparsers) -> None:
    suspend = subparsers.add_parser(
        "suspend", help="stop acting on this node (or one VM); observing and exporting go on",
        description="Record a suspension (reason, who, when) that the daemon honours from its next pass on, "
                    "including after restarts, until `reconciler resume`.")
    suspend.add_argument("--vm", metavar="NAME", help="suspend only this VM, e.g. vm100 (default: the whole node)")
    suspend.add_argument("--reason", required=True, help="why (shown in status and metrics)")
    add_state_dir(suspend)
    suspend.set_defaults(func=_suspend)

    resume = subparsers.add_parser("resume", help="lift a suspension made with `reconciler suspend`")
    resume.add_argument("--vm", metavar="NAME",
                        help="resume only this VM, e.g. vm100 (default: the whole-node suspension)")
    add_state_dir(resume)
    resume.set_defaults(func=_resume)

    now = subparsers.add_parser("reconcile-now", help="fetch and run a pass at once")
    add_state_dir(now)
    now.set_defaults(func=_reconcile_now)

    allow = subparsers.add_parser(
        "allow-revision", help="allow one commit that does not descend from the applied revision (force-push)",
        description="After a force-push or a rollback the daemon refuses the new tip until an operator allows "
                    "that exact commit. Check the history first (`git log --graph`).")
    allow.add_argument("sha", help="the full commit id shown in `reconciler status`")
    add_state_dir(allow)
    allow.set_defaults(func=_allow)

    down = subparsers.add_parser(
        "shutdown-node", help="shut down managed domains, then demote and bring down DRBD (system shutdown)",
        description="Run by reconciler-shutdown.service when the system stops (after reconciler.service has "
                    "stopped), so the peer can take over. Touches only resources of the revision in force.")
    down.add_argument("--if-system-stopping", action="store_true",
                      help="do nothing unless systemd reports the system is shutting down")
    down.add_argument("--domain-timeout", type=float, default=330.0, metavar="S",
                      help="how long each domain may take to shut down (default: 330)")
    add_host_options(down)
    add_state_dir(down)
    down.set_defaults(func=_shutdown_node)


def _poke(state_dir: Path) -> None:
    if send_command(state_dir, "reconcile-now"):
        print("the daemon was told and acts on it in its next pass (now)")
    else:
        print(f"no daemon listens in {state_dir}; the request is recorded and honoured when it starts")


def _vm_id_given(command: str, vm: str | None) -> bool:
    """A bare number is the VM's id: a suspension under it would match no VM and silently do nothing."""
    if vm is not None and vm.isdigit():
        print(f"reconciler {command}: --vm takes the VM's name (e.g. vm{vm}; names derive from the id), "
              f"not its id", file=sys.stderr)
        return True
    return False


def _vms_in_force(state_dir: Path) -> tuple[str, set[str]] | None:
    """The revision in force and its VM names, when the state directory holds one."""
    from reconciler.source.gitsource import GitSource  # noqa: PLC0415
    from reconciler.source.mirror import Mirror  # noqa: PLC0415

    try:
        loaded = GitSource(Mirror(state_dir, "unused", "main"), state_dir).load_in_force()
    except Exception:  # only a hint: the suspension is recorded whatever this finds
        return None
    if loaded is None:
        return None
    return loaded.info.sha[:12], {vm.name for vm in loaded.cluster.vms}


def _suspend(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir)
    if _vm_id_given("suspend", args.vm):
        return 2
    try:
        susp = ControlStore(state_dir).suspend(args.vm or NODE_SCOPE, args.reason, operator_name())
    except (UnsafeNameError, ValueError) as exc:
        print(f"reconciler suspend: {exc}", file=sys.stderr)
        return 2
    print(f"suspended {'VM ' + susp.scope if args.vm else 'the whole node'} ({susp.reason!r}, by {susp.by})")
    in_force = _vms_in_force(state_dir) if args.vm else None
    if in_force is not None and args.vm not in in_force[1]:
        print(f"warning: revision {in_force[0]} in force has no VM named {args.vm} (it has "
              f"{', '.join(sorted(in_force[1])) or 'none'}); the suspension affects nothing until such a VM exists",
              file=sys.stderr)
    _poke(state_dir)
    return 0


def _resume(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir)
    if _vm_id_given("resume", args.vm):
        return 2
    scope = args.vm or NODE_SCOPE
    if not ControlStore(state_dir).resume(scope):
        print(f"reconciler resume: {'VM ' + scope if args.vm else 'the node'} is not suspended", file=sys.stderr)
        return 1
    print(f"resumed {'VM ' + scope if args.vm else 'the whole node'}")
    _poke(state_dir)
    return 0


def _reconcile_now(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir)
    if not send_command(state_dir, "reconcile-now"):
        print(f"reconciler reconcile-now: no daemon listens in {state_dir}", file=sys.stderr)
        return 1
    print("a pass starts now")
    return 0


def _allow(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir)
    try:
        ControlStore(state_dir).allow_revision(args.sha)
    except SourceError as exc:
        print(f"reconciler allow-revision: {exc}", file=sys.stderr)
        return 2
    print(f"allowed {args.sha}")
    _poke(state_dir)
    return 0


def _shutdown_node(args: argparse.Namespace) -> int:
    from reconciler.backends.registry import node_backends  # noqa: PLC0415
    from reconciler.daemon.node.identity import IdentityError, check_node_name  # noqa: PLC0415
    from reconciler.daemon.node.shutdown import shutdown_node  # noqa: PLC0415
    from reconciler.desired.errors import UnknownNodeError  # noqa: PLC0415
    from reconciler.desired.expand import expand_node  # noqa: PLC0415
    from reconciler.observe.observer import Observer  # noqa: PLC0415
    from reconciler.source.gitsource import GitSource  # noqa: PLC0415
    from reconciler.source.mirror import Mirror  # noqa: PLC0415

    try:
        host = make_host(args)
        if node_access(args).this_machine:
            # Acting as another node here would shut down and demote what that node runs, not this one.
            check_node_name(host.node)
    except (UnsafeNameError, OSError, IdentityError) as exc:  # a bad --node, or --sim naming no cluster
        print(f"reconciler shutdown-node: {exc}", file=sys.stderr)
        return 2
    if args.if_system_stopping:
        state = host.run(("systemctl", "is-system-running"), timeout=10).stdout.strip()
        if state != "stopping":
            print(f"system is {state or 'unknown'}, not stopping: leaving domains and DRBD alone")
            return 0
    state_dir = Path(args.state_dir)
    source = GitSource(Mirror(state_dir, "unused", "main"), state_dir)
    in_force = source.load_in_force()
    if in_force is None:
        print(f"reconciler shutdown-node: no revision in force in {state_dir}; nothing is known to be managed",
              file=sys.stderr)
        return 1
    try:
        desired = expand_node(in_force.cluster, host.node)
    except UnknownNodeError as exc:
        print(f"reconciler shutdown-node: {exc.message} of revision {in_force.info.sha[:12]} (use --node)",
              file=sys.stderr)
        return 2
    observed = Observer(host, backends=node_backends(desired)).observe()
    report = shutdown_node(host, desired, observed, domain_timeout=args.domain_timeout)
    for step in report.steps:
        print(step)
    for failure in report.failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 0 if report.ok else 1

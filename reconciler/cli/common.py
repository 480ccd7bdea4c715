"""Options shared by the commands that act on a node: the real host, a simulated one or a replayed one."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from reconciler.host import factory
from reconciler.host.base import Host
from reconciler.names import check_name
from reconciler.statedir import DEFAULT_STATE_DIR

if TYPE_CHECKING:
    from typing import TypeAlias

    from reconciler.observe.observer import Observer

    # What every command module's ``register`` gets from reconciler.cli.main to add its parser to.
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def add_host_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", help="node name (default: this host's name as `uname -n` reports it)")
    parser.add_argument("--sim", metavar="DIR", help="act on a simulated node (cluster in DIR)")


def add_state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        default=os.environ.get("RECONCILER_STATE_DIR", str(DEFAULT_STATE_DIR)),
        metavar="DIR",
        help=f"the daemon's state directory (default: {DEFAULT_STATE_DIR})",
    )


def node_name(args: argparse.Namespace) -> str:
    return check_name(args.node or os.uname().nodename, "node")


def node_access(args: argparse.Namespace) -> factory.NodeAccess:
    """How the command reaches its node: ``--sim DIR``, ``--replay DIR`` (where offered), else this machine."""
    return factory.NodeAccess.of(sim=getattr(args, "sim", None), replay=getattr(args, "replay", None))


def make_host(args: argparse.Namespace) -> Host:
    """The host the command acts on. A replay without ``--node`` answers as the node it captured."""
    access = node_access(args)
    if access.kind == "replay":
        return factory.make_host(access, check_name(args.node, "node") if args.node else None)
    return factory.make_host(access, node_name(args))


def _real_node(args: argparse.Namespace) -> bool:
    """This machine itself: not a simulated node, a replay, or a capture (which must hold the probes)."""
    return node_access(args).this_machine and not getattr(args, "capture", None)


def make_observer(args: argparse.Namespace, host: Host) -> Observer:
    """An observer that reuses the tool versions an earlier command found on this node (see version_cache)."""
    from reconciler.observe.observer import Observer  # noqa: PLC0415

    if not _real_node(args):
        return Observer(host)
    from reconciler.observe import version_cache  # noqa: PLC0415

    return Observer(host, versions=version_cache.load())


def remember_versions(args: argparse.Namespace, observer: Observer) -> None:
    """Keep the versions this command probed for the next one."""
    if _real_node(args) and observer.version_commands_run:
        from reconciler.observe import version_cache  # noqa: PLC0415

        version_cache.store(observer.versions)

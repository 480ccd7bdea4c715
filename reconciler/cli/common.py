"""Options shared by the commands that act on a node: the real host or a simulated one."""

from __future__ import annotations

import argparse
import os
import socket

from reconciler.host.base import Host
from reconciler.names import check_name


def add_host_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", help="node name (default: this host's name as `uname -n` reports it)")
    parser.add_argument("--sim", metavar="DIR", help="act on a simulated node (cluster in DIR)")


def node_name(args: argparse.Namespace) -> str:
    return check_name(args.node or socket.gethostname(), "node")


def make_host(args: argparse.Namespace) -> Host:
    """The host the command acts on: a simulated node with ``--sim``, else this machine."""
    node = node_name(args)
    if args.sim:
        from reconciler.sim.host import SimHost  # noqa: PLC0415  (the simulator is optional at run time)

        return SimHost(os.path.abspath(args.sim), node)
    from reconciler.host.real import RealHost  # noqa: PLC0415

    return RealHost(node)

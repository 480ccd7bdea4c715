"""Who and when this node is: its name must be the one DRBD sees, and its boot time gates actions."""

from __future__ import annotations

import os
from pathlib import Path


class IdentityError(Exception):
    """The daemon must not start: it would act as another node."""


def check_node_name(node: str, *, sim_nodes: tuple[str, ...] | None = None) -> None:
    """``--node`` must equal ``uname -n`` (DRBD matches its ``on <host>`` sections against it).

    With a simulator, the node must be one of the simulated cluster's nodes instead.
    """
    if sim_nodes is not None:
        if node not in sim_nodes:
            raise IdentityError(f"--node {node!r} is not a node of the simulated cluster "
                                f"(it has {', '.join(sim_nodes) or 'none'})")
        return
    uname = os.uname().nodename
    if node != uname:
        raise IdentityError(
            f"--node {node!r} does not match this host's name {uname!r} (uname -n); DRBD matches its "
            f"'on {uname}' sections by that name, so acting as {node!r} here could bring up the wrong side "
            "of a resource. Fix the host name or --node.")


def boot_time(proc_stat: Path = Path("/proc/stat")) -> float | None:
    """The kernel's boot time (epoch seconds), or None where /proc/stat is unavailable."""
    try:
        for line in proc_stat.read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None

"""Where the daemons of a simulated cluster reach each other: loopback ports recorded with the cluster.

A simulated node's replication address (192.168.2.x by default) exists only inside the simulator; a daemon
on that node must never send anything there for real. ``sim init`` therefore records one loopback port per
node for the peer-status channel (``peer-ports.json`` beside the state); ``reconciler run --sim`` listens on
its node's port and reaches the others on theirs, and refuses any peer endpoint outside loopback.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Mapping

from reconciler.loopback import LOOPBACK

PORTS_FILE = "peer-ports.json"


def _free_loopback_port(taken: set[int]) -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((LOOPBACK, 0))
            port = int(probe.getsockname()[1])
        if port not in taken:
            return port
    raise OSError("no free loopback port for a simulated node")


def record_peer_ports(directory: str | os.PathLike[str], nodes: Iterable[str]) -> dict[str, int]:
    """Pick a free loopback port per node (free now; a daemon that cannot bind it later stops and says so)."""
    taken: set[int] = set()
    ports: dict[str, int] = {}
    for node in nodes:
        ports[node] = _free_loopback_port(taken)
        taken.add(ports[node])
    path = os.path.join(os.fspath(directory), PORTS_FILE)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(ports, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return ports


def peer_ports(directory: str | os.PathLike[str]) -> Mapping[str, int]:
    """The recorded ports; empty for a cluster made before they were recorded."""
    path = os.path.join(os.fspath(directory), PORTS_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the simulated cluster's peer ports: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, int) and 0 < v < 65536
                                             for k, v in data.items()):
        raise ValueError(f"{path}: expected {{node: port}} with ports 1-65535")
    return data


"""The simulator's entry in the host factory (:mod:`reconciler.host.factory`): nodes of a simulated cluster.

Imported by the factory the first time a simulated node is asked for; importing it registers the provider.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.host.base import Host
from reconciler.host.factory import register
from reconciler.sim.endpoints import peer_ports
from reconciler.sim.host import SimHost
from reconciler.sim.state import SimCluster, SimStateError


class SimProvider:
    def host(self, location: str | None, node: str | None) -> Host:
        if location is None or node is None:
            raise SimStateError("a simulated node needs its cluster's directory and its name")
        return SimHost(location, node)

    def nodes(self, location: str | None) -> tuple[str, ...] | None:
        if location is None:
            raise SimStateError("a simulated cluster needs its directory")
        return tuple(sorted(SimCluster(location).read().get("nodes", {})))

    def peer_ports(self, location: str | None) -> Mapping[str, int] | None:
        if location is None:
            raise SimStateError("a simulated cluster needs its directory")
        return peer_ports(location)


register("sim", SimProvider())

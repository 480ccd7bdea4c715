"""The registered hypervisors and replicators, and the pair a node uses (Xen and DRBD, the only ones yet).

Another backend registers here by name; the planner and the daemon take a :class:`Backends` and default
to :data:`DEFAULT_BACKENDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.backends.base import Hypervisor, Replicator
from reconciler.backends.drbd import DrbdReplicator
from reconciler.backends.xen import XenHypervisor

HYPERVISORS: Mapping[str, Hypervisor] = {"xen": XenHypervisor()}
REPLICATORS: Mapping[str, Replicator] = {"drbd": DrbdReplicator()}


@dataclass(frozen=True)
class Backends:
    """The hypervisor and the replicator one node's plan and shutdown use."""

    hypervisor: Hypervisor
    replicator: Replicator


DEFAULT_BACKENDS = Backends(hypervisor=HYPERVISORS["xen"], replicator=REPLICATORS["drbd"])

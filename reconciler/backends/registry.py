"""The registered hypervisors, replicators and fact providers, and the pair a node uses (Xen and DRBD).

Another backend registers here by name; the planner and the daemon take a :class:`Backends` and default
to :data:`DEFAULT_BACKENDS`; the observer runs :data:`FACT_PROVIDERS` in order.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.backends.dm.facts import DmFacts
from reconciler.backends.drbd.facts import DrbdFacts
from reconciler.backends.drbd.replicator import DrbdReplicator
from reconciler.backends.lvm.facts import LvmFacts
from reconciler.backends.xen.facts import XenFacts
from reconciler.backends.xen.hypervisor import XenHypervisor
from reconciler.core.facts import FactProvider
from reconciler.core.seams import Backends, Hypervisor, Replicator

HYPERVISORS: Mapping[str, Hypervisor] = {"xen": XenHypervisor()}
REPLICATORS: Mapping[str, Replicator] = {"drbd": DrbdReplicator()}


DEFAULT_BACKENDS = Backends(hypervisor=HYPERVISORS["xen"], replicator=REPLICATORS["drbd"])


# The order is the pass's: commands run, and tools are listed, in this order. A new backend registers here.
FACT_PROVIDERS: tuple[FactProvider, ...] = (LvmFacts(), DmFacts(), DrbdFacts(), XenFacts())

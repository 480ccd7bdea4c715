"""The registered fact providers, in the order an observation pass runs them, the tools' version probes and
the backends' owned config files the observer reads.

Apart from :mod:`reconciler.backends.registry` so that what plans (and never observes) does not load every
backend's parsers and the host seam's readers with them.

The providers are registered per backend, by the name :mod:`reconciler.backends.registry` gives it: a node runs
the shared ones (LVM, device-mapper), then its replicator's, then its hypervisor's (:func:`node_facts`), never
another backend's (a node without DRBD is not told that drbdsetup is missing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.backends.dm import facts as dm_facts
from reconciler.backends.dm.facts import DmFacts
from reconciler.backends.drbd import paths as drbd_paths
from reconciler.backends.drbd import utils_version as drbd_utils
from reconciler.backends.drbd.facts import DrbdFacts
from reconciler.backends.lvm import facts as lvm_facts
from reconciler.backends.lvm.facts import LvmFacts
from reconciler.backends.registry import DEFAULT_BACKENDS
from reconciler.backends.xen import paths as xen_paths
from reconciler.backends.xen.facts import XenFacts
from reconciler.core.facts import FactProvider, FreshFact, FreshRead, OwnedConfigFiles, VersionProbe
from reconciler.core.seams import Backends


@dataclass(frozen=True)
class BackendFacts:
    """What an observer of a node runs: its fact providers in pass order and who reads each kind of fact afresh."""

    providers: tuple[FactProvider, ...] = ()
    fresh_reads: Mapping[FreshFact, FreshRead] = field(default_factory=dict)


# Every node's, whatever its pair: the volumes and the devices under the replicas.
SHARED_FACTS = BackendFacts(providers=(LvmFacts(), DmFacts()),
                            fresh_reads={"devices": DmFacts(), "volumes": LvmFacts()})

# Each replicator's and each hypervisor's, by the name it is registered under in reconciler.backends.registry.
# Another backend registers here beside its entry there. A replicator reads the "replication" facts afresh.
REPLICATOR_FACTS: Mapping[str, BackendFacts] = {
    "drbd": BackendFacts(providers=(DrbdFacts(),), fresh_reads={"replication": DrbdFacts()}),
}
HYPERVISOR_FACTS: Mapping[str, BackendFacts] = {"xen": BackendFacts(providers=(XenFacts(),))}


def node_facts(backends: Backends) -> BackendFacts:
    """The providers a node running ``backends`` runs, in pass order (the shared ones, the replicator's, the
    hypervisor's), and its fresh reads. A backend that registered no facts adds none."""
    parts = (SHARED_FACTS, REPLICATOR_FACTS.get(backends.replicator.name, BackendFacts()),
             HYPERVISOR_FACTS.get(backends.hypervisor.name, BackendFacts()))
    fresh: dict[FreshFact, FreshRead] = {}
    for part in parts:
        fresh.update(part.fresh_reads)
    return BackendFacts(providers=tuple(p for part in parts for p in part.providers), fresh_reads=fresh)


# The default pair's (a node that names none in cluster.yaml): the commands run, and tools are listed, in this order.
FACT_PROVIDERS: tuple[FactProvider, ...] = node_facts(DEFAULT_BACKENDS).providers

# Who reads each kind of fact afresh for the last look right before a step (Observer.observe_drbd,
# observe_dm, observe_lvs), for the default pair.
FRESH_READS: Mapping[FreshFact, FreshRead] = node_facts(DEFAULT_BACKENDS).fresh_reads

# Run once per observer, in this order (Xen's version comes with `xl info` and DRBD's kernel version with
# /proc/drbd, both read on every pass anyway). A backend whose tool needs a command of its own registers here.
VERSION_PROBES: tuple[VersionProbe, ...] = (lvm_facts.VERSION_PROBE, dm_facts.VERSION_PROBE, drbd_utils.VERSION_PROBE)

# The directories of the config files the reconciler writes, read by the observer on every pass (in this order)
# for the takeover, drift and identity checks. A backend that writes config files registers here.
OWNED_CONFIG: tuple[OwnedConfigFiles, ...] = (drbd_paths.OWNED, xen_paths.OWNED)

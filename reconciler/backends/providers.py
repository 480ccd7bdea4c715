"""The registered fact providers, in the order an observation pass runs them, the tools' version probes and
the backends' owned config files the observer reads.

Apart from :mod:`reconciler.backends.registry` so that what plans (and never observes) does not load every
backend's parsers and the host seam's readers with them.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.backends.dm import facts as dm_facts
from reconciler.backends.dm.facts import DmFacts
from reconciler.backends.drbd import paths as drbd_paths
from reconciler.backends.drbd import utils_version as drbd_utils
from reconciler.backends.drbd.facts import DrbdFacts
from reconciler.backends.lvm import facts as lvm_facts
from reconciler.backends.lvm.facts import LvmFacts
from reconciler.backends.xen import paths as xen_paths
from reconciler.backends.xen.facts import XenFacts
from reconciler.core.facts import FactProvider, FreshFact, FreshRead, OwnedConfigFiles, VersionProbe

# The order is the pass's: commands run, and tools are listed, in this order. A new backend registers here.
FACT_PROVIDERS: tuple[FactProvider, ...] = (LvmFacts(), DmFacts(), DrbdFacts(), XenFacts())

# Who reads each kind of fact afresh for the last look right before a step (Observer.observe_drbd,
# observe_dm, observe_lvs). Another replicator, or another volume or device backend, registers its reader here.
FRESH_READS: Mapping[FreshFact, FreshRead] = {"replication": DrbdFacts(), "devices": DmFacts(), "volumes": LvmFacts()}

# Run once per observer, in this order (Xen's version comes with `xl info` and DRBD's kernel version with
# /proc/drbd, both read on every pass anyway). A backend whose tool needs a command of its own registers here.
VERSION_PROBES: tuple[VersionProbe, ...] = (lvm_facts.VERSION_PROBE, dm_facts.VERSION_PROBE, drbd_utils.VERSION_PROBE)

# The directories of the config files the reconciler writes, read by the observer on every pass (in this order)
# for the takeover, drift and identity checks. A backend that writes config files registers here.
OWNED_CONFIG: tuple[OwnedConfigFiles, ...] = (drbd_paths.OWNED, xen_paths.OWNED)

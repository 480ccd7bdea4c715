"""The registered fact providers, in the order an observation pass runs them.

Apart from :mod:`reconciler.backends.registry` so that what plans (and never observes) does not load every
backend's parsers and the host seam's readers with them.
"""

from __future__ import annotations

from reconciler.backends.dm.facts import DmFacts
from reconciler.backends.drbd.facts import DrbdFacts
from reconciler.backends.lvm.facts import LvmFacts
from reconciler.backends.xen.facts import XenFacts
from reconciler.core.facts import FactProvider

# The order is the pass's: commands run, and tools are listed, in this order. A new backend registers here.
FACT_PROVIDERS: tuple[FactProvider, ...] = (LvmFacts(), DmFacts(), DrbdFacts(), XenFacts())

"""The registered hypervisors, replicators, metrics and failure messages, and the pair a node uses (Xen and
DRBD); the fact providers are registered beside it (:mod:`reconciler.backends.providers`).

Another backend registers here by name; the planner and the daemon take a :class:`Backends` and default
to :data:`DEFAULT_BACKENDS`; the metrics collector adds
the sections of :data:`METRICS_MODULES` in order; the executor's classification of a failed command asks
:data:`PRECONDITION_PATTERNS`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from reconciler.backends.drbd.errors import PRECONDITION_PATTERNS as DRBD_PRECONDITION_PATTERNS
from reconciler.backends.drbd.replicator import DrbdReplicator
from reconciler.backends.xen.hypervisor import XenHypervisor
from reconciler.core.seams import Backends, Hypervisor, Replicator

HYPERVISORS: Mapping[str, Hypervisor] = {"xen": XenHypervisor()}
REPLICATORS: Mapping[str, Replicator] = {"drbd": DrbdReplicator()}


DEFAULT_BACKENDS = Backends(hypervisor=HYPERVISORS["xen"], replicator=REPLICATORS["drbd"])


# Each backend's part of a scrape, in the exposition's order: the section's name (the ``section`` label of
# reconciler_metrics_section_failed) and the module whose ``collect`` builds it
# (:class:`reconciler.core.metric_families.BackendMetrics`). Named as data and imported by the collector, so
# that what loads this registry (the observer, the planner, the light commands) does not load prometheus_client.
METRICS_MODULES: tuple[tuple[str, str], ...] = (
    ("drbd", "reconciler.backends.drbd.metrics"),
    ("xen", "reconciler.backends.xen.metrics"),
)


# Each backend's messages that mean "wait, not failed" (a state that changes without the reconciler acting):
# the executor's classification (reconciler.apply.classify) requeues such a step without counting a failure.
# Asked in this order, before the messages that mean "try again".
PRECONDITION_PATTERNS: Mapping[str, tuple[re.Pattern[str], ...]] = {"drbd": DRBD_PRECONDITION_PATTERNS}

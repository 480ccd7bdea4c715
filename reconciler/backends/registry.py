"""The registered hypervisors, replicators, metrics and failure messages, and the pair a node uses (Xen and
DRBD); the fact providers are registered beside it (:mod:`reconciler.backends.providers`).

Another backend registers here by name; a node names its pair in cluster.yaml (``backends``, carried on
``DesiredNode.backends``), which :func:`node_backends` turns into the :class:`Backends` the expansion, the
planner and the daemon's parts take (:data:`DEFAULT_BACKENDS` for a node that names none); the metrics collector adds
the sections of :data:`METRICS_MODULES` in order; the executor's classification of a failed command asks
:data:`PRECONDITION_PATTERNS`, then :data:`TRANSIENT_PATTERNS` and :data:`TRANSIENT_EXIT_CODES` (with the
messages every tool prints alike, its own).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from reconciler.backends.drbd.errors import PRECONDITION_PATTERNS as DRBD_PRECONDITION_PATTERNS
from reconciler.backends.drbd.errors import TRANSIENT_EXIT_CODES as DRBD_TRANSIENT_EXIT_CODES
from reconciler.backends.drbd.errors import TRANSIENT_PATTERNS as DRBD_TRANSIENT_PATTERNS
from reconciler.backends.drbd.replicator import DrbdReplicator
from reconciler.backends.lvm.errors import TRANSIENT_PATTERNS as LVM_TRANSIENT_PATTERNS
from reconciler.backends.xen.hypervisor import XenHypervisor
from reconciler.core.seams import Backends, Hypervisor, Replicator
from reconciler.model.desired import DesiredNode, NodeBackends

# By the name a node's ``backends`` in cluster.yaml gives (reconciler.desired.validate checks it against these).
HYPERVISORS: Mapping[str, Hypervisor] = {"xen": XenHypervisor()}
REPLICATORS: Mapping[str, Replicator] = {"drbd": DrbdReplicator()}


def backends_named(names: NodeBackends) -> Backends:
    """The registered pair ``names`` gives (the desired state's validation has checked the names; a name that
    is not registered here raises ``KeyError``)."""
    return Backends(hypervisor=HYPERVISORS[names.hypervisor], replicator=REPLICATORS[names.replicator])


def node_backends(desired: DesiredNode) -> Backends:
    """The hypervisor and replicator the node of ``desired`` runs (its ``backends`` in cluster.yaml)."""
    return backends_named(desired.backends)


# What a node without ``backends`` runs (NodeBackends' defaults), and what the parts that act before the
# desired state is known use until they are told the node's pair.
DEFAULT_BACKENDS = backends_named(NodeBackends())


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


# Each backend's messages that mean "try again" (contention that passes by itself: a lock another command
# holds), and the exit codes that mean the same; the classification asks them after the messages that mean
# "wait", together with the C library's words for EAGAIN, EBUSY, EINTR and timeouts, which are no backend's.
TRANSIENT_PATTERNS: Mapping[str, tuple[re.Pattern[str], ...]] = {"lvm": LVM_TRANSIENT_PATTERNS,
                                                                 "drbd": DRBD_TRANSIENT_PATTERNS}
TRANSIENT_EXIT_CODES: Mapping[str, tuple[int, ...]] = {"drbd": DRBD_TRANSIENT_EXIT_CODES}

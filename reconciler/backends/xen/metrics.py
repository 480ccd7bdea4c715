"""Xen metrics: each desired domain's state on this node, its memory, and the host's free memory."""

from __future__ import annotations

from prometheus_client.metrics_core import Metric

from reconciler.core.metric_families import add_enum, flag, gauge, non_empty
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import DomainState, ObservedNode
from reconciler.sizes import MIB

DOMAIN_STATES = ("running", "paused", "crashed", "shutdown", "absent", "unknown")
# xl shows an idle domain as "blocked": it is running as far as anyone using it can tell.
_STATE_OF = {
    "running": "running",
    "blocked": "running",
    "paused": "paused",
    "crashed": "crashed",
    "shutdown": "shutdown",
    "dying": "shutdown",
    "unknown": "unknown",
}


def domain_state(domain: DomainState | None) -> str:
    return "absent" if domain is None else _STATE_OF.get(domain.state, "unknown")


def collect(observed: ObservedNode | None, desired: DesiredNode | None) -> list[Metric]:
    """Xen's part of a scrape (:class:`~reconciler.core.metric_families.BackendMetrics`)."""
    return xen_metrics(observed, desired)


def xen_metrics(observed: ObservedNode | None, desired: DesiredNode | None) -> list[Metric]:
    state = gauge("reconciler_domain_state",
                  "Xen state on this node of each desired domain (running, paused, crashed, shutdown, absent)",
                  ["vm", "domain", "state"])
    memory = gauge("reconciler_domain_memory_bytes", "Memory of the domain as xl reports it", ["vm", "domain"])
    desired_memory = gauge("reconciler_domain_desired_memory_bytes", "Memory the desired state gives the domain",
                           ["vm", "domain"])
    expected = gauge("reconciler_domain_expected_running",
                     "1 when the desired state wants the domain running on this node (this node is its primary)",
                     ["vm", "domain"])
    free = gauge("reconciler_host_free_memory_bytes", "Free memory of the Xen host as `xl info` reports it")
    total = gauge("reconciler_host_total_memory_bytes", "Total memory of the Xen host as `xl info` reports it")
    if observed is not None:
        if observed.host.free_memory_mib is not None:
            free.add_metric([], float(observed.host.free_memory_mib * MIB))
        if observed.host.total_memory_mib is not None:
            total.add_metric([], float(observed.host.total_memory_mib * MIB))
    if desired is not None:
        for vm in desired.vms:
            if vm.domain is None:
                continue
            labels = [vm.name, vm.domain.name]
            desired_memory.add_metric(labels, float(vm.domain.memory_mib * MIB))
            expected.add_metric(labels, flag(vm.lifecycle == "present" and vm.is_primary_here))
            if observed is None:
                continue
            found = observed.domain(vm.domain.name)
            add_enum(state, labels, DOMAIN_STATES, domain_state(found))
            if found is not None:
                memory.add_metric(labels, float(found.memory_mib * MIB))
    return non_empty([state, memory, desired_memory, expected, free, total])

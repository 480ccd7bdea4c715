"""Orderly node shutdown: managed domains shut down, then DRBD demoted and brought down, so the peer can
take over cleanly (it sees a Secondary, not a vanished Primary, and needs no fencing).

Only resources of the revision in force are touched. A domain that does not shut down in time is
reported and its DRBD resource left Primary: destroying a guest is never implicit, and DRBD would refuse
to demote a device still in use anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.backends.registry import node_backends
from reconciler.core.seams import Backends
from reconciler.host.base import Host
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode
from reconciler.names import check_name

DOMAIN_SHUTDOWN_TIMEOUT = 330.0
DRBD_TIMEOUT = 60.0


@dataclass
class ShutdownReport:
    steps: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def shutdown_node(host: Host, desired: DesiredNode, observed: ObservedNode, *,
                  domain_timeout: float = DOMAIN_SHUTDOWN_TIMEOUT,
                  backends: Backends | None = None) -> ShutdownReport:
    chosen = backends if backends is not None else node_backends(desired)
    hypervisor, replicator = chosen.hypervisor, chosen.replicator
    report = ShutdownReport()
    still_running: set[str] = set()
    for vm in desired.vms:
        if vm.domain is None:
            continue
        name = check_name(vm.domain.name, "domain")
        running = observed.domain(name)
        if running is None:
            continue
        result = host.run(hypervisor.shutdown_argv(name), timeout=domain_timeout)
        if result.ok:
            report.steps.append(f"domain {name} shut down")
        else:
            still_running.add(vm.name)
            report.failures.append(f"domain {name} did not shut down: {result.describe()}")
    for vm in desired.vms:
        if vm.drbd is None:
            continue
        resource = check_name(vm.drbd.name, "DRBD resource")
        state = observed.drbd.resource(resource)
        if state is None:
            continue
        if vm.name in still_running:
            report.failures.append(f"DRBD {resource} left up: its domain still runs")
            continue
        if state.role == "Primary":
            result = host.run(replicator.demote_argv(resource), timeout=DRBD_TIMEOUT)
            if not result.ok:
                report.failures.append(f"DRBD {resource} could not be demoted: {result.describe()}")
                continue
            report.steps.append(f"DRBD {resource} demoted")
        result = host.run(replicator.down_argv(resource), timeout=DRBD_TIMEOUT)
        if result.ok:
            report.steps.append(f"DRBD {resource} down")
        else:
            report.failures.append(f"DRBD {resource} could not be brought down: {result.describe()}")
    return report

"""Reboots a node decided because a Primary that lost quorum could not be stopped (reconciler.daemon.loop.escalation).

Read from the status a pass published (``NodeStatus.escalations``); the records outlive the reboot, so the node
says after it came back why it went down.
"""

from __future__ import annotations

from prometheus_client.metrics_core import Metric

from reconciler.core.metric_families import gauge, non_empty
from reconciler.model.status import EscalationState, NodeStatus

STATES: tuple[EscalationState, ...] = ("started", "requested", "failed")


def escalation_metrics(status: NodeStatus | None) -> list[Metric]:
    when = gauge("reconciler_quorum_reboot_timestamp_seconds",
                 "When this node last rebooted itself because the VM's resource stayed Primary without quorum "
                 "after a plain and a forced demotion failed (Unix time the reboot command started)",
                 ["vm", "resource"])
    outcome = gauge("reconciler_quorum_reboot_state",
                    "1 for the state of that latest reboot: started (the command ran and did not return), "
                    "requested (systemd took the reboot job) or failed (the reboot command failed: the node still "
                    "runs)",
                    ["vm", "state"])
    for entry in status.escalations if status is not None else ():
        when.add_metric([entry.vm, entry.resource], entry.decided_at)
        for name in STATES:
            outcome.add_metric([entry.vm, name], 1.0 if name == entry.state else 0.0)
    return non_empty((when, outcome))

"""Automatic failover: which VMs this node runs after taking them over, and how each VM's latest failover ended.

Read from the status a pass published (``NodeStatus.failovers``, kept by ``reconciler.daemon.peers.failover``). A VM
running away from its designated primary is a decision left to the operator (a commit, or automatic failback);
a failover that failed left the VM down, which is what the alerts are for.
"""

from __future__ import annotations

from prometheus_client.metrics_core import Metric

from reconciler.core.metric_families import gauge, non_empty
from reconciler.model.status import FailoverState, NodeStatus

STATES: tuple[FailoverState, ...] = ("decided", "running", "failed", "abandoned", "ended")


def takeover_metrics(status: NodeStatus | None) -> list[Metric]:
    active = gauge("reconciler_failover_active",
                   "1 while this node runs (or is starting) the VM after an automatic failover away from its "
                   "designated primary from_node", ["vm", "from_node"])
    outcome = gauge("reconciler_failover_last_outcome",
                    "1 for the state of the latest automatic failover of the VM to this node: decided, running, "
                    "failed, abandoned (the peer came back first) or ended (a commit, a failback)", ["vm", "outcome"])
    when = gauge("reconciler_failover_last_timestamp_seconds",
                 "When the latest automatic failover of the VM to this node was decided (Unix time)", ["vm"])
    watching = gauge("reconciler_failover_peer_lost",
                     "1 while the VM's designated primary looks lost from this node (DRBD disconnected and its "
                     "daemon silent) and no failover is in force; status says why it is not (yet) taken over",
                     ["vm"])
    for entry in status.failovers if status is not None else ():
        if entry.state is not None:
            # Taking its own VM back is no VM running away from its designated node.
            if entry.state in ("decided", "running") and entry.designated != entry.to_node:
                active.add_metric([entry.vm, entry.from_node], 1.0)
            for name in STATES:
                outcome.add_metric([entry.vm, name], 1.0 if name == entry.state else 0.0)
            if entry.decided_at is not None:
                when.add_metric([entry.vm], entry.decided_at)
        watching.add_metric([entry.vm], 1.0 if entry.watching else 0.0)
    return non_empty((active, outcome, when, watching))

"""Online verification metrics, from the verify entries of the node's published status.

Only the designated primary of a VM runs its verify, so only that node exports these series for it.
"""

from __future__ import annotations

from prometheus_client.metrics_core import Metric

from reconciler.core.metric_families import flag, gauge, non_empty
from reconciler.model.status import NodeStatus

LABELS = ("vm", "resource")


def verify_metrics(status: NodeStatus | None) -> list[Metric]:
    last_run = gauge(
        "reconciler_drbd_verify_last_run_timestamp_seconds",
        "When the last online verify that compared every block ended",
        LABELS,
    )
    found = gauge(
        "reconciler_drbd_verify_out_of_sync_bytes",
        "Bytes the last online verify found out of sync and no resync_found statement has resynced yet",
        LABELS,
    )
    interval = gauge("reconciler_drbd_verify_interval_seconds", "The verify schedule's interval", LABELS)
    due = gauge(
        "reconciler_drbd_verify_next_due_timestamp_seconds",
        "When the next online verify is due (absent while one runs)",
        LABELS,
    )
    running = gauge("reconciler_drbd_verify_running", "1 while an online verify runs", LABELS)
    progress = gauge("reconciler_drbd_verify_progress_ratio", "Share of the blocks the running verify compared", LABELS)
    for entry in status.verify if status is not None else ():
        labels = [entry.vm, entry.resource]
        interval.add_metric(labels, float(entry.interval_seconds))
        running.add_metric(labels, flag(entry.running))
        if entry.last_run_at is not None:
            last_run.add_metric(labels, entry.last_run_at)
        unresolved = entry.unresolved_out_of_sync_bytes
        if unresolved is not None:
            found.add_metric(labels, float(unresolved))
        if entry.next_due_at is not None:
            due.add_metric(labels, entry.next_due_at)
        if entry.running and entry.progress_percent is not None:
            progress.add_metric(labels, min(max(entry.progress_percent, 0.0), 100.0) / 100.0)
    return non_empty([last_run, found, interval, due, running, progress])

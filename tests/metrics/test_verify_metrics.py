"""Online verify metrics follow the status entries: found amounts until a statement resynced them."""

from __future__ import annotations

from reconciler.metrics.verify_metrics import verify_metrics
from reconciler.model.status import NodeStatus, VerifyStatus

RUN = "20270115T080000Z"


def samples(status: NodeStatus) -> dict[tuple[str, str], float]:
    return {(s.name, s.labels["vm"]): s.value for family in verify_metrics(status) for s in family.samples}


def test_found_blocks_count_until_a_statement_resynced_them() -> None:
    entry = VerifyStatus(
        vm="vm100",
        resource="vm100",
        schedule="daily",
        interval_seconds=86400,
        next_due_at=2.0,
        last_run_id=RUN,
        last_run_at=1.0,
        found_out_of_sync_bytes=8192,
    )
    found = samples(NodeStatus(node="xen1", verify=(entry,)))
    assert found[("reconciler_drbd_verify_out_of_sync_bytes", "vm100")] == 8192
    assert found[("reconciler_drbd_verify_last_run_timestamp_seconds", "vm100")] == 1.0
    assert found[("reconciler_drbd_verify_next_due_timestamp_seconds", "vm100")] == 2.0
    assert found[("reconciler_drbd_verify_running", "vm100")] == 0.0
    resynced = samples(NodeStatus(node="xen1", verify=(entry.model_copy(update={"resynced_run_id": RUN}),)))
    assert resynced[("reconciler_drbd_verify_out_of_sync_bytes", "vm100")] == 0.0


def test_a_running_verify_has_progress_and_no_due_time() -> None:
    entry = VerifyStatus(
        vm="vm101",
        resource="vm101",
        schedule="weekly",
        interval_seconds=604800,
        running=True,
        run_id=RUN,
        progress_percent=25.0,
    )
    found = samples(NodeStatus(node="xen1", verify=(entry,)))
    assert found[("reconciler_drbd_verify_progress_ratio", "vm101")] == 0.25
    assert found[("reconciler_drbd_verify_running", "vm101")] == 1.0
    assert ("reconciler_drbd_verify_next_due_timestamp_seconds", "vm101") not in found
    assert ("reconciler_drbd_verify_out_of_sync_bytes", "vm101") not in found
    assert verify_metrics(None) == []

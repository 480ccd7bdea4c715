"""The whole exposition: well-formed for promtool, and the families operators rely on are there."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from reconciler.metrics.collector import build_registry, exposition
from reconciler.metrics.state import MetricsState
from tests.metrics.representative import representative_state
from tests.metrics.scrape import names, parse, scrape


def test_promtool_check_metrics_is_clean() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package 'prometheus')")
    text = exposition(representative_state())
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert done.stdout.decode().strip() == ""


def test_every_documented_family_is_exported() -> None:
    exported = names(scrape(representative_state()))
    expected = {
        "reconciler_pass_duration_seconds_bucket", "reconciler_passes_total",
        "reconciler_last_success_timestamp_seconds",
        "reconciler_last_applied_revision_info", "reconciler_last_attempted_revision_info", "reconciler_resources",
        "reconciler_actions_total", "reconciler_action_retries_total", "reconciler_last_pass_drift_resources",
        "reconciler_suspended", "reconciler_revision_converged_latency_seconds_bucket", "reconciler_revision_blocked",
        "drbd_resource_role", "drbd_connection_state", "drbd_device_state", "drbd_peerdevice_outofsync_bytes",
        "drbd_connection_peer_role", "drbd_peerdevice_peer_disk_state", "drbd_peerdevice_replication_state",
        "drbd_peerdevice_resync_done_ratio", "drbd_peerdevice_resync_eta_seconds", "drbd_resource_split_brain",
        "drbd_device_unintentionaldiskless", "reconciler_domain_state", "reconciler_domain_memory_bytes",
        "reconciler_failover_ready", "reconciler_failover_check", "reconciler_vm_revision_skew",
        "reconciler_peer_applied_revision_info",
    }
    assert expected - exported == set()


def test_metrics_reference_documents_every_exported_family() -> None:
    from tests.conftest import PROJECT_ROOT

    reference = (PROJECT_ROOT / "exporters" / "METRICS.md").read_text()
    families = {n.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
                for n in names(scrape(representative_state()))}
    missing = sorted(f for f in families if f"`{f}`" not in reference)
    assert missing == []


def test_empty_state_exports_only_what_it_knows() -> None:
    samples = scrape(MetricsState("xen1"))
    exported = names(samples)
    assert "reconciler_passes_total" in exported
    assert "reconciler_last_success_timestamp_seconds" not in exported
    assert not any(n.startswith("drbd_") for n in exported)


def test_own_registry_not_the_global_one() -> None:
    from prometheus_client import REGISTRY

    registry = build_registry(MetricsState("xen1"))
    assert registry is not REGISTRY
    assert not any(m.name.startswith("reconciler_") for m in REGISTRY.collect())


def test_each_scrape_reflects_the_current_state() -> None:
    state = representative_state()
    before = parse(exposition(state).decode())
    from tests.metrics.representative import desired_pair, drbd_resource, observed_node

    state.update_observed(observed_node(drbd_resource("vm100", 100, role="Primary", conn="Connecting",
                                                      peer_role="Unknown", peer_disk="DUnknown"),
                                        desired=desired_pair()))
    after = parse(exposition(state).decode())
    key = ("drbd_connection_state", frozenset({"name": "vm100", "conn_name": "xen2", "peer_node_id": "1",
                                               "drbd_connection_state": "Connected"}.items()))
    assert before[key] == 1.0
    assert after[key] == 0.0


def test_a_failing_section_does_not_cost_the_scrape(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.backends.drbd import metrics

    def broken(*args: object) -> list[object]:
        raise ValueError("unexpected state")

    monkeypatch.setattr(metrics, "drbd_metrics", broken)
    samples = scrape(representative_state())
    assert ("reconciler_passes_total", frozenset({("outcome", "converged")})) in samples
    assert samples[("reconciler_metrics_section_failed", frozenset({("section", "drbd")}))] == 1.0
    assert samples[("reconciler_metrics_section_failed", frozenset({("section", "xen")}))] == 0.0
    assert not any(name.startswith("drbd_") for name in names(samples))


def test_status_resources_take_precedence_over_the_pass() -> None:
    from reconciler.model.status import ResourceStatus
    from tests.metrics.representative import REV_A, node_status, pass_result

    state = MetricsState("xen1")
    status = node_status(REV_A, seen_at=1.0).model_copy(update={"resources": (
        ResourceStatus(key="drbd:vm100", vm="vm100", kind="drbd", phase="failed", reason="exit 10"),)})
    state.record_pass(pass_result(REV_A, 1.0, 2.0, outcome="error"), None, None, status)
    samples = scrape(state)
    assert samples[("reconciler_resources", frozenset({("state", "failed")}))] == 1.0
    assert samples[("reconciler_resources", frozenset({("state", "ready")}))] == 0.0

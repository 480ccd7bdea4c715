"""The shipped alert rules: promtool-valid, unit-tested per alert, documented, and using real metrics."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import PROJECT_ROOT
from tests.metrics.promql import metric_names
from tests.metrics.representative import representative_state
from tests.metrics.scrape import names, scrape

RULES_DIR = PROJECT_ROOT / "exporters" / "prometheus"
RULES = RULES_DIR / "reconciler-alerts.yaml"
RULE_TESTS = RULES_DIR / "reconciler-alerts.test.yaml"
REQUIRED_ALERTS = {
    "ReconcilerTargetDown", "ReconcilerMetricsAbsent", "ReconcilerNotConverging", "ReconcilerResourcesFailed",
    "ReconcilerRevisionSkew", "ReconcilerRevisionBlocked", "ReconcilerSuspendedTooLong",
    "DrbdConnectionNotConnected", "DrbdPeerDiskNotUpToDate", "DrbdDisklessAfterIOError", "DrbdResyncStalled",
    "DrbdSplitBrain", "VmNotFailoverReady", "DomainNotRunningOnPrimary", "DomainRunningOnTwoNodes",
}
COMMANDS = ("reconciler status", "reconciler observe", "reconciler plan", "reconciler doctor", "reconciler resume",
            "reconciler validate")


def _load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def _alerts() -> list[dict[str, Any]]:
    return [rule for group in _load(RULES)["groups"] for rule in group["rules"] if "alert" in rule]


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package 'prometheus')")
    return promtool


def test_promtool_check_rules() -> None:
    done = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in done.stdout


def test_promtool_unit_tests_pass() -> None:
    done = subprocess.run([_promtool(), "test", "rules", RULE_TESTS.name], cwd=RULES_DIR, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_required_alerts_exist() -> None:
    assert REQUIRED_ALERTS - {a["alert"] for a in _alerts()} == set()


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_each_alert_is_documented(alert: dict[str, Any]) -> None:
    annotations = alert["annotations"]
    assert {"summary", "description", "runbook"} <= set(annotations)
    assert alert["labels"]["severity"] in {"critical", "warning", "info"}
    runbook = annotations["runbook"]
    assert any(c in runbook for c in COMMANDS) or "systemctl" in runbook, runbook


def test_each_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in _load(RULE_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    every = {a["alert"] for a in _alerts()}
    assert every - firing == set()
    assert every - quiet == set()


def test_rules_use_only_exported_metrics() -> None:
    exported = names(scrape(representative_state()))
    used = set().union(*(metric_names(a["expr"]) for a in _alerts()))
    assert len(used) >= 10
    assert used - exported == set()


def test_metric_name_extraction_ignores_labels_and_functions() -> None:
    expr = ('drbd_peerdevice_peer_disk_state{drbd_peerdevice_peer_disk_state!~"UpToDate"} == 1 unless ignoring '
            '(drbd_peerdevice_replication_state) rate(reconciler_passes_total[5m])')
    assert metric_names(expr) == {"drbd_peerdevice_peer_disk_state", "reconciler_passes_total"}


def test_readme_lists_every_alert() -> None:
    readme = (PROJECT_ROOT / "exporters" / "README.md").read_text()
    assert [a["alert"] for a in _alerts() if f"| {a['alert']} |" not in readme] == []


def test_drbd_reactor_rules_work_on_our_metrics(real_outputs: Path) -> None:
    """Piraeus' DRBD rules, written for drbd-reactor, select only metrics and labels we export."""
    piraeus = _load(real_outputs / "alert-rules" / "piraeus-operator-alerts.yaml")
    groups = {g["name"]: g["rules"] for g in piraeus["spec"]["groups"]}
    exprs = [rule["expr"] for rule in groups["drbd.rules"] if "drbd_" in rule["expr"]]
    samples = scrape(representative_state())
    used = set().union(*(metric_names(e) for e in exprs))
    assert {"drbd_connection_state", "drbd_device_state", "drbd_peerdevice_outofsync_bytes"} <= used
    assert used - names(samples) == set()
    our_labels = {label for name, labels in samples for label, _ in labels if name in used}
    selector_labels = {m for e in exprs for m in re.findall(r"[{,]\s*([a-z_]+)\s*[!=]~?", e)}
    assert selector_labels - our_labels == set()

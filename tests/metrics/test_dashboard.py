"""The Grafana dashboard: dashboard-shaped JSON whose every query is valid PromQL over exported metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT
from tests.metrics.promql import metric_names, promtool_parses
from tests.metrics.representative import representative_state
from tests.metrics.scrape import names, scrape

DASHBOARD = PROJECT_ROOT / "exporters" / "grafana" / "reconciler-dashboard.json"


def _dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]


def test_dashboard_shape() -> None:
    dashboard = _dashboard()
    assert dashboard["title"]
    assert dashboard["uid"]
    assert isinstance(dashboard["schemaVersion"], int)
    panels = _panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in ("h", "w", "x", "y"))
        assert grid["x"] + grid["w"] <= 24
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert all(t["refId"] and t["expr"] for t in panel["targets"])
    rows = {p["title"] for p in panels if p["type"] == "row"}
    assert {"Convergence", "Replication", "Failover"} <= rows
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "instance"} <= variables


def test_every_query_uses_exported_metrics() -> None:
    exported = names(scrape(representative_state()))
    exprs = _exprs(_dashboard())
    used = set().union(*(metric_names(e) for e in exprs))
    assert all(metric_names(e) for e in exprs), "a query selects none of the reconciler's metrics"
    assert used - exported == set()


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian package 'prometheus')")
    ok, output = promtool_parses(_exprs(_dashboard()), tmp_path)
    assert ok, output

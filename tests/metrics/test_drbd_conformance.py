"""Our DRBD metrics agree with another exporter's view of the same ``drbdsetup status --json``.

The corpus holds ha_cluster_exporter's test input and the metrics it exports from it; parsing that input
with our parser and exporting it with our collector must tell the same roles, disk states, peer states and
quorum (in drbd-reactor's names).
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from reconciler.backends.drbd.drbd9 import parse_status_json
from reconciler.backends.drbd.metrics import drbd_metrics
from reconciler.model.observed import DrbdState, ObservedNode
from tests.metrics.scrape import Samples, parse, value

SAMPLE = Path("drbd-test-data") / "ha_cluster_exporter"


def _ours(status_json: str) -> Samples:
    observed = ObservedNode(node="node2", drbd=DrbdState(kernel_version="9.0.0",
                                                         resources=parse_status_json(status_json)))

    class _Once(Collector):
        def collect(self) -> list[Metric]:
            return drbd_metrics(observed, None)

    registry = CollectorRegistry()
    registry.register(_Once())
    return parse(generate_latest(registry).decode())


def _theirs(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [(dict(labels), v) for (n, labels), v in parse(text).items() if n == name]


def test_same_view_as_ha_cluster_exporter(real_outputs: Path) -> None:
    ours = _ours((real_outputs / SAMPLE / "drbdsetup-status-json.json").read_text())
    theirs = (real_outputs / SAMPLE / "drbd.metrics").read_text()
    resources = _theirs(theirs, "ha_cluster_drbd_resources")
    connections = _theirs(theirs, "ha_cluster_drbd_connections")
    quorum = _theirs(theirs, "ha_cluster_drbd_quorum")
    assert resources
    assert connections
    assert quorum
    disk_states = {"uptodate": "UpToDate", "diskless": "Diskless", "outdated": "Outdated",
                   "inconsistent": "Inconsistent"}
    for labels, _ in resources:
        name = labels["resource"]
        assert value(ours, "drbd_resource_role", name=name, drbd_resource_role=labels["role"]) == 1.0
        states = [dict(lab) for (n, lab), v in ours.items()
                  if n == "drbd_device_state" and dict(lab)["name"] == name and v == 1.0]
        assert [(s["volume"], s["drbd_device_state"]) for s in states] == [
            (labels["volume"], disk_states[labels["disk_state"]])]
    for labels, _ in connections:
        peer = [dict(lab) for (n, lab), v in ours.items() if n == "drbd_connection_peer_role" and v == 1.0
                and dict(lab)["name"] == labels["resource"] and dict(lab)["peer_node_id"] == labels["peer_node_id"]]
        assert [p["drbd_connection_peer_role"] for p in peer] == [labels["peer_role"]]
        disk = [dict(lab) for (n, lab), v in ours.items() if n == "drbd_peerdevice_peer_disk_state" and v == 1.0
                and dict(lab)["name"] == labels["resource"] and dict(lab)["volume"] == labels["volume"]]
        assert [d["drbd_peerdevice_peer_disk_state"] for d in disk] == [disk_states[labels["peer_disk_state"]]]
    for labels, v in quorum:
        [ours_quorum] = [q for (n, lab), q in ours.items() if n == "drbd_device_quorum"
                         and dict(lab)["name"] == labels["resource"] and dict(lab)["volume"] == labels["volume"]]
        assert ours_quorum == v

"""End to end with a real Prometheus server: scrape, evaluate the shipped rules, see alerts come and go,
and run every dashboard query on the scraped data.

Prometheus loads a copy of the shipped rules with every ``for:`` shortened to 2 s (see
``tests.metrics.prom.shortened_rules``) so pending and firing show within seconds; the shipped file
keeps its real durations. Scrape and evaluation intervals are 1 s.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from reconciler.metrics.server import MetricsServer, start_metrics_server
from reconciler.metrics.state import MetricsState
from tests.conftest import PROJECT_ROOT
from tests.metrics.prom import Prometheus, shortened_rules
from tests.metrics.representative import (
    desired_pair,
    drbd_resource,
    healthy_observed,
    observed_node,
    representative_state,
)
from tests.metrics.simcluster import NODES, converged_example

pytestmark = pytest.mark.slow
DISCONNECTED = "DrbdConnectionNotConnected"
NOT_READY = "VmNotFailoverReady"


class Stack:
    """Metrics endpoints for some nodes' states, and a Prometheus scraping them all."""

    def __init__(self, workdir: Path, states: dict[str, MetricsState]) -> None:
        if shutil.which("prometheus") is None:
            pytest.skip("the prometheus server is not installed (Debian package 'prometheus')")
        self.servers: list[MetricsServer] = []
        self.instance: dict[str, str] = {}
        for node, state in states.items():
            server = start_metrics_server(state, "127.0.0.1", 0)
            self.servers.append(server)
            self.instance[node] = f"127.0.0.1:{server.port}"
        self.prometheus = Prometheus(workdir, [s.port for s in self.servers],
                                     shortened_rules(workdir / "rules.yaml"))

    def close(self) -> None:
        self.prometheus.stop()
        for server in self.servers:
            server.shutdown()

    def active(self, alert: str, node: str, **labels: str) -> set[str]:
        """States (pending, firing) of ``alert`` for ``node``'s instance and the given labels."""
        want = {"instance": self.instance[node], **labels}
        return {a["state"] for a in self.prometheus.alerts(alert) if want.items() <= a["labels"].items()}

    def wait_scraped(self) -> None:
        prom = self.prometheus
        prom.wait_for("prometheus ready", prom.ready, 20)
        prom.wait_for("every target up", prom.targets_up, 15)
        prom.wait_for("the DRBD metrics scraped from every target", lambda: len(
            {r["metric"]["instance"] for r in prom.api("query?query=drbd_resource_resources")["result"]})
            == len(self.servers), 10)


def _quiet(stack: Stack, alert: str, node: str) -> bool:
    return not stack.active(alert, node)


@pytest.fixture
def stacks() -> Iterator[list[Stack]]:
    made: list[Stack] = []
    yield made
    for stack in made:
        stack.close()


def _check_dashboard_queries(stack: Stack) -> None:
    """Every dashboard query evaluates on scraped data, and all but the problem lists return series."""
    # rate() and histogram_quantile() need two samples of every target.
    def scraped_twice() -> bool:
        counts = stack.prometheus.api("query?query=" + urllib.parse.quote("count_over_time(up[5m])"))["result"]
        return bool(counts) and all(float(r["value"][1]) >= 2 for r in counts)

    stack.prometheus.wait_for("two scrapes of every target", scraped_twice, timeout=60)
    dashboard = json.loads((PROJECT_ROOT / "exporters" / "grafana" / "reconciler-dashboard.json").read_text())
    exprs = [t["expr"].replace("$instance", ".*") for p in dashboard["panels"] for t in p.get("targets", [])]
    answered = [stack.prometheus.api("query?query=" + urllib.parse.quote(e))["result"] for e in exprs]
    empty = [e for e, result in zip(exprs, answered, strict=True) if not result]
    # Only the problem lists (a filter on == 0 or == 1) may be empty on this node with healthy replication.
    assert [e for e in empty if not e.endswith(("== 0", "== 1"))] == []
    assert len(empty) < len(exprs) // 4


def test_dashboard_queries_and_disconnect_alert(tmp_path: Path, stacks: list[Stack]) -> None:
    state = representative_state()
    desired = desired_pair()
    connected = healthy_observed(desired)
    state.update_observed(connected)
    stack = Stack(tmp_path, {"xen1": state})
    stacks.append(stack)
    stack.wait_scraped()
    _check_dashboard_queries(stack)
    assert stack.active(DISCONNECTED, "xen1") == set()

    cut = observed_node(drbd_resource("vm100", 100, role="Primary", conn="Connecting", peer_role="Unknown",
                                      peer_disk="DUnknown", repl="Off"), *connected.drbd.resources[1:],
                        domains=connected.domains, desired=desired)
    state.update_observed(cut)
    prom = stack.prometheus
    prom.wait_for("the alert pending or firing", lambda: stack.active(DISCONNECTED, "xen1") & {"pending", "firing"}, 15)
    prom.wait_for("the alert firing", lambda: "firing" in stack.active(DISCONNECTED, "xen1", name="vm100"), 15)
    [alert] = prom.alerts(DISCONNECTED)
    assert alert["labels"]["drbd_connection_state"] == "Connecting"
    assert "reconciler observe" in alert["annotations"]["runbook"]

    state.update_observed(connected)
    prom.wait_for("the alert resolved", lambda: not stack.active(DISCONNECTED, "xen1"), 15)


def test_partition_of_the_simulated_cluster(tmp_path: Path, stacks: list[Stack]) -> None:
    """The example repository converged on the simulator, both nodes scraped; cut the replication network."""
    from reconciler.sim import faults

    pair = converged_example(tmp_path / "cluster")
    pair.advance(7 * 24 * 3600)  # the initial resync of the example's stripes
    pair.refresh()
    stack = Stack(tmp_path, pair.states)
    stacks.append(stack)
    stack.wait_scraped()
    prom = stack.prometheus
    for node in NODES:
        assert stack.active(DISCONNECTED, node) == set()
        assert stack.active(NOT_READY, node) == set()

    with pair.transaction() as state:
        faults.partition(state, *NODES)
    pair.refresh()  # what each daemon does on the DRBD event
    for node in NODES:
        prom.wait_for(f"{DISCONNECTED} pending or firing on {node}",
                      partial(stack.active, DISCONNECTED, node, name="vm100"), 15)
    prom.wait_for(f"{DISCONNECTED} firing", lambda: "firing" in stack.active(DISCONNECTED, "erdbeere", name="vm101"),
                  15)
    # erdbeere stands by for vm101: cut off from the primary, it could not take over cleanly.
    prom.wait_for(f"{NOT_READY} firing", lambda: "firing" in stack.active(NOT_READY, "erdbeere", vm="vm101"), 15)

    with pair.transaction() as state:
        faults.heal(state)
    pair.advance(60)  # DRBD reconnects and resyncs what the primaries wrote meanwhile
    pair.refresh()
    for node in NODES:
        prom.wait_for(f"{DISCONNECTED} resolved on {node}", partial(_quiet, stack, DISCONNECTED, node), 15)
    prom.wait_for(f"{NOT_READY} resolved", lambda: not stack.active(NOT_READY, "erdbeere"), 15)

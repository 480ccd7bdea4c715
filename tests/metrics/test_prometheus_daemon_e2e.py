"""End to end with a real Prometheus scraping the real daemons on a simulated two-node cluster.

The cluster, the git repository seeded from ``desired-state/`` and the two ``reconciler run --sim ...
--metrics-address 127.0.0.1:PORT`` processes are made exactly as ``reconciler demo`` makes them
(``reconciler.sim.demo.DemoCluster``); its clock driver advances simulated time at 60 simulated seconds
per real second, so DRBD connects, resyncs and reconnects by itself. Prometheus scrapes both daemons every
second and loads a copy of the shipped alert rules whose ``for:`` durations are all shortened to 3 s
(``HOLD``; the YAML is loaded and rewritten structurally, see ``shortened_rules``), so pending and firing
show within seconds; the shipped file keeps its real durations.

Then, with ``reconciler sim fault DIR partition``: cut the replication network, see the DRBD disconnect
alert go pending, then firing, for every resource on both nodes (and vm101's standby lose its failover
readiness) while both targets stay up and no target-down alert fires; heal it and see both resolve. Last,
stop one daemon with SIGTERM and see its target-down alert fire (and only its) and the other daemon
report its peer unreachable; stop the other and see the
metrics-absent alert fire.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import urllib.error
import urllib.parse
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.cli.main import main
from reconciler.sim.demo import DemoCluster, environment_ok, example_desired_state
from tests.metrics.prom import RULES, Prometheus

pytestmark = pytest.mark.slow

HOLD = "3s"
HOLD_S = 3.0
DISCONNECTED = "DrbdConnectionNotConnected"
TARGET_DOWN = "ReconcilerTargetDown"
ABSENT = "ReconcilerMetricsAbsent"
NOT_READY = "VmNotFailoverReady"
PEER_UNREACHABLE = "ReconcilerPeerUnreachable"
READY_VM, STANDBY = "vm101", "erdbeere"
RESOURCES = ("vm100", "vm101")
STEP = 30.0


def shortened_rules(target: Path, hold: str = HOLD) -> Path:
    """A copy of the shipped rules with every ``for:`` set to ``hold``; rules without one stay without."""
    document = yaml.safe_load(RULES.read_text())
    shortened = 0
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = hold
                shortened += 1
    assert shortened > 0, f"no rule in {RULES} has a 'for:' duration to shorten"
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


class Stack:
    """The demo cluster's daemons and a Prometheus scraping them, with waits that explain a failure."""

    def __init__(self, cluster: DemoCluster, prometheus: Prometheus) -> None:
        self.cluster = cluster
        self.prometheus = prometheus
        self.instance = {n: f"127.0.0.1:{cluster.procs[n].metrics_port}" for n in cluster.nodes}

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.prometheus.api("query?query=" + urllib.parse.quote(expr))["result"]
        return result

    def alerts(self, alertname: str, on: str | None = None, **labels: str) -> list[dict[str, Any]]:
        """Active alerts named ``alertname`` from node ``on``'s instance (any when None) with ``labels``."""
        want = dict(labels, **({"instance": self.instance[on]} if on else {}))
        return [a for a in self.prometheus.alerts(alertname) if want.items() <= a["labels"].items()]

    def states(self, alertname: str, on: str | None = None, **labels: str) -> set[str]:
        return {a["state"] for a in self.alerts(alertname, on, **labels)}

    def diagnostics(self) -> str:
        parts = [f"--- {n} log\n{self.cluster.log_tail(n, 30)}" for n in self.cluster.nodes]
        with contextlib.suppress(OSError):
            parts.append("--- prometheus log\n" + Path(self.prometheus.log.name).read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def until(self, what: str, check: Callable[[], Any], timeout: float = STEP,
              during: Callable[[], None] | None = None) -> Any:
        """Poll ``check`` until it answers something true; ``during`` runs at each poll (invariants)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            if self.prometheus.process.poll() is not None:
                pytest.fail(f"prometheus exited with {self.prometheus.process.returncode} while waiting for "
                            f"{what}\n{self.diagnostics()}")
            for node in self.cluster.nodes:
                proc = self.cluster.procs[node].process
                if proc is not None and proc.poll() is not None:
                    pytest.fail(f"the daemon of {node} exited with {proc.returncode} while waiting for {what}\n"
                                f"{self.diagnostics()}")
            try:
                last = check()
                if last:
                    return last
                if during is not None:
                    during()
            except (urllib.error.URLError, ConnectionError) as exc:  # Prometheus busy; ask again
                last = exc
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:g}s waiting for {what}; last answer: {last!r}\n"
                            f"{self.diagnostics()}")
            time.sleep(0.25)


def _not_connected(stack: Stack, node: str) -> set[str]:
    """Resources that ``node``'s daemon exports as not Connected, as Prometheus has them now."""
    expr = f'drbd_connection_state{{instance="{stack.instance[node]}",drbd_connection_state!="Connected"}} == 1'
    return {r["metric"]["name"] for r in stack.query(expr)}


def _connected(stack: Stack, node: str) -> set[str]:
    expr = f'drbd_connection_state{{instance="{stack.instance[node]}",drbd_connection_state="Connected"}} == 1'
    return {r["metric"]["name"] for r in stack.query(expr)}


def _all_cut(stack: Stack, node: str) -> bool:
    return _not_connected(stack, node) == set(RESOURCES)


def _firing(stack: Stack, alertname: str, on: str | None = None, **labels: str) -> bool:
    return "firing" in stack.states(alertname, on, **labels)


def _resolved(stack: Stack, node: str) -> bool:
    return (not stack.alerts(DISCONNECTED, node) and _connected(stack, node) == set(RESOURCES)
            and not _not_connected(stack, node))


def _failover_ready(stack: Stack) -> bool:
    expr = f'reconciler_failover_ready{{instance="{stack.instance[STANDBY]}",vm="{READY_VM}"}} == 1'
    return bool(stack.query(expr))


def _was_pending(stack: Stack, node: str, resource: str) -> bool:
    """Prometheus's own record (the ALERTS series) of the alert having been pending, whatever we polled."""
    expr = (f'count_over_time(ALERTS{{alertname="{DISCONNECTED}",alertstate="pending",'
            f'instance="{stack.instance[node]}",name="{resource}"}}[5m])')
    return bool(stack.query(expr))


@pytest.mark.timeout(900)
def test_partition_alerts_through_the_daemons_metrics(tmp_path: Path) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("the prometheus server is not installed (Debian package 'prometheus')")
    problem = environment_ok()
    if problem is not None:
        pytest.skip(f"the demo cluster cannot run here: {problem}")
    seed = example_desired_state()
    if seed is None:
        pytest.skip("desired-state/ (the example repository) is not next to the package")

    cluster = DemoCluster(tmp_path / "cluster")
    prometheus: Prometheus | None = None
    try:
        first = cluster.create(seed)
        cluster.start()
        if not cluster.wait_converged(first, 180.0):  # the initial resync alone is ~60 s on a loaded machine
            logs = "\n".join(f"--- {n}\n{cluster.log_tail(n, 40)}" for n in cluster.nodes)
            pytest.fail(f"the daemons did not converge at {first[:12]}\n{logs}")

        workdir = tmp_path / "prometheus"
        workdir.mkdir()
        rules = shortened_rules(workdir / "rules.yaml")
        prometheus = Prometheus(workdir, [cluster.procs[n].metrics_port for n in cluster.nodes], rules)
        stack = Stack(cluster, prometheus)
        nodes = cluster.nodes
        sim = str(cluster.sim)

        stack.until("prometheus ready", prometheus.ready, 20)
        loaded = stack.until("the rules loaded", lambda: [
            r for g in prometheus.api("rules")["groups"] for r in g["rules"] if r["name"] == DISCONNECTED])
        assert loaded[0]["duration"] == HOLD_S, "Prometheus did not load the shortened copy of the rules"
        stack.until("both daemons scraped", prometheus.targets_up)
        for node in nodes:
            stack.until(f"every resource Connected on {node}, no alert", partial(_resolved, stack, node))
        assert stack.alerts(TARGET_DOWN) == []
        # vm101's initial resync is short: its standby becomes failover-ready. vm100's (three stripes) takes
        # simulated days, so its standby stays not ready throughout and is left out.
        stack.until(f"{READY_VM} failover-ready on {STANDBY}, no alert",
                    lambda: _failover_ready(stack) and not stack.alerts(NOT_READY, STANDBY, vm=READY_VM))

        # Cut the replication network between the two nodes.
        assert main(["sim", "fault", sim, "partition", *nodes]) == 0
        seen: dict[tuple[str, str], set[str]] = {(n, r): set() for n in nodes for r in RESOURCES}
        target_down_firing: list[dict[str, Any]] = []

        node_of = {instance: node for node, instance in stack.instance.items()}

        def watch() -> None:
            for alert in stack.alerts(DISCONNECTED):
                key = (node_of.get(alert["labels"]["instance"], ""), alert["labels"].get("name", ""))
                if key in seen:
                    seen[key].add(alert["state"])
            target_down_firing.extend(a for a in stack.alerts(TARGET_DOWN) if a["state"] == "firing")

        for node in nodes:
            stack.until(f"the daemon of {node} exporting the disconnect", partial(_all_cut, stack, node),
                        during=watch)
        for node in nodes:
            for resource in RESOURCES:
                stack.until(f"{DISCONNECTED} firing for {resource} on {node}",
                            partial(_firing, stack, DISCONNECTED, node, name=resource), during=watch)
        watch()
        for node in nodes:
            for resource in RESOURCES:
                assert _was_pending(stack, node, resource), f"{DISCONNECTED} never pending for {resource} on {node}"
        # Pending is held for HOLD before firing, so polling four times a second sees it at least once.
        assert all("pending" in states for states in seen.values()), seen
        [alert] = stack.alerts(DISCONNECTED, nodes[0], name="vm100")
        assert alert["labels"]["conn_name"] == nodes[1]
        assert alert["labels"]["drbd_connection_state"] != "Connected"
        assert "reconciler observe" in alert["annotations"]["runbook"]
        # The standby, cut off from its primary, could not take over cleanly.
        stack.until(f"{NOT_READY} firing for {READY_VM} on {STANDBY}",
                    partial(_firing, stack, NOT_READY, STANDBY, vm=READY_VM))
        # The daemons themselves are fine: still scraped, no target-down alert.
        assert target_down_firing == []
        assert stack.alerts(TARGET_DOWN) == []
        up = {r["metric"]["instance"] for r in stack.query('up{job="reconciler"} == 1')}
        assert up == set(stack.instance.values())

        # Heal: DRBD reconnects on simulated time and the alert resolves.
        assert main(["sim", "fault", sim, "heal"]) == 0
        for node in nodes:
            stack.until(f"{DISCONNECTED} resolved on {node}", partial(_resolved, stack, node))
        assert stack.query(f'ALERTS{{alertname="{DISCONNECTED}"}}') == []
        stack.until(f"{NOT_READY} resolved for {READY_VM}",
                    lambda: not stack.alerts(NOT_READY, STANDBY, vm=READY_VM) and _failover_ready(stack))

        # Stop one daemon: its target goes down and alerts; the other stays quiet.
        down, other = nodes[1], nodes[0]
        assert stack.alerts(PEER_UNREACHABLE) == []
        assert cluster.stop_node(down) == 0
        stack.until(f"{TARGET_DOWN} pending or firing for {down}", lambda: stack.states(TARGET_DOWN, down))
        stack.until(f"{TARGET_DOWN} firing for {down}", partial(_firing, stack, TARGET_DOWN, down), HOLD_S + 15)
        assert stack.alerts(TARGET_DOWN, other) == []
        assert stack.alerts(ABSENT) == [], "one node still exports its metrics"
        # The survivor's daemon notices its peer is gone and says so in its own metrics.
        stack.until(f"{PEER_UNREACHABLE} firing on {other}",
                    partial(_firing, stack, PEER_UNREACHABLE, other, node=other, peer=down), HOLD_S + 15)

        # Stop the other: no reconciler metrics at all.
        assert cluster.stop_node(other) == 0
        stack.until(f"{ABSENT} firing", partial(_firing, stack, ABSENT), HOLD_S + 15)
        stack.until(f"{TARGET_DOWN} firing for {other}", partial(_firing, stack, TARGET_DOWN, other), HOLD_S + 15)
    finally:
        if prometheus is not None:
            prometheus.stop()
        cluster.stop()

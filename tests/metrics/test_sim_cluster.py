"""Metrics of the example repository converged on the simulated cluster, and after injected faults."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.metrics.collector import exposition
from tests.metrics.scrape import Samples, scrape, value
from tests.metrics.simcluster import NODES, SimPair, converged_example

# The example's VMs: vm100 runs on erdbeere, vm101 on himbeere; each node is the other's standby.
STANDBY = {"vm100": "himbeere", "vm101": "erdbeere"}
PRIMARY = {"vm100": "erdbeere", "vm101": "himbeere"}


@pytest.fixture(scope="module")
def converged(tmp_path_factory: pytest.TempPathFactory) -> SimPair:
    return converged_example(tmp_path_factory.mktemp("sim") / "cluster")


@pytest.fixture
def pair(converged: SimPair, tmp_path: Path) -> SimPair:
    return converged.clone(tmp_path / "cluster")


def _checks(samples: Samples, vm: str, node: str) -> dict[str, float]:
    return {dict(labels)["check"]: v for (name, labels), v in samples.items()
            if name == "reconciler_failover_check" and dict(labels)["vm"] == vm and dict(labels)["node"] == node}


def test_exposition_of_a_converged_node_is_promtool_clean(pair: SimPair) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package 'prometheus')")
    for node in NODES:
        done = subprocess.run([promtool, "check", "metrics"], input=exposition(pair.states[node]),
                              capture_output=True, timeout=30, check=False)
        assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def test_domains_run_on_their_primaries_only(pair: SimPair) -> None:
    for node in NODES:
        s = scrape(pair.states[node])
        for vm, primary in PRIMARY.items():
            running = value(s, "reconciler_domain_state", vm=vm, domain=vm, state="running")
            assert running == (1.0 if primary == node else 0.0)
            assert value(s, "reconciler_domain_expected_running", vm=vm, domain=vm) == running


def test_standby_ready_once_the_initial_sync_finished(tmp_path: Path) -> None:
    pair = converged_example(tmp_path / "cluster", wait_for_sync=False)
    pair.refresh()
    s = scrape(pair.states["himbeere"])
    assert _checks(s, "vm100", "himbeere")["disk_uptodate"] == 0.0
    assert {p.outcome for p in pair.last_pass.values()} == {"degraded"}  # nothing to do, but not healthy yet
    assert value(s, "reconciler_failover_ready", vm="vm100", node="himbeere", primary="erdbeere") == 0.0
    assert [k for k, v in _checks(s, "vm100", "himbeere").items() if v == 0.0] == ["disk_uptodate"]

    pair.advance(7 * 24 * 3600)  # the simulated resync of the 300 GiB stripe
    pair.refresh()
    for vm, standby in STANDBY.items():
        s = scrape(pair.states[standby])
        assert _checks(s, vm, standby) == dict.fromkeys(
            ("disk_uptodate", "connected", "config_rendered", "domain_not_running", "memory", "safety"), 1.0)
        assert value(s, "reconciler_failover_ready", vm=vm, node=standby, primary=PRIMARY[vm]) == 1.0
        assert value(s, "reconciler_vm_revision_skew", vm=vm, node=standby, peer=PRIMARY[vm]) == 0.0


def test_partition_shows_at_once_on_both_sides(pair: SimPair) -> None:
    from reconciler.sim import faults

    pair.advance(7 * 24 * 3600)
    with pair.transaction() as state:
        faults.partition(state, *NODES)
    pair.refresh()
    for node in NODES:
        s = scrape(pair.states[node])
        for vm in PRIMARY:
            labels = {"name": vm, "conn_name": next(p for p in NODES if p != node)}
            states = {dict(lab)["drbd_connection_state"]: v for (name, lab), v in s.items()
                      if name == "drbd_connection_state" and labels.items() <= dict(lab).items()}
            assert states["Connected"] == 0.0
            assert sum(states.values()) == 1.0
    s = scrape(pair.states["erdbeere"])
    assert _checks(s, "vm101", "erdbeere")["connected"] == 0.0
    assert value(s, "reconciler_failover_ready", vm="vm101", node="erdbeere", primary="himbeere") == 0.0


def test_io_error_under_the_primary_shows_as_unintentionally_diskless(pair: SimPair) -> None:
    from reconciler.sim import faults

    pair.advance(7 * 24 * 3600)
    with pair.transaction() as state:
        faults.disk_fail(state, "erdbeere", "/dev/mapper/root100")  # the stripe under DRBD vm100
    pair.refresh()
    s = scrape(pair.states["erdbeere"])
    dev = {"name": "vm100", "volume": "0", "minor": "0"}
    assert value(s, "drbd_device_unintentionaldiskless", **dev) == 1.0
    assert value(s, "drbd_device_state", **dev, drbd_device_state="Diskless") == 1.0
    assert value(s, "drbd_device_unintentionaldiskless", name="vm101", volume="0", minor="1") == 0.0
    # The domain keeps running on the peer's disk: the standby sees its primary's replica gone.
    peer = scrape(pair.states["himbeere"])
    assert value(peer, "drbd_peerdevice_peer_disk_state", name="vm100", conn_name="erdbeere", peer_node_id="0",
                 volume="0", drbd_peerdevice_peer_disk_state="Diskless") == 1.0

"""A daemon on a simulated node reaches its peers on loopback only, and stops when its listener cannot bind."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli import cmd_run
from reconciler.cli.cmd_run import ConfigError, build_config
from reconciler.sim.endpoints import peer_ports
from reconciler.sim.state import SimCluster

ROOT = Path(__file__).resolve().parents[2]


def run_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cmd_run.register(parser.add_subparsers())
    return parser.parse_args(["run", *argv])


@pytest.fixture
def sim(tmp_path: Path) -> Path:
    SimCluster.init(tmp_path / "sim", ["erdbeere", "himbeere"], {"vg-sda": 100 << 30})
    return tmp_path / "sim"


def test_sim_init_records_one_loopback_port_per_node(sim: Path) -> None:
    ports = peer_ports(sim)
    assert set(ports) == {"erdbeere", "himbeere"}
    assert len(set(ports.values())) == 2


def test_without_peer_options_a_simulated_daemon_uses_the_recorded_loopback_ports(sim: Path, tmp_path: Path) -> None:
    ports = peer_ports(sim)
    config = build_config(run_args("--repo", str(tmp_path), "--sim", str(sim), "--node", "erdbeere",
                                   "--peer-auth", "none", "--state-dir", str(tmp_path / "state")))
    assert config.peer_listen == f"127.0.0.1:{ports['erdbeere']}"
    assert [(p.node, p.host, p.port) for p in config.peers] == [("himbeere", "127.0.0.1", ports["himbeere"])]
    # Never the simulated replication address (192.168.2.2): it does not exist outside the simulator.
    assert all(not p.host.startswith("192.168.") for p in config.peers)


@pytest.mark.parametrize("option", [["--peer", "himbeere=192.168.2.2:7700"], ["--peer-listen", "0.0.0.0:7700"],
                                    ["--peer", "himbeere=peer.example:7700"]])
def test_a_peer_endpoint_outside_loopback_is_refused_on_a_simulated_node(sim: Path, tmp_path: Path,
                                                                         option: list[str]) -> None:
    with pytest.raises(ConfigError, match="loopback only"):
        build_config(run_args("--repo", str(tmp_path), "--sim", str(sim), "--node", "erdbeere", "--peer-auth", "none",
                              *option))


@pytest.mark.timeout(120)
def test_a_peer_listener_that_cannot_bind_stops_the_daemon(sim: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, timeout=30)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "reconciler.cli.main", "run", "--repo", str(repo), "--sim", str(sim),
             "--node", "erdbeere", "--peer-auth", "none", "--peer-listen", f"127.0.0.1:{port}",
             "--metrics-address", "none", "--state-dir", str(tmp_path / "state"), "--no-watch"],
            capture_output=True, text=True, timeout=90, check=False, cwd=ROOT,
            env={**os.environ, "NOTIFY_SOCKET": ""})
    assert proc.returncode == 1, proc.stderr
    assert f"cannot serve peer status on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr

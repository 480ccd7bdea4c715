"""Simulated uname, lvmconfig, systemctl, ip, ssh and the version probes of the storage tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.sim.host import SimHost
from reconciler.sim.state import SimCluster
from tests.sim.storage_helpers import cluster, ok


@pytest.fixture
def sim(tmp_path: Path) -> Path:
    return cluster(tmp_path, vgs=("vg-sda",))


def test_uname_names_the_simulated_node(sim: Path) -> None:
    host = SimHost(sim, "himbeere")
    assert ok(host, "uname", "-n").stdout == "himbeere\n"
    assert ok(host, "uname").stdout == "Linux\n"
    assert ok(host, "uname", "-a").stdout.startswith("Linux himbeere 6.1.0-28-amd64 ")
    assert host.run(["uname", "-z"]).returncode == 1


def test_lvmconfig_reads_the_nodes_lvm_conf_and_falls_back_to_defaults(sim: Path) -> None:
    host = SimHost(sim, "erdbeere")
    argv = ("lvmconfig", "--type", "full", "devices/global_filter", "devices/filter", "devices/use_devicesfile")
    assert ok(host, *argv).stdout == ('global_filter=["r|^/dev/drbd|","r|^/dev/mapper/root|","a|.*|"]\n'
                                      'filter=["a|.*|"]\nuse_devicesfile=0\n')
    host.remove_file("/etc/lvm/lvm.conf")
    assert ok(host, *argv).stdout == 'global_filter=["a|.*|"]\nfilter=["a|.*|"]\nuse_devicesfile=0\n'
    host.write_file("/etc/lvm/lvm.conf", "devices {\n  use_devicesfile = 1\n}\n")
    assert ok(host, "lvmconfig", "devices/use_devicesfile").stdout == "use_devicesfile=1\n"


def test_prepared_xl_conf_and_services(sim: Path) -> None:
    host = SimHost(sim, "erdbeere")
    assert 'autoballoon="off"' in (host.read_file("/etc/xen/xl.conf") or "")
    enabled = host.run(["systemctl", "is-enabled", "drbd.service"])
    assert (enabled.returncode, enabled.stdout) == (1, "disabled\n")


def test_ip_lists_the_nodes_address(tmp_path: Path) -> None:
    SimCluster.init(tmp_path, ["a", "b"], {}, addresses={"b": "10.0.0.7"})
    first = json.loads(ok(SimHost(tmp_path, "a"), "ip", "-j", "addr").stdout)
    second = json.loads(ok(SimHost(tmp_path, "b"), "ip", "-j", "addr").stdout)
    assert [a["local"] for link in first for a in link["addr_info"]] == ["127.0.0.1", "192.168.2.1"]
    assert [a["local"] for link in second for a in link["addr_info"]] == ["127.0.0.1", "10.0.0.7"]


def test_ssh_runs_the_command_on_the_named_node(sim: Path) -> None:
    host = SimHost(sim, "erdbeere")
    assert ok(host, "ssh", "-o", "BatchMode=yes", "root@192.168.2.2", "uname", "-n").stdout == "himbeere\n"
    ok(host, "ssh", "himbeere", "lvcreate -L 1G -n root100 vg-sda")
    state = SimCluster(sim).read()
    assert set(state["nodes"]["himbeere"]["vgs"]["vg-sda"]["lvs"]) == {"root100"}
    assert state["nodes"]["erdbeere"]["vgs"]["vg-sda"]["lvs"] == {}
    failed = host.run(["ssh", "himbeere", "lvcreate", "-L", "1G", "-n", "root100", "vg-sda"])
    assert failed.returncode == 5
    assert 'Logical Volume "root100" already exists' in failed.stderr
    assert ok(host, "ssh", "-V").stderr.startswith("OpenSSH_9.2p1")


def test_ssh_fails_like_ssh_when_the_peer_cannot_be_reached(sim: Path) -> None:
    host = SimHost(sim, "erdbeere")
    unknown = host.run(["ssh", "root@nowhere", "true"])
    assert (unknown.returncode, unknown.stderr) == (
        255, "ssh: Could not resolve hostname nowhere: Name or service not known\n")
    with SimCluster(sim).transaction() as state:
        state["network"]["cut"].append(["erdbeere", "himbeere"])
    cut = host.run(["ssh", "root@192.168.2.2", "true"])
    assert (cut.returncode, cut.stderr) == (255, "ssh: connect to host 192.168.2.2 port 22: No route to host\n")


@pytest.mark.parametrize(("argv", "text"), [
    (("blkid", "-V"), "blkid from util-linux 2.38.1  (libblkid 2.38.1, 04-Aug-2022)\n"),
    (("mkfs.xfs", "-V"), "mkfs.xfs version 6.1.0\n"),
    (("mkswap", "-V"), "mkswap from util-linux 2.38.1\n"),
    (("wipefs", "-V"), "wipefs from util-linux 2.38.1\n"),
    (("dmsetup", "--version"), "Library version:   1.02.185 (2022-05-18)\nDriver version:    4.47.0\n"),
    (("git", "--version"), "git version 2.39.5\n"),
])
def test_version_probes(sim: Path, argv: tuple[str, ...], text: str) -> None:
    assert ok(SimHost(sim, "erdbeere"), *argv).stdout == text

"""The data oracle: a clean run passes, each kind of violation is caught."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.sim import oracle
from tests.sim.test_drbd_helpers import DrbdCluster, resource_text

DOMAIN_CFG = "name = 'vm100'\nmemory = 1024\nvcpus = 1\ndisk = ['phy:/dev/drbd0,xvda,w']\n"


@pytest.fixture
def pair(tmp_path: Path) -> DrbdCluster:
    cluster = DrbdCluster(tmp_path / "cluster")
    cluster.new_pair()
    for host in cluster.hosts.values():
        host.write_file("/etc/xen/vm100.cfg", DOMAIN_CFG)
    return cluster


def _kinds(cluster: DrbdCluster) -> list[str]:
    return [v.kind for v in oracle.check(cluster.state())]


def _writes(cluster: DrbdCluster, node: str) -> list[list[int]]:
    state = cluster.state()
    res = state["nodes"][node]["drbd"]["resources"]["vm100"]
    key = res["devices"]["0"]["key"]
    return list(state["disks"][key].get("drbd_writes", []))


def test_a_clean_run_with_a_live_migration_passes(pair: DrbdCluster) -> None:
    pair.ok("erdbeere", "xl", "create", "/etc/xen/vm100.cfg")
    pair.advance(30)
    assert oracle.acknowledged(pair.state(), "vm100") >= 30
    assert _writes(pair, "erdbeere") == _writes(pair, "himbeere")
    for node in ("erdbeere", "himbeere"):
        pair.ok(node, "drbdadm", "net-options", "--allow-two-primaries=yes", "vm100")
    pair.ok("himbeere", "drbdadm", "primary", "vm100")
    pair.ok("erdbeere", "xl", "migrate", "vm100", "himbeere")
    pair.ok("erdbeere", "drbdadm", "secondary", "vm100")
    pair.advance(30)
    assert oracle.acknowledged(pair.state(), "vm100") >= 60
    assert _writes(pair, "erdbeere") == _writes(pair, "himbeere")
    assert oracle.check(pair.state()) == []


def test_writes_during_a_partition_reach_the_peer_after_the_resync(pair: DrbdCluster) -> None:
    pair.ok("erdbeere", "xl", "create", "/etc/xen/vm100.cfg")
    pair.advance(5)
    pair.partition("erdbeere", "himbeere")
    pair.advance(10)
    assert _writes(pair, "erdbeere") != _writes(pair, "himbeere")
    pair.heal()
    pair.advance(5)
    pair.ok("erdbeere", "xl", "shutdown", "-w", "vm100")
    pair.ok("erdbeere", "drbdadm", "secondary", "vm100")
    pair.ok("himbeere", "drbdadm", "primary", "vm100")
    assert _writes(pair, "erdbeere") == _writes(pair, "himbeere")
    assert oracle.check(pair.state()) == []


def test_acknowledged_writes_missing_on_the_new_primary_are_reported(pair: DrbdCluster) -> None:
    pair.ok("erdbeere", "xl", "create", "/etc/xen/vm100.cfg")
    pair.advance(5)
    pair.partition("erdbeere", "himbeere")
    pair.advance(10)
    pair.crash("erdbeere")
    pair.ok("himbeere", "drbdadm", "primary", "vm100")
    violations = oracle.check(pair.state())
    assert [v.kind for v in violations] == ["lost-writes"]
    assert "himbeere became Primary of vm100 without" in violations[0].message


def test_two_primaries_without_a_migration_are_reported(tmp_path: Path) -> None:
    cluster = DrbdCluster(tmp_path / "c")
    cluster.new_pair(resource_text(net="allow-two-primaries yes;"))
    cluster.ok("himbeere", "drbdadm", "primary", "vm100")
    assert _kinds(cluster) == []
    cluster.ok("himbeere", "drbdadm", "secondary", "vm100")
    violations = oracle.check(cluster.state())
    assert [v.kind for v in violations] == ["two-primaries"]
    assert "without a live migration" in violations[0].message


def test_a_dual_primary_window_left_open_is_reported(tmp_path: Path) -> None:
    cluster = DrbdCluster(tmp_path / "c")
    cluster.new_pair(resource_text(net="allow-two-primaries yes;"))
    cluster.ok("himbeere", "drbdadm", "primary", "vm100")
    cluster.advance(oracle.MIGRATION_GRACE_S / 2)
    assert _kinds(cluster) == []
    cluster.advance(oracle.MIGRATION_GRACE_S)
    assert _kinds(cluster) == ["two-primaries"]


def test_two_primaries_in_a_split_brain_are_reported(pair: DrbdCluster) -> None:
    pair.partition("erdbeere", "himbeere")
    pair.advance(1)
    pair.ok("himbeere", "drbdadm", "primary", "vm100")
    pair.advance(oracle.MIGRATION_GRACE_S + 1)
    assert "two-primaries" in _kinds(pair)


def test_a_domain_running_on_two_nodes_is_reported(pair: DrbdCluster) -> None:
    pair.start_domain("erdbeere")
    pair.start_domain("himbeere")
    pair.advance(1)
    violations = oracle.check(pair.state())
    assert "domain-twice" in [v.kind for v in violations]
    assert any("vm100 runs on erdbeere and himbeere" in v.message for v in violations)


def test_writes_fail_without_quorum_and_are_not_acknowledged(tmp_path: Path) -> None:
    cluster = DrbdCluster(tmp_path / "c", nodes=("erdbeere", "himbeere", "kirsche"))
    cluster.new_pair(resource_text(options="quorum majority; on-no-quorum io-error;", tiebreaker="kirsche"))
    cluster.start_domain("erdbeere")
    cluster.advance(5)
    before = oracle.acknowledged(cluster.state(), "vm100")
    cluster.partition("erdbeere", "himbeere")
    cluster.partition("erdbeere", "kirsche")
    cluster.advance(10)
    assert oracle.acknowledged(cluster.state(), "vm100") <= before + 1
    assert oracle.summary(cluster.state())["failed_writes"] > 0
    cluster.stop_domain("erdbeere")
    cluster.crash("erdbeere")
    cluster.ok("himbeere", "drbdadm", "primary", "vm100")
    assert _kinds(cluster) == []


@pytest.mark.parametrize(("protocol", "expected"), [("C", []), ("A", ["lost-writes"])])
def test_a_crashed_primary_loses_acknowledged_writes_only_under_protocol_a(
        tmp_path: Path, protocol: str, expected: list[str]) -> None:
    cluster = DrbdCluster(tmp_path / "c")
    cluster.new_pair(resource_text(protocol=protocol))
    cluster.start_domain("erdbeere")
    cluster.advance(5)
    cluster.crash("erdbeere")
    cluster.ok("himbeere", "drbdadm", "primary", "vm100")
    assert _kinds(cluster) == expected


def test_a_primary_whose_disk_failed_keeps_writing_through_its_peer(pair: DrbdCluster) -> None:
    from reconciler.sim import faults

    pair.ok("erdbeere", "xl", "create", "/etc/xen/vm100.cfg")
    pair.advance(5)
    with pair.cluster.transaction() as state:
        faults.disk_fail(state, "erdbeere", "/dev/vg-sda/root100")
    before = oracle.acknowledged(pair.state(), "vm100")
    pair.advance(10)
    assert oracle.acknowledged(pair.state(), "vm100") >= before + 10
    pair.ok("erdbeere", "xl", "shutdown", "-w", "vm100")
    pair.ok("erdbeere", "drbdadm", "secondary", "vm100")
    pair.ok("himbeere", "drbdadm", "primary", "vm100")
    assert oracle.check(pair.state()) == []


def test_split_brain_resolution_discards_acknowledged_writes_of_the_victim(tmp_path: Path) -> None:
    cluster = DrbdCluster(tmp_path / "c")
    cluster.new_pair()
    cluster.start_domain("erdbeere")
    cluster.partition("erdbeere", "himbeere")
    cluster.advance(1)
    cluster.ok("himbeere", "drbdadm", "primary", "vm100")
    cluster.start_domain("himbeere", domain="vm100-copy")
    cluster.advance(5)
    cluster.stop_domain("himbeere", domain="vm100-copy")
    cluster.ok("himbeere", "drbdadm", "secondary", "vm100")
    cluster.heal()
    cluster.advance(1)
    cluster.ok("himbeere", "drbdadm", "disconnect", "vm100")
    cluster.ok("himbeere", "drbdadm", "connect", "--discard-my-data", "vm100")
    cluster.ok("erdbeere", "drbdadm", "connect", "vm100")
    cluster.advance(10)
    kinds = _kinds(cluster)
    assert "two-primaries" in kinds
    assert "lost-writes" in kinds


def _open_window(cluster: DrbdCluster) -> None:
    for node in ("erdbeere", "himbeere"):
        cluster.ok(node, "drbdadm", "net-options", "--allow-two-primaries=yes", "vm100")


def test_an_aborted_migration_inside_its_window_is_no_violation(pair: DrbdCluster) -> None:
    pair.ok("erdbeere", "xl", "create", "/etc/xen/vm100.cfg")
    _open_window(pair)
    pair.ok("himbeere", "drbdadm", "primary", "vm100")
    pair.advance(5)
    pair.ok("himbeere", "drbdadm", "secondary", "vm100")  # the migration failed: the target steps back
    for node in ("erdbeere", "himbeere"):
        pair.ok(node, "drbdadm", "net-options", "--allow-two-primaries=no", "vm100")
    pair.advance(oracle.MIGRATION_GRACE_S + 1)
    assert _kinds(pair) == []


def test_a_window_left_open_is_reported_even_with_one_primary(pair: DrbdCluster) -> None:
    pair.ok("erdbeere", "xl", "create", "/etc/xen/vm100.cfg")
    _open_window(pair)
    pair.advance(oracle.MIGRATION_GRACE_S / 2)
    assert _kinds(pair) == []
    pair.advance(oracle.MIGRATION_GRACE_S)
    violations = oracle.check(pair.state())
    assert sorted(v.kind for v in violations) == ["allowance-left", "allowance-left"]
    assert "window left open" in violations[0].message


def test_differing_allowances_keep_the_pair_apart_until_they_match(pair: DrbdCluster) -> None:
    # Opened while disconnected it stays on the node it was opened on (a Connected peer would adopt it).
    pair.ok("himbeere", "drbdadm", "disconnect", "vm100")
    pair.ok("erdbeere", "drbdadm", "net-options", "--allow-two-primaries=yes", "vm100")
    pair.ok("himbeere", "drbdadm", "connect", "vm100")
    pair.advance(1)
    assert "Connecting" in pair.ok("himbeere", "drbdadm", "cstate", "vm100").stdout
    pair.ok("erdbeere", "drbdadm", "net-options", "--allow-two-primaries=no", "vm100")
    pair.advance(1)
    assert pair.ok("himbeere", "drbdadm", "cstate", "vm100").stdout.strip() == "Connected"


def test_a_connected_peer_adopts_the_allowance_and_clearing_it_under_two_primaries_fails(pair: DrbdCluster) -> None:
    pair.ok("erdbeere", "drbdadm", "net-options", "--allow-two-primaries=yes", "vm100")
    assert re.search(r"allow-two-primaries\s+yes;", pair.ok("himbeere", "drbdsetup", "show", "vm100").stdout)
    pair.ok("erdbeere", "drbdadm", "primary", "vm100")
    pair.ok("himbeere", "drbdadm", "primary", "vm100")
    for node in ("erdbeere", "himbeere"):
        refused = pair.run(node, "drbdadm", "net-options", "--allow-two-primaries=no", "vm100")
        assert refused.returncode == 10
        assert "(164) Can not clear allow_two_primaries as long as\nthere a primaries on both sides" in refused.stderr
    pair.ok("himbeere", "drbdadm", "secondary", "vm100")
    pair.ok("himbeere", "drbdadm", "net-options", "--allow-two-primaries=no", "vm100")
    assert "allow-two-primaries" not in pair.ok("erdbeere", "drbdsetup", "show", "vm100").stdout

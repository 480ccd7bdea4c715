"""DRBD behaviour of the simulator: promotion rules, resync, partitions, fencing, split brain, quorum,
disk failure and reboot, driven through the simulated ``drbdadm`` as the reconciler drives it."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.sim import drbd, faults
from reconciler.sim import drbd_machine as m
from tests.sim.test_drbd_helpers import DrbdCluster, resource_text

FENCED = resource_text(net="fencing resource-only;",
                       handlers='fence-peer "/usr/lib/drbd/crm-fence-peer.9.sh";')


@pytest.fixture
def pair(tmp_path: Path) -> DrbdCluster:
    return DrbdCluster(tmp_path / "cluster")


def test_new_pair_is_inconsistent_until_forced_then_resyncs_over_time(pair: DrbdCluster) -> None:
    pair.prepare(resource_text())
    assert pair.disk("erdbeere") == "Inconsistent"
    assert pair.disk("himbeere") == "Inconsistent"
    conn = pair.conn("erdbeere", "himbeere")
    assert conn["connection-state"] == "Connected"
    assert conn["peer_devices"][0]["peer-disk-state"] == "Inconsistent"

    refused = pair.run("erdbeere", "drbdadm", "primary", "vm100")
    assert refused.returncode == 17
    assert "vm100: State change failed: (-2) Need access to UpToDate data" in refused.stderr
    assert "Command 'drbdsetup primary vm100' terminated with exit code 17" in refused.stderr

    pair.ok("erdbeere", "drbdadm", "primary", "--force", "vm100")
    assert pair.status("erdbeere")["role"] == "Primary"
    pair.advance(4)  # 1 GiB at 100 MiB/s takes about ten seconds
    source = pair.conn("erdbeere", "himbeere")["peer_devices"][0]
    assert source["replication-state"] == "SyncSource"
    assert 30.0 < source["percent-resync-done"] < 50.0
    assert source["estimated-seconds-to-finish"] > 0
    target = pair.conn("himbeere", "erdbeere")["peer_devices"][0]
    assert target["replication-state"] == "SyncTarget"
    assert pair.disk("himbeere") == "Inconsistent"
    assert "done:" in pair.ok("himbeere", "drbdadm", "status", "vm100").stdout

    pair.advance(10)
    assert pair.disk("himbeere") == "UpToDate"
    assert pair.conn("erdbeere", "himbeere")["peer_devices"][0]["replication-state"] == "Established"
    assert pair.conn("erdbeere", "himbeere")["peer_devices"][0]["out-of-sync"] == 0


def test_resync_rate_is_configurable(pair: DrbdCluster) -> None:
    pair.prepare(resource_text())
    with pair.cluster.transaction() as state:
        drbd.set_resync_rate(state, "erdbeere", 10 * 1024)
    pair.ok("erdbeere", "drbdadm", "primary", "--force", "vm100")
    pair.advance(50)
    assert pair.disk("himbeere") == "Inconsistent"
    pair.advance(60)
    assert pair.disk("himbeere") == "UpToDate"


def test_second_primary_refused_unless_allowed(pair: DrbdCluster) -> None:
    pair.new_pair()
    refused = pair.run("himbeere", "drbdadm", "primary", "vm100")
    assert refused.returncode == 11
    assert "(-1) Multiple primaries not allowed by config" in refused.stderr
    pair.ok("himbeere", "drbdadm", "net-options", "--allow-two-primaries=yes", "vm100")
    pair.ok("erdbeere", "drbdadm", "net-options", "--allow-two-primaries=yes", "vm100")
    pair.ok("himbeere", "drbdadm", "primary", "vm100")
    assert pair.status("himbeere")["role"] == "Primary"
    assert pair.conn("himbeere", "erdbeere")["peer-role"] == "Primary"


def test_dual_primary_allowed_by_the_resource_file(tmp_path: Path) -> None:
    pair = DrbdCluster(tmp_path / "c")
    pair.new_pair(resource_text(net="allow-two-primaries yes;"))
    pair.ok("himbeere", "drbdadm", "primary", "vm100")
    assert pair.status("erdbeere")["role"] == pair.status("himbeere")["role"] == "Primary"


def test_partition_keeps_both_disks_uptodate_without_fencing(pair: DrbdCluster) -> None:
    pair.new_pair()
    pair.partition("erdbeere", "himbeere")
    pair.advance(1)
    assert pair.conn("erdbeere", "himbeere")["connection-state"] == "Connecting"
    assert pair.conn("erdbeere", "himbeere")["peer-role"] == "Unknown"
    assert pair.conn("erdbeere", "himbeere")["peer_devices"][0]["peer-disk-state"] == "DUnknown"
    assert pair.disk("erdbeere") == "UpToDate"
    # Unreachable proves nothing: without fencing the cut-off secondary still looks promotable.
    assert pair.disk("himbeere") == "UpToDate"
    pair.ok("himbeere", "drbdadm", "primary", "vm100")


def test_split_brain_after_double_primary_and_its_resolution(pair: DrbdCluster) -> None:
    pair.new_pair()
    pair.partition("erdbeere", "himbeere")
    pair.advance(1)
    pair.ok("himbeere", "drbdadm", "primary", "vm100")
    pair.heal()
    pair.advance(1)
    for node, peer in (("erdbeere", "himbeere"), ("himbeere", "erdbeere")):
        assert pair.conn(node, peer)["connection-state"] == "StandAlone"
        assert "Split-Brain detected but unresolved, dropping connection!" in " ".join(
            drbd.kernel_log(pair.state(), node))
    lines, _ = drbd.events_since(pair.state(), "erdbeere", 0)
    assert "call helper name:vm100 peer-node-id:1 conn-name:himbeere volume:0 helper:split-brain" in lines
    # The victim discards its changes, the survivor reconnects.
    pair.ok("himbeere", "drbdadm", "secondary", "vm100")
    pair.ok("himbeere", "drbdadm", "disconnect", "vm100")
    pair.ok("himbeere", "drbdadm", "connect", "--discard-my-data", "vm100")
    pair.ok("erdbeere", "drbdadm", "connect", "vm100")
    target = pair.conn("himbeere", "erdbeere")
    assert target["connection-state"] == "Connected"
    assert target["peer_devices"][0]["replication-state"] in ("SyncTarget", "Established")
    assert "vm100: Split-Brain detected, manually solved. Sync from peer node" in drbd.kernel_log(pair.state(),
                                                                                                   "himbeere")
    assert "vm100: Split-Brain detected, manually solved. Sync from this node" in drbd.kernel_log(pair.state(),
                                                                                                   "erdbeere")
    pair.advance(30)
    assert pair.disk("himbeere") == "UpToDate"
    assert pair.status("erdbeere")["role"] == "Primary"


def test_fencing_outdates_the_peer_when_the_primary_loses_it(tmp_path: Path) -> None:
    pair = DrbdCluster(tmp_path / "c")
    pair.new_pair(FENCED)
    pair.partition("erdbeere", "himbeere")
    pair.advance(1)
    assert pair.disk("himbeere") == "Outdated"
    assert pair.conn("erdbeere", "himbeere")["peer_devices"][0]["peer-disk-state"] == "Outdated"
    assert any("exit code 4 (peer was fenced)" in line for line in drbd.kernel_log(pair.state(), "erdbeere"))
    lines, _ = drbd.events_since(pair.state(), "erdbeere", 0)
    assert "response helper name:vm100 peer-node-id:1 conn-name:himbeere helper:fence-peer status:4" in lines
    refused = pair.run("himbeere", "drbdadm", "primary", "vm100")
    assert refused.returncode == 17
    assert "(-2) Need access to UpToDate data" in refused.stderr
    pair.heal()
    pair.advance(10)
    assert pair.disk("himbeere") == "UpToDate"


def test_fence_peer_failure_blocks_promotion(tmp_path: Path) -> None:
    pair = DrbdCluster(tmp_path / "c")
    pair.new_pair(FENCED)
    pair.ok("erdbeere", "drbdadm", "secondary", "vm100")
    with pair.cluster.transaction() as state:
        drbd.set_fence_peer(state, "erdbeere", "fail")
        drbd.set_fence_peer(state, "himbeere", "fail")
        faults.partition(state, "erdbeere", "himbeere")
    pair.advance(1)
    refused = pair.run("himbeere", "drbdadm", "primary", "vm100")
    assert refused.returncode == 11
    assert "(-7) Refusing to be Primary while peer is not outdated" in refused.stderr
    with pair.cluster.transaction() as state:
        drbd.set_fence_peer(state, "himbeere", "outdate")
    pair.ok("himbeere", "drbdadm", "primary", "vm100")
    assert pair.disk("erdbeere") == "Outdated"


def test_fence_peer_finds_the_peer_primary_and_outdates_itself(tmp_path: Path) -> None:
    pair = DrbdCluster(tmp_path / "c")
    pair.new_pair(FENCED)
    with pair.cluster.transaction() as state:
        drbd.set_fence_peer(state, "erdbeere", "fail")
        faults.partition(state, "erdbeere", "himbeere")
    pair.advance(1)
    refused = pair.run("himbeere", "drbdadm", "primary", "vm100")
    assert "(-2) Need access to UpToDate data" in refused.stderr
    assert pair.disk("himbeere") == "Outdated"


def _quorum_cluster(tmp_path: Path, on_no_quorum: str) -> DrbdCluster:
    cluster = DrbdCluster(tmp_path / "c", nodes=("erdbeere", "himbeere", "kirsche"))
    text = resource_text(options=f"quorum majority; on-no-quorum {on_no_quorum};", tiebreaker="kirsche")
    cluster.new_pair(text)
    return cluster


def test_quorum_with_a_diskless_tiebreaker(tmp_path: Path) -> None:
    cluster = _quorum_cluster(tmp_path, "io-error")
    tiebreaker = cluster.status("kirsche")
    assert tiebreaker["devices"][0]["disk-state"] == "Diskless"
    assert tiebreaker["devices"][0]["client"] is True
    assert cluster.status("erdbeere")["devices"][0]["quorum"] is True
    assert cluster.conn("erdbeere", "kirsche")["peer_devices"][0]["peer-client"] is True
    assert cluster.conn("erdbeere", "himbeere")["peer_devices"][0]["peer-client"] is False
    # The primary is isolated: it loses quorum, the other side keeps it through the tiebreaker.
    cluster.partition("erdbeere", "himbeere")
    cluster.partition("erdbeere", "kirsche")
    cluster.advance(1)
    assert cluster.status("erdbeere")["devices"][0]["quorum"] is False
    assert cluster.status("himbeere")["devices"][0]["quorum"] is True
    cluster.ok("himbeere", "drbdadm", "primary", "vm100")
    assert cluster.status("erdbeere")["suspended"] is False


def test_losing_quorum_suspends_io_and_outdates_a_secondary(tmp_path: Path) -> None:
    cluster = _quorum_cluster(tmp_path, "suspend-io")
    cluster.partition("himbeere", "erdbeere")
    cluster.partition("himbeere", "kirsche")
    cluster.advance(1)
    assert cluster.disk("himbeere") == "Outdated"
    cluster.partition("erdbeere", "kirsche")
    cluster.advance(1)
    assert cluster.status("erdbeere")["suspended"] is True
    cluster.heal()
    cluster.advance(1)
    assert cluster.status("erdbeere")["suspended"] is False


def test_promotion_without_quorum_is_refused(tmp_path: Path) -> None:
    cluster = _quorum_cluster(tmp_path, "io-error")
    cluster.ok("erdbeere", "drbdadm", "secondary", "vm100")
    cluster.partition("himbeere", "erdbeere")
    cluster.partition("himbeere", "kirsche")
    cluster.advance(1)
    refused = cluster.run("himbeere", "drbdadm", "primary", "vm100")
    assert refused.returncode == 11
    assert "vm100: State change failed: (-25) No quorum" in refused.stderr


def test_disk_failure_detaches_with_on_io_error_detach(pair: DrbdCluster) -> None:
    pair.new_pair()
    with pair.cluster.transaction() as state:
        faults.disk_fail(state, "himbeere", "/dev/vg-sda/root100")
    assert pair.disk("himbeere") == "Diskless"
    assert pair.conn("erdbeere", "himbeere")["peer_devices"][0]["peer-disk-state"] == "Diskless"
    assert any("local I/O error, detaching" in line for line in drbd.kernel_log(pair.state(), "himbeere"))


def test_adjust_cannot_attach_a_failed_disk_again(pair: DrbdCluster) -> None:
    # The kernel reads the metadata first: a disk that answers with I/O errors is not attached, and drbdadm
    # says so (found by the soak: the simulator re-attached it and the next tick detached it, every pass).
    pair.new_pair()
    with pair.cluster.transaction() as state:
        faults.disk_fail(state, "himbeere", "/dev/vg-sda/root100")
    failed = pair.run("himbeere", "drbdadm", "adjust", "vm100")
    assert failed.returncode == 10
    assert "IO error(s) occurred during initial access to meta-data" in failed.stderr
    assert "attach 0 " in failed.stderr
    assert pair.disk("himbeere") == "Diskless"
    pair.advance(5)
    assert not [line for line in drbd.kernel_log(pair.state(), "himbeere") if "-> Failed" in line][1:]


def test_reboot_loses_runtime_state_and_keeps_metadata(pair: DrbdCluster) -> None:
    pair.new_pair()
    before = pair.ok("erdbeere", "drbdadm", "show-gi", "vm100").stdout
    pair.crash("erdbeere")
    pair.advance(1)
    assert pair.conn("himbeere", "erdbeere")["connection-state"] == "Connecting"
    assert pair.disk("himbeere") == "UpToDate"
    pair.boot("erdbeere")
    assert pair.ok("erdbeere", "drbdsetup", "status", "--json").stdout.strip() == "[]"
    assert pair.ok("erdbeere", "drbdadm", "show-gi", "vm100").stdout.splitlines()[6][:16] == before.splitlines()[6][:16]
    pair.ok("erdbeere", "drbdadm", "up", "vm100")
    status = pair.status("erdbeere")
    assert status["role"] == "Secondary"
    assert status["devices"][0]["disk-state"] == "UpToDate"
    assert pair.conn("erdbeere", "himbeere")["connection-state"] == "Connected"


def test_cold_start_with_fencing_comes_up_consistent(tmp_path: Path) -> None:
    pair = DrbdCluster(tmp_path / "c")
    pair.new_pair(FENCED)
    pair.ok("erdbeere", "drbdadm", "secondary", "vm100")
    pair.crash("erdbeere")
    pair.crash("himbeere")
    pair.boot("erdbeere")
    pair.ok("erdbeere", "drbdadm", "up", "vm100")
    # Alone and not knowing whether the peer moved on, the disk is only Consistent.
    assert pair.disk("erdbeere") == "Consistent"
    pair.boot("himbeere")
    pair.ok("himbeere", "drbdadm", "up", "vm100")
    assert pair.disk("erdbeere") == pair.disk("himbeere") == "UpToDate"


def _lone_consistent_node(tmp_path: Path) -> DrbdCluster:
    pair = DrbdCluster(tmp_path / "c")
    pair.new_pair(FENCED)
    pair.ok("erdbeere", "drbdadm", "secondary", "vm100")
    pair.crash("erdbeere")
    pair.crash("himbeere")
    pair.boot("erdbeere")
    pair.ok("erdbeere", "drbdadm", "up", "vm100")
    assert pair.disk("erdbeere") == "Consistent"
    return pair


@pytest.mark.parametrize(("mode", "said"), [
    ("auto", "fence-peer helper broken, returned 1"),
    ("unreachable", "exit code 5 (peer unreachable, doing nothing since disk != UpToDate)"),
])
def test_a_lone_consistent_node_is_not_promoted_on_an_unproven_peer(tmp_path: Path, mode: str, said: str) -> None:
    # After a power loss of both nodes the Consistent disk may lack the peer's last writes.
    pair = _lone_consistent_node(tmp_path)
    with pair.cluster.transaction() as state:
        drbd.set_fence_peer(state, "erdbeere", mode)
    assert pair.run("erdbeere", "drbdadm", "primary", "vm100").returncode == 17
    assert pair.disk("erdbeere") == "Consistent"
    assert any(said in line for line in drbd.kernel_log(pair.state(), "erdbeere"))


def test_exit_7_makes_a_consistent_disk_up_to_date_which_is_why_the_handler_refuses_it_there(
        tmp_path: Path) -> None:
    pair = _lone_consistent_node(tmp_path)
    with pair.cluster.transaction() as state:
        drbd.set_fence_peer(state, "erdbeere", "stonith-always")
    pair.ok("erdbeere", "drbdadm", "primary", "vm100")
    assert pair.disk("erdbeere") == "UpToDate"
    assert any("exit code 7 (peer was stonithed)" in line for line in drbd.kernel_log(pair.state(), "erdbeere"))


def test_rebooted_old_primary_resyncs_from_the_new_one(pair: DrbdCluster) -> None:
    pair.new_pair()
    pair.crash("erdbeere")
    pair.advance(1)
    pair.ok("himbeere", "drbdadm", "primary", "vm100")
    pair.start_domain("himbeere")
    pair.advance(5)
    pair.boot("erdbeere")
    pair.ok("erdbeere", "drbdadm", "up", "vm100")
    peer_device = pair.conn("erdbeere", "himbeere")["peer_devices"][0]
    assert peer_device["replication-state"] in ("SyncTarget", "Established")
    pair.advance(2)
    assert pair.disk("erdbeere") == "UpToDate"


def test_a_crashed_primary_resyncs_its_activity_log_when_it_returns(pair: DrbdCluster) -> None:
    pair.new_pair()
    pair.crash("erdbeere")
    pair.advance(1)
    pair.boot("erdbeere")
    pair.ok("erdbeere", "drbdadm", "up", "vm100")
    peer_device = pair.conn("erdbeere", "himbeere")["peer_devices"][0]
    assert peer_device["replication-state"] == "SyncSource"
    assert pair.disk("himbeere") == "Inconsistent"
    pair.advance(5)
    assert pair.disk("himbeere") == "UpToDate"
    gi = pair.ok("erdbeere", "drbdadm", "show-gi", "vm100").stdout.splitlines()[6].split(":")
    assert gi[7] == "0"  # no longer a crashed primary


def test_demotion_refused_while_a_domain_uses_the_device(pair: DrbdCluster) -> None:
    pair.new_pair()
    pair.start_domain("erdbeere")
    refused = pair.run("erdbeere", "drbdadm", "secondary", "vm100")
    assert refused.returncode == 11
    assert "(-12) Device is held open by someone" in refused.stderr
    assert "open:yes" in pair.ok("erdbeere", "drbdadm", "status").stdout
    pair.stop_domain("erdbeere")
    pair.ok("erdbeere", "drbdadm", "secondary", "vm100")


def test_a_secondary_taken_down_outdates_itself_and_catches_up(pair: DrbdCluster) -> None:
    pair.new_pair()
    pair.ok("himbeere", "drbdadm", "down", "vm100")
    pair.start_domain("erdbeere")
    pair.advance(3)
    assert pair.conn("erdbeere", "himbeere")["peer_devices"][0]["out-of-sync"] > 0
    pair.ok("himbeere", "drbdadm", "up", "vm100")
    pair.advance(1)
    assert pair.disk("himbeere") == "UpToDate"


def test_metadata_is_required_and_never_silently_recreated(pair: DrbdCluster) -> None:
    pair.hosts["erdbeere"].write_file("/etc/drbd.d/vm100.res", resource_text())
    pair.ok("erdbeere", "lvcreate", "-n", "root100", "-L", "1G", "vg-sda")
    missing = pair.run("erdbeere", "drbdadm", "up", "vm100")
    assert missing.returncode != 0
    assert "No valid meta data found" in missing.stderr
    pair.ok("erdbeere", "drbdadm", "create-md", "vm100")
    again = pair.run("erdbeere", "drbdadm", "create-md", "vm100")
    assert again.returncode != 0
    assert "Do you really want to overwrite the existing meta-data?" in again.stdout
    confirmed = pair.run("erdbeere", "drbdadm", "create-md", "vm100", stdin="yes\n")
    assert confirmed.returncode == 0
    forced = pair.ok("erdbeere", "drbdadm", "create-md", "--force", "vm100")
    assert "*** confirmation forced via --force option ***" in forced.stdout


def test_create_md_refuses_a_device_with_a_filesystem_even_forced(pair: DrbdCluster) -> None:
    pair.hosts["erdbeere"].write_file("/etc/drbd.d/vm100.res", resource_text())
    pair.ok("erdbeere", "lvcreate", "-n", "root100", "-L", "1G", "vg-sda")
    pair.ok("erdbeere", "mkfs.xfs", "-q", "/dev/vg-sda/root100")
    for argv in (("create-md", "vm100"), ("create-md", "--force", "vm100")):
        refused = pair.run("erdbeere", "drbdadm", *argv)
        assert refused.returncode == 40
        assert "Found xfs filesystem" in refused.stdout
        assert "Operation refused." in refused.stdout
    assert "TYPE=xfs" in pair.ok("erdbeere", "blkid", "-p", "-o", "export", "/dev/vg-sda/root100").stdout


def test_blkid_sees_drbd_metadata_on_the_backing_device_only(pair: DrbdCluster) -> None:
    pair.prepare(resource_text())
    backing = pair.run("erdbeere", "blkid", "-p", "-o", "export", "/dev/vg-sda/root100")
    assert backing.returncode == 0
    assert "TYPE=drbd" in backing.stdout
    assert "VERSION=v09" in backing.stdout
    empty = pair.run("erdbeere", "blkid", "-p", "-o", "export", "/dev/drbd0")
    assert empty.returncode == 2


def test_a_filesystem_made_on_the_primary_is_seen_on_the_peer(pair: DrbdCluster) -> None:
    pair.new_pair()
    refused = pair.run("himbeere", "mkfs.xfs", "/dev/drbd0")
    assert refused.returncode == 1
    pair.ok("erdbeere", "mkfs.xfs", "-q", "/dev/drbd0")
    seen = pair.run("himbeere", "blkid", "-p", "-o", "export", "/dev/drbd0")
    assert "TYPE=xfs" in seen.stdout
    pair.ok("erdbeere", "drbdadm", "secondary", "vm100")
    pair.ok("himbeere", "drbdadm", "primary", "vm100")
    again = pair.run("himbeere", "mkfs.xfs", "/dev/drbd0")
    assert again.returncode == 1
    assert "appears to contain an existing filesystem (xfs)" in again.stderr


def test_adjust_reconnects_and_reports_what_it_would_do(pair: DrbdCluster) -> None:
    pair.new_pair()
    pair.ok("himbeere", "drbdadm", "disconnect", "vm100")
    assert pair.conn("himbeere", "erdbeere")["connection-state"] == "StandAlone"
    dry = pair.ok("himbeere", "drbdadm", "-d", "adjust", "vm100")
    assert dry.stdout == "drbdsetup connect vm100 0\n"
    assert pair.conn("himbeere", "erdbeere")["connection-state"] == "StandAlone"
    pair.ok("himbeere", "drbdadm", "adjust", "vm100")
    assert pair.conn("himbeere", "erdbeere")["connection-state"] == "Connected"
    assert pair.ok("himbeere", "drbdadm", "-d", "adjust", "vm100").stdout == ""
    pair.hosts["himbeere"].write_file("/etc/drbd.d/vm100.res", resource_text(net="allow-two-primaries yes;"))
    changed = pair.ok("himbeere", "drbdadm", "-d", "adjust", "vm100").stdout
    assert changed == "drbdsetup net-options vm100 0 --allow-two-primaries=yes\n"


def test_adjust_brings_up_a_resource_that_is_down(pair: DrbdCluster) -> None:
    pair.new_pair()
    pair.ok("himbeere", "drbdadm", "down", "vm100")
    dry = pair.ok("himbeere", "drbdadm", "-d", "adjust", "vm100").stdout
    assert dry.splitlines()[0] == "drbdsetup new-resource vm100 1"
    pair.ok("himbeere", "drbdadm", "adjust", "vm100")
    assert pair.conn("himbeere", "erdbeere")["connection-state"] == "Connected"


def test_unknown_resources_and_hosts_are_reported_like_drbdadm(pair: DrbdCluster) -> None:
    pair.hosts["erdbeere"].write_file("/etc/drbd.d/vm100.res", resource_text(nodes=("himbeere", "kirsche")))
    other = pair.run("erdbeere", "drbdadm", "up", "vm100")
    assert other.stderr == "'vm100' not defined in your config (for this host).\n"
    unknown = pair.run("erdbeere", "drbdadm", "up", "vm101")
    assert unknown.stderr == "'vm101' not defined in your config.\n"


def test_a_bad_resource_file_is_a_parse_error(pair: DrbdCluster) -> None:
    pair.hosts["erdbeere"].write_file("/etc/drbd.d/vm100.res", resource_text().replace("protocol C", "protocol X"))
    result = pair.run("erdbeere", "drbdadm", "up", "vm100")
    assert result.returncode == 10
    assert "Parse error: while parsing value ('X')\nfor protocol. Value is not valid.\n" in result.stderr


def test_events_are_recorded_for_followers(pair: DrbdCluster) -> None:
    pair.new_pair()
    _, position = drbd.events_since(pair.state(), "himbeere", 0)
    pair.ok("erdbeere", "drbdadm", "secondary", "vm100")
    lines, later = drbd.events_since(pair.state(), "himbeere", position)
    assert later > position
    assert "change connection name:vm100 peer-node-id:0 conn-name:erdbeere connection:Connected role:Secondary" in lines
    own, _ = drbd.events_since(pair.state(), "erdbeere", 0)
    assert any(line.startswith("change resource name:vm100 role:Secondary") for line in own)


def test_outdate_needs_a_disconnected_secondary(pair: DrbdCluster) -> None:
    pair.new_pair()
    refused = pair.run("himbeere", "drbdadm", "outdate", "vm100")
    assert refused.returncode == 11
    assert "(-6) Refusing to be Outdated while Connected" in refused.stderr
    pair.ok("himbeere", "drbdadm", "disconnect", "vm100")
    pair.ok("himbeere", "drbdadm", "outdate", "vm100")
    assert pair.disk("himbeere") == "Outdated"


def test_resize_grows_with_the_backing_devices(pair: DrbdCluster) -> None:
    pair.new_pair()
    before = pair.status("erdbeere")["devices"][0]["size"]
    for node in ("erdbeere", "himbeere"):
        pair.ok(node, "lvextend", "-L", "2G", "vg-sda/root100")
    pair.ok("erdbeere", "drbdadm", "resize", "vm100")
    after = pair.status("erdbeere")["devices"][0]["size"]
    assert after > before
    assert pair.status("himbeere")["devices"][0]["size"] == after


def test_role_of_a_device_for_the_xen_simulator(pair: DrbdCluster) -> None:
    pair.new_pair()
    state = pair.state()
    assert drbd.drbd_role_for_device(state, "erdbeere", "/dev/drbd0") == "Primary"
    assert drbd.drbd_role_for_device(state, "himbeere", "/dev/drbd0") == "Secondary"
    assert drbd.drbd_role_for_device(state, "himbeere", "/dev/drbd7") is None


def test_a_diskless_client_can_be_primary_through_an_uptodate_peer(tmp_path: Path) -> None:
    cluster = _quorum_cluster(tmp_path, "io-error")
    cluster.ok("erdbeere", "drbdadm", "secondary", "vm100")
    cluster.ok("kirsche", "drbdadm", "primary", "vm100")
    assert cluster.status("kirsche")["role"] == "Primary"
    assert cluster.disk("kirsche") == "Diskless"


def test_a_diskless_client_without_a_peer_cannot_be_primary(tmp_path: Path) -> None:
    cluster = _quorum_cluster(tmp_path, "io-error")
    cluster.ok("erdbeere", "drbdadm", "secondary", "vm100")
    cluster.partition("kirsche", "erdbeere")
    cluster.partition("kirsche", "himbeere")
    cluster.advance(1)
    refused = cluster.run("kirsche", "drbdadm", "primary", "--force", "vm100")
    assert refused.returncode == 17
    assert "(-2) Need access to UpToDate data" in refused.stderr


def test_status_shows_standalone_and_queries(pair: DrbdCluster) -> None:
    pair.new_pair()
    pair.ok("himbeere", "drbdadm", "disconnect", "vm100")
    assert pair.ok("himbeere", "drbdadm", "status", "vm100").stdout == (
        "vm100 role:Secondary\n  disk:Outdated open:no\n  erdbeere connection:StandAlone\n\n")
    assert pair.ok("himbeere", "drbdadm", "cstate", "vm100").stdout == "StandAlone\n"
    assert pair.ok("erdbeere", "drbdadm", "role", "vm100").stdout == "Primary\n"
    assert pair.ok("erdbeere", "drbdadm", "dstate", "vm100").stdout == "UpToDate/Outdated\n"
    gi = pair.ok("erdbeere", "drbdadm", "get-gi", "vm100").stdout
    assert gi.count(":") == 15


MULTI = """resource data {
  volume 0 { device /dev/drbd10; disk /dev/vg-sda/data0; meta-disk internal; }
  volume 1 { device /dev/drbd11; disk /dev/vg-sda/data1; meta-disk internal; }
  on erdbeere { address 192.168.2.1:7800; }
  on himbeere { address 192.168.2.2:7800; }
}
"""


def test_a_resource_with_two_volumes(pair: DrbdCluster) -> None:
    for node in ("erdbeere", "himbeere"):
        pair.hosts[node].write_file("/etc/drbd.d/data.res", MULTI)
        pair.ok(node, "lvcreate", "-n", "data0", "-L", "1G", "vg-sda")
        pair.ok(node, "lvcreate", "-n", "data1", "-L", "2G", "vg-sda")
        created = pair.ok(node, "drbdadm", "create-md", "data").stdout
        assert created.count("New drbd meta data block successfully created.") == 2
        pair.ok(node, "drbdadm", "up", "data")
    pair.ok("erdbeere", "drbdadm", "primary", "--force", "data")
    pair.advance(5)
    text = pair.ok("himbeere", "drbdadm", "status", "data").stdout
    assert "  volume:0 disk:" in text
    assert "    volume:1 replication:SyncTarget" in text
    pair.advance(30)
    status = pair.status("himbeere", "data")
    assert [(d["volume"], d["minor"], d["disk-state"]) for d in status["devices"]] == [
        (0, 10, "UpToDate"), (1, 11, "UpToDate")]
    assert status["devices"][1]["size"] > status["devices"][0]["size"]
    assert drbd.drbd_role_for_device(pair.state(), "erdbeere", "/dev/drbd11") == "Primary"


def test_connect_refusals(pair: DrbdCluster) -> None:
    pair.new_pair()
    again = pair.run("erdbeere", "drbdadm", "connect", "vm100")
    assert again.returncode == 10
    assert "Failure: (125) Device has a net-config (use disconnect first)" in again.stderr
    pair.ok("erdbeere", "drbdadm", "disconnect", "vm100")
    primary = pair.run("erdbeere", "drbdadm", "connect", "--discard-my-data", "vm100")
    assert "Failure: (123) --discard-my-data not allowed when primary." in primary.stderr


def test_drbd84_names_the_minor_in_role_changes(tmp_path: Path) -> None:
    pair = DrbdCluster(tmp_path / "c", drbd_version="8.4")
    pair.prepare(resource_text())
    refused = pair.run("erdbeere", "drbdadm", "primary", "vm100")
    assert refused.stderr == ("0: State change failed: (-2) Need access to UpToDate data\n"
                              "Command '/lib/drbd/drbdsetup-84 primary 0' terminated with exit code 17\n")


def test_up_without_the_backing_device(pair: DrbdCluster) -> None:
    pair.hosts["erdbeere"].write_file("/etc/drbd.d/vm100.res", resource_text(lv="missing"))
    result = pair.run("erdbeere", "drbdadm", "up", "vm100")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "open(/dev/vg-sda/missing) failed: No such file or directory",
        "Command 'drbdmeta 0 v09 /dev/vg-sda/missing internal apply-al' terminated with exit code 20"]
    assert pair.ok("erdbeere", "drbdsetup", "status", "--json").stdout.strip() == "[]"


def _promote(directory: str, node: str) -> int:
    from reconciler.sim.host import SimHost

    return SimHost(directory, node).run(["drbdadm", "primary", "vm100"]).returncode


def test_two_processes_promoting_at_once_get_one_primary(pair: DrbdCluster) -> None:
    import concurrent.futures
    import multiprocessing

    pair.new_pair()
    pair.ok("erdbeere", "drbdadm", "secondary", "vm100")
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        codes = sorted(pool.map(_promote, [str(pair.directory)] * 2, ["erdbeere", "himbeere"]))
    assert codes == [0, 11]
    roles = sorted(pair.status(node)["role"] for node in ("erdbeere", "himbeere"))
    assert roles == ["Primary", "Secondary"]


def test_invalidate_resyncs_everything_from_the_peer(pair: DrbdCluster) -> None:
    pair.new_pair()
    pair.ok("himbeere", "drbdadm", "invalidate", "vm100")
    target = pair.conn("himbeere", "erdbeere")["peer_devices"][0]
    assert target["replication-state"] == "SyncTarget"
    assert target["out-of-sync"] == pair.status("himbeere")["devices"][0]["size"]
    pair.advance(15)
    assert pair.disk("himbeere") == "UpToDate"


def test_create_md_refuses_an_attached_device(pair: DrbdCluster) -> None:
    pair.new_pair()
    result = pair.run("erdbeere", "drbdadm", "create-md", "--force", "vm100")
    assert result.returncode == 20
    assert result.stderr.startswith("Device '0' is configured!\n")


STRIPE = "0 4194304 striped 2 128 /dev/vg-sda/root100a 0 /dev/vg-sdb/root100b 0"


def _striped_pair(tmp_path: Path) -> DrbdCluster:
    cluster = DrbdCluster(tmp_path / "c", vgs=("vg-sda", "vg-sdb"))
    text = resource_text().replace("/dev/vg-sda/root100", "/dev/mapper/root100")
    for node in ("erdbeere", "himbeere"):
        cluster.ok(node, "lvcreate", "-n", "root100a", "-L", "1G", "vg-sda")
        cluster.ok(node, "lvcreate", "-n", "root100b", "-L", "1G", "vg-sdb")
        cluster.ok(node, "dmsetup", "create", "root100", "--uuid", "RECONCILER-root100", "--table", STRIPE)
        cluster.hosts[node].write_file("/etc/drbd.d/vm100.res", text)
        cluster.ok(node, "drbdadm", "create-md", "vm100")
        cluster.ok(node, "drbdadm", "up", "vm100")
    cluster.ok("erdbeere", "drbdadm", "primary", "--force", "vm100")
    cluster.advance(30)
    return cluster


def test_after_a_reboot_the_recreated_stripe_finds_its_metadata(tmp_path: Path) -> None:
    cluster = _striped_pair(tmp_path)
    cluster.crash("himbeere")
    cluster.boot("himbeere")
    missing = cluster.run("himbeere", "drbdadm", "up", "vm100")
    assert "open(/dev/mapper/root100) failed: No such file or directory" in missing.stderr
    cluster.ok("himbeere", "dmsetup", "create", "root100", "--uuid", "RECONCILER-root100", "--table", STRIPE)
    cluster.ok("himbeere", "drbdadm", "up", "vm100")
    cluster.advance(1)
    assert cluster.disk("himbeere") == "UpToDate"
    assert cluster.conn("himbeere", "erdbeere")["peer-role"] == "Primary"


def test_a_failed_leg_under_a_striped_backing_device_detaches(tmp_path: Path) -> None:
    cluster = _striped_pair(tmp_path)
    assert cluster.disk("himbeere") == "UpToDate"
    with cluster.cluster.transaction() as state:
        faults.disk_fail(state, "himbeere", "/dev/vg-sdb/root100b")
    assert cluster.disk("himbeere") == "Diskless"


def test_drbd84_blkid_on_a_secondary_fails_as_on_real_kernels(tmp_path: Path) -> None:
    # Real DRBD 8.4.11 in the lab (tests/observe/fixtures/lab-converged-himbeere/real-blkid-drbd0.txt):
    # probing the Secondary's device fails; the Primary's shows the filesystem.
    pair = DrbdCluster(tmp_path / "c", drbd_version="8.4")
    pair.new_pair()
    pair.ok("erdbeere", "mkfs.xfs", "-q", "/dev/drbd0")
    secondary = pair.run("himbeere", "blkid", "-p", "-o", "export", "/dev/drbd0")
    assert (secondary.returncode, secondary.stdout) == (2, "")
    assert secondary.stderr == "blkid: error: /dev/drbd0: Wrong medium type\n"
    assert "TYPE=xfs" in pair.ok("erdbeere", "blkid", "-p", "-o", "export", "/dev/drbd0").stdout


@pytest.mark.parametrize("name", ["/dev/drbd01", "/dev/drbd\u00b2", "/dev/drbd\u0661", "/dev/drbd1x"])
def test_only_the_devices_own_names_count_as_opening_it(name: str) -> None:
    # Other scripts' digits, superscripts and leading zeros name no DRBD device (device_open would not
    # match them either); the resolver must answer "not mine" instead of failing on int().
    state = {"nodes": {"a": {"mounts": [{"device": name}],
                             "domains": {"vm": {"disks": [f"phy:{name},xvda,w"]}}}}}
    assert m.open_minors(state, "a") == set()
    assert drbd._resolve(state, "a", name) is None


def test_a_devices_own_name_counts_as_opening_it() -> None:
    state = {"nodes": {"a": {"mounts": [{"device": "/dev/drbd0"}],
                             "domains": {"vm": {"disks": ["phy:/dev/drbd10,xvda,w"]}}}}}
    assert m.open_minors(state, "a") == {0, 10}
    assert m.device_open(state, "a", 0)
    assert m.device_open(state, "a", 10)


def test_a_status_read_that_settles_a_change_records_its_events(pair: DrbdCluster) -> None:
    """A cut link is noticed when DRBD is next looked at; a status read of the resource that settles the
    change records it for followers too (the kernel reports it whoever looks), once."""
    pair.new_pair()
    _, position = drbd.events_since(pair.state(), "erdbeere", 0)
    pair.partition("erdbeere", "himbeere")
    pair.ok("erdbeere", "drbdsetup", "status", "vm100", "--json")
    lines, later = drbd.events_since(pair.state(), "erdbeere", position)
    lost = [line for line in lines if line.startswith("change connection name:vm100 ")]
    assert lost
    assert all("connection:Connected" not in line for line in lost)
    pair.ok("erdbeere", "drbdsetup", "status", "--json")
    again, _ = drbd.events_since(pair.state(), "erdbeere", later)
    assert not [line for line in again if line.startswith("change connection name:vm100 ")]

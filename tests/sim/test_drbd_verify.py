"""Online verify in the simulator: VerifyS/VerifyT, progress at the resync rate, an injected out-of-sync
amount, and the disconnect/connect of the primary that resyncs what it found; read through the real parsers."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.backends.drbd import events2, procdrbd
from reconciler.model.observed import DrbdPeerDeviceState, DrbdResourceState
from reconciler.sim import drbd
from tests.sim.test_drbd_helpers import DrbdCluster, resource_text

VERIFYING = resource_text(net="verify-alg sha256;", disk="on-io-error detach; c-max-rate 10240k;")


def resource(pair: DrbdCluster, node: str, version: str) -> DrbdResourceState:
    if version == "8.4":
        text = _read(pair, node, "/proc/drbd")
        state = procdrbd.to_drbd_state(procdrbd.parse_proc_drbd(text), {0: "vm100"})
    else:
        state = events2.state_from_events(pair.ok(node, *events2.EVENTS2_NOW_ARGV, events2.STATISTICS).stdout)
    return state.resources[0]


def peer_device(pair: DrbdCluster, node: str, version: str) -> DrbdPeerDeviceState:
    return resource(pair, node, version).connections[0].peer_devices[0]


def disk(pair: DrbdCluster, node: str, version: str) -> str:
    return resource(pair, node, version).devices[0].disk_state


def _read(pair: DrbdCluster, node: str, path: str) -> str:
    from reconciler.sim.host import SimHost

    text = SimHost(pair.directory, node).read_file(path)
    assert text is not None
    return text


@pytest.mark.parametrize("version", ["9", "8.4"])
def test_verify_runs_at_the_rate_and_marks_what_differs(tmp_path: Path, version: str) -> None:
    pair = DrbdCluster(tmp_path / "cluster", drbd_version=version)
    pair.new_pair(VERIFYING, sync=False)
    pair.advance(120)  # the initial sync of 1 GiB, at 10 MiB/s too
    with pair.cluster.transaction() as state:
        drbd.set_verify_finds(state, "erdbeere", 512)
    pair.ok("erdbeere", "drbdadm", "verify", "vm100")
    pair.advance(50)  # 1 GiB at 10 MiB/s: about half way
    source = peer_device(pair, "erdbeere", version)
    assert source.replication_state == "VerifyS"
    assert source.verify_percent is not None
    assert 40.0 < source.verify_percent < 60.0
    assert source.resync_percent is None
    assert peer_device(pair, "himbeere", version).replication_state == "VerifyT"
    again = pair.run("erdbeere", "drbdadm", "verify", "vm100")
    assert again.returncode != 0
    assert "already active" in again.stderr

    pair.advance(60)
    done = peer_device(pair, "erdbeere", version)
    assert (done.replication_state, done.out_of_sync_bytes, done.verify_percent) == ("Established", 512 * 1024, None)
    assert peer_device(pair, "himbeere", version).out_of_sync_bytes == 512 * 1024
    assert disk(pair, "himbeere", version) == "UpToDate"  # found blocks are only marked, never copied

    # The documented way to resync them: disconnect and connect the primary.
    pair.ok("erdbeere", "drbdadm", "disconnect", "vm100")
    pair.ok("erdbeere", "drbdadm", "connect", "vm100")
    pair.advance(5)
    healed = peer_device(pair, "erdbeere", version)
    assert (healed.replication_state, healed.out_of_sync_bytes) == ("Established", 0)
    assert disk(pair, "himbeere", version) == "UpToDate"


def test_verify_needs_an_algorithm_and_a_connection(tmp_path: Path) -> None:
    pair = DrbdCluster(tmp_path / "cluster")
    pair.new_pair(resource_text())
    refused = pair.run("erdbeere", "drbdadm", "verify", "vm100")
    assert refused.returncode != 0
    assert "(-14) Need a verify algorithm to start online verify" in refused.stderr


def test_a_lost_connection_ends_the_verify_without_a_result(tmp_path: Path) -> None:
    pair = DrbdCluster(tmp_path / "cluster")
    pair.new_pair(VERIFYING, sync=False)
    pair.advance(120)
    with pair.cluster.transaction() as state:
        drbd.set_verify_finds(state, "erdbeere", 512)
    pair.ok("erdbeere", "drbdadm", "verify", "vm100")
    pair.advance(10)
    pair.partition("erdbeere", "himbeere")
    pair.advance(1)
    pair.heal()
    pair.advance(5)
    after = peer_device(pair, "erdbeere", "9")
    assert (after.replication_state, after.out_of_sync_bytes) == ("Established", 0)

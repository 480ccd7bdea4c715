"""The project's own real corpus: observations captured in the real-kernel lab (docs/lab.md), replayed.

Each bundle under fixtures/lab-* is `reconciler observe --capture` from a dom0 running real Xen 4.17.7,
DRBD 8.4.11 (drbd-utils 9.22), device-mapper and LVM 2.03.16 (its PROVENANCE.md says when and how), plus
real-*.txt outputs of commands the simulator must print alike.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.backends.drbd.splitbrain_markers import (
    MARKER_DIR,
    SplitBrainMarker,
    current_uuid,
    incident_id,
    parse_marker,
)
from reconciler.host.replay import ReplayHost
from reconciler.observe.observer import Observer
from reconciler.sim import drbd
from reconciler.sim.host import SimHost
from tests.conftest import read_capture
from tests.sim.test_drbd_helpers import DrbdCluster, resource_text

FIXTURES = Path(__file__).parent / "fixtures"
MIB = 1024**2


def bundle(label: str, node: str) -> Path:
    return FIXTURES / f"lab-{label}-{node}"


def _events2_size(path: Path) -> int:
    """The ``size:`` (KiB) of the device line in the bundle's real ``drbdsetup events2 --now --statistics``."""
    events = read_capture(path / "real-drbdsetup-events2-now.txt")[2]
    found = re.search(r"^exists device name:vm100 .* size:(\d+) ", events, re.M)
    assert found
    return int(found.group(1))


@pytest.mark.parametrize(("node", "role", "peer_role"), [("erdbeere", "Primary", "Secondary"),
                                                         ("himbeere", "Secondary", "Primary")])
def test_converged_nodes_parse_to_the_lab_layout(node: str, role: str, peer_role: str) -> None:
    observed = Observer(ReplayHost(bundle("converged", node))).observe()
    assert observed.node == node
    assert {vg.name for vg in observed.volume_groups} == {"vg-sda", "vg-sdb", "vg-sdc"}
    assert sorted((lv.vg, lv.name, lv.size_bytes // MIB) for lv in observed.logical_volumes) == [
        (vg, name, size) for vg in ("vg-sda", "vg-sdb", "vg-sdc") for name, size in (("root100", 128), ("swap100", 16))]
    stripe = observed.dm("root100")
    assert stripe is not None
    assert [t.target for t in stripe.targets] == ["striped"]
    # Real tables name the legs by major:minor; they are the data LVs' dm devices.
    legs = stripe.targets[0].args.split()[2::2]
    minors = {d.name: f"{d.major}:{d.minor}" for d in observed.dm_devices}
    assert legs == [minors["vg--sda-root100"], minors["vg--sdb-root100"], minors["vg--sdc-root100"]]
    assert observed.drbd.kernel_version == "8.4.11"
    resource = observed.drbd.resource("vm100")
    assert resource is not None
    assert resource.role == role
    assert [d.disk_state for d in resource.devices] == ["UpToDate"]
    (conn,) = resource.connections
    assert (conn.connection_state, conn.peer_role) == ("Connected", peer_role)
    assert [p.peer_disk_state for p in conn.peer_devices] == ["UpToDate"]
    assert {t.name: t.state for t in observed.tools} == dict.fromkeys(
        ("lvm", "dmsetup", "drbd", "drbdadm", "xl", "files"), "available")
    assert observed.host.xen_version == "4.17.7"
    # /proc/drbd of 8.4 has no size; sysfs (read as a file) agrees with DRBD's own events2 of the same moment.
    assert [d.size_kib for d in resource.devices] == [_events2_size(bundle("converged", node))]


def test_the_domain_runs_on_the_primary_only_with_its_replicated_disk_and_local_swap() -> None:
    primary = Observer(ReplayHost(bundle("converged", "erdbeere"))).observe()
    secondary = Observer(ReplayHost(bundle("converged", "himbeere"))).observe()
    domain = primary.domain("vm100")
    assert domain is not None
    assert domain.state in ("running", "blocked")
    # A real domU that booted has CPU time: only a start that never unpaused its domain shows 0.0.
    assert domain.cpu_time_s is not None
    assert domain.cpu_time_s > 0
    assert not domain.never_ran
    assert domain.disks == ("/dev/drbd0", "/dev/vg-sda/swap100", "/dev/vg-sdb/swap100", "/dev/vg-sdc/swap100")
    assert secondary.domain("vm100") is None


def test_the_simulator_probes_a_drbd84_secondary_as_the_real_one(tmp_path: Path) -> None:
    real = read_capture(bundle("converged", "himbeere") / "real-blkid-drbd0.txt")
    pair = DrbdCluster(tmp_path / "c", drbd_version="8.4")
    pair.new_pair()
    secondary: SimHost = pair.hosts["himbeere"]
    blkid = secondary.run(["blkid", "-p", "-o", "export", "/dev/drbd0"])
    assert (blkid.returncode, blkid.stdout, blkid.stderr) == real[1:]


def test_the_simulator_prints_a_striped_table_in_the_real_shape(tmp_path: Path) -> None:
    real = read_capture(bundle("converged", "himbeere") / "real-dmsetup-table-root100.txt")[2]
    shape = re.compile(r"0 786432 striped 3 64 \d+:\d+ 0 \d+:\d+ 0 \d+:\d+ 0\n")
    assert shape.fullmatch(real), real
    cluster = DrbdCluster(tmp_path / "c", vgs=("vg-sda", "vg-sdb", "vg-sdc"))
    host: SimHost = cluster.hosts["erdbeere"]
    for vg in ("vg-sda", "vg-sdb", "vg-sdc"):
        assert host.run(["lvcreate", "-n", "root100", "-L", "128M", vg]).ok
    table = "0 786432 striped 3 64 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0 /dev/vg-sdc/root100 0"
    assert host.run(["dmsetup", "create", "root100", "--table", table]).ok
    assert shape.fullmatch(host.run(["dmsetup", "table", "root100"]).stdout)


def test_a_survivor_after_its_primary_lost_power_sees_an_unknown_peer() -> None:
    # Captured in scenario 5 after himbeere's QEMU was killed: /proc/drbd says WFConnection, DRBD's events2
    # stream (drbd-utils 9.22 on the 8.4 module) says Connecting; the peer's role and disk are unknown.
    observed = Observer(ReplayHost(bundle("peer-lost", "erdbeere"))).observe()
    resource = observed.drbd.resource("vm100")
    assert resource is not None
    assert resource.role == "Secondary"
    assert [d.disk_state for d in resource.devices] == ["UpToDate"]
    assert [d.size_kib for d in resource.devices] == [_events2_size(bundle("peer-lost", "erdbeere"))]
    (conn,) = resource.connections
    assert (conn.connection_state, conn.peer_role) == ("Connecting", "Unknown")
    assert [p.peer_disk_state for p in conn.peer_devices] == ["DUnknown"]
    assert observed.domain("vm100") is None
    proc = read_capture(bundle("peer-lost", "erdbeere") / "real-proc-drbd.txt")[2]
    assert "cs:WFConnection ro:Secondary/Unknown ds:UpToDate/DUnknown" in proc


@pytest.mark.parametrize(("node", "role", "disk", "peer_disk"), [("himbeere", "Primary", "UpToDate", "Outdated"),
                                                                 ("erdbeere", "Secondary", "Outdated", "DUnknown")])
def test_a_replication_link_cut_with_the_peer_outdated_through_the_management_link(
        node: str, role: str, disk: str, peer_disk: str) -> None:
    # Captured in scenario 6 (after the growth to 3 x 160 MiB): the primary's fence-peer handler had the
    # secondary's daemon outdate its disk; each side waits for the other (WFConnection).
    observed = Observer(ReplayHost(bundle("link-cut", node))).observe()
    resource = observed.drbd.resource("vm100")
    assert resource is not None
    assert resource.role == role
    assert [d.disk_state for d in resource.devices] == [disk]
    assert [d.size_kib for d in resource.devices] == [_events2_size(bundle("link-cut", node))]
    (conn,) = resource.connections
    assert (conn.connection_state, conn.peer_role) == ("Connecting", "Unknown")
    assert [p.peer_disk_state for p in conn.peer_devices] == [peer_disk]
    assert not resource.split_brain
    assert (observed.domain("vm100") is not None) == (role == "Primary")


def _marker(node: str) -> SplitBrainMarker:
    path = bundle("split-brain", node) / "files" / MARKER_DIR.lstrip("/") / "vm100.json"
    return parse_marker(path.read_text(), str(path))


@pytest.mark.parametrize(("node", "peer", "role"), [("erdbeere", "himbeere", "Primary"),
                                                     ("himbeere", "erdbeere", "Secondary")])
def test_a_split_brain_made_by_hand_is_flagged_on_both_nodes(node: str, peer: str, role: str) -> None:
    # Captured in scenario 8: both links cut, `drbdadm primary --force` and writes on himbeere, back to
    # Secondary, links healed. DRBD 8.4 detected the split brain on both sides, ran the rendered handler
    # (`reconciler split-brain`, which left the marker) and went StandAlone; /proc/drbd says nothing more.
    observed = Observer(ReplayHost(bundle("split-brain", node))).observe()
    resource = observed.drbd.resource("vm100")
    assert resource is not None
    assert resource.split_brain
    assert resource.role == role
    assert [d.disk_state for d in resource.devices] == ["UpToDate"]
    (conn,) = resource.connections
    assert (conn.connection_state, conn.peer_role) == ("StandAlone", "Unknown")
    # Both sides had marked the other Outdated: with both links cut, the fence-peer handler could not reach
    # the peer's daemon and exited 5 ("peer unreachable"), which DRBD takes as the peer being dead.
    assert [p.peer_disk_state for p in conn.peer_devices] == ["Outdated"]
    assert _marker(node).peer == peer
    assert f"detected with {peer} at" in (resource.split_brain_detail or "")
    assert (observed.domain("vm100") is not None) == (role == "Primary")
    proc = read_capture(bundle("split-brain", node) / "real-proc-drbd.txt")[2]
    assert f"cs:StandAlone ro:{role}/Unknown ds:UpToDate/Outdated" in proc


def test_both_nodes_name_the_real_split_brain_alike() -> None:
    # Each side records only its own generation identifiers; the incident name from both must agree, or a
    # recovery statement written for it would apply on one node only.
    ours, theirs = _marker("erdbeere").generation, _marker("himbeere").generation
    assert current_uuid(ours) != current_uuid(theirs), "both wrote while apart: two current generations"
    # The same last common generation (the bitmap identifier) apart from bit 0, the Primary flag.
    assert int(ours.split(":")[1], 16) & ~1 == int(theirs.split(":")[1], 16) & ~1
    named = incident_id("vm100", ours, theirs)
    assert named is not None
    assert named == incident_id("vm100", theirs, ours)
    assert named.startswith("sb-")


def test_the_simulator_goes_into_the_real_split_brain_alike(tmp_path: Path) -> None:
    # Scenario 8's steps on a simulated DRBD 8.4 pair with the lab's fencing: both links cut, a forced promotion
    # of the secondary, back to Secondary, both links healed. (A new current generation is made by the
    # promotion itself, so the writes the lab made as well are not needed for the split brain.) The corpus was
    # captured while the handler still answered 5 for an unreachable peer (it answers 1 now), so the simulated
    # handlers answer what the real ones did then.
    pair = DrbdCluster(tmp_path / "c", drbd_version="8.4")
    pair.new_pair(resource_text(disk="on-io-error detach; al-extents 257; fencing resource-only;",
                                handlers='fence-peer "/usr/bin/reconciler fence-peer"; '
                                         'split-brain "/usr/bin/reconciler split-brain";'))
    with pair.cluster.transaction() as state:
        for node in ("erdbeere", "himbeere"):
            drbd.set_fence_peer(state, node, "unreachable")
    pair.partition("erdbeere", "himbeere", management=True)
    pair.advance(15)
    pair.ok("himbeere", "drbdadm", "primary", "--force", "vm100")
    pair.ok("himbeere", "drbdadm", "secondary", "vm100")
    pair.heal()
    pair.advance(15)
    state_line = re.compile(r"^ 0: (cs:\S+ ro:\S+ ds:\S+)", re.M)
    for node in ("erdbeere", "himbeere"):
        real = state_line.search(read_capture(bundle("split-brain", node) / "real-proc-drbd.txt")[2])
        simulated = state_line.search(pair.hosts[node].read_file("/proc/drbd") or "")
        assert real is not None
        assert simulated is not None
        assert simulated.group(1) == real.group(1), node
    # The user's guides' manual recovery starts with `drbdadm disconnect`: refused on a StandAlone 8.4
    # resource, in the same words. What the reconciler runs instead (secondary, connect --discard-my-data;
    # connect on the survivor) resolves it.
    real_refusal = bundle("split-brain", "himbeere") / "real-drbdadm-disconnect-standalone.txt"
    _, code, stdout, stderr = read_capture(real_refusal)
    refused = pair.run("himbeere", "drbdadm", "disconnect", "vm100")
    assert (refused.returncode, refused.stdout, refused.stderr) == (code, stdout, stderr)
    pair.ok("himbeere", "drbdadm", "secondary", "vm100")
    pair.ok("himbeere", "drbdadm", "connect", "--discard-my-data", "vm100")
    pair.ok("erdbeere", "drbdadm", "connect", "vm100")
    pair.advance(60)
    nodes = ("erdbeere", "himbeere")
    settled = {node: state_line.search(pair.hosts[node].read_file("/proc/drbd") or "") for node in nodes}
    assert {node: found.group(1) if found else None for node, found in settled.items()} == {
        "erdbeere": "cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate",
        "himbeere": "cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate"}


@pytest.mark.parametrize(("label", "node", "view"), [
    ("peer-lost", "erdbeere", ("Secondary", "UpToDate")),
    ("link-cut", "erdbeere", ("Secondary", "Outdated")),
    ("link-cut", "himbeere", ("Primary", "UpToDate")),
    ("split-brain", "erdbeere", ("Primary", "UpToDate")),
])
def test_the_fence_handler_reads_its_own_state_from_the_real_proc_drbd(label: str, node: str,
                                                                       view: tuple[str, str]) -> None:
    from reconciler.daemon.peers.fence import local_view

    assert local_view(ReplayHost(bundle(label, node)), 0) == view

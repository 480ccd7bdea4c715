"""Automatic failover on the simulator: two in-process daemons (the real engine on simulated DRBD 8.4 nodes under
resource-and-stonith with a power fence), a virtual clock, and the data oracle after every step: no acknowledged
write lost, never writable on two nodes, the domain never on two nodes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.daemon.node.control import ControlStore
from reconciler.daemon.peers.failover import read_records
from reconciler.metrics.collector import exposition
from reconciler.sim import drbd, faults, oracle
from reconciler.sim.state import SimCluster
from tests.apply.simlab import GIB, NODES, SimLab
from tests.conftest import EXAMPLE_DIR
from tests.daemon.daemonpair import Pair

pytestmark = pytest.mark.timeout(300)

FENCE = """    power_fence:
      off: [/usr/sbin/fence_lab, --action=off, --plug={node}]
      status: [/usr/sbin/fence_lab, --action=status, --plug={node}]
      delay: 15
"""


def _desired(tmp_path: Path, failover: str) -> Path:
    desired = tmp_path / "desired"
    shutil.copytree(EXAMPLE_DIR, desired)
    cluster = desired / "cluster.yaml"
    text = cluster.read_text().replace('drbd_version: "9"', 'drbd_version: "8.4"')
    text = text.replace("fencing_policy: resource-only", "fencing_policy: resource-and-stonith")
    for node in NODES:
        anchor = f"  {node}:\n"
        text = text.replace(anchor, anchor + FENCE.format(node=node), 1)
    text = text.replace("\nguards:", f"\n  failover: {failover}\n\nguards:", 1)
    cluster.write_text(text)
    return desired


def _pair(tmp_path: Path, failover: str = "automatic", fence: str = "stonith") -> Pair:
    SimCluster.init(tmp_path / "sim", list(NODES), dict.fromkeys(("vg-sda", "vg-sdb", "vg-sdc"), 400 * GIB),
                    drbd_version="8.4")
    pair = _started(SimLab(tmp_path / "sim", desired_dir=_desired(tmp_path, failover)), tmp_path, fence)
    for _ in range(30):
        pair.tick(600.0)  # the initial full sync of 300 GiB takes simulated hours
        if pair.running("erdbeere") == {"vm100"} and pair.running("himbeere") == {"vm101"} \
                and pair.disk("himbeere") == "UpToDate" and pair.disk("erdbeere") == "UpToDate":
            break
    assert pair.running("erdbeere") == {"vm100"}
    assert pair.running("himbeere") == {"vm101"}
    assert pair.disk("himbeere") == pair.disk("erdbeere") == "UpToDate"
    return pair


@pytest.fixture(scope="module")
def converged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One converged automatic pair, copied for each test (bringing one up takes most of a test's time)."""
    base = tmp_path_factory.mktemp("failover")
    _pair(base)
    return base


def _copy(converged: Path, tmp_path: Path, *, failover: str | None = None, fence: str | None = None) -> Pair:
    for name in ("sim", "desired", "state"):
        shutil.copytree(converged / name, tmp_path / name)
    lab = SimLab(tmp_path / "sim", desired_dir=tmp_path / "desired")
    if failover is not None:
        cluster = tmp_path / "desired" / "cluster.yaml"
        cluster.write_text(cluster.read_text().replace("  failover: automatic", f"  failover: {failover}"))
    pair = _started(lab, tmp_path, fence)
    pair.tick()
    return pair


def _started(lab: SimLab, tmp_path: Path, fence: str | None) -> Pair:
    """Both daemons started on ``lab``, whose fence-peer handlers answer as ``fence`` says (None: unchanged)."""
    if fence is not None:
        with lab.cluster.transaction() as state:
            for node in NODES:
                drbd.set_fence_peer(state, node, fence)
    pair = Pair(lab, tmp_path)
    for node in NODES:
        pair.start(node)
    return pair


def test_the_standby_takes_over_after_the_grace_and_the_returning_node_rejoins_as_secondary(
        converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    written = oracle.acknowledged(pair.state(), "vm100")
    pair.crash("erdbeere")
    pair.run_for(20)
    # Within the grace (30 s): nothing moves; status says why.
    assert pair.role("himbeere") == "Secondary"
    assert "vm100" not in pair.running("himbeere")
    assert "erdbeere lost" in pair.watching("himbeere")
    assert "failover after 30 s" in pair.watching("himbeere")
    pair.run_for(30)
    assert pair.role("himbeere") == "Primary"
    assert pair.running("himbeere") == {"vm100", "vm101"}
    assert pair.record("himbeere") == "running"
    assert any("exit code 7 (peer was stonithed)" in line for line in drbd.kernel_log(pair.state(), "himbeere"))
    assert oracle.acknowledged(pair.state(), "vm100") >= written
    status = pair.daemons["himbeere"].rec.status
    assert status is not None
    assert status.last_pass is not None
    assert status.last_pass.outcome == "degraded"  # running away from its designated node is a decision to make
    domain = next(r for r in status.resources if r.key == "domain:vm100")
    assert "failed-over" in domain.conditions
    text = exposition(pair.daemons["himbeere"].metrics).decode()
    assert 'reconciler_failover_active{from_node="erdbeere",vm="vm100"} 1.0' in text

    # The old primary returns: Secondary, resynced, never starts the domain, never stops the one on himbeere.
    pair.boot("erdbeere")
    pair.run_for(120)
    assert pair.role("erdbeere") == "Secondary"
    assert pair.disk("erdbeere") == "UpToDate"
    assert "vm100" not in pair.running("erdbeere")
    assert pair.running("himbeere") == {"vm100", "vm101"}
    assert pair.record("himbeere") == "running"  # failback: manual, so it stays until a commit decides


def _outcome(pair: Pair, node: str) -> str:
    status = pair.daemons[node].rec.status
    assert status is not None
    assert status.last_pass is not None
    return status.last_pass.outcome


def test_the_returning_designated_node_reports_the_failover_degraded_until_a_commit_decides(
        converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    pair.crash("erdbeere")
    pair.run_for(60)
    assert pair.record("himbeere") == "running"
    failover = read_records(tmp_path / "state" / "himbeere")["vm100"].id
    pair.boot("erdbeere")
    promotions, starts = _promotions(pair, "erdbeere"), _starts(pair, "erdbeere")
    # Back, resynced and Secondary, it says why the VM does not come back: degraded, not forever progressing.
    for _ in range(60):
        pair.tick()
        if _outcome(pair, "erdbeere") == "degraded" and pair.disk("erdbeere") == "UpToDate":
            break
    assert _outcome(pair, "erdbeere") == "degraded"
    assert pair.disk("erdbeere") == "UpToDate"
    status = pair.daemons["erdbeere"].rec.status
    assert status is not None
    domain = next(r for r in status.resources if r.key == "domain:vm100")
    assert domain.phase == "degraded"
    assert domain.conditions == ("failed-over-away",)
    assert f"runs on himbeere after automatic failover {failover} away from this node" in domain.reason
    assert "`primary: himbeere` in vms/vm100.yaml keeps it there" in domain.reason
    assert "`failover: {failback: automatic}` moves it back here" in domain.reason
    assert not [r for r in status.resources if r.phase == "waiting"]
    # It stays so, and never tries: no promotion, no start, while the survivor keeps the VM.
    pair.run_for(120)
    assert _outcome(pair, "erdbeere") == "degraded"
    assert _promotions(pair, "erdbeere") == promotions
    assert _starts(pair, "erdbeere") == starts
    assert pair.role("erdbeere") == "Secondary"
    assert pair.running("himbeere") == {"vm100", "vm101"}
    assert pair.record("himbeere") == "running"
    assert _outcome(pair, "himbeere") == "degraded"  # its own `failed-over`
    # The commit keeping the VM where it runs makes both Ready.
    vm_file = pair.lab.desired_dir / "vms" / "vm100.yaml"
    vm_file.write_text(vm_file.read_text().replace("primary: erdbeere", "primary: himbeere"))
    pair.reload()
    for _ in range(12):
        pair.tick()
        if _outcome(pair, "erdbeere") == _outcome(pair, "himbeere") == "converged":
            break
    assert _outcome(pair, "erdbeere") == _outcome(pair, "himbeere") == "converged"
    assert pair.record("himbeere") == "ended"
    assert pair.running("himbeere") == {"vm100", "vm101"}
    assert pair.running("erdbeere") == set()


def test_a_commit_naming_the_survivor_ends_the_failover_and_keeps_the_vm_where_it_runs(
        converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    pair.crash("erdbeere")
    pair.run_for(60)
    assert pair.record("himbeere") == "running"
    vm_file = pair.lab.desired_dir / "vms" / "vm100.yaml"
    vm_file.write_text(vm_file.read_text().replace("primary: erdbeere", "primary: himbeere"))
    pair.reload()
    pair.tick()
    assert pair.record("himbeere") == "ended"
    assert pair.running("himbeere") == {"vm100", "vm101"}
    status = pair.daemons["himbeere"].rec.status
    assert status is not None
    domain = next(r for r in status.resources if r.key == "domain:vm100")
    assert "failed-over" not in domain.conditions


def test_failback_automatic_moves_the_vm_back_as_a_planned_switchover(converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path, failover="{mode: automatic, failback: automatic}")
    pair.crash("erdbeere")
    pair.run_for(60)
    assert pair.running("himbeere") == {"vm100", "vm101"}
    pair.boot("erdbeere")
    pair.run_for(240)
    assert pair.record("himbeere") == "ended"
    assert pair.running("erdbeere") == {"vm100"}
    assert pair.running("himbeere") == {"vm101"}
    assert pair.role("erdbeere") == "Primary"
    assert pair.role("himbeere") == "Secondary"


def test_manual_failover_stays_manual(converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path, failover="manual")
    pair.crash("erdbeere")
    pair.run_for(300)
    assert pair.role("himbeere") == "Secondary"
    assert "vm100" not in pair.running("himbeere")
    assert pair.record("himbeere") is None


def test_the_maintenance_switch_holds_automatic_failover(converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path, failover="{mode: automatic, hold: true}")
    pair.crash("erdbeere")
    pair.run_for(120)
    assert pair.role("himbeere") == "Secondary"
    assert "held" in pair.watching("himbeere")


def test_a_suspended_vm_is_not_failed_over(converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    store = ControlStore(tmp_path / "state" / "himbeere")
    store.suspend("vm100", "disk swap", "alice", at=1.0)
    control = store.read()
    pair.crash("erdbeere")
    pair.run_for(120, control=control)
    assert pair.role("himbeere") == "Secondary"
    assert pair.record("himbeere") is None


def test_a_loss_shorter_than_the_grace_moves_nothing(converged: Path, tmp_path: Path) -> None:
    # erdbeere goes away four times, each time for less than the grace (30 s), and comes back: himbeere, up all
    # along, never decides a failover.
    pair = _copy(converged, tmp_path)
    for _ in range(4):
        pair.crash("erdbeere")
        pair.run_for(20)
        assert pair.role("himbeere") == "Secondary"
        pair.boot("erdbeere")
        pair.run_for(60)
        assert pair.running("erdbeere") == {"vm100"}
    assert pair.up("himbeere")
    assert pair.record("himbeere") is None
    assert "vm100" not in pair.running("himbeere")


def test_a_full_partition_powers_the_standby_off_and_nothing_fails_over(converged: Path, tmp_path: Path) -> None:
    # Both links lost: the Primary's handler runs at once (no delay for the node running the VM) and powers the
    # standby off long before its grace could end; the two never fence each other.
    pair = _copy(converged, tmp_path)
    with pair.lab.cluster.transaction() as state:
        faults.partition(state, "erdbeere", "himbeere", management=True)
    pair.run_for(120)
    assert not pair.up("himbeere")
    assert pair.up("erdbeere")
    assert "vm100" in pair.running("erdbeere")
    assert pair.record("himbeere") is None


def test_a_link_loss_outdates_the_standby_which_then_never_takes_over(converged: Path, tmp_path: Path) -> None:
    # Only the replication link fails: the Primary's handler reaches the standby's daemon over the management
    # link and outdates it. When the Primary then dies, the standby lacks its last writes and must stay down.
    pair = _copy(converged, tmp_path)
    with pair.lab.cluster.transaction() as state:
        faults.partition(state, "erdbeere", "himbeere")
    pair.run_for(30)
    assert pair.disk("himbeere") == "Outdated"
    pair.crash("erdbeere")
    pair.run_for(300)
    assert pair.role("himbeere") == "Secondary"
    assert "vm100" not in pair.running("himbeere")
    assert "not UpToDate" in pair.watching("himbeere")


def test_a_failed_fence_ends_the_failover_at_once_and_the_next_waits_out_min_interval(
        converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path, fence="fail")
    pair.crash("erdbeere")
    pair.run_for(60)
    # DRBD refused the promotion (the handler proved nothing): one attempt, then the failover is over; a second
    # would run the handler, and its power fence, again.
    assert pair.record("himbeere") == "failed"
    assert pair.role("himbeere") == "Secondary"
    assert len(_promotions(pair)) == 1
    pair.run_for(1200)
    assert len(_promotions(pair)) == 1
    assert "min_interval" in pair.watching("himbeere")
    text = exposition(pair.daemons["himbeere"].metrics).decode()
    assert 'reconciler_failover_last_outcome{outcome="failed",vm="vm100"} 1.0' in text
    assert "reconciler_failover_active{" not in text
    # After min_interval (3600 s) the next automatic attempt is allowed, and it is again exactly one.
    pair.run_for(2500)
    assert len(_promotions(pair)) == 2


def _promotions(pair: Pair, node: str = "himbeere") -> list[list[str]]:
    log = pair.lab.log()
    return [e["argv"] for e in log if e.get("node") == node and e["argv"] == ["drbdadm", "primary", "vm100"]]


def test_the_designated_primary_takes_its_vm_back_when_the_survivor_is_lost_in_turn(
        converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    pair.crash("erdbeere")
    pair.run_for(60)
    assert pair.record("himbeere") == "running"
    pair.boot("erdbeere")
    pair.run_for(120)
    assert pair.role("erdbeere") == "Secondary"
    assert pair.disk("erdbeere") == "UpToDate"
    # Now himbeere, running both VMs, dies: erdbeere takes both, its own vm100 back and vm101 over.
    pair.crash("himbeere")
    pair.run_for(90)
    assert pair.running("erdbeere") == {"vm100", "vm101"}
    assert pair.record("erdbeere", "vm100") == "ended"  # back on the node the desired state names
    assert pair.record("erdbeere", "vm101") == "running"


def _standby_view(hold: bool = False) -> tuple[object, object]:
    """himbeere's view of vm100 (designated: erdbeere) with erdbeere lost, as a keeper sees it in a pass."""
    from reconciler.model.desired import DesiredFailover
    from reconciler.model.observed import DrbdState, ObservedNode
    from tests.daemon.fakes import desired_node, drbd_resource

    node = desired_node("himbeere", "erdbeere")
    vm = node.vms[0].model_copy(update={"primary_node": "erdbeere", "failover": DesiredFailover(
        mode="automatic", hold=hold)})
    res = drbd_resource("vm100", peer_role="Unknown", peer_disk="DUnknown", connection="Connecting")
    res = res.model_copy(update={"connections": tuple(c.model_copy(update={"peer_name": "erdbeere"})
                                                      for c in res.connections)})
    return node.model_copy(update={"vms": (vm,)}), ObservedNode(node="himbeere", drbd=DrbdState(resources=(res,)))


def test_a_hold_committed_before_the_promotion_abandons_the_failover(tmp_path: Path) -> None:
    from reconciler.daemon.peers.failover import FailoverKeeper
    from reconciler.daemon.schedule.clock import VirtualClock
    from reconciler.model.status import PeerStatus

    clock = VirtualClock(1000.0)
    keeper = FailoverKeeper(tmp_path, "himbeere", clock.time)
    desired, observed = _standby_view()

    def silent() -> tuple[PeerStatus, ...]:
        return (PeerStatus(node="erdbeere", reachable=False, checked_at=clock.time(), error="refused"),)

    for _ in range(8):  # past the grace
        view = keeper.view(desired, observed, silent())  # type: ignore[arg-type]
        clock.advance(5)
    (vm,) = view.vms
    assert vm.takeover is not None
    assert keeper.records["vm100"].state == "decided"
    held, _ = _standby_view(hold=True)
    (vm,) = keeper.view(held, observed, silent()).vms  # type: ignore[arg-type]
    assert vm.takeover is None
    assert vm.primary_node == "erdbeere"
    assert keeper.records["vm100"].state == "abandoned"
    assert "held" in keeper.records["vm100"].detail


def test_a_missing_or_old_peer_status_is_not_a_lost_peer() -> None:
    from reconciler.daemon.peers.failover import peer_lost
    from reconciler.model.status import PeerStatus
    from tests.daemon.fakes import desired_node, drbd_resource

    (vm,) = desired_node("himbeere", "erdbeere").vms
    res = drbd_resource("vm100", peer_role="Unknown", peer_disk="DUnknown", connection="Connecting")
    res = res.model_copy(update={"connections": tuple(c.model_copy(update={"peer_name": "erdbeere"})
                                                      for c in res.connections)})
    silent = PeerStatus(node="erdbeere", reachable=False, checked_at=1000.0, error="connection refused")
    assert peer_lost(vm, res, silent, "himbeere", now=1010.0).startswith("erdbeere lost: DRBD Connecting")
    assert peer_lost(vm, res, None, "himbeere", now=1010.0) == ""  # never heard of: unknown, not lost
    assert peer_lost(vm, res, silent, "himbeere", now=1100.0) == ""  # a stopped monitor's last word
    answering = silent.model_copy(update={"reachable": True})
    assert peer_lost(vm, res, answering, "himbeere", now=1010.0) == ""  # a link, not a node


def test_a_restarted_daemon_keeps_running_the_failed_over_vm(converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    pair.crash("erdbeere")
    pair.run_for(60)
    assert pair.record("himbeere") == "running"
    pair.start("himbeere")  # the daemon restarts; the domain and DRBD keep running
    pair.run_for(60)
    assert pair.running("himbeere") == {"vm100", "vm101"}
    assert pair.role("himbeere") == "Primary"


def test_the_lost_node_answering_again_before_the_promotion_abandons_the_failover(tmp_path: Path) -> None:
    from reconciler.daemon.peers.failover import FailoverKeeper
    from reconciler.daemon.schedule.clock import VirtualClock
    from reconciler.model.status import PeerStatus

    clock = VirtualClock(1000.0)
    keeper = FailoverKeeper(tmp_path, "himbeere", clock.time)
    desired, observed = _standby_view()
    for _ in range(8):
        keeper.view(desired, observed, (PeerStatus(node="erdbeere", reachable=False, checked_at=clock.time(),  # type: ignore[arg-type]
                                                   error="refused"),))
        clock.advance(5)
    assert keeper.records["vm100"].state == "decided"
    back = (PeerStatus(node="erdbeere", reachable=True, checked_at=clock.time()),)
    (vm,) = keeper.view(desired, observed, back).vms  # type: ignore[arg-type]
    assert vm.takeover is None
    assert keeper.records["vm100"].state == "abandoned"
    assert "came back before the promotion" in keeper.records["vm100"].detail


def test_after_both_nodes_lose_power_a_lone_node_starts_nothing_and_the_pair_agrees_first(
        converged: Path, tmp_path: Path) -> None:
    # The power of both goes, fence devices included: a handler that runs in the moment between the two
    # proves nothing (exit 1), so neither disk records the other as Outdated.
    pair = _copy(converged, tmp_path, fence="fail")
    with pair.lab.cluster.transaction() as state:
        faults.crash(state, "erdbeere")
        faults.crash(state, "himbeere")
        for node in NODES:
            drbd.set_fence_peer(state, node, "stonith")
    pair.daemons.clear()
    # himbeere comes back alone: its disk is only Consistent (it cannot know whether erdbeere wrote on), so it
    # takes nothing over, however long erdbeere stays away, and starts neither VM.
    pair.boot("himbeere")
    pair.run_for(300)
    assert pair.disk("himbeere") == pair.disk("himbeere", "vm101") == "Consistent"
    assert pair.running("himbeere") == set()
    assert pair.record("himbeere") is None
    assert "not UpToDate" in pair.watching("himbeere")
    # erdbeere returns: the two connect and agree whose data is newer; each VM then runs on its designated node.
    pair.boot("erdbeere")
    pair.run_for(180)
    assert pair.running("erdbeere") == {"vm100"}
    assert pair.running("himbeere") == {"vm101"}
    assert pair.record("himbeere") is None
    assert pair.record("erdbeere") is None


def _starts(pair: Pair, node: str, domain: str = "vm100") -> int:
    return sum(1 for e in pair.lab.log() if e.get("node") == node and e["argv"][:2] == ["xl", "create"]
               and any(domain in a for a in e["argv"][2:]))


def test_a_domain_that_fails_to_start_on_the_survivor_is_reported_not_retried_in_a_loop(
        converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    with pair.lab.cluster.transaction() as state:
        faults.add_fault(state, "permanent", node="himbeere", regex=r"^xl create \S*vm100")
    pair.crash("erdbeere")
    pair.run_for(60)
    assert pair.record("himbeere") == "failed"
    tries = _starts(pair, "himbeere")
    assert tries >= 1
    assert "vm100" not in pair.running("himbeere")
    pair.run_for(1200)
    assert _starts(pair, "himbeere") == tries
    assert pair.record("himbeere") == "failed"
    text = exposition(pair.daemons["himbeere"].metrics).decode()
    assert 'reconciler_failover_last_outcome{outcome="failed",vm="vm100"} 1.0' in text


def test_a_flapping_replication_link_moves_nothing(converged: Path, tmp_path: Path) -> None:
    # The replication link drops for 10 s every 30 s while the management link stays up: the Primary's handler
    # outdates the standby through its daemon each time, the standby never looks lost, and it resyncs in between.
    pair = _copy(converged, tmp_path)
    for _ in range(6):
        with pair.lab.cluster.transaction() as state:
            faults.partition(state, "erdbeere", "himbeere")
        pair.run_for(10)
        assert pair.watching("himbeere") == ""
        with pair.lab.cluster.transaction() as state:
            faults.heal(state)
        pair.run_for(20)
    pair.run_for(300)
    assert pair.up("himbeere")
    assert pair.up("erdbeere")
    assert pair.running("erdbeere") == {"vm100"}
    assert pair.running("himbeere") == {"vm101"}
    assert pair.disk("himbeere") == pair.disk("erdbeere") == "UpToDate"
    assert pair.record("himbeere") is None
    assert pair.record("erdbeere", "vm101") is None

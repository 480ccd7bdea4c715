"""One pass of the loop with a fake engine on a virtual clock: revisions, suspension, gates, status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.daemon.loop.gating import BootGate
from reconciler.daemon.loop.reconcile import PassContext, Reconciler
from reconciler.daemon.node.control import ControlState, ControlStore
from reconciler.daemon.records import status_store
from reconciler.daemon.schedule.clock import VirtualClock
from reconciler.daemon.schedule.liveness import Liveness
from reconciler.model.observed import DrbdResourceState, DrbdState
from reconciler.model.status import PeerStatus, Suspension
from tests.daemon.fakes import SHA_A, SHA_B, FakeEngine, FakeSource, RecordingMetrics, action, drbd_resource

OPEN = BootGate(fetched=True, fetch_deadline_passed=False, peers_seen=frozenset({"himbeere"}))


def peer_at(sha: str | None, reachable: bool = True) -> PeerStatus:
    return PeerStatus(node="himbeere", reachable=reachable, applied_revision=sha, ready=True)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Reconciler, FakeSource, FakeEngine, RecordingMetrics]:
    clock = VirtualClock()
    source = FakeSource(tmp_path)
    engine = FakeEngine()
    metrics = RecordingMetrics()
    rec = Reconciler(node="erdbeere", state_dir=tmp_path, source=source, engine=engine,  # type: ignore[arg-type]
                     clock=clock, liveness=Liveness(clock.monotonic), metrics=metrics)
    return rec, source, engine, metrics


def run(rec: Reconciler, control: ControlState | None = None, **ctx: Any) -> Any:
    ctx.setdefault("gate", OPEN)
    ctx.setdefault("peers", (peer_at(SHA_A),))
    control = control or ControlState()
    result = rec.run_pass(control, PassContext(**ctx))
    rec.publish(control, ctx["peers"], None, None, result)
    return result


def test_a_converged_pass_records_the_applied_revision_and_publishes_status(world: Any, tmp_path: Path) -> None:
    rec, source, engine, metrics = world
    source.set(SHA_A)
    engine.planned = [action("drbd-up")]
    result = run(rec)
    assert result.outcome == "converged"
    assert engine.applied == [("drbd-up@drbd:vm100",)]
    published = status_store.load(tmp_path)
    assert published is not None
    assert published.last_applied is not None
    assert published.last_applied.sha == SHA_A
    assert published.last_pass is not None
    assert published.last_pass.outcome == "converged"
    assert [r.phase for r in published.resources] == ["ready"]
    assert metrics.seen == [SHA_A]
    assert metrics.passes == ["converged"]


def test_without_any_valid_revision_nothing_is_applied_but_the_node_is_observed(world: Any) -> None:
    rec, source, engine, _ = world
    source.set(None, attempted=SHA_B, errors=("vms/vm100.yaml:3:7: size must be positive",))
    result = run(rec)
    assert result.outcome == "invalid"
    assert engine.applied == []
    assert rec.observed_once
    assert rec.status is not None
    assert rec.status.invalid_errors == ("vms/vm100.yaml:3:7: size must be positive",)


def test_an_invalid_newer_revision_keeps_converging_the_last_good_one(world: Any) -> None:
    rec, source, engine, _ = world
    source.set(SHA_A, attempted=SHA_B, errors=("cluster.yaml:1:1: bad",))
    engine.planned = [action("drbd-adjust")]
    result = run(rec)
    assert result.revision == SHA_A
    assert engine.applied == [("drbd-adjust@drbd:vm100",)]
    assert rec.status is not None
    assert rec.status.last_attempted is not None
    assert rec.status.last_attempted.sha == SHA_B
    assert rec.status.last_applied is not None
    assert rec.status.last_applied.sha == SHA_A
    assert rec.status.invalid_errors == ("cluster.yaml:1:1: bad",)


def test_node_suspension_stops_acting_but_keeps_observing(world: Any, tmp_path: Path) -> None:
    rec, source, engine, metrics = world
    source.set(SHA_A)
    engine.planned = [action("promote")]
    ControlStore(tmp_path).suspend("node", "disk swap in progress", "alice", at=5.0)
    control = ControlStore(tmp_path).read()
    result = run(rec, control)
    assert result.outcome == "suspended"
    assert engine.applied == []
    assert rec.observed_once
    assert [r.phase for r in result.resources] == ["suspended"]
    assert "alice" in result.resources[0].reason
    assert "disk swap in progress" in result.resources[0].reason
    assert rec.status is not None
    assert rec.status.suspensions == (Suspension(scope="node", reason="disk swap in progress", by="alice", at=5.0),)
    assert metrics.suspended == [("node", True)]
    # Resume: acting again, and the metrics hear that the suspension was lifted.
    ControlStore(tmp_path).resume("node")
    result = run(rec, ControlStore(tmp_path).read())
    assert result.outcome == "converged"
    assert engine.applied == [("promote@drbd:vm100",)]
    assert metrics.suspended == [("node", True), ("node", False)]


def test_vm_suspension_drops_only_that_vms_actions(world: Any, tmp_path: Path) -> None:
    rec, source, engine, _ = world
    source.set(SHA_A, cluster=("vm100", "vm101"))
    engine.planned = [action("drbd-up", "vm100"), action("drbd-up", "vm101")]
    ControlStore(tmp_path).suspend("vm101", "investigating", "bob")
    result = run(rec, ControlStore(tmp_path).read())
    assert engine.applied == [("drbd-up@drbd:vm100",)]
    phases = {r.vm: r.phase for r in result.resources}
    assert phases == {"vm100": "ready", "vm101": "suspended"}


def test_two_node_operations_wait_for_the_peer_to_apply_the_same_revision(world: Any) -> None:
    rec, source, engine, _ = world
    source.set(SHA_B)
    engine.planned = [action("drbd-resize"), action("create-lv", key="lv:vg0/root100")]
    result = run(rec, peers=(peer_at(SHA_A),))
    assert engine.applied == [("create-lv@lv:vg0/root100",)]
    waiting = [a for a in result.actions if a.result == "waiting"]
    assert len(waiting) == 1
    assert "waiting for peer himbeere to apply revision bbbbbbbbbbbb (it has aaaaaaaaaaaa)" in waiting[0].message
    assert result.outcome == "progressing"
    # The peer catches up: the resize runs.
    run(rec, peers=(peer_at(SHA_B),))
    assert engine.applied[-1] == ("drbd-resize@drbd:vm100", "create-lv@lv:vg0/root100")


def test_unreachable_peer_also_holds_two_node_operations(world: Any) -> None:
    rec, source, engine, _ = world
    source.set(SHA_A)
    engine.planned = [action("remove-lv", key="lv:vg0/root100")]
    run(rec, peers=(PeerStatus(node="himbeere", reachable=False, error="timed out"),))
    assert engine.applied == [()]


def test_boot_gate_holds_promotion_until_fetched_and_peer_seen(world: Any) -> None:
    rec, source, engine, _ = world
    source.set(SHA_A)
    engine.planned = [action("drbd-up"), action("promote"), action("start-domain", key="domain:vm100")]
    closed = BootGate(fetched=False, fetch_deadline_passed=False, peers_seen=frozenset())
    run(rec, gate=closed)
    assert engine.applied == [("drbd-up@drbd:vm100",)]
    assert rec.status is not None
    assert "first fetch" in rec.status.boot_gate
    fetched = BootGate(fetched=True, fetch_deadline_passed=False, peers_seen=frozenset())
    run(rec, gate=fetched)
    assert engine.applied[-1] == ("drbd-up@drbd:vm100",)
    assert "waiting to see peer himbeere" in rec.status.boot_gate
    run(rec, gate=OPEN)
    assert engine.applied[-1] == ("drbd-up@drbd:vm100", "promote@drbd:vm100", "start-domain@domain:vm100")
    assert rec.status.boot_gate == ""


def test_boot_gate_opens_when_drbd_proves_the_peer_cannot_write(world: Any) -> None:
    rec, source, engine, _ = world
    source.set(SHA_A)
    engine.planned = [action("promote")]
    unseen = BootGate(fetched=False, fetch_deadline_passed=True, peers_seen=frozenset())
    engine.drbd = DrbdState(kernel_version="9.2.12", resources=(
        drbd_resource("vm100", peer_role="Unknown", peer_disk="Outdated", connection="Connecting"),))
    run(rec, gate=unseen)
    assert engine.applied == [("promote@drbd:vm100",)]
    # A disconnected peer that may still be UpToDate proves nothing: hold.
    engine.drbd = DrbdState(kernel_version="9.2.12", resources=(
        drbd_resource("vm100", peer_role="Unknown", peer_disk="DUnknown", connection="Connecting"),))
    run(rec, gate=unseen)
    assert engine.applied[-1] == ()


def test_observation_failure_is_an_error_pass_with_the_reason(world: Any) -> None:
    rec, source, engine, _ = world
    source.set(SHA_A)
    engine.fail_observe = True
    result = run(rec)
    assert result.outcome == "error"
    assert engine.applied == []
    assert rec.status is not None
    assert any("observation failed: lvs timed out" in e for e in rec.status.recent_errors)


def test_the_peer_view_carries_the_peers_backing_sizes(world: Any) -> None:
    rec, source, engine, _ = world
    source.set(SHA_A)
    run(rec, peer_backing={"himbeere": {"vm100": 4096}})
    assert engine.peer_views[-1] is not None
    assert engine.peer_views[-1].backing_bytes == {"vm100": 4096}


def test_split_brain_records_go_both_ways_through_peer_status(world: Any) -> None:
    """The peer's records reach the plan (they name the incident with this node's); this node's own records,
    as observed, are what it serves its peer."""
    rec, source, engine, _ = world
    source.set(SHA_A)
    mine, theirs = "1" * 16 + ":" + "2" * 16, "3" * 16 + ":" + "2" * 16
    engine.drbd = DrbdState(resources=(DrbdResourceState(name="vm100", role="Primary", split_brain=True,
                                                         split_brain_record=mine),))
    run(rec, peer_backing={"himbeere": {}}, peer_split_brain={"himbeere": {"vm100": theirs}})
    assert engine.peer_views[-1] is not None
    assert engine.peer_views[-1].split_brain == {"vm100": theirs}
    assert rec.split_brain_records == {"vm100": mine}


def test_status_survives_a_restart_of_the_daemon(world: Any, tmp_path: Path) -> None:
    rec, source, engine, metrics = world
    source.set(SHA_A)
    run(rec)
    again = Reconciler(node="erdbeere", state_dir=tmp_path, source=source, engine=engine,  # type: ignore[arg-type]
                       clock=VirtualClock(), liveness=Liveness(VirtualClock().monotonic), metrics=metrics)
    assert again.last_applied is not None
    assert again.last_applied.sha == SHA_A


def test_a_repeated_error_is_listed_once_with_its_latest_time(world: Any) -> None:
    rec, source, engine, _ = world
    source.set(SHA_A)
    engine.fail_observe = True
    run(rec)
    rec.clock.advance(60)
    run(rec)
    assert rec.status is not None
    matching = [e for e in rec.status.recent_errors if "lvs timed out" in e]
    assert len(matching) == 1
    assert matching[0].startswith(f"{rec.clock.time():.0f} ")


def test_a_node_missing_from_the_revision_is_named_with_the_known_ones(world: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.desired.errors import UnknownNodeError

    rec, source, engine, _ = world
    source.set(SHA_A)

    def unknown(cluster: Any, node: str) -> Any:
        raise UnknownNodeError(node, ("himbeere", "kiwi"))

    monkeypatch.setattr(engine, "expand", unknown)
    result = run(rec)
    assert result.outcome == "error"
    assert engine.applied == []
    assert rec.status is not None
    assert any(e.endswith("cannot be expanded for node erdbeere: node 'erdbeere' is not declared in cluster.yaml "
                          "(known: himbeere, kiwi)") for e in rec.status.recent_errors), rec.status.recent_errors


def _with_primary(primary: str) -> Any:
    from tests.daemon.fakes import desired_node

    node = desired_node("erdbeere")
    vms = tuple(vm.model_copy(update={"primary_node": primary, "domain": _domain(vm.name)}) for vm in node.vms)
    return node.model_copy(update={"vms": vms})


def _domain(name: str) -> Any:
    from reconciler.model.desired import DesiredDomain

    return DesiredDomain(vm=name, name=name, memory_mib=512, maxmem_mib=512, vcpus=1, maxvcpus=1, disks=(),
                         config_path=f"/etc/xen/{name}.cfg", config_text="")


def _running(*names: str, domid: int = 1) -> Any:
    from reconciler.model.observed import DomainState, ObservedNode

    return ObservedNode(node="erdbeere", domains=tuple(DomainState(name=n, domid=domid, state="blocked",
                                                                   memory_mib=512) for n in names))


def test_only_a_revision_that_moves_a_vm_away_lets_the_planner_stop_its_domain(world: Any) -> None:
    rec, *_ = world
    # First pass after a start: the VM already runs here against the repository (a failover by hand,
    # or a restart): nothing counts as moved.
    assert rec.moves.track(_with_primary("himbeere"), _running("vm100")) == frozenset()
    # A revision designates erdbeere, then one moves the VM to himbeere: that move is recorded...
    assert rec.moves.track(_with_primary("erdbeere"), _running("vm100")) == frozenset()
    assert rec.moves.track(_with_primary("himbeere"), _running("vm100")) == frozenset({"vm100"})
    # ... kept while the domain still runs here (the handover may take several passes) ...
    assert rec.moves.track(_with_primary("himbeere"), _running("vm100")) == frozenset({"vm100"})
    # ... and forgotten once it stopped, so a later start by hand here is left alone.
    assert rec.moves.track(_with_primary("himbeere"), _running()) == frozenset()
    assert rec.moves.track(_with_primary("himbeere"), _running("vm100")) == frozenset()


def test_the_planner_is_told_what_moved(world: Any) -> None:
    rec, source, engine, _ = world
    source.set(SHA_A)
    run(rec)
    assert engine.moved_away == [frozenset()]


def test_a_move_interrupted_by_a_restart_carries_on(world: Any, tmp_path: Path) -> None:
    rec, source, engine, metrics = world
    rec.moves.track(_with_primary("erdbeere"), _running("vm100"))
    assert rec.moves.track(_with_primary("himbeere"), _running("vm100")) == frozenset({"vm100"})
    # The daemon restarts before the domain stopped here: the move it saw is kept, and only that one.
    clock = VirtualClock()
    again = Reconciler(node="erdbeere", state_dir=tmp_path, source=source, engine=engine,  # type: ignore[arg-type]
                       clock=clock, liveness=Liveness(clock.monotonic), metrics=metrics)
    assert again.moves.track(_with_primary("himbeere"), _running("vm100")) == frozenset({"vm100"})
    # Once the domain stopped, the move is over, also for the next restart.
    assert again.moves.track(_with_primary("himbeere"), _running()) == frozenset()
    third = Reconciler(node="erdbeere", state_dir=tmp_path, source=source, engine=engine,  # type: ignore[arg-type]
                       clock=clock, liveness=Liveness(clock.monotonic), metrics=metrics)
    assert third.moves.track(_with_primary("himbeere"), _running("vm100")) == frozenset()
    assert not (tmp_path / "moved-away.json").exists()


def test_a_domain_started_again_while_the_daemon_was_stopped_is_not_the_one_that_moved(
        world: Any, tmp_path: Path) -> None:
    rec, source, engine, metrics = world
    rec.moves.track(_with_primary("erdbeere"), _running("vm100", domid=7))
    assert rec.moves.track(_with_primary("himbeere"), _running("vm100", domid=7)) == frozenset({"vm100"})
    # Stopped, then started again by hand (a new domain id) before the daemon came back: left alone.
    clock = VirtualClock()
    again = Reconciler(node="erdbeere", state_dir=tmp_path, source=source, engine=engine,  # type: ignore[arg-type]
                       clock=clock, liveness=Liveness(clock.monotonic), metrics=metrics)
    assert again.moves.track(_with_primary("himbeere"), _running("vm100", domid=9)) == frozenset()


def test_a_foreign_moved_away_file_moves_nothing(world: Any, tmp_path: Path) -> None:
    _, source, engine, metrics = world
    for text in ('{"vm100; rm -rf /": 1}', '{"vm100": true}', '["vm100"]', "not json",
                 "{" + '"vm100": 1, ' * 20000 + '"x": 1}'):
        (tmp_path / "moved-away.json").write_text(text)
        clock = VirtualClock()
        rec = Reconciler(node="erdbeere", state_dir=tmp_path, source=source, engine=engine,  # type: ignore[arg-type]
                         clock=clock, liveness=Liveness(clock.monotonic), metrics=metrics)
        assert rec.moves.track(_with_primary("himbeere"), _running("vm100")) == frozenset(), text

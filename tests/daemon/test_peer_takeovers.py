"""The peer channel carries the VMs a node runs after an automatic failover: what the survivor reports, what the
designated primary believes of it (only well-formed entries, nothing from a peer of an older version, nothing from
a peer that does not answer now), and that a change wakes a pass."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from reconciler.daemon.loop.config import DaemonConfig
from reconciler.daemon.loop.gating import BootGate
from reconciler.daemon.loop.reconcile import PassContext, Reconciler
from reconciler.daemon.loop.runtime import Daemon
from reconciler.daemon.node.control import ControlState
from reconciler.daemon.peers.failover import FAILOVER_ID, failover_id, takeovers_held
from reconciler.daemon.peers.peer import PeerAnswer, PeerServer, fetch_peer_report, takeovers_json
from reconciler.daemon.peers.peer_monitor import PeerEndpoint, PeerMonitor
from reconciler.daemon.schedule.clock import VirtualClock
from reconciler.daemon.schedule.liveness import Liveness
from reconciler.model.status import FailoverStatus, NodeStatus, PeerStatus, PeerTakeover
from tests.daemon.fakes import SHA_A, FakeEngine, FakeSource
from tests.source.gitrepo import WorkRepo

pytestmark = pytest.mark.timeout(30)

KEY = b"0123456789abcdef0123456789abcdef"
FO = "fo-0123456789ab"
TAKEN = PeerTakeover(vm="vm100", id=FO, from_node="erdbeere")


class _OlderAnswer(PeerAnswer):
    """What a daemon of the previous version answers: no ``takeovers`` field at all."""

    def to_json(self) -> bytes:
        data = asdict(self)
        del data["takeovers"]
        return json.dumps(data, sort_keys=True).encode()


@pytest.fixture
def answers() -> Iterator[tuple[list[PeerAnswer], PeerServer]]:
    """himbeere's peer server; the test sets what it answers (the last item of the list)."""
    current = [PeerAnswer(node="himbeere", applied_revision=SHA_A, in_force_revision=SHA_A, ready=False)]
    srv = PeerServer("127.0.0.1", 0, lambda: current[-1], KEY)
    srv.start()
    yield current, srv
    srv.shutdown()


def _ask(srv: PeerServer) -> PeerStatus:
    return fetch_peer_report("himbeere", "127.0.0.1", srv.port, KEY, sender="erdbeere").status


def test_the_survivor_reports_the_vms_it_took_over_and_only_well_formed_entries_are_believed(
        answers: tuple[list[PeerAnswer], PeerServer]) -> None:
    current, srv = answers
    wire: dict[str, Any] = takeovers_json((TAKEN,))
    assert wire == {"vm100": {"id": FO, "from_node": "erdbeere"}}
    wire |= {"vm101": {"id": "rm -rf /", "from_node": "erdbeere"}, "../x": {"id": FO, "from_node": "erdbeere"},
             "vm102": {"id": FO, "from_node": "-o"}, "vm103": "fo-0123456789ab", "vm104": {"id": FO}}
    current.append(PeerAnswer(node="himbeere", applied_revision=SHA_A, in_force_revision=SHA_A, ready=False,
                              takeovers=wire))
    status = _ask(srv)
    assert status.reachable
    assert status.takeovers == (TAKEN,)


def test_a_peer_of_the_previous_version_reports_nothing_known(answers: tuple[list[PeerAnswer], PeerServer]) -> None:
    current, srv = answers
    current.append(_OlderAnswer(node="himbeere", applied_revision=SHA_A, in_force_revision=SHA_A, ready=True))
    assert b"takeovers" not in current[-1].to_json()
    status = _ask(srv)
    assert status.reachable
    assert status.applied_revision == SHA_A
    assert status.takeovers == ()
    # And a field of another shape altogether.
    current.append(PeerAnswer(node="himbeere", applied_revision=SHA_A, in_force_revision=SHA_A, ready=True,
                              takeovers=["vm100"]))  # type: ignore[arg-type]
    assert _ask(srv).takeovers == ()


def test_a_takeover_reported_or_ended_wakes_a_pass(answers: tuple[list[PeerAnswer], PeerServer]) -> None:
    current, srv = answers
    changes: list[PeerStatus] = []
    monitor = PeerMonitor((PeerEndpoint("himbeere", "127.0.0.1", srv.port),), KEY, interval=3.0,
                          on_change=changes.append, sender="erdbeere")
    monitor.poll_once()
    monitor.poll_once()
    assert len(changes) == 1  # the first answer; the same again is no news
    current.append(PeerAnswer(node="himbeere", applied_revision=SHA_A, in_force_revision=SHA_A, ready=False,
                              takeovers=takeovers_json((TAKEN,))))
    monitor.poll_once()
    assert [c.takeovers for c in changes] == [(), (TAKEN,)]
    current.append(PeerAnswer(node="himbeere", applied_revision=SHA_A, in_force_revision=SHA_A, ready=False))
    monitor.poll_once()
    assert [c.takeovers for c in changes] == [(), (TAKEN,), ()]


def test_a_node_reports_only_the_failovers_in_force_that_moved_a_vm_to_it() -> None:
    def status(vm: str, **fields: Any) -> FailoverStatus:
        base: dict[str, Any] = {"id": failover_id(vm, "himbeere", 1000.0), "state": "running",
                                "from_node": "erdbeere", "to_node": "himbeere", "designated": "erdbeere"}
        return FailoverStatus(vm=vm, **(base | fields))

    statuses = (status("vm100"), status("vm101", state="decided"), status("vm102", state="ended"),
                status("vm103", state="failed"), status("vm104", watching="erdbeere lost"),
                status("vm105", state=None, id=""),  # only watching: no failover yet
                status("vm106", from_node="himbeere", to_node="erdbeere", designated="erdbeere"),  # not this node's
                status("vm107", designated="himbeere"))  # its own VM taken back: it runs where the desired state says
    held = takeovers_held(statuses, "himbeere")
    assert [t.vm for t in held] == ["vm100", "vm101", "vm104"]
    assert all(FAILOVER_ID.fullmatch(t.id) and t.from_node == "erdbeere" for t in held)


def test_the_daemons_peer_server_answers_with_what_its_last_status_holds(tmp_path: Path) -> None:
    repo = WorkRepo(tmp_path / "repo", bare_server=False)
    repo.commit("one", {"vms.txt": "vm100\n"})
    config = DaemonConfig(node="himbeere", repo=str(repo.work), state_dir=tmp_path / "state", drbd_events=False)
    daemon = Daemon(config, host=None, engine=FakeEngine())  # type: ignore[arg-type]
    assert daemon._answer().takeovers == {}  # no pass yet: nothing
    daemon.reconciler.report.status = NodeStatus(node="himbeere", failovers=(FailoverStatus(
        vm="vm100", id=FO, state="running", from_node="erdbeere", to_node="himbeere", designated="erdbeere"),))
    answer = daemon._answer()
    assert answer.takeovers == {"vm100": {"id": FO, "from_node": "erdbeere"}}
    assert json.loads(answer.to_json())["takeovers"] == answer.takeovers


@pytest.fixture
def rec(tmp_path: Path) -> tuple[Reconciler, FakeEngine, VirtualClock]:
    clock = VirtualClock()
    source = FakeSource(tmp_path)
    source.set(SHA_A)
    engine = FakeEngine()
    reconciler = Reconciler(node="erdbeere", state_dir=tmp_path, source=source, engine=engine,  # type: ignore[arg-type]
                            clock=clock, liveness=Liveness(clock.monotonic))
    return reconciler, engine, clock


def test_the_plan_learns_the_peers_takeovers_only_while_the_peer_answers_now(
        rec: tuple[Reconciler, FakeEngine, VirtualClock]) -> None:
    reconciler, engine, clock = rec
    gate = BootGate(fetched=True, fetch_deadline_passed=True, peers_seen=frozenset({"himbeere"}))

    def plan_with(peer: PeerStatus) -> tuple[PeerTakeover, ...] | None:
        reconciler.run_pass(ControlState(), PassContext(peers=(peer,), gate=gate))
        view = engine.peer_views[-1]
        return view.takeovers if view is not None else None

    answering = PeerStatus(node="himbeere", reachable=True, applied_revision=SHA_A, checked_at=clock.time(),
                           takeovers=(TAKEN,))
    assert plan_with(answering) == (TAKEN,)
    # Unreachable now: what it said before holds nothing back (and its sizes are not known here either).
    assert plan_with(answering.model_copy(update={"reachable": False})) is None
    # A monitor that stopped a while ago: its last word is not believed.
    clock.advance(61.0)
    assert plan_with(answering) is None
    # The backing sizes still reach the plan without the takeovers.
    reconciler.run_pass(ControlState(), PassContext(peers=(answering,), gate=gate,
                                                peer_backing={"himbeere": {"vm100": 1 << 30}}))
    view = engine.peer_views[-1]
    assert view is not None
    assert view.backing_bytes == {"vm100": 1 << 30}
    assert view.takeovers == ()

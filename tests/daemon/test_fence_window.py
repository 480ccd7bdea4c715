"""fence-peer's outdate endpoint on a Primary inside a live migration's window, on a scripted node: it gives way
(demote, then outdate) only when its window is open, this node's migration record and the peer's last report
show that the peer keeps the data, and DRBD lets it demote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.backends.drbd.fence_handler import exit_code
from reconciler.daemon.loop.fence_records import peer_keeps
from reconciler.daemon.peers.fence import OUTCOMES, outdate_local
from reconciler.model.status import MigrationPhase, PeerMigration, PeerStatus
from tests.observe.scripted import Answer, ScriptedHost

pytestmark = pytest.mark.timeout(30)

ROLE = ("drbdadm", "role", "vm100")
SHOW = ("drbdsetup", "show", "vm100")
CSTATE = ("drbdadm", "cstate", "vm100")
DSTATE = ("drbdadm", "dstate", "vm100")
SECONDARY = ("drbdadm", "secondary", "vm100")
OUTDATE = ("drbdadm", "outdate", "vm100")

# drbdsetup show of DRBD 9 while a window is open: the allowance in the connection's net section.
SHOW_OPEN = '''resource "vm100" {
    options {
    }
    _this_host {
        node-id\t\t\t1;
        volume 0 {
            device\t\t\tminor 0;
            disk\t\t\t"/dev/mapper/root100";
            meta-disk\t\t\tinternal;
        }
    }
    connection {
        _peer_node_id 0;
        path {
            _this_host ipv4 192.168.2.2:7788;
            _remote_host ipv4 192.168.2.1:7788;
        }
        net {
            allow-two-primaries\tyes;
            fencing         \tresource-only;
            _name           \t"erdbeere";
        }
    }
}
'''
SHOW_CLOSED = SHOW_OPEN.replace("            allow-two-primaries\tyes;\n", "")
HELD_OPEN = ("vm100: State change failed: (-12) Device is held open by someone\n"
             "Command 'drbdsetup secondary vm100' terminated with exit code 11\n")


DEMOTED = Answer()


def _host(show: Answer, *, secondary: Answer = DEMOTED, cstate: str = "Connecting\n",
          dstate: str = "UpToDate\n") -> ScriptedHost:
    return ScriptedHost(node="himbeere", answers={
        ROLE: Answer("Primary\n"), SHOW: show, CSTATE: Answer(cstate), SECONDARY: secondary,
        DSTATE: Answer(dstate), OUTDATE: Answer(),
    })


def _managed() -> frozenset[str]:
    return frozenset({"vm100"})


def _keeps(resource: str) -> tuple[bool, str]:
    return True, ""  # the records say the peer keeps the data (what they say is tested below)


def test_inside_an_open_window_a_primary_that_can_demote_gives_way_and_is_outdated() -> None:
    host = _host(Answer(SHOW_OPEN))
    answer = outdate_local(host, "vm100", _managed, peer_keeps=_keeps)
    assert (answer.node, answer.resource, answer.outcome) == ("himbeere", "vm100", "outdated")
    assert exit_code(OUTCOMES[answer.outcome]) == 4  # the asker, running the domain, keeps its disk
    assert host.calls.index(SECONDARY) < host.calls.index(OUTDATE)
    assert host.calls[:2] == [ROLE, SHOW]


def test_inside_an_open_window_a_primary_whose_device_is_open_stays_primary() -> None:
    host = _host(Answer(SHOW_OPEN), secondary=Answer(stderr=HELD_OPEN, exit=11))
    answer = outdate_local(host, "vm100", _managed, peer_keeps=_keeps)
    assert answer.outcome == "primary"
    assert exit_code(OUTCOMES[answer.outcome]) == 6
    assert "(-12) Device is held open by someone" in answer.detail
    assert "inside a live migration window" in answer.detail
    assert OUTDATE not in host.calls


def test_with_the_window_closed_a_primary_answers_primary_without_trying_to_demote() -> None:
    host = _host(Answer(SHOW_CLOSED))
    answer = outdate_local(host, "vm100", _managed)
    assert answer.outcome == "primary"
    assert answer.detail == "vm100 is Primary on himbeere (no live migration window is open)"
    assert host.calls == [ROLE, SHOW]


@pytest.mark.parametrize("show", [Answer(stderr="vm100: No such resource\n", exit=10), Answer("resource {\n")])
def test_an_unreadable_window_counts_as_closed(show: Answer) -> None:
    host = _host(show)
    answer = outdate_local(host, "vm100", _managed)
    assert answer.outcome == "primary"
    assert "could not be read" in answer.detail
    assert SECONDARY not in host.calls


def test_inside_an_open_window_a_primary_still_connected_is_not_demoted_yet() -> None:
    host = _host(Answer(SHOW_OPEN), cstate="Connected\n")
    answer = outdate_local(host, "vm100", _managed, peer_keeps=_keeps)
    assert answer.outcome == "connected"
    assert SECONDARY not in host.calls


def test_a_primary_that_gave_way_and_was_already_outdated_answers_already() -> None:
    host = _host(Answer(SHOW_OPEN), dstate="Outdated\n")
    answer = outdate_local(host, "vm100", _managed, peer_keeps=_keeps)
    assert answer.outcome == "already"
    assert SECONDARY in host.calls
    assert OUTDATE not in host.calls


# -- the migration's records: who keeps the data ---------------------------------------------------------------

REVISION = "a" * 40
SOURCE, TARGET = "erdbeere", "himbeere"
LOST = "the replication link to {} was lost inside the window"


def _records(state_dir: Path, node: str, phase: MigrationPhase, *, stop: str = "", reason: str = "") -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    record = {"vm": "vm100", "revision": REVISION, "source": SOURCE, "target": TARGET, "phase": phase,
              "since": 1.0, "started_at": 1.0, "stop": stop, "reason": reason}
    (state_dir / "migrations.json").write_text(json.dumps({"vm100": record}))
    return state_dir


def _peer(node: str, phase: MigrationPhase, reason: str = "", revision: str = REVISION) -> tuple[PeerStatus, ...]:
    return (PeerStatus(node=node, reachable=True,
                       migrations=(PeerMigration(vm="vm100", revision=revision, phase=phase, reason=reason),)),)



def _ask(state_dir: Path, node: str, peers: tuple[PeerStatus, ...]) -> tuple[ScriptedHost, str, str]:
    """The outdate endpoint on ``node`` inside an open window, its device not held (the domain is not here)."""
    other = SOURCE if node == TARGET else TARGET
    host = _host(Answer(SHOW_OPEN))
    answer = outdate_local(host, "vm100", _managed,
                           peer_keeps=lambda r: peer_keeps(state_dir, node, r, {"vm100": ("vm100", other)}, peers))
    return host, answer.outcome, answer.detail


def test_without_a_migration_record_a_primary_in_the_window_never_gives_way(tmp_path: Path) -> None:
    host, outcome, detail = _ask(tmp_path, TARGET, _peer(SOURCE, "target-promoted"))
    assert outcome == "primary"
    assert "inside a live migration window and stays so: this node has no record" in detail
    assert SECONDARY not in host.calls
    assert OUTDATE not in host.calls


def test_the_target_that_has_not_received_the_domain_gives_way(tmp_path: Path) -> None:
    state = _records(tmp_path, TARGET, "target-promoted")
    host, outcome, _ = _ask(state, TARGET, _peer(SOURCE, "target-promoted"))
    assert outcome == "outdated"
    assert host.calls.index(SECONDARY) < host.calls.index(OUTDATE)


def test_the_target_whose_keeper_aborted_on_the_cut_before_the_move_still_gives_way(tmp_path: Path) -> None:
    # The keeper may see the cut before the handler asks: it aborts then, which it does only before the move.
    state = _records(tmp_path, TARGET, "aborting", stop="aborted", reason=LOST.format(SOURCE))
    _, outcome, _ = _ask(state, TARGET, _peer(SOURCE, "aborting", LOST.format(TARGET)))
    assert outcome == "outdated"


def test_the_source_after_the_domain_reached_the_target_gives_way(tmp_path: Path) -> None:
    state = _records(tmp_path, SOURCE, "migrated")
    _, outcome, _ = _ask(state, SOURCE, _peer(TARGET, "migrated"))
    assert outcome == "outdated"


def test_the_source_before_the_move_does_not_give_way(tmp_path: Path) -> None:
    state = _records(tmp_path, SOURCE, "target-promoted")
    host, outcome, detail = _ask(state, SOURCE, _peer(TARGET, "target-promoted"))
    assert outcome == "primary"
    assert "may not have reached the target" in detail
    assert SECONDARY not in host.calls


@pytest.mark.parametrize(("source_phase", "target_phase", "source_reason", "target_reason"), [
    # The guest crashed on the source after the target was promoted: the source's keeper sees the domain gone
    # and calls it "migrated"; the target never received it (before and after its keeper saw the cut).
    ("migrated", "target-promoted", "", ""),
    ("migrated", "aborting", "", LOST.format(SOURCE)),
    # Both saw the cut before the move, then the guest shut down.
    ("aborting", "aborting", LOST.format(TARGET), LOST.format(SOURCE)),
    # The guest stopped during xl migrate.
    ("migrating", "migrating", "", ""),
])
def test_with_the_domain_running_nowhere_at_most_one_side_gives_way(
        tmp_path: Path, source_phase: MigrationPhase, target_phase: MigrationPhase, source_reason: str,
        target_reason: str) -> None:
    stops = {n: ("aborted" if p == "aborting" else "") for n, p in ((SOURCE, source_phase), (TARGET, target_phase))}
    source = _records(tmp_path / SOURCE, SOURCE, source_phase, stop=stops[SOURCE], reason=source_reason)
    target = _records(tmp_path / TARGET, TARGET, target_phase, stop=stops[TARGET], reason=target_reason)
    outcomes = [_ask(source, SOURCE, _peer(TARGET, target_phase, target_reason))[1],
                _ask(target, TARGET, _peer(SOURCE, source_phase, source_reason))[1]]
    assert outcomes.count("outdated") <= 1, outcomes
    assert "primary" in outcomes


@pytest.mark.parametrize("peers", [(), (PeerStatus(node=SOURCE, reachable=False),),
                                   _peer(SOURCE, "target-promoted", revision="b" * 40)])
def test_without_the_peer_s_report_of_this_migration_a_primary_does_not_give_way(
        tmp_path: Path, peers: tuple[PeerStatus, ...]) -> None:
    state = _records(tmp_path, TARGET, "target-promoted")
    host, outcome, detail = _ask(state, TARGET, peers)
    assert outcome == "primary"
    assert "the peer's last report shows no part" in detail
    assert SECONDARY not in host.calls


@pytest.mark.parametrize(("stop", "reason"), [("held", "xl says undefined"), ("aborted", "window-open lasted")])
def test_a_migration_stopped_for_another_reason_does_not_give_way(tmp_path: Path, stop: str, reason: str) -> None:
    state = _records(tmp_path, TARGET, "held" if stop == "held" else "aborting", stop=stop, reason=reason)
    _, outcome, detail = _ask(state, TARGET, _peer(SOURCE, "target-promoted"))
    assert outcome == "primary"
    assert f"is {stop} here" in detail

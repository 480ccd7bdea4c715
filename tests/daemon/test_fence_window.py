"""fence-peer's outdate endpoint on a Primary inside a live migration's window, on a scripted node: it gives way
(demote, then outdate) only when its window is open and DRBD lets it demote."""

from __future__ import annotations

import pytest

from reconciler.backends.drbd.fence_handler import exit_code
from reconciler.daemon.peers.fence import OUTCOMES, outdate_local
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


def test_inside_an_open_window_a_primary_that_can_demote_gives_way_and_is_outdated() -> None:
    host = _host(Answer(SHOW_OPEN))
    answer = outdate_local(host, "vm100", _managed)
    assert (answer.node, answer.resource, answer.outcome) == ("himbeere", "vm100", "outdated")
    assert exit_code(OUTCOMES[answer.outcome]) == 4  # the asker, running the domain, keeps its disk
    assert host.calls.index(SECONDARY) < host.calls.index(OUTDATE)
    assert host.calls[:2] == [ROLE, SHOW]


def test_inside_an_open_window_a_primary_whose_device_is_open_stays_primary() -> None:
    host = _host(Answer(SHOW_OPEN), secondary=Answer(stderr=HELD_OPEN, exit=11))
    answer = outdate_local(host, "vm100", _managed)
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
    answer = outdate_local(host, "vm100", _managed)
    assert answer.outcome == "connected"
    assert SECONDARY not in host.calls


def test_a_primary_that_gave_way_and_was_already_outdated_answers_already() -> None:
    host = _host(Answer(SHOW_OPEN), dstate="Outdated\n")
    answer = outdate_local(host, "vm100", _managed)
    assert answer.outcome == "already"
    assert SECONDARY in host.calls
    assert OUTDATE not in host.calls

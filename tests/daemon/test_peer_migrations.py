"""The peer channel carries each node's live migrations (VM, revision, phase, why it stopped): what the other
node believes of them is only what has their shape, and a peer of an older version reports none."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.daemon.peers.peer import PeerAnswer, PeerServer, fetch_peer_report, migrations_json
from reconciler.model.status import PeerMigration, PeerStatus
from tests.daemon.fakes import SHA_A

pytestmark = pytest.mark.timeout(30)

KEY = b"0123456789abcdef0123456789abcdef"
OPEN = PeerMigration(vm="vm100", revision=SHA_A, phase="window-open")
ABORTED = PeerMigration(vm="vm101", revision=SHA_A, phase="aborted", reason="xl migrate failed")


@pytest.fixture
def answers() -> Iterator[tuple[list[PeerAnswer], PeerServer]]:
    current = [PeerAnswer(node="himbeere", applied_revision=SHA_A, in_force_revision=SHA_A, ready=False)]
    srv = PeerServer("127.0.0.1", 0, lambda: current[-1], KEY)
    srv.start()
    yield current, srv
    srv.shutdown()


def _ask(srv: PeerServer) -> PeerStatus:
    return fetch_peer_report("himbeere", "127.0.0.1", srv.port, KEY, sender="erdbeere").status


def test_phases_travel_and_only_well_formed_entries_are_believed(answers: tuple[list[PeerAnswer], PeerServer]) -> None:
    current, srv = answers
    wire: dict[str, Any] = migrations_json((OPEN, ABORTED))
    wire |= {"vm102": {"revision": "HEAD", "phase": "done"}, "vm103": {"revision": SHA_A, "phase": "flying"},
             "../x": {"revision": SHA_A, "phase": "done"}, "vm104": "window-open",
             "vm105": {"revision": SHA_A, "phase": "done", "reason": 7}}
    current.append(PeerAnswer(node="himbeere", applied_revision=SHA_A, in_force_revision=SHA_A, ready=False,
                              migrations=wire))
    status = _ask(srv)
    assert status.reachable
    assert status.migrations == (OPEN, ABORTED)


def test_a_peer_without_the_field_reports_none(answers: tuple[list[PeerAnswer], PeerServer]) -> None:
    _, srv = answers
    assert _ask(srv).migrations == ()

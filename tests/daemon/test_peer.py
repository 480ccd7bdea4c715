"""Peer status over HTTP with a shared HMAC key: answers, wrong keys, replays and forged answers."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest

from reconciler.daemon.peers.peer import (
    PATH,
    PeerAnswer,
    PeerServer,
    fetch_peer,
    fetch_peer_answer,
    fetch_peer_report,
    parse_endpoint,
)
from reconciler.daemon.peers.peerauth import request_headers

KEY = b"0123456789abcdef0123456789abcdef"


@pytest.fixture
def server() -> Iterator[PeerServer]:
    answer = PeerAnswer(node="himbeere", applied_revision="c" * 40, in_force_revision="c" * 40, ready=True,
                        backing_bytes={"vm100": 1 << 30})
    srv = PeerServer("127.0.0.1", 0, lambda: answer, KEY)
    srv.start()
    yield srv
    srv.shutdown()


def test_the_peer_answers_with_its_applied_revision_and_backing_sizes(server: PeerServer) -> None:
    status, backing = fetch_peer_answer("himbeere", "127.0.0.1", server.port, KEY, sender="erdbeere")
    assert status.reachable
    assert status.applied_revision == "c" * 40
    assert status.ready
    assert backing == {"vm100": 1 << 30}


def test_a_wrong_key_is_refused(server: PeerServer) -> None:
    status = fetch_peer("himbeere", "127.0.0.1", server.port, b"x" * 32, sender="erdbeere")
    assert not status.reachable
    assert "401" in status.error


def test_a_replayed_request_is_refused(server: PeerServer) -> None:
    headers = request_headers(KEY, sender="erdbeere", target="himbeere", method="GET", path=PATH)
    codes = []
    for _ in range(2):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3)
        conn.request("GET", "/v1/status", headers=headers)
        codes.append(conn.getresponse().status)
        conn.close()
    assert codes == [200, 401]


def test_a_stale_request_is_refused(server: PeerServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3)
    conn.request("GET", "/v1/status", headers=request_headers(KEY, sender="erdbeere", target="himbeere",
                                                              method="GET", path=PATH, now=1000.0))
    assert conn.getresponse().status == 401
    conn.close()


def test_an_answer_from_an_unauthenticated_server_is_not_believed() -> None:
    answer = PeerAnswer(node="himbeere", applied_revision="d" * 40, in_force_revision=None, ready=True)
    impostor = PeerServer("127.0.0.1", 0, lambda: answer, None)  # signs nothing
    impostor.start()
    try:
        status = fetch_peer("himbeere", "127.0.0.1", impostor.port, KEY, sender="erdbeere")
    finally:
        impostor.shutdown()
    assert not status.reachable
    assert "bad signature" in status.error


def test_a_request_for_another_node_is_refused(server: PeerServer) -> None:
    status = fetch_peer("kiwi", "127.0.0.1", server.port, KEY, sender="erdbeere")
    assert not status.reachable
    assert "401" in status.error
    assert server.refused == {"request is for node kiwi, not himbeere": 1}


def test_an_unreachable_peer_is_reported_not_raised() -> None:
    status = fetch_peer("himbeere", "127.0.0.1", 1, KEY, sender="erdbeere", timeout=1)
    assert not status.reachable
    assert status.error


def test_no_auth_mode_works_when_both_sides_agree() -> None:
    answer = PeerAnswer(node="himbeere", applied_revision=None, in_force_revision=None, ready=False)
    srv = PeerServer("127.0.0.1", 0, lambda: answer, None)
    srv.start()
    try:
        status = fetch_peer("himbeere", "127.0.0.1", srv.port, None, sender="erdbeere")
    finally:
        srv.shutdown()
    assert status.reachable
    assert status.applied_revision is None


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.2:9791", ("10.0.0.2", 9791)), ("10.0.0.2", ("10.0.0.2", 9791)), ("[fe80::1]:80", ("fe80::1", 80)),
])
def test_parse_endpoint(text: str, expected: tuple[str, int]) -> None:
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize("text", [":80", "host:port", "host:70000"])
def test_parse_endpoint_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"no host|port"):
        parse_endpoint(text)


def test_the_peer_reports_its_split_brain_records_and_nothing_that_is_not_one() -> None:
    record = "8C5E0D1F2A3B4C5D:6E7F8091A2B3C4D4:0000000000000000:0000000000000000:1:1:0:0"
    answer = PeerAnswer(node="himbeere", applied_revision=None, in_force_revision=None, ready=False,
                        split_brain={"vm100": record, "vm101": "rm -rf /", "../x": record})
    srv = PeerServer("127.0.0.1", 0, lambda: answer, KEY)
    srv.start()
    try:
        report = fetch_peer_report("himbeere", "127.0.0.1", srv.port, KEY, sender="erdbeere")
    finally:
        srv.shutdown()
    assert report.status.reachable
    assert report.split_brain == {"vm100": record}

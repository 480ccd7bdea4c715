"""Property-based fuzzing of the peer channel's request handling: no header, body or raw request a client
can send authenticates without the key, crashes the handler or leaves the server unable to answer."""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.daemon.peers import peerauth
from reconciler.daemon.peers.fence import OutdateAnswer
from reconciler.daemon.peers.peer import PATH, PeerAnswer, PeerServer, fetch_peer
from reconciler.metrics.auth import ALLOWED, LIMITED, REFUSED, BasicAuth
from reconciler.metrics.guard import FailureLimiter
from tests.fuzz.budget import budget

KEY = b"0123456789abcdef-fuzz-key-000000"
ME = "himbeere"
NAMES = [peerauth.H_FROM, peerauth.H_TO, peerauth.H_TIME, peerauth.H_NONCE, peerauth.H_AUTH, "Content-Length", "Host",
         "X-Other"]
VALUES = st.one_of(st.text(max_size=80), st.sampled_from(["himbeere", "erdbeere", "0" * 64, "f" * 32, "1.5", "-1",
                                                           "1e309", "nan", "\xff\xfe", "99999999999999999999"]))


class _Headers(dict[str, str]):
    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(name, default)


@given(headers=st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=8), body=st.binary(max_size=64),
       method=st.sampled_from(["GET", "POST", "PUT", "\u00e9"]), path=st.text(max_size=20))
@budget(1000, deadline_ms=200)
def test_nothing_authenticates_without_the_key(headers: dict[str, str], body: bytes, method: str, path: str) -> None:
    try:
        peerauth.verify_request(KEY, _Headers(headers), me=ME, method=method, path=path, body=body)
    except peerauth.AuthRefused:
        return
    raise AssertionError(f"authenticated without the key: {headers!r}")


@given(sender=st.sampled_from(["erdbeere", "kiwi"]), target=st.sampled_from([ME, "kiwi"]),
       method=st.sampled_from(["GET", "POST"]), path=st.sampled_from([PATH, "/v1/outdate"]),
       body=st.binary(max_size=32), tamper=st.sampled_from(["", "target", "method", "path", "body", "time"]))
@budget(300, deadline_ms=200)
def test_a_signed_request_holds_only_for_what_was_signed(sender: str, target: str, method: str, *, path: str,
                                                        body: bytes, tamper: str) -> None:
    headers = _Headers(peerauth.request_headers(KEY, sender=sender, target=target, method=method, path=path,
                                                body=body))
    if tamper == "target":
        headers[peerauth.H_TO] = ME if target != ME else "kiwi"
    elif tamper == "time":
        headers[peerauth.H_TIME] = f"{float(headers[peerauth.H_TIME]) + 1:.3f}"
    checked = (("PUT" if tamper == "method" else method), (path + "x" if tamper == "path" else path),
               (body + b"x" if tamper == "body" else body))
    try:
        signed = peerauth.verify_request(KEY, headers, me=ME, method=checked[0], path=checked[1], body=checked[2])
    except peerauth.AuthRefused:
        assert tamper or target != ME
        return
    assert not tamper
    assert target == ME
    assert signed.sender == sender


@pytest.fixture(scope="module")
def server() -> Iterator[PeerServer]:
    srv = PeerServer("127.0.0.1", 0, lambda: PeerAnswer(ME, None, None, True), KEY,
                     outdate=lambda r: OutdateAnswer(ME, r, "unknown", "fuzz"), node=ME,
                     limiter=FailureLimiter(per_client=10**9, global_rate=10**9, global_burst=10**9))
    srv.guard.connection_deadline = 2.0
    srv.start()
    yield srv
    srv.shutdown()


REQUEST_LINES = st.sampled_from([b"GET /v1/status HTTP/1.1", b"POST /v1/outdate HTTP/1.1", b"GET / HTTP/1.0",
                                 b"BREW /pot HTCPCP/1.0", b"GET /v1/status", b"", b"\xff\xfe\xfd"])
HEADER_LINES = st.lists(st.one_of(
    st.tuples(st.sampled_from([n.encode() for n in NAMES]), st.binary(max_size=40)).map(lambda kv: kv[0] + b": " +
                                                                                       kv[1].replace(b"\n", b"")),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))), max_size=6)


@given(line=REQUEST_LINES, headers=HEADER_LINES, body=st.binary(max_size=100))
@budget(80, deadline_ms=5000)
def test_raw_requests_get_a_refusal_never_a_crash(server: PeerServer, line: bytes, headers: list[bytes],
                                                 body: bytes) -> None:
    raw = line + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
            answer = sock.recv(100)
        except ConnectionResetError:
            answer = b""
    if answer:
        status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/") else b""
        assert status != b"200", raw
        assert status != b"500", raw
    assert fetch_peer(ME, "127.0.0.1", server.port, KEY, sender="erdbeere").reachable


@given(header=st.one_of(st.none(), st.text(max_size=120), st.binary(max_size=60).map(
    lambda b: "Basic " + base64.b64encode(b).decode())), client=st.text(max_size=20))
@budget(500, deadline_ms=500)
def test_any_authorization_header_is_answered_never_raised(header: str | None, client: str) -> None:
    auth = BasicAuth("prometheus", "sha256:" + hashlib.sha256(b"right").hexdigest())
    assert auth.check(header, client) in (ALLOWED, REFUSED, LIMITED)
    assert auth.check("Basic " + base64.b64encode(b"prometheus:right").decode(), client) == ALLOWED

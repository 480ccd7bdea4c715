"""Attacks on a running daemon's peer port and metrics endpoint, on loopback only.

Each attack is made against a real daemon (the fake engine stands in for the node), and each test then
shows the daemon still reconciling (a pass requested over the control socket completes) and answering its
operator (`reconciler status`). Source addresses other than 127.0.0.1 are still loopback (127.0.0.0/8).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.daemon.loop.config import DaemonConfig
from reconciler.daemon.loop.runtime import Daemon
from reconciler.daemon.node.control import send_command
from reconciler.daemon.peers.peer import PATH, PeerAnswer, PeerServer, fetch_peer
from reconciler.daemon.peers.peerauth import request_headers
from reconciler.metrics.auth import hash_password
from reconciler.metrics.guard import FailureLimiter
from reconciler.metrics.state import MetricsState
from tests.daemon.fakes import FakeEngine
from tests.source.gitrepo import WorkRepo

KEY = b"0123456789abcdef-attack-test-key"
NODE = "himbeere"
PASSWORD = "correct horse battery staple"


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def loader(directory: Path) -> tuple[str, ...]:
    return tuple((directory / "vms.txt").read_text().split())


class Node:
    """A daemon with its peer port and metrics endpoint on loopback; ``restart`` keeps the state directory."""

    def __init__(self, tmp_path: Path) -> None:
        self.repo = WorkRepo(tmp_path / "repo", bare_server=False)
        self.repo.commit("one", {"vms.txt": "vm100\n"})
        self.state_dir = tmp_path / "state"
        self.peer_port = free_port()
        self.metrics_port = free_port()
        self.daemon = self._start()

    def _start(self) -> Daemon:
        config = DaemonConfig(
            node=NODE, repo=str(self.repo.work), state_dir=self.state_dir, fetch_interval=3600, drift_interval=3600,
            drbd_events=False, boot_fetch_timeout=0, peer_listen=f"127.0.0.1:{self.peer_port}", peer_key=KEY,
            metrics_address=f"127.0.0.1:{self.metrics_port}",
            metrics_basic_auth=("prometheus", hash_password(PASSWORD)))
        daemon = Daemon(config, host=None, engine=FakeEngine(), loader=loader,  # type: ignore[arg-type]
                        metrics=MetricsState(NODE))
        daemon.start()
        assert wait_for(lambda: daemon.reconciler.last_applied is not None and daemon.peer_server is not None, 10)
        return daemon

    @property
    def peer(self) -> PeerServer:
        assert self.daemon.peer_server is not None
        return self.daemon.peer_server

    def restart(self) -> None:
        self.daemon.stop()
        self.daemon = self._start()

    def still_reconciling_and_answering(self) -> None:
        before = self.daemon.passes
        assert send_command(self.state_dir, "reconcile-now")
        assert wait_for(lambda: self.daemon.passes > before, 10), "no pass completed under attack"
        assert main(["status", "--state-dir", str(self.state_dir)]) == 0


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    running = Node(tmp_path)
    yield running
    running.daemon.stop()


def get_status(port: int, headers: dict[str, str], source: str = "127.0.0.1") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    try:
        conn.request("GET", PATH, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def status_request(target: str = NODE) -> dict[str, str]:
    return request_headers(KEY, sender="erdbeere", target=target, method="GET", path=PATH)


# --- replay ---------------------------------------------------------------------------------------------


def test_a_request_replayed_to_the_other_node_is_refused(node: Node) -> None:
    other = PeerServer("127.0.0.1", 0, lambda: PeerAnswer("kiwi", None, None, True), KEY, node="kiwi")
    other.start()
    try:
        captured = status_request()
        assert get_status(node.peer_port, captured) == 200
        assert get_status(other.port, captured) == 401  # signed for himbeere: kiwi refuses it
        assert other.refused == {"request is for node himbeere, not kiwi": 1}
    finally:
        other.shutdown()
    node.still_reconciling_and_answering()


def test_a_request_replayed_after_a_restart_is_refused(node: Node) -> None:
    captured = status_request()
    assert get_status(node.peer_port, captured) == 200
    assert get_status(node.peer_port, captured) == 401
    nonces = node.state_dir / "peer-nonces.json"
    assert nonces.stat().st_mode & 0o777 == 0o600
    assert captured["X-Reconciler-Nonce"] in json.loads(nonces.read_text())
    node.restart()
    assert get_status(node.peer_port, captured) == 401
    assert node.peer.refused == {"replayed request": 1}
    assert get_status(node.peer_port, status_request()) == 200  # a fresh request still works
    node.still_reconciling_and_answering()


def test_the_state_directory_is_not_readable_by_others(node: Node) -> None:
    assert node.state_dir.stat().st_mode & 0o077 == 0
    for name in ("status.json", "source.json"):
        assert (node.state_dir / name).stat().st_mode & 0o077 == 0, name


# --- exhaustion -----------------------------------------------------------------------------------------


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the open-file limit ({hard}) is below the {needed} this test needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@pytest.mark.timeout(120)
def test_two_thousand_idle_connections_cost_a_bounded_number_of_threads(node: Node) -> None:
    _raise_fd_limit(8192)
    guard = node.peer.guard
    guard.connection_deadline = 3.0
    threads_before = threading.active_count()
    held: list[socket.socket] = []
    try:
        for i in range(2000):
            # 250 loopback source addresses, 8 connections each: the per-client cap alone would not hold.
            sock = socket.socket()
            sock.settimeout(5)
            sock.bind((f"127.0.1.{1 + i % 250}", 0))
            sock.connect(("127.0.0.1", node.peer_port))
            held.append(sock)
        assert wait_for(lambda: guard.accepted_connections + guard.refused_connections >= 2000, 30)
        threads_during = threading.active_count()
        print(f"threads: {threads_before} before, {threads_during} with 2000 idle connections; "
              f"{guard.open_connections} held, {guard.refused_connections} refused at once, "
              f"{guard.cut_connections} cut at their deadline")
        assert guard.open_connections <= guard.max_connections
        assert threads_during <= threads_before + guard.max_connections
        node.still_reconciling_and_answering()
        # The held ones are cut at their deadline; the peer channel answers again afterwards.
        assert wait_for(lambda: guard.open_connections == 0, 15)
    finally:
        for sock in held:
            sock.close()
    assert fetch_peer(NODE, "127.0.0.1", node.peer_port, KEY, sender="erdbeere").reachable


@pytest.mark.timeout(60)
def test_a_slow_header_trickle_is_cut_at_the_deadline(node: Node) -> None:
    guard = node.peer.guard
    guard.connection_deadline = 2.0
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", node.peer_port), timeout=10) as sock:
        sock.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
        cut = False
        for _ in range(40):  # one header byte every 0.25 s: each read is quick, the request never ends
            try:
                sock.sendall(b"X")
            except OSError:
                cut = True
                break
            readable, _, _ = __import__("select").select([sock], [], [], 0.25)
            if readable and sock.recv(1024) == b"":
                cut = True
                break
        elapsed = time.monotonic() - started
    assert cut, "the trickling connection was never cut"
    assert elapsed < 6.0
    assert guard.cut_connections >= 1
    node.still_reconciling_and_answering()


def test_an_oversized_body_is_refused_unread(node: Node) -> None:
    with socket.create_connection(("127.0.0.1", node.peer_port), timeout=5) as sock:
        sock.sendall(b"POST /v1/outdate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n" + b"x" * 65536)
        answer = sock.recv(200)
    assert answer.startswith(b"HTTP/1.0 413")
    node.still_reconciling_and_answering()


def test_non_ascii_and_malformed_headers_get_401_and_no_traceback(node: Node, caplog: pytest.LogCaptureFixture,
                                                                  capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    good = status_request()
    variants = [
        b"X-Reconciler-Auth: \xff\xfe\xfd" + b"a" * 61,
        b"X-Reconciler-Nonce: \xc3\xa4" * 3,
        b"X-Reconciler-Time: 1e309",
        b"X-Reconciler-To: ../../etc",
        b"X-Reconciler-From: " + b"a" * 5000,
    ]
    for variant in variants:
        name = variant.split(b":")[0].decode()
        lines = [f"{k}: {v}".encode() for k, v in good.items() if k != name] + [variant]
        with socket.create_connection(("127.0.0.1", node.peer_port), timeout=5) as sock:
            sock.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n" + b"\r\n".join(lines) + b"\r\n\r\n")
            answer = sock.recv(200)
        assert answer.startswith(b"HTTP/1.0 401"), (variant, answer)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    assert not [r for r in caplog.records if r.exc_info and r.levelno >= logging.INFO]
    node.still_reconciling_and_answering()


# --- password guessing ----------------------------------------------------------------------------------


def _scrape(port: int, password: str, source: str = "127.0.0.1") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    token = base64.b64encode(f"prometheus:{password}".encode()).decode()
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Basic {token}"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.mark.timeout(120)
def test_password_guessing_costs_a_bounded_share_of_cpu(node: Node) -> None:
    assert _scrape(node.metrics_port, PASSWORD, "127.0.0.2") == 200  # Prometheus, before the attack
    cpu_before = time.process_time()
    started = time.monotonic()
    codes = [_scrape(node.metrics_port, f"guess-{i}") for i in range(100)]
    cpu = time.process_time() - cpu_before
    hashed = codes.count(401)
    print(f"100 guesses: {hashed} checked (401), {codes.count(429)} refused unchecked (429), {cpu * 1000:.0f} ms CPU")
    assert hashed == 10  # the per-client budget; every further guess is answered without a hash
    assert codes.count(429) == 90
    # Another guesser address gets its own small budget, and the total is bounded by the global bucket.
    more = [_scrape(node.metrics_port, f"guess-{i}", f"127.0.2.{i}") for i in range(1, 41)]
    # The global bucket refills while the guesses run (slowly, on a loaded machine): every checked guess, from
    # all addresses together, fits in its burst plus its rate over the time taken, and no more.
    limits = FailureLimiter()
    budget = limits.global_burst + limits.global_rate * (time.monotonic() - started)
    assert hashed + more.count(401) <= budget + 1, (hashed, more.count(401), budget)
    assert more.count(429) >= 40 - (budget + 1 - hashed)
    assert _scrape(node.metrics_port, PASSWORD, "127.0.0.2") == 200  # the real scraper is never held up
    node.still_reconciling_and_answering()


def test_the_metrics_endpoint_is_bounded_the_same_way(node: Node) -> None:
    server = node.daemon._metrics_server
    assert server is not None
    guard = server.guard
    guard.connection_deadline = 1.0
    held = [socket.create_connection(("127.0.0.1", node.metrics_port), timeout=5) for _ in range(guard.max_per_client
                                                                                                 + 4)]
    try:
        assert wait_for(lambda: guard.refused_connections >= 4, 5)  # beyond 8 per client: closed at once
        assert wait_for(lambda: guard.open_connections == 0, 10)  # the idle ones: cut at their deadline
    finally:
        for sock in held:
            sock.close()
    assert _scrape(node.metrics_port, PASSWORD) == 200
    node.still_reconciling_and_answering()

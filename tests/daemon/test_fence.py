"""Fencing without Pacemaker: `reconciler fence-peer` against a peer server, and the peer's outdate endpoint
on a simulated DRBD pair."""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.backends.drbd.render import DEFAULT_FENCE_PEER
from reconciler.cli.main import main
from reconciler.daemon.peers.fence import (
    OUTDATE_PATH,
    OutdateAnswer,
    ask_outdate,
    outdate_local,
)
from reconciler.daemon.peers.peer import PATH, PeerAnswer, PeerServer
from reconciler.daemon.peers.peerauth import H_TIME, request_headers
from reconciler.daemon.records.backend_choice import write_choice
from reconciler.model.desired import DrbdHost, NodeBackends
from reconciler.sim.drbd_config import parse_text
from tests.sim.test_drbd_helpers import DrbdCluster, resource_text

KEY = b"0123456789abcdef-fence-test"
PEER = "himbeere"


class Outdater:
    """Stands in for the peer's DRBD: answers with a fixed outcome (after ``connected_for`` answers that it is
    still connected) and remembers what it was asked."""

    def __init__(self, outcome: str, connected_for: int = 0) -> None:
        self.outcome = outcome
        self.connected_for = connected_for
        self.asked: list[str] = []

    def __call__(self, resource: str) -> OutdateAnswer:
        self.asked.append(resource)
        if len(self.asked) <= self.connected_for:
            return OutdateAnswer(PEER, resource, "connected", "still Connected")
        return OutdateAnswer(PEER, resource, self.outcome, "from the test")


class FakeTime:
    """A clock that moves only when the code under test waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def _status() -> PeerAnswer:
    return PeerAnswer(node=PEER, applied_revision=None, in_force_revision=None, ready=True)


Serve = Callable[..., PeerServer]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[PeerServer] = []

    def start(outdate: Outdater, key: bytes | None = KEY) -> PeerServer:
        server = PeerServer("127.0.0.1", 0, _status, key, outdate=outdate)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()


def _handler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, port: int, *, key: bytes = KEY,
             timeout: float = 2.0, resource: str = "vm100") -> int:
    token = tmp_path / "peer.key"
    token.write_bytes(key + b"\n")
    token.chmod(0o600)
    monkeypatch.setenv("DRBD_RESOURCE", resource)
    # What the node's daemon records when it applies a revision: the classic pair.
    write_choice(Path(os.environ["RECONCILER_STATE_DIR"]), NodeBackends())
    return main(["fence-peer", "--env-file", str(tmp_path / "absent.env"), "--node", "erdbeere",
                 "--peer", f"{PEER}=127.0.0.1:{port}", "--peer-token-file", str(token), "--timeout", str(timeout)])


@pytest.mark.parametrize(("outcome", "code"), [("outdated", 4), ("already", 3), ("primary", 6),
                                               ("unknown", 1), ("failed", 1)])
def test_handler_exit_code_follows_the_peer_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *,
                                                   capsys: pytest.CaptureFixture[str], serve: Serve,
                                                   outcome: str, code: int) -> None:
    outdater = Outdater(outcome)
    server = serve(outdater)
    assert _handler(tmp_path, monkeypatch, server.port) == code
    assert outdater.asked == ["vm100"]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("reconciler fence-peer: vm100: peer himbeere: ")
    assert err[0].endswith(f"exit {code}")


def test_a_peer_that_has_not_noticed_the_cut_is_asked_again_until_it_confirms(serve: Serve) -> None:
    # Each side notices a cut link on its own ping timeout; a 4 must be the peer's own confirmation.
    outdater = Outdater("outdated", connected_for=3)
    server = serve(outdater)
    fake = FakeTime()
    result = ask_outdate(PEER, "127.0.0.1", server.port, KEY, "vm100", sender="erdbeere", timeout=30.0,
                         wait=fake.wait, clock=fake.clock)
    assert result.verdict == "outdated"
    assert outdater.asked == ["vm100"] * 4
    assert fake.waits == [1.0, 1.0, 1.0]


def test_a_peer_still_connected_at_the_deadline_is_exit_1_never_5(serve: Serve) -> None:
    outdater = Outdater("outdated", connected_for=1000)
    server = serve(outdater)
    fake = FakeTime()
    result = ask_outdate(PEER, "127.0.0.1", server.port, KEY, "vm100", sender="erdbeere", timeout=5.0,
                         wait=fake.wait, clock=fake.clock)
    assert result.verdict == "not-fenced"
    assert "connected" in result.message
    assert len(outdater.asked) == 5
    assert fake.now <= 5.0


def test_an_unreachable_peer_is_asked_again_then_exit_1_never_5(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Unreachable proves nothing about the peer's writes; only a power fence may (tests/daemon/test_power_fence.py).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr("reconciler.daemon.peers.fence.UNREACHABLE_GRACE", 1.5)
    started = time.monotonic()
    assert _handler(tmp_path, monkeypatch, port, timeout=5.0) == 1
    assert time.monotonic() - started >= 1.5


def test_a_silent_peer_is_given_up_at_the_deadline_with_exit_1(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel accepts the connection; nobody ever answers
        started = time.monotonic()
        assert _handler(tmp_path, monkeypatch, silent.getsockname()[1], timeout=0.5) == 1
        assert time.monotonic() - started < 5


def test_a_peer_that_accepts_but_does_not_answer_is_alive_not_unreachable() -> None:
    # A slow or stuck daemon on a living host must never be taken for a dead peer (and powered off).
    fake = FakeTime()
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        result = ask_outdate(PEER, "127.0.0.1", silent.getsockname()[1], KEY, "vm100", sender="erdbeere",
                             timeout=3.0, wait=fake.wait, clock=fake.clock)
    assert result.verdict == "not-fenced"
    assert not result.unreachable
    assert "did not answer" in result.message
    assert len(fake.waits) >= 1  # asked again, as a peer that still calls itself connected


def test_a_host_that_accepts_and_hangs_up_is_alive_not_unreachable() -> None:
    fake = FakeTime()
    with socket.socket() as rude:
        rude.bind(("127.0.0.1", 0))
        rude.listen(8)
        stop = threading.Event()

        def hang_up() -> None:
            rude.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = rude.accept()
                except TimeoutError:
                    continue
                conn.close()

        worker = threading.Thread(target=hang_up, daemon=True)
        worker.start()
        try:
            result = ask_outdate(PEER, "127.0.0.1", rude.getsockname()[1], KEY, "vm100", sender="erdbeere",
                                 timeout=3.0, wait=fake.wait, clock=fake.clock)
        finally:
            stop.set()
            worker.join(timeout=5)
    assert result.verdict == "not-fenced"
    assert not result.unreachable


def test_silence_shorter_than_the_grace_is_not_unreachable_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTime()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = ask_outdate(PEER, "127.0.0.1", port, KEY, "vm100", sender="erdbeere", timeout=2.0,
                         wait=fake.wait, clock=fake.clock)
    assert result.verdict == "not-fenced"
    assert not result.unreachable  # 2 s of refusals is less than the 10 s grace


def test_wrong_token_is_refused_and_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str], serve: Serve) -> None:
    # The peer answered, so it is alive: it must not be taken for unreachable (and then powered off).
    outdater = Outdater("outdated")
    server = serve(outdater)
    assert _handler(tmp_path, monkeypatch, server.port, key=b"another-secret-of-16+bytes") == 1
    assert outdater.asked == []
    assert "HTTP 401" in capsys.readouterr().err


def test_an_answer_about_another_node_is_not_trusted(serve: Serve) -> None:
    server = serve(Outdater("outdated"))
    result = ask_outdate("kiwi", "127.0.0.1", server.port, KEY, "vm100", sender="erdbeere", timeout=2)
    assert result.verdict == "not-fenced"


def test_bad_resource_name_from_drbd_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                serve: Serve) -> None:
    outdater = Outdater("outdated")
    server = serve(outdater)
    assert _handler(tmp_path, monkeypatch, server.port, resource="../etc") == 1
    assert outdater.asked == []


def _post(port: int, body: bytes, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", OUTDATE_PATH, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _signed(body: bytes, key: bytes = KEY, *, now: float | None = None, method: str = "POST",
            path: str = OUTDATE_PATH) -> dict[str, str]:
    return request_headers(key, sender="erdbeere", target=PEER, method=method, path=path, body=body, now=now)


def test_endpoint_rejects_everything_but_a_fresh_signed_request(serve: Serve) -> None:
    outdater = Outdater("outdated")
    port = serve(outdater).port
    body = json.dumps({"resource": "vm100"}).encode()
    assert _post(port, body, {}) == 401
    headers = _signed(body)
    assert _post(port, json.dumps({"resource": "vm101"}).encode(), headers) == 401  # body not the signed one
    assert _post(port, body, _signed(body, method="GET")) == 401  # a GET signature is not a POST's
    assert _post(port, body, _signed(body, path=PATH)) == 401  # nor one for another path
    stale = _signed(body, now=time.time() - 3600)
    assert _post(port, body, stale) == 401
    forged_time = dict(stale, **{H_TIME: f"{time.time():.3f}"})  # the time is signed too
    assert _post(port, body, forged_time) == 401
    assert outdater.asked == []
    fresh = _signed(body)
    assert _post(port, body, fresh) == 200
    assert _post(port, body, fresh) == 401  # the same nonce again: a replay
    assert outdater.asked == ["vm100"]


def test_endpoint_is_absent_without_an_outdater_and_status_is_unchanged() -> None:
    server = PeerServer("127.0.0.1", 0, _status, KEY)
    server.start()
    try:
        body = json.dumps({"resource": "vm100"}).encode()
        assert _post(server.port, body, _signed(body)) == 404
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", PATH)
        assert conn.getresponse().status == 401
        conn.close()
    finally:
        server.shutdown()


# --- the peer side on a simulated pair ------------------------------------------------------------------


@pytest.fixture
def partitioned(tmp_path: Path) -> DrbdCluster:
    """erdbeere Primary and himbeere Secondary, synced, then the replication link cut."""
    pair = DrbdCluster(tmp_path / "cluster")
    pair.new_pair(resource_text())
    assert pair.disk("himbeere") == "UpToDate"
    pair.partition("erdbeere", "himbeere")
    assert pair.conn("himbeere", "erdbeere")["connection-state"] != "Connected"
    return pair


def _managed() -> frozenset[str]:
    return frozenset({"vm100"})


def test_secondary_is_outdated_through_drbdadm_and_then_reports_already(partitioned: DrbdCluster) -> None:
    answer = outdate_local(partitioned.hosts["himbeere"], "vm100", _managed)
    assert (answer.node, answer.resource, answer.outcome) == ("himbeere", "vm100", "outdated")
    assert partitioned.disk("himbeere") == "Outdated"
    again = outdate_local(partitioned.hosts["himbeere"], "vm100", _managed)
    assert again.outcome == "already"
    assert "Outdated" in again.detail


def test_primary_refuses_and_keeps_its_data(partitioned: DrbdCluster) -> None:
    answer = outdate_local(partitioned.hosts["erdbeere"], "vm100", _managed)
    assert answer.outcome == "primary"
    assert partitioned.disk("erdbeere") == "UpToDate"
    assert partitioned.status("erdbeere")["role"] == "Primary"


def test_a_resource_this_node_does_not_manage_is_not_touched(partitioned: DrbdCluster) -> None:
    answer = outdate_local(partitioned.hosts["himbeere"], "vm100", lambda: frozenset({"vm101"}))
    assert answer.outcome == "unknown"
    assert partitioned.disk("himbeere") == "UpToDate"


def test_while_still_connected_the_peer_answers_connected_and_outdates_nothing(tmp_path: Path) -> None:
    pair = DrbdCluster(tmp_path / "cluster")
    pair.new_pair(resource_text())
    answer = outdate_local(pair.hosts["himbeere"], "vm100", _managed)
    assert answer.outcome == "connected"
    assert answer.detail == "vm100 on himbeere is still Connected: it has not noticed the cut yet"
    assert pair.disk("himbeere") == "UpToDate"


def test_handler_to_daemon_end_to_end_on_the_simulator(partitioned: DrbdCluster, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch, serve: Serve) -> None:
    himbeere = partitioned.hosts["himbeere"]
    server = serve(lambda resource: outdate_local(himbeere, resource, _managed))
    assert _handler(tmp_path, monkeypatch, server.port) == 4
    assert partitioned.disk("himbeere") == "Outdated"
    assert _handler(tmp_path, monkeypatch, server.port) == 3


def test_the_simulator_reads_the_default_handler_line() -> None:
    text = resource_text(net="fencing resource-only;", handlers=f'fence-peer "{DEFAULT_FENCE_PEER}";')
    config = parse_text(text, "vm100.res")[0][0]
    assert config.fencing == "resource-only"
    assert config.fence_peer_handler == "/usr/bin/reconciler fence-peer"


# --- which peer DRBD means ----------------------------------------------------------------------------


HOSTS = (DrbdHost(name="erdbeere", address="192.168.2.1", port=7788, node_id=0),
         DrbdHost(name="himbeere", address="192.168.2.2", port=7788, node_id=1),
         DrbdHost(name="kiwi", address="192.168.2.3", port=7788, node_id=2))


@pytest.mark.parametrize("env", [{"DRBD_PEER_NODE_ID": "1"}, {"DRBD_PEER_ADDRESS": "192.168.2.2"},
                                 {"DRBD_PEERS": "himbeere"}])
def test_the_peer_comes_from_drbds_environment(env: dict[str, str]) -> None:
    from reconciler.backends.drbd.fence_handler import request_from_env
    from reconciler.daemon.peers.fence import pick_peer

    assert pick_peer(HOSTS, "erdbeere", request_from_env(env)).name == "himbeere"
    assert pick_peer(HOSTS[:2], "erdbeere", request_from_env({})).name == "himbeere"


def test_an_ambiguous_peer_is_an_error() -> None:
    from reconciler.core.seams import FenceRequest
    from reconciler.daemon.peers.fence import PeerChoiceError, pick_peer

    with pytest.raises(PeerChoiceError, match="cannot tell which peer"):
        pick_peer(HOSTS, "erdbeere", FenceRequest("vm100"))


def test_the_environment_file_supplies_the_token_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       serve: Serve) -> None:
    from reconciler.cli.cmd_fence import read_env_file

    token = tmp_path / "secret"
    token.write_bytes(KEY)
    token.chmod(0o600)
    env_file = tmp_path / "reconciler.env"
    env_file.write_text(f"# comment\nRECONCILER_PEER_TOKEN_FILE=\"{token}\"\nRECONCILER_NODE=erdbeere\n")
    assert read_env_file(str(env_file))["RECONCILER_PEER_TOKEN_FILE"] == str(token)
    server = serve(Outdater("outdated"))
    monkeypatch.setenv("DRBD_RESOURCE", "vm100")
    monkeypatch.delenv("RECONCILER_PEER_TOKEN_FILE", raising=False)
    assert main(["fence-peer", "--env-file", str(env_file), "--peer", f"{PEER}=127.0.0.1:{server.port}"]) == 4



def test_a_one_entry_peer_list_in_the_environment_file_does_not_name_the_peer_by_itself(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # RECONCILER_PEERS is the node's list for every resource: which entry DRBD means comes from the revision
    # in force (none here), never from the list having one entry.
    token = tmp_path / "secret"
    token.write_bytes(KEY)
    token.chmod(0o600)
    env_file = tmp_path / "reconciler.env"
    env_file.write_text(f"RECONCILER_PEER_TOKEN_FILE={token}\nRECONCILER_NODE=erdbeere\n"
                        f"RECONCILER_STATE_DIR={tmp_path / 'state'}\nRECONCILER_PEERS={PEER}=127.0.0.1:9\n")
    monkeypatch.setenv("DRBD_RESOURCE", "vm100")
    for name in ("RECONCILER_PEERS", "RECONCILER_PEER_TOKEN_FILE", "RECONCILER_NODE", "RECONCILER_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert main(["fence-peer", "--env-file", str(env_file)]) == 1
    env_file.write_text(env_file.read_text().replace(f"RECONCILER_PEERS={PEER}=", "RECONCILER_PEERS=nonsense"))
    assert main(["fence-peer", "--env-file", str(env_file)]) == 1


# --- the daemon serves it for the revision in force ------------------------------------------------------


def test_daemon_outdates_its_replica_for_the_handler_of_its_peer(partitioned: DrbdCluster, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.daemon.loop.config import DaemonConfig
    from reconciler.daemon.loop.runtime import Daemon
    from tests.conftest import EXAMPLE_DIR
    from tests.daemon.fakes import FakeEngine
    from tests.source.gitrepo import WorkRepo

    repo = WorkRepo(tmp_path / "repo", bare_server=False)
    files = {p.relative_to(EXAMPLE_DIR).as_posix(): p.read_text() for p in EXAMPLE_DIR.rglob("*.yaml")}
    repo.commit("example", files)
    state_dir = tmp_path / "state"
    with socket.socket() as probe:  # the daemon refuses port 0; take a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = DaemonConfig(node="himbeere", repo=str(repo.work), state_dir=state_dir, fetch_interval=3600,
                          drift_interval=3600, metrics_address=None, drbd_events=False, boot_fetch_timeout=0,
                          peer_listen=f"127.0.0.1:{port}", peer_key=KEY)
    daemon = Daemon(config, host=partitioned.hosts["himbeere"], engine=FakeEngine())
    daemon.start()
    try:
        deadline = time.monotonic() + 10
        while daemon.peer_server is None or daemon.reconciler.last_applied is None:
            assert time.monotonic() < deadline, "the daemon did not take the example revision in force"
            time.sleep(0.02)
        assert daemon._outdate("vm999").outcome == "unknown"
        token = tmp_path / "peer.key"
        token.write_bytes(KEY)
        token.chmod(0o600)
        monkeypatch.setenv("DRBD_RESOURCE", "vm100")
        monkeypatch.setenv("DRBD_PEER_NODE_ID", "1")
        # Two endpoints given: which one DRBD means comes from the revision in force in the state directory.
        code = main(["fence-peer", "--env-file", str(tmp_path / "absent.env"), "--node", "erdbeere",
                     "--state-dir", str(state_dir), "--peer-token-file", str(token), "--timeout", "5",
                     "--peer", f"himbeere=127.0.0.1:{port}", "--peer", "kiwi=127.0.0.1:9"])
        assert code == 4
        assert partitioned.disk("himbeere") == "Outdated"
        # DRBD runs the handler with no options: the endpoints come from RECONCILER_PEERS in the daemon's
        # environment file (a management address on a real node), the peer from the revision in force.
        env_file = tmp_path / "reconciler.env"
        env_file.write_text(f"RECONCILER_NODE=erdbeere\nRECONCILER_STATE_DIR={state_dir}\n"
                            f"RECONCILER_PEER_TOKEN_FILE={token}\n"
                            f"RECONCILER_PEERS=kiwi=127.0.0.1:9 himbeere=127.0.0.1:{port}\n")
        for name in ("RECONCILER_PEERS", "RECONCILER_PEER_TOKEN_FILE", "RECONCILER_NODE", "RECONCILER_STATE_DIR"):
            monkeypatch.delenv(name, raising=False)
        assert main(["fence-peer", "--env-file", str(env_file), "--timeout", "5"]) == 3  # already Outdated
    finally:
        daemon.request_stop()
        daemon.stop()

"""Peer status over the replication network: each daemon serves its applied revision and readiness,
and reads its peers'.

Authentication is a shared secret (a token file, the same on every node of the cluster) used as an
HMAC-SHA256 key, never sent over the wire (see :mod:`reconciler.daemon.peers.peerauth`): a request is signed over
its sender, the node it is for, method, path, body, time and a fresh nonce; the server refuses it unless
it is for this node, fresh, and its nonce unseen (remembered across restarts, see
:mod:`reconciler.daemon.peers.replay`); the answer is signed with the nonce, so a replayed or forged answer
fools no client either. ``--peer-auth none`` switches signatures off explicitly (only sensible on a
dedicated, trusted replication link).

The port faces the replication network, so the server is bounded before anything is authenticated: a
capped number of connections (per client and in all), a deadline per connection, small bodies, and failed
authentications limited per client (:mod:`reconciler.metrics.guard`).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import get_args

from reconciler.daemon.peers import peerauth
from reconciler.daemon.peers.failover import FAILOVER_ID
from reconciler.daemon.peers.fence import OUTDATE_PATH, OutdateAnswer
from reconciler.daemon.peers.peerclient import ForgedAnswer, signed_exchange
from reconciler.daemon.peers.replay import ReplayGuard
from reconciler.metrics.guard import FailureLimiter, GuardedServerMixin
from reconciler.model.status import MigrationPhase, PeerMigration, PeerStatus, PeerTakeover
from reconciler.names import name_problem
from reconciler.printable import escape

log = logging.getLogger(__name__)

PATH = "/v1/status"
MAX_SKEW_S = 300.0
MAX_BODY = 4096
DEFAULT_PEER_PORT = 9791
HEADER_TIMEOUT_S = 5.0
_GI_RECORD = re.compile(r"[0-9A-Fa-f]{16}(?::[0-9A-Fa-f]{1,16}){0,8}")


@dataclass(frozen=True)
class PeerAnswer:
    """What one node tells its peers about itself."""

    node: str
    applied_revision: str | None
    in_force_revision: str | None
    ready: bool
    backing_bytes: dict[str, int] = field(default_factory=dict)  # DRBD resource -> backing device size
    # DRBD resource -> this node's generation identifiers when DRBD last reported a split brain there: with the
    # peer's own they name the incident (reconciler.backends.drbd.splitbrain_markers.incident_id)
    split_brain: dict[str, str] = field(default_factory=dict)
    # VM -> {"id": failover id, "from_node": node}: the VMs this node runs after an automatic failover it decided.
    # A peer of an older version neither sends nor reads it: a missing field means nothing known.
    takeovers: dict[str, dict[str, str]] = field(default_factory=dict)
    # VM -> {"revision": sha, "phase": phase, "reason": text}: the live migrations this node takes part in.
    migrations: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()


class _PeerHTTPServer(GuardedServerMixin, ThreadingHTTPServer):
    daemon_threads = True
    name = "peer-server"


class PeerServer:
    """Serves ``GET /v1/status`` and, given ``outdate``, ``POST /v1/outdate`` (DRBD fencing, see
    :mod:`reconciler.daemon.peers.fence`). ``answer`` is called per request and must be cheap and thread-safe.

    ``node`` is this node's name (requests signed for another node are refused; default: the answer's
    node); ``replay_file`` keeps the accepted nonces across restarts (the daemon's state directory)."""

    def __init__(self, address: str, port: int, answer: Callable[[], PeerAnswer], key: bytes | None,
                 outdate: Callable[[str], OutdateAnswer] | None = None, *, node: str | None = None,
                 replay_file: Path | None = None, limiter: FailureLimiter | None = None) -> None:
        self._answer = answer
        self._outdate = outdate
        self._key = key
        self._node = node
        self._replay = ReplayGuard(replay_file, MAX_SKEW_S)
        self.limiter = limiter or FailureLimiter(per_client=10, window=60.0, global_rate=20.0, global_burst=100.0)
        self.refused: dict[str, int] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = HEADER_TIMEOUT_S  # each read; the guard's deadline bounds the connection as a whole

            def do_GET(self) -> None:
                server._dispatch(self, "GET")

            def do_POST(self) -> None:
                server._dispatch(self, "POST")

            def log_message(self, format: str, *args: object) -> None:
                return

        self._httpd = _PeerHTTPServer((address, port), Handler)
        self._httpd.guard_start()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def guard(self) -> GuardedServerMixin:
        return self._httpd

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="peer-server", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _me(self) -> str:
        return self._node if self._node is not None else self._answer().node

    def _refuse(self, request: BaseHTTPRequestHandler, code: int, reason: str, client: str) -> None:
        with self._lock:
            self.refused[reason] = self.refused.get(reason, 0) + 1
        log.info("peer request from %s refused: %s", client, escape(reason))
        request.close_connection = True
        request.send_error(code, {401: "peer authentication failed", 429: "too many failed authentications"}.get(
            code, "refused"))

    def _dispatch(self, request: BaseHTTPRequestHandler, method: str) -> None:
        client = str(request.client_address[0])
        try:
            self._handle(request, method, client)
        except (OSError, http.client.HTTPException):
            raise  # the connection broke or timed out: the server closes it quietly
        except Exception as exc:  # never a traceback for what a client sent
            log.warning("peer request from %s failed: %s: %s", client, type(exc).__name__, escape(str(exc))[:200])
            with contextlib.suppress(OSError):
                request.send_error(500, "internal error")

    def _handle(self, request: BaseHTTPRequestHandler, method: str, client: str) -> None:
        path = request.path
        if (method, path) not in (("GET", PATH), ("POST", OUTDATE_PATH)) or (
                path == OUTDATE_PATH and self._outdate is None):
            request.send_error(404)
            return
        if not self.limiter.allow(client):
            self._refuse(request, 429, "failed authentications over the limit", client)
            return
        body = b""
        if method == "POST":
            raw_length = request.headers.get("Content-Length", "")
            if not raw_length.isascii() or not raw_length.isdigit():
                request.close_connection = True
                request.send_error(411)
                return
            length = int(raw_length)
            if not 0 < length <= MAX_BODY:
                request.close_connection = True
                request.send_error(413)
                return
            body = request.rfile.read(length)
            if len(body) != length:
                return
        try:
            signed = peerauth.verify_request(self._key, request.headers, me=self._me(), method=method, path=path,
                                             body=body)
        except peerauth.AuthRefused as exc:
            self.limiter.failed(client)
            self._refuse(request, 401, str(exc), client)
            return
        fresh, why = self._replay.fresh(signed.nonce, signed.stamp)
        if not fresh:
            self.limiter.failed(client)
            self._refuse(request, 401, why, client)
            return
        if method == "GET":
            self._reply(request, signed.nonce, self._answer().to_json())
            return
        try:
            data = json.loads(body)
        except ValueError:
            request.send_error(400, "not JSON")
            return
        resource = data.get("resource") if isinstance(data, dict) else None
        if not isinstance(resource, str) or self._outdate is None:
            request.send_error(400, "no resource")
            return
        self._reply(request, signed.nonce, self._outdate(resource).to_json())

    def _reply(self, request: BaseHTTPRequestHandler, nonce: str, body: bytes) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        if self._key is not None:
            request.send_header(peerauth.H_SIGNATURE,
                                peerauth.answer_mac(self._key, responder=self._me(), nonce=nonce, body=body))
        request.end_headers()
        request.wfile.write(body)


def fetch_peer(node: str, host: str, port: int, key: bytes | None, *, sender: str,
               timeout: float = 3.0) -> PeerStatus:
    """Ask one peer; an unreachable or unauthenticated peer is reported, never raised."""
    return fetch_peer_answer(node, host, port, key, sender=sender, timeout=timeout)[0]


@dataclass(frozen=True)
class PeerReport:
    """One answer of a peer as the monitor keeps it (sizes and records empty when it could not be asked)."""

    status: PeerStatus
    backing_bytes: dict[str, int] = field(default_factory=dict)
    split_brain: dict[str, str] = field(default_factory=dict)


def fetch_peer_answer(node: str, host: str, port: int, key: bytes | None, *, sender: str, timeout: float = 3.0,
                      now: float | None = None) -> tuple[PeerStatus, dict[str, int]]:
    """The peer's status and the backing sizes it reported (empty when it could not be asked)."""
    report = fetch_peer_report(node, host, port, key, sender=sender, timeout=timeout, now=now)
    return report.status, report.backing_bytes


def _split_brain_records(raw: object) -> dict[str, str]:
    """Only what could be a resource name and a generation record: the rest of an answer is never trusted further."""
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items()
            if isinstance(k, str) and isinstance(v, str) and name_problem(k) is None and _GI_RECORD.fullmatch(v)}


def takeovers_json(takeovers: tuple[PeerTakeover, ...]) -> dict[str, dict[str, str]]:
    """The answer's ``takeovers`` field."""
    return {t.vm: {"id": t.id, "from_node": t.from_node} for t in takeovers}


def migrations_json(migrations: tuple[PeerMigration, ...]) -> dict[str, dict[str, str]]:
    """The answer's ``migrations`` field."""
    return {m.vm: {"revision": m.revision, "phase": m.phase, "reason": m.reason} for m in migrations}


_PHASES: frozenset[str] = frozenset(get_args(MigrationPhase))
_REVISION = re.compile(r"[0-9a-f]{40}")


def _migrations(raw: object) -> tuple[PeerMigration, ...]:
    """Only entries of the shape a migration's report has; anything else means nothing is known of it."""
    if not isinstance(raw, dict):
        return ()
    found = []
    for vm, entry in sorted(raw.items()):
        if not isinstance(entry, dict) or name_problem(vm) is not None:
            continue
        revision, phase, reason = entry.get("revision"), entry.get("phase"), entry.get("reason", "")
        if isinstance(revision, str) and _REVISION.fullmatch(revision) and phase in _PHASES \
                and isinstance(reason, str):
            found.append(PeerMigration(vm=vm, revision=revision, phase=phase, reason=escape(reason)[:2000]))
    return tuple(found)


def _takeovers(raw: object) -> tuple[PeerTakeover, ...]:
    """Only entries of the shape a takeover has (a VM name, a failover id, a node name); a field that is missing
    (a peer of an older version) or of another shape means nothing is known."""
    if not isinstance(raw, dict):
        return ()
    found = []
    for vm, entry in sorted(raw.items()):
        if not isinstance(entry, dict):
            continue
        ident, source = entry.get("id"), entry.get("from_node")
        if name_problem(vm) is None and isinstance(ident, str) and FAILOVER_ID.fullmatch(ident) \
                and name_problem(source) is None:
            found.append(PeerTakeover(vm=vm, id=ident, from_node=str(source)))
    return tuple(found)


def fetch_peer_report(node: str, host: str, port: int, key: bytes | None, *, sender: str, timeout: float = 3.0,
                      now: float | None = None) -> PeerReport:
    """The peer's status, backing sizes and split-brain records; an unreachable peer is reported, never raised."""
    checked = time.time() if now is None else now
    try:
        status, reason, body = signed_exchange(key, sender=sender, target=node, host=host, port=port, method="GET",
                                               path=PATH, timeout=timeout)
        if status != 200:
            return PeerReport(PeerStatus(node=node, reachable=False, checked_at=checked,
                                         error=f"peer answered HTTP {status} {escape(reason)[:100]}"))
        data = json.loads(body)
    except ForgedAnswer:
        return PeerReport(PeerStatus(node=node, reachable=False, checked_at=checked,
                                     error="peer answer has a bad signature"))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return PeerReport(PeerStatus(node=node, reachable=False, checked_at=checked,
                                     error=f"{type(exc).__name__}: {escape(str(exc))[:200]}"))
    if not isinstance(data, dict) or data.get("node") != node:
        who = data.get("node") if isinstance(data, dict) else "?"
        return PeerReport(PeerStatus(node=node, reachable=False, checked_at=checked,
                                     error=f"answer is from {escape(repr(who))[:80]}, not {node!r}"))
    applied = data.get("applied_revision")
    raw = data.get("backing_bytes")
    backing = {str(k): int(v) for k, v in raw.items() if isinstance(v, int)} if isinstance(raw, dict) else {}
    answered = PeerStatus(node=node, reachable=True, applied_revision=applied if isinstance(applied, str) else None,
                          ready=bool(data.get("ready")), checked_at=checked,
                          takeovers=_takeovers(data.get("takeovers")),
                          migrations=_migrations(data.get("migrations")))
    return PeerReport(answered, backing, _split_brain_records(data.get("split_brain")))


def parse_peer_item(item: str, source: str) -> tuple[str, str, int]:
    """One ``NODE=HOST:PORT`` of ``--peer`` or RECONCILER_PEERS -> (node, host, port); ValueError naming
    ``source`` and the item otherwise."""
    name, sep, endpoint = item.partition("=")
    if not sep:
        raise ValueError(f"{source} {item!r}: expected NODE=HOST:PORT")
    host, port = parse_endpoint(endpoint)
    return name, host, port


def parse_endpoint(text: str, default_port: int = DEFAULT_PEER_PORT) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``HOST`` -> (host, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if not host:
        raise ValueError(f"{text!r}: no host")
    if port and not port.isdigit():
        raise ValueError(f"{text!r}: port must be a number")
    number = int(port) if port else default_port
    if not 0 < number < 65536:
        raise ValueError(f"{text!r}: port out of range")
    return host, number

"""Peer status over the replication network: each daemon serves its applied revision and readiness,
and reads its peers'.

Authentication is a shared secret (a token file, the same on every node of the cluster) used as an
HMAC-SHA256 key, never sent over the wire: the client signs a fresh nonce and the time; the server
checks it (rejecting stale or replayed requests) and signs its answer together with the nonce, so a
client cannot be fooled by a replayed or forged answer either. ``--peer-auth none`` switches it off
explicitly (only sensible on a dedicated, trusted replication link).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from reconciler.daemon.fence import OUTDATE_PATH, OutdateAnswer, request_signature
from reconciler.model.status import PeerStatus

PATH = "/v1/status"
MAX_SKEW_S = 300.0
MAX_BODY = 4096
DEFAULT_PEER_PORT = 9791
_NONCE_MEMORY = 4096


@dataclass(frozen=True)
class PeerAnswer:
    """What one node tells its peers about itself."""

    node: str
    applied_revision: str | None
    in_force_revision: str | None
    ready: bool
    backing_bytes: dict[str, int] = field(default_factory=dict)  # DRBD resource -> backing device size

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()


def _sign(key: bytes | None, *parts: bytes) -> str:
    if key is None:
        return ""
    return hmac.new(key, b"\n".join(parts), hashlib.sha256).hexdigest()


class PeerServer:
    """Serves ``GET /v1/status`` and, given ``outdate``, ``POST /v1/outdate`` (DRBD fencing, see
    :mod:`reconciler.daemon.fence`). ``answer`` is called per request and must be cheap and thread-safe."""

    def __init__(self, address: str, port: int, answer: Callable[[], PeerAnswer], key: bytes | None,
                 outdate: Callable[[str], OutdateAnswer] | None = None) -> None:
        self._answer = answer
        self._outdate = outdate
        self._key = key
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._handle(self)

            def do_POST(self) -> None:
                server._handle_outdate(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer((address, port), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="peer-server", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _fresh(self, nonce: str, stamp: str) -> bool:
        try:
            when = float(stamp)
        except ValueError:
            return False
        now = time.time()
        if abs(now - when) > MAX_SKEW_S or not 16 <= len(nonce) <= 128:
            return False
        with self._lock:
            if nonce in self._seen:
                return False
            self._seen[nonce] = now
            if len(self._seen) > _NONCE_MEMORY:
                cutoff = now - MAX_SKEW_S
                self._seen = {n: t for n, t in self._seen.items() if t >= cutoff}
        return True

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        if request.path != PATH:
            request.send_error(404)
            return
        nonce = request.headers.get("X-Reconciler-Nonce", "")
        stamp = request.headers.get("X-Reconciler-Time", "")
        if self._key is not None:
            given = request.headers.get("X-Reconciler-Auth", "")
            expected = _sign(self._key, b"request", nonce.encode(), stamp.encode())
            if not hmac.compare_digest(given, expected) or not self._fresh(nonce, stamp):
                request.send_error(401, "bad or stale peer authentication")
                return
        self._reply(request, nonce, self._answer().to_json())

    def _handle_outdate(self, request: BaseHTTPRequestHandler) -> None:
        if request.path != OUTDATE_PATH or self._outdate is None:
            request.send_error(404)
            return
        try:
            length = int(request.headers.get("Content-Length", ""))
        except ValueError:
            request.send_error(411)
            return
        if not 0 < length <= MAX_BODY:
            request.send_error(413)
            return
        body = request.rfile.read(length)
        nonce = request.headers.get("X-Reconciler-Nonce", "")
        stamp = request.headers.get("X-Reconciler-Time", "")
        if self._key is not None:
            given = request.headers.get("X-Reconciler-Auth", "")
            expected = request_signature(self._key, nonce, stamp, body)
            if not hmac.compare_digest(given, expected) or not self._fresh(nonce, stamp):
                request.send_error(401, "bad or stale peer authentication")
                return
        try:
            data = json.loads(body)
        except ValueError:
            request.send_error(400, "not JSON")
            return
        resource = data.get("resource") if isinstance(data, dict) else None
        if not isinstance(resource, str):
            request.send_error(400, "no resource")
            return
        self._reply(request, nonce, self._outdate(resource).to_json())

    def _reply(self, request: BaseHTTPRequestHandler, nonce: str, body: bytes) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.send_header("X-Reconciler-Signature", _sign(self._key, b"response", nonce.encode(), body))
        request.end_headers()
        request.wfile.write(body)


def fetch_peer(node: str, host: str, port: int, key: bytes | None, *, timeout: float = 3.0) -> PeerStatus:
    """Ask one peer; an unreachable or unauthenticated peer is reported, never raised."""
    return fetch_peer_answer(node, host, port, key, timeout=timeout)[0]


def fetch_peer_answer(node: str, host: str, port: int, key: bytes | None, *, timeout: float = 3.0,
                      now: float | None = None) -> tuple[PeerStatus, dict[str, int]]:
    """The peer's status and the backing sizes it reported (empty when it could not be asked)."""
    checked = time.time() if now is None else now
    nonce = secrets.token_hex(16)
    stamp = f"{time.time():.3f}"
    headers = {"X-Reconciler-Nonce": nonce, "X-Reconciler-Time": stamp,
               "X-Reconciler-Auth": _sign(key, b"request", nonce.encode(), stamp.encode())}
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", PATH, headers=headers)
        response = conn.getresponse()
        body = response.read(65536)
        if response.status != 200:
            return PeerStatus(node=node, reachable=False, checked_at=checked,
                              error=f"peer answered HTTP {response.status} {response.reason}"), {}
        signature = response.getheader("X-Reconciler-Signature", "")
        if key is not None and not hmac.compare_digest(signature, _sign(key, b"response", nonce.encode(), body)):
            return PeerStatus(node=node, reachable=False, checked_at=checked,
                              error="peer answer has a bad signature"), {}
        data = json.loads(body)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return PeerStatus(node=node, reachable=False, checked_at=checked, error=f"{type(exc).__name__}: {exc}"), {}
    finally:
        conn.close()
    if not isinstance(data, dict) or data.get("node") != node:
        who = data.get("node") if isinstance(data, dict) else "?"
        return PeerStatus(node=node, reachable=False, checked_at=checked,
                          error=f"answer is from {who!r}, not {node!r}"), {}
    applied = data.get("applied_revision")
    raw = data.get("backing_bytes")
    backing = {str(k): int(v) for k, v in raw.items() if isinstance(v, int)} if isinstance(raw, dict) else {}
    return PeerStatus(node=node, reachable=True, applied_revision=applied if isinstance(applied, str) else None,
                      ready=bool(data.get("ready")), checked_at=checked), backing


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

"""The HTTP(S) endpoint Prometheus scrapes.

Serves ``/metrics`` from its own registry in a background thread, optionally over TLS and behind basic
auth (in the spirit of the Prometheus exporters' web configuration). Binds to 127.0.0.1 unless told
otherwise. Each connection gets a handler thread with a read timeout, and the TLS handshake happens in
that thread, so a client that connects and says nothing cannot stall the endpoint.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import make_wsgi_app

from reconciler.metrics.auth import ALLOWED, LIMITED, BasicAuth
from reconciler.metrics.collector import build_registry
from reconciler.metrics.guard import GuardedServerMixin
from reconciler.metrics.state import MetricsState

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 9793  # the daemon's default; drbd-reactor uses 9942
CONNECTION_TIMEOUT_S = 10.0
CERT_CHECK_INTERVAL_S = 5.0

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_LANDING = b"""<html><head><title>reconciler</title></head>
<body><h1>reconciler</h1><p><a href="/metrics">Metrics</a></p></body></html>
"""


class _Handler(WSGIRequestHandler):
    timeout = CONNECTION_TIMEOUT_S

    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics endpoint: " + format, *args)


class _Server(GuardedServerMixin, ThreadingMixIn, WSGIServer):
    # Connections are capped and each has a deadline (see reconciler.metrics.guard): a scraper that hangs
    # up, times out or fails the TLS handshake is not the daemon's problem, nor are a thousand of them.
    daemon_threads = True
    allow_reuse_address = True
    name = "metrics-http"


class _Server6(_Server):
    address_family = socket.AF_INET6


def _route(metrics_app: WsgiApp, auth: BasicAuth | None) -> WsgiApp:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        verdict = ALLOWED if auth is None else auth.check(environ.get("HTTP_AUTHORIZATION"),
                                                          str(environ.get("REMOTE_ADDR", "?")))
        if verdict == LIMITED:
            start_response("429 Too Many Requests", [("Content-Type", "text/plain; charset=utf-8"),
                                                     ("Retry-After", "60")])
            return [b"Too many failed logins; try again later\n"]
        if verdict != ALLOWED:
            start_response("401 Unauthorized", [("Content-Type", "text/plain; charset=utf-8"),
                                                ("WWW-Authenticate", 'Basic realm="reconciler"')])
            return [b"Unauthorized\n"]
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics_app(environ, start_response)
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [_LANDING]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"Not Found\n"]

    return app


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


class CertificateReloader:
    """Serves the certificate files as they are now, so a renewed certificate needs no restart.

    The listening socket keeps its first context; each new connection switches to the current one from
    the server-name callback (which OpenSSL calls for every ClientHello, with or without SNI). The files
    are checked at most every ``interval`` seconds; a renewal caught half-written keeps the previous pair.
    """

    def __init__(self, cert_file: str, key_file: str, interval: float | None = None) -> None:
        self._files = (cert_file, key_file)
        self._interval = CERT_CHECK_INTERVAL_S if interval is None else interval
        self._lock = threading.Lock()
        self._stamp = self._mtimes()
        self._checked = time.monotonic()
        self.context = tls_context(cert_file, key_file)
        self.context.sni_callback = self._on_hello

    def _mtimes(self) -> tuple[float, ...]:
        return tuple(os.stat(f).st_mtime_ns for f in self._files)

    def current(self) -> ssl.SSLContext:
        with self._lock:
            now = time.monotonic()
            if now - self._checked < self._interval:
                return self.context
            self._checked = now
            try:
                stamp = self._mtimes()
                if stamp != self._stamp:
                    fresh = tls_context(*self._files)
                    fresh.sni_callback = self._on_hello
                    self.context, self._stamp = fresh, stamp
                    log.info("metrics endpoint: reloaded the TLS certificate from %s", self._files[0])
            except (OSError, ssl.SSLError) as exc:
                log.warning("metrics endpoint: keeping the previous TLS certificate: %s", exc)
            return self.context

    def _on_hello(self, sock: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
                  context: ssl.SSLContext) -> None:
        current = self.current()
        if current is not context:
            sock.context = current


class MetricsServer:
    """A running endpoint. ``port`` is the bound port (useful when 0 asked for a free one)."""

    def __init__(self, httpd: _Server, thread: threading.Thread, scheme: str) -> None:
        self._httpd = httpd
        self._thread = thread
        self.scheme = scheme
        self.address: str = str(httpd.server_address[0])
        self.port: int = int(httpd.server_address[1])

    @property
    def guard(self) -> GuardedServerMixin:
        return self._httpd

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{host}:{self.port}/metrics"

    def shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(
    state: MetricsState,
    address: str = DEFAULT_ADDRESS,
    port: int = DEFAULT_PORT,
    *,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> MetricsServer:
    """Serve ``state`` on ``address:port``; ``basic_auth`` is ``(user, password hash)`` (see ``auth``)."""
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("TLS needs both a certificate and a key file")
    auth = BasicAuth(*basic_auth) if basic_auth is not None else None
    if auth is not None and tls_cert is None and not _is_loopback(address):
        log.warning("metrics endpoint: basic auth without TLS on %s sends the password in clear text", address)
    reloader = CertificateReloader(tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
    context = reloader.context if reloader is not None else None
    app = _route(make_wsgi_app(build_registry(state)), auth)
    server_class = _Server6 if ":" in address else _Server
    httpd = server_class((address, port), _Handler)
    httpd.guard_start()
    httpd.set_app(app)
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="metrics-http",
                              daemon=True)
    thread.start()
    server = MetricsServer(httpd, thread, "https" if context is not None else "http")
    log.info("serving metrics on %s", server.url)
    return server

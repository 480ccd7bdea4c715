"""The metrics endpoint over HTTP and HTTPS, with and without basic auth."""

from __future__ import annotations

import base64
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.metrics.auth import hash_password
from reconciler.metrics.server import MetricsServer, start_metrics_server
from tests.metrics.representative import representative_state
from tests.metrics.scrape import parse, value


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    handle = start_metrics_server(representative_state(), "127.0.0.1", 0)
    yield handle
    handle.shutdown()


def _get(url: str, *, headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310  (http and https to loopback only)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310  (see above)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_serves_metrics_on_a_free_port(server: MetricsServer) -> None:
    assert server.port > 0
    assert server.address == "127.0.0.1"
    status, body = _get(server.url)
    assert status == 200
    samples = parse(body)
    assert value(samples, "reconciler_passes_total", outcome="converged") == 1.0
    assert any(name == "process_cpu_seconds_total" for name, _ in samples) or not Path("/proc/self/stat").exists()


def test_landing_page_and_unknown_paths(server: MetricsServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    assert _get(base + "/")[0] == 200
    assert _get(base + "/debug")[0] == 404


def test_openmetrics_negotiation(server: MetricsServer) -> None:
    _, body = _get(server.url, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert body.rstrip().endswith("# EOF")


def test_shutdown_frees_the_port() -> None:
    handle = start_metrics_server(representative_state(), "127.0.0.1", 0)
    port = handle.port
    handle.shutdown()
    with socket.socket() as sock:
        sock.settimeout(2)
        with pytest.raises(ConnectionRefusedError):
            sock.connect(("127.0.0.1", port))


def test_basic_auth() -> None:
    handle = start_metrics_server(representative_state(), "127.0.0.1", 0,
                                  basic_auth=("prometheus", hash_password("pw", iterations=1000)))
    try:
        assert _get(handle.url)[0] == 401
        bad = "Basic " + base64.b64encode(b"prometheus:wrong").decode()
        assert _get(handle.url, headers={"Authorization": bad})[0] == 401
        good = "Basic " + base64.b64encode(b"prometheus:pw").decode()
        status, body = _get(handle.url, headers={"Authorization": good})
        assert status == 200
        assert "reconciler_passes_total" in body
    finally:
        handle.shutdown()


def test_tls_needs_both_files() -> None:
    with pytest.raises(ValueError, match="both"):
        start_metrics_server(representative_state(), "127.0.0.1", 0, tls_cert="/nonexistent.crt")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=30)
    return cert, key


def test_tls_with_basic_auth(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    handle = start_metrics_server(representative_state(), "127.0.0.1", 0, tls_cert=str(cert), tls_key=str(key),
                                  basic_auth=("prometheus", hash_password("pw", iterations=1000)))
    try:
        assert handle.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        good = "Basic " + base64.b64encode(b"prometheus:pw").decode()
        status, body = _get(handle.url, headers={"Authorization": good}, context=context)
        assert status == 200
        assert "drbd_connection_state" in body
        with pytest.raises(OSError):  # noqa: PT011  (plain HTTP to a TLS port: the server hangs up)
            _get(handle.url.replace("https://", "http://"), headers={"Authorization": good})
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            _get(handle.url, headers={"Authorization": good}, context=ssl.create_default_context())
    finally:
        handle.shutdown()


def test_silent_client_does_not_block_others(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    handle = start_metrics_server(representative_state(), "127.0.0.1", 0, tls_cert=str(cert), tls_key=str(key))
    try:
        with socket.create_connection(("127.0.0.1", handle.port), timeout=5):
            started = time.monotonic()
            status, _ = _get(handle.url, context=ssl.create_default_context(cafile=str(cert)))
            assert status == 200
            assert time.monotonic() - started < 5
    finally:
        handle.shutdown()


def _make_cert(openssl: str, directory: Path, cn: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", f"/CN={cn}", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=30)
    return cert, key


def _peer_cn(port: int) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    pem = ssl.DER_cert_to_PEM_cert(der)
    done = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem, capture_output=True, text=True,
                          timeout=30, check=True)
    return done.stdout.strip()


def test_renewed_certificate_is_served_without_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: cannot make test certificates")
    import reconciler.metrics.server as server_module

    monkeypatch.setattr(server_module, "CERT_CHECK_INTERVAL_S", 0.0)
    cert, key = _make_cert(openssl, tmp_path / "live", "first")
    handle = start_metrics_server(representative_state(), "127.0.0.1", 0, tls_cert=str(cert), tls_key=str(key))
    try:
        assert _peer_cn(handle.port).endswith("CN = first")
        new_cert, new_key = _make_cert(openssl, tmp_path / "renewed", "second")
        shutil.copy(new_key, key)
        shutil.copy(new_cert, cert)
        assert _peer_cn(handle.port).endswith("CN = second")
        cert.write_text("not a certificate")  # a broken renewal keeps the last good pair
        assert _peer_cn(handle.port).endswith("CN = second")
    finally:
        handle.shutdown()


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6 support")
    try:
        handle = start_metrics_server(representative_state(), "::1", 0)
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback on this machine: {exc}")
    try:
        assert handle.url.startswith("http://[::1]:")
        assert _get(handle.url)[0] == 200
    finally:
        handle.shutdown()


def test_basic_auth_in_clear_text_off_loopback_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="reconciler.metrics.server"):
        handle = start_metrics_server(representative_state(), "0.0.0.0", 0,  # noqa: S104  (the case under test)
                                      basic_auth=("prometheus", hash_password("pw", iterations=1000)))
        handle.shutdown()
    assert "clear text" in caplog.text

"""Benchmark: what the hostile inputs of docs/security.md cost a node, against an unbounded baseline.

Run: .venv/bin/python benchmarks/bench_security.py
Everything runs on this machine, the network part on loopback only, and stops by itself.

1. A 570-byte YAML alias bomb: the loader now, and (baseline) expanding the same document's aliases into
   plain values as the loader did before it was bounded, in a child process capped at 2 GiB and 15 s.
2. 2,000 idle connections: the guarded peer server, and (baseline) the standard library's
   ThreadingHTTPServer, which gives every connection its own thread.
3. Wrong metrics passwords: CPU per checked guess, and for 200 guesses through the rate limiter from one
   address and from 200 addresses.
"""

from __future__ import annotations

import base64
import resource
import socket
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOMB = "\n".join(["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
                 + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]) + "\n"

_CHILD = textwrap.dedent("""
    import resource, sys, threading, time, os
    mode, text = sys.argv[1], sys.stdin.read()
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    started = time.monotonic()
    def report(outcome):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{outcome} after {time.monotonic() - started:.3f} s, peak RSS {rss:.0f} MiB", flush=True)
        os._exit(0)
    threading.Timer(15.0, report, ("still expanding, stopped",)).start()
    if mode == "bounded":
        from reconciler.desired.yamlload import parse
        doc, issues = parse("vms/bomb.yaml", text)
        report(f"refused ({issues[0].message})" if issues else "accepted")
    else:
        import yaml
        loader = yaml.CSafeLoader(text)
        root = loader.get_single_node()
        def expand(node):  # what the loader did before: every alias expanded into fresh values
            if isinstance(node, yaml.MappingNode):
                return {k.value: expand(v) for k, v in node.value}
            if isinstance(node, yaml.SequenceNode):
                return [expand(v) for v in node.value]
            return node.value
        try:
            expand(root)
            report("expanded")
        except MemoryError:
            report("ran out of its 2 GiB")
""")


def alias_bomb() -> None:
    print(f"1. alias bomb of {len(BOMB)} bytes")
    for mode in ("unbounded (baseline)", "bounded"):
        proc = subprocess.run([sys.executable, "-c", _CHILD, mode.split()[0]], input=BOMB, capture_output=True,
                              text=True, timeout=60, check=False)
        print(f"   {mode:22} {(proc.stdout or proc.stderr).strip()}")


class _Baseline(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the same listen backlog as the guarded server: only the threading differs


class _Quiet(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        return


def _idle(port: int, count: int) -> list[socket.socket]:
    held = []
    for i in range(count):
        sock = socket.socket()
        sock.settimeout(10)
        sock.bind((f"127.0.1.{1 + i % 250}", 0))
        sock.connect(("127.0.0.1", port))
        held.append(sock)
    return held


def _peak_threads(seconds: float) -> int:
    peak = threading.active_count()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, threading.active_count())
        time.sleep(0.05)
    return peak


def idle_connections() -> None:
    from reconciler.daemon.peers.peer import PeerAnswer, PeerServer

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(8192, hard), hard))
    print("2. 2,000 idle connections on loopback")
    baseline = _Baseline(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=baseline.serve_forever, daemon=True).start()
    before = threading.active_count()
    held = _idle(baseline.server_address[1], 2000)
    print(f"   ThreadingHTTPServer (baseline): {before} threads before, {_peak_threads(2.0)} with them")
    for sock in held:
        sock.close()
    baseline.shutdown()
    baseline.server_close()
    time.sleep(1.0)  # let the baseline's handler threads see their sockets closed and end

    server = PeerServer("127.0.0.1", 0, lambda: PeerAnswer("h", None, None, True), b"k" * 32, node="h")
    server.start()
    before = threading.active_count()
    held = _idle(server.port, 2000)
    peak = _peak_threads(2.0)
    guard = server.guard
    print(f"   guarded peer server:           {before} threads before, {peak} with them "
          f"({guard.open_connections} held, {guard.refused_connections} refused at once)")
    for sock in held:
        sock.close()
    server.shutdown()


def password_guessing() -> None:
    from reconciler.metrics.auth import BasicAuth, hash_password, verify_password

    print("3. wrong metrics passwords (pbkdf2-sha256, 200,000 iterations)")
    encoded = hash_password("right")
    started = time.process_time()
    for _ in range(5):
        verify_password("wrong", encoded)
    per_hash = (time.process_time() - started) / 5
    print(f"   one checked guess: {per_hash * 1000:.1f} ms CPU (baseline: every guess, unlimited)")
    for label, clients in (("one address", 1), ("200 addresses", 200)):
        auth = BasicAuth("prometheus", encoded)
        header = "Basic " + base64.b64encode(b"prometheus:wrong").decode()
        started = time.process_time()
        verdicts = [auth.check(header, f"client-{i % clients}") for i in range(200)]
        cpu = time.process_time() - started
        print(f"   200 guesses from {label}: {verdicts.count('refused')} checked, {verdicts.count('limited')} "
              f"answered unchecked, {cpu * 1000:.0f} ms CPU in all (unlimited: {200 * per_hash * 1000:.0f} ms)")


if __name__ == "__main__":
    alias_bomb()
    idle_connections()
    password_guessing()

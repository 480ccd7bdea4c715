"""Fencing without Pacemaker: DRBD's fence-peer handler asks the peer's daemon to outdate its replica.

The handler (``reconciler fence-peer``) runs on the node that lost its peer; it sends an authenticated
``POST /v1/outdate`` over the peer-status channel. The peer's daemon outdates the resource only while it
is Secondary there, and answers with one of the :data:`OUTCOMES`. The handler turns the answer into the
exit code DRBD's kernel module understands (``drbd_nl.c``, ``conn_try_outdate_peer``):

3 the peer's disk is already Outdated, Inconsistent or worse; 4 the peer was outdated now; 5 the peer
could not be reached (DRBD then assumes it dead); 6 the peer is Primary (DRBD outdates the local disk).
Everything else (a refused authentication, an unknown resource, a failed ``drbdadm outdate``) is exit 1,
which DRBD logs as a broken helper and treats as "not fenced": nothing is assumed about the peer.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler.desired.expand import UnknownNodeError, expand_node
from reconciler.host.base import Host
from reconciler.model.desired import DrbdHost
from reconciler.names import UnsafeNameError, check_name

OUTDATE_PATH = "/v1/outdate"
DRBDADM_TIMEOUT = 20.0
DEFAULT_HANDLER_TIMEOUT = 10.0

EXIT_ERROR = 1
EXIT_ALREADY = 3
EXIT_OUTDATED = 4
EXIT_UNREACHABLE = 5
EXIT_PEER_PRIMARY = 6

# Disk states at least as bad as Outdated: such a replica can never become a sync source or Primary.
NOT_UP_TO_DATE = frozenset({"Outdated", "Inconsistent", "Diskless", "Failed"})

OUTCOMES = {
    "outdated": EXIT_OUTDATED,
    "already": EXIT_ALREADY,
    "primary": EXIT_PEER_PRIMARY,
    "unknown": EXIT_ERROR,
    "failed": EXIT_ERROR,
}


@dataclass(frozen=True)
class OutdateAnswer:
    node: str
    resource: str
    outcome: str  # one of OUTCOMES
    detail: str = ""

    def to_json(self) -> bytes:
        return json.dumps({"node": self.node, "resource": self.resource, "outcome": self.outcome,
                           "detail": self.detail}, sort_keys=True).encode()


def resource_hosts(cluster: Any, node: str) -> dict[str, tuple[DrbdHost, ...]]:
    """DRBD resource -> its hosts, for the resources ``node`` holds in a loaded cluster (empty if none)."""
    try:
        desired = expand_node(cluster, node)
    except UnknownNodeError:
        return {}
    return {vm.drbd.name: vm.drbd.hosts for vm in desired.vms if vm.drbd is not None}


def _first_field(line: str) -> str:
    # 8.4 prints "Secondary/Primary" and "UpToDate/DUnknown"; 9 prints the local state first as well.
    return line.strip().split("/", 1)[0].strip()


def outdate_local(host: Host, resource: str, managed: Callable[[], frozenset[str]]) -> OutdateAnswer:
    """Outdate ``resource`` here if this node manages it and is not Primary; never promote or demote."""
    try:
        name = check_name(resource, "DRBD resource")
    except UnsafeNameError as exc:
        return OutdateAnswer(host.node, resource, "unknown", str(exc))
    if name not in managed():
        return OutdateAnswer(host.node, name, "unknown", f"{name} is not a resource this node manages")
    role = host.run(("drbdadm", "role", name), timeout=DRBDADM_TIMEOUT)
    if role.ok:
        lines = [line for line in role.stdout.splitlines() if line.strip()]
        if any(_first_field(line) == "Primary" for line in lines):
            return OutdateAnswer(host.node, name, "primary", f"{name} is Primary on {host.node}")
        disks = host.run(("drbdadm", "dstate", name), timeout=DRBDADM_TIMEOUT)
        states = [_first_field(line) for line in disks.stdout.splitlines() if line.strip()] if disks.ok else []
        if states and all(state in NOT_UP_TO_DATE for state in states):
            return OutdateAnswer(host.node, name, "already", f"{name} is already {'/'.join(states)}")
    # Not up here (``drbdadm outdate`` then marks the metadata offline), or Secondary with good data.
    result = host.run(("drbdadm", "outdate", name), timeout=DRBDADM_TIMEOUT)
    if result.ok:
        return OutdateAnswer(host.node, name, "outdated", f"{name} outdated on {host.node}")
    return OutdateAnswer(host.node, name, "failed", result.describe())


def sign(key: bytes | None, *parts: bytes) -> str:
    if key is None:
        return ""
    return hmac.new(key, b"\n".join(parts), hashlib.sha256).hexdigest()


def request_signature(key: bytes | None, nonce: str, stamp: str, body: bytes) -> str:
    # Its own label, and the body signed too: a status request's signature cannot be replayed as an outdate.
    return sign(key, b"outdate", nonce.encode(), stamp.encode(), body)


@dataclass(frozen=True)
class FenceResult:
    exit_code: int
    message: str


def ask_outdate(node: str, host: str, port: int, key: bytes | None, resource: str, *,
                timeout: float = DEFAULT_HANDLER_TIMEOUT) -> FenceResult:
    """Ask one peer's daemon to outdate ``resource``; the result carries DRBD's fence-peer exit code."""
    body = json.dumps({"resource": resource}).encode()
    nonce = secrets.token_hex(16)
    stamp = f"{time.time():.3f}"
    headers = {"Content-Type": "application/json", "X-Reconciler-Nonce": nonce, "X-Reconciler-Time": stamp,
               "X-Reconciler-Auth": request_signature(key, nonce, stamp, body)}
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", OUTDATE_PATH, body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read(65536)
        signature = response.getheader("X-Reconciler-Signature", "")
    except (OSError, http.client.HTTPException) as exc:
        return FenceResult(EXIT_UNREACHABLE, f"peer {node} at {host}:{port} unreachable: {type(exc).__name__}: {exc}")
    finally:
        conn.close()
    if response.status != 200:
        # It answered, so it is alive: claiming "unreachable" would let DRBD assume it dead.
        return FenceResult(EXIT_ERROR, f"peer {node} refused: HTTP {response.status} {response.reason}")
    if key is not None and not hmac.compare_digest(signature, sign(key, b"response", nonce.encode(), answer)):
        return FenceResult(EXIT_ERROR, f"peer {node} answer has a bad signature")
    try:
        data = json.loads(answer)
    except ValueError:
        return FenceResult(EXIT_ERROR, f"peer {node} answered something that is not JSON")
    if not isinstance(data, dict) or data.get("node") != node or data.get("resource") != resource:
        return FenceResult(EXIT_ERROR, f"peer answer is not about {resource} on {node}: {data!r:.200}")
    outcome = str(data.get("outcome"))
    code = OUTCOMES.get(outcome, EXIT_ERROR)
    return FenceResult(code, f"peer {node}: {outcome}: {data.get('detail', '')}")

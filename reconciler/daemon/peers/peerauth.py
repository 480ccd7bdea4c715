"""The peer channel's request and answer signatures (HMAC-SHA256 with the cluster's shared key).

A request's signature covers everything that decides what it does: the sender, the node it is meant for,
the method, the path, a hash of the body, the time and a nonce. A request signed for one node is therefore
refused by every other one (``to`` is checked against the receiver's own name), and it cannot be turned
into another request by changing its path or body. The answer is signed over the responder, the request's
nonce and the body, so a recorded answer cannot be passed off as the answer to a new request.

Headers arrive from anyone on the network: each is checked to be short printable ASCII before it is used,
and anything else is refused as unauthenticated (never an exception).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

VERSION = b"reconciler-peer-2"
H_FROM = "X-Reconciler-From"
H_TO = "X-Reconciler-To"
H_TIME = "X-Reconciler-Time"
H_NONCE = "X-Reconciler-Nonce"
H_AUTH = "X-Reconciler-Auth"
H_SIGNATURE = "X-Reconciler-Signature"

_NODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}")
_NONCE_RE = re.compile(r"[0-9a-f]{32,128}")
_STAMP_RE = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")


def _mac(key: bytes, *parts: bytes) -> str:
    return hmac.new(key, b"\n".join((VERSION, *parts)), hashlib.sha256).hexdigest()


def request_mac(key: bytes, *, sender: str, target: str, method: str, path: str, stamp: str, nonce: str,
                body: bytes) -> str:
    return _mac(key, b"request", sender.encode(), target.encode(), method.encode(), path.encode(), stamp.encode(),
                nonce.encode(), hashlib.sha256(body).hexdigest().encode())


def answer_mac(key: bytes, *, responder: str, nonce: str, body: bytes) -> str:
    return _mac(key, b"answer", responder.encode(), nonce.encode(), hashlib.sha256(body).hexdigest().encode())


def request_headers(key: bytes | None, *, sender: str, target: str, method: str, path: str,
                    body: bytes = b"", now: float | None = None) -> dict[str, str]:
    """The headers of a new request (a fresh nonce each time); no signature without a key."""
    stamp = f"{time.time() if now is None else now:.3f}"
    nonce = secrets.token_hex(16)
    headers = {H_FROM: sender, H_TO: target, H_TIME: stamp, H_NONCE: nonce}
    if key is not None:
        headers[H_AUTH] = request_mac(key, sender=sender, target=target, method=method, path=path, stamp=stamp,
                                      nonce=nonce, body=body)
    return headers


@dataclass(frozen=True)
class SignedRequest:
    sender: str
    target: str
    stamp: float
    nonce: str


class Headers(Protocol):
    def get(self, name: str, /) -> str | None: ...


class AuthRefused(Exception):
    """Why a request is not authenticated (said in the log, never in detail to the client)."""


def _header(headers: Headers, name: str, pattern: re.Pattern[str]) -> str:
    value = headers.get(name)
    if value is None:
        raise AuthRefused(f"no {name} header")
    if not isinstance(value, str) or len(value) > 200 or not value.isascii() or not pattern.fullmatch(value):
        raise AuthRefused(f"malformed {name} header")
    return value


def verify_request(key: bytes | None, headers: Headers, *, me: str, method: str, path: str,
                   body: bytes) -> SignedRequest:
    """The request's sender, target, time and nonce once its signature checks out; :class:`AuthRefused` else.

    Replay (the nonce seen before, the time outside the window) is for the caller to judge."""
    sender = _header(headers, H_FROM, _NODE_RE)
    target = _header(headers, H_TO, _NODE_RE)
    stamp = _header(headers, H_TIME, _STAMP_RE)
    nonce = _header(headers, H_NONCE, _NONCE_RE)
    if key is not None:
        given = _header(headers, H_AUTH, _HEX64_RE)
        expected = request_mac(key, sender=sender, target=target, method=method, path=path, stamp=stamp,
                               nonce=nonce, body=body)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise AuthRefused("bad signature")
    if target != me:
        raise AuthRefused(f"request is for node {target}, not {me}")
    if sender == me:
        raise AuthRefused("request claims to come from this node itself")
    return SignedRequest(sender, target, float(stamp), nonce)


def answer_is_genuine(key: bytes | None, signature: str | None, *, responder: str, nonce: str, body: bytes) -> bool:
    if key is None:
        return True
    if signature is None or not signature.isascii() or not _HEX64_RE.fullmatch(signature):
        return False
    return hmac.compare_digest(signature.encode(), answer_mac(key, responder=responder, nonce=nonce,
                                                               body=body).encode())

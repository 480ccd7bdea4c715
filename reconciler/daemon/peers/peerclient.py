"""The client side of the peer channel: one signed request, and only a genuine answer believed."""

from __future__ import annotations

import http.client

from reconciler.daemon.peers import peerauth

MAX_ANSWER = 65536


class ForgedAnswer(Exception):
    """An answer without the responder's valid signature over this request's nonce."""


class SilentPeer(OSError):
    """The peer's host accepted the connection but no answer came in time: it is alive, only slow or stuck."""


def signed_exchange(key: bytes | None, *, sender: str, target: str, host: str, port: int, method: str, path: str,
                    body: bytes = b"", timeout: float) -> tuple[int, str, bytes]:
    """Send one signed request; (status, reason, body) of a genuine answer. A forged or unsigned answer
    raises :class:`ForgedAnswer`; network trouble raises OSError or HTTPException."""
    headers = peerauth.request_headers(key, sender=sender, target=target, method=method, path=path, body=body)
    if body:
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.connect()  # failing here (refused, no route, no SYN-ACK in time) means nothing answered at all
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            answer = response.read(MAX_ANSWER)
        except TimeoutError as exc:
            raise SilentPeer(f"{host}:{port} accepted the connection but did not answer within {timeout:g}s") from exc
        except (OSError, http.client.HTTPException) as exc:
            # Reset, closed or garbled after the connection was made: its host is up.
            raise SilentPeer(f"{host}:{port} accepted the connection, then: {type(exc).__name__}: {exc}") from exc
        signature = response.getheader(peerauth.H_SIGNATURE)
    finally:
        conn.close()
    if response.status == 200 and not peerauth.answer_is_genuine(key, signature, responder=target,
                                                                 nonce=headers[peerauth.H_NONCE], body=answer):
        raise ForgedAnswer(f"answer from {target} has a bad signature")
    return response.status, str(response.reason), answer

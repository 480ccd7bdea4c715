"""DRBD's side of the fence-peer handler: how DRBD calls it and what DRBD understands back.

DRBD runs ``reconciler fence-peer`` with the resource in ``DRBD_RESOURCE``, the lost peer in
``DRBD_PEER_NODE_ID``/``DRBD_PEER_ADDRESS`` (9) or ``DRBD_PEERS`` (8.4) and the devices in ``DRBD_MINOR``;
:func:`request_from_env` reads them into the shared :class:`~reconciler.core.seams.FenceRequest`. The shared
fence logic (:mod:`reconciler.daemon.peers.fence`) answers a :data:`~reconciler.core.seams.FenceVerdict`,
which :func:`exit_code` turns into the exit code DRBD's kernel module understands (``drbd_nl.c``,
``conn_try_outdate_peer``): 3 the peer's disk is already Outdated, Inconsistent or worse; 4 the peer was
outdated now; 6 the peer is Primary (DRBD tries to outdate the local disk: a Secondary caller becomes
Outdated, a Primary caller is refused that, ``SS_NO_UP_TO_DATE_DISK`` with no peer to hold good data, and stays an
UpToDate Primary, its I/O still frozen under ``resource-and-stonith``); 7 the peer was powered off and a status
query proved it off. Everything else is 1, which DRBD logs as a broken helper and treats as "not fenced".
5 ("unreachable") is never answered: DRBD would take a peer that merely lost a link, and may still be
writing, as Outdated.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.core.seams import FenceRequest, FenceVerdict

RESOURCE_VARIABLE = "DRBD_RESOURCE"

EXIT_ERROR = 1
EXIT_ALREADY = 3
EXIT_OUTDATED = 4
EXIT_PEER_PRIMARY = 6
EXIT_STONITHED = 7

EXIT_CODES: Mapping[FenceVerdict, int] = {
    "not-fenced": EXIT_ERROR,
    "already": EXIT_ALREADY,
    "outdated": EXIT_OUTDATED,
    "peer-primary": EXIT_PEER_PRIMARY,
    "stonithed": EXIT_STONITHED,
}


def exit_code(verdict: FenceVerdict) -> int:
    return EXIT_CODES[verdict]


def request_from_env(env: Mapping[str, str]) -> FenceRequest:
    """What DRBD's environment tells the handler; a value that is not a number is left out (not guessed)."""
    node_id = env.get("DRBD_PEER_NODE_ID", "")
    return FenceRequest(
        resource=env.get(RESOURCE_VARIABLE, ""),
        peer_node_id=int(node_id) if node_id.isdigit() else None,
        peer_address=env.get("DRBD_PEER_ADDRESS", ""),
        peer_names=tuple(env.get("DRBD_PEERS", "").split()),
        minors=tuple(int(m) for m in env.get("DRBD_MINOR", "").split() if m.isdigit()),
    )

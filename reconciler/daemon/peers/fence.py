"""Fencing without Pacemaker: the replication's fence-peer handler asks the peer's daemon to outdate its replica.

The handler (``reconciler fence-peer``) runs on the node that lost its peer; it sends an authenticated
``POST /v1/outdate`` over the peer-status channel. The peer's daemon outdates the resource only while it
is Secondary there, and answers with one of the :data:`OUTCOMES`. The handler turns the answer into a
:data:`~reconciler.core.seams.FenceVerdict`: "already" (the peer's disk is already Outdated, Inconsistent or
worse), "outdated" (now), "peer-primary", "stonithed" (powered off and a status query proved it off,
:mod:`reconciler.daemon.peers.powerfence`, only under ``resource-and-stonith``), and "not-fenced" for everything
else: nothing is assumed about the peer. That includes a peer that cannot be reached, which may still be
writing. The replicator's handler adapter reads the request from its tool and answers the verdict in its
tool's terms (DRBD's environment and exit codes: :mod:`reconciler.backends.drbd.fence_handler`).

Each side notices a cut link on its own ping timeout, so the peer may still call itself Connected when it is
asked, and DRBD refuses to outdate a connected disk. The peer then answers "connected" and the handler asks
again until its deadline: a 4 is only ever the peer's own confirmation.

Inside a live migration's window both nodes are Primary, and a cut link runs the handler on both. A Primary
outside the window answers "primary" (6: DRBD then tries to outdate the asker's own disk; a Secondary asker
becomes Outdated and its promotion fails, but a Primary asker is refused that change, ``SS_NO_UP_TO_DATE_DISK``
without a connection in ``drbd_state.c``, and stays an UpToDate Primary, its I/O still frozen under
``resource-and-stonith``; see ``conn_try_outdate_peer`` in 8.4's ``drbd_nl.c``). Inside the window (the runtime
``allow-two-primaries``, read fresh with ``drbdsetup show RES``) the peer first tries to give way: the side that
does not run the domain holds its device closed, so ``drbdadm secondary`` succeeds there and it outdates itself
(4: the asker, running the domain, keeps its disk); the side running it (the domain, or xl's
``NAME--incoming``/``NAME--migratedaway`` holding the device) is refused by DRBD ("Device is held open by
someone") and answers "primary" as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import ipaddress
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.backends.registry import DEFAULT_BACKENDS
from reconciler.core.seams import FenceRequest, FenceVerdict, Replicator
from reconciler.daemon.peers.peerclient import ForgedAnswer, SilentPeer, signed_exchange
from reconciler.daemon.peers.powerfence import FenceRecord, power_fence, write_record
from reconciler.desired.errors import UnknownNodeError
from reconciler.desired.expand import expand_node
from reconciler.host.base import Host, HostFileError
from reconciler.model.desired import FENCE_HANDLER_SECONDS, DesiredDrbd, DrbdHost
from reconciler.names import UnsafeNameError, check_name
from reconciler.printable import escape

if TYPE_CHECKING:
    from reconciler.desired.load import Cluster
    from reconciler.desired.resolve import Vm

OUTDATE_PATH = "/v1/outdate"
# Covers the peer noticing the cut (DRBD's ping-int plus ping-timeout: 10.5 s by default) with room to spare.
DEFAULT_HANDLER_TIMEOUT = FENCE_HANDLER_SECONDS
RETRY_INTERVAL = 1.0
# A peer that does not answer is asked again for this long (a daemon restarting, a link blip) before the
# handler counts it as unreachable; each attempt waits at most ATTEMPT_TIMEOUT for an answer.
UNREACHABLE_GRACE = 10.0
ATTEMPT_TIMEOUT = 10.0

OUTCOMES: dict[str, FenceVerdict] = {
    "outdated": "outdated",
    "already": "already",
    "primary": "peer-primary",
    "unknown": "not-fenced",
    "failed": "not-fenced",
    "connected": "not-fenced",  # only when the peer still calls itself connected at the handler's deadline
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


def resource_hosts(cluster: Cluster, node: str) -> dict[str, tuple[DrbdHost, ...]]:
    """DRBD resource -> its hosts, for the resources ``node`` holds in a loaded cluster (empty if none)."""
    try:
        desired = expand_node(cluster, node)
    except UnknownNodeError:
        return {}
    return {vm.drbd.name: vm.drbd.hosts for vm in desired.vms if vm.drbd is not None}


def resource_vms(cluster: Cluster, node: str) -> dict[str, tuple[str, str]]:
    """DRBD resource -> (its VM, the VM's one peer) for the resources ``node`` holds with exactly one peer."""
    try:
        desired = expand_node(cluster, node)
    except UnknownNodeError:
        return {}
    return {vm.drbd.name: (vm.name, vm.peers[0]) for vm in desired.vms if vm.drbd is not None and len(vm.peers) == 1}


def _no_record(resource: str) -> tuple[bool, str]:
    return False, "nothing shows that the peer keeps the data"


def outdate_local(host: Host, resource: str, managed: Callable[[], frozenset[str]],
                  replicator: Replicator = DEFAULT_BACKENDS.replicator, *,
                  peer_keeps: Callable[[str], tuple[bool, str]] = _no_record) -> OutdateAnswer:
    """Outdate ``resource`` here if this node manages it and the replicator finds it not the writer; never
    promote, and demote a writer inside a live migration's window only when ``peer_keeps(resource)`` (the
    migration's records, :mod:`reconciler.daemon.peers.giveway`) says the peer keeps the data (the
    replicator's :meth:`~reconciler.core.seams.Replicator.outdate`)."""
    try:
        name = check_name(resource, "DRBD resource")
    except UnsafeNameError as exc:
        return OutdateAnswer(host.node, resource, "unknown", str(exc))
    if name not in managed():
        return OutdateAnswer(host.node, name, "unknown", f"{name} is not a resource this node manages")
    outcome, detail = replicator.outdate(host, name, peer_keeps(name))
    return OutdateAnswer(host.node, name, outcome, detail)


@dataclass(frozen=True)
class FenceResult:
    verdict: FenceVerdict
    message: str
    unreachable: bool = False  # no answer at all: the peer may be dead, or only cut off


def ask_outdate(node: str, host: str, port: int, key: bytes | None, resource: str, *, sender: str,
                timeout: float = DEFAULT_HANDLER_TIMEOUT,
                wait: Callable[[float], object] = time.sleep,
                clock: Callable[[], float] = time.monotonic) -> FenceResult:
    """Ask one peer's daemon to outdate ``resource``; the result carries the fence verdict.

    While the peer answers that it is still connected, ask again until ``timeout`` (the whole handler's
    deadline); while it does not answer at all, ask again for :data:`UNREACHABLE_GRACE`. The request is
    signed for ``node`` alone (with ``sender``, this node, as its origin), so it cannot be replayed to any
    other node, nor to ``node`` again (see :mod:`reconciler.daemon.peers.peerauth`)."""
    deadline = clock() + timeout
    silent_since: float | None = None
    while True:
        asked = clock()
        result, outcome = _ask_once(node, host, port, key, resource, sender=sender,
                                    timeout=max(min(deadline - asked, ATTEMPT_TIMEOUT), 0.1))
        now = clock()
        if result.unreachable:
            silent_since = asked if silent_since is None else silent_since
            if now - silent_since >= UNREACHABLE_GRACE:
                return result
            if deadline - now <= RETRY_INTERVAL:
                # Silent for less than the grace: that proves nothing either way.
                return FenceResult("not-fenced", result.message)
        elif outcome != "connected" or deadline - now <= RETRY_INTERVAL:
            return result
        else:
            silent_since = None
        wait(RETRY_INTERVAL)


def _ask_once(node: str, host: str, port: int, key: bytes | None, resource: str, *, sender: str,
              timeout: float) -> tuple[FenceResult, str]:
    body = json.dumps({"resource": resource}).encode()
    try:
        status, reason, answer = signed_exchange(key, sender=sender, target=node, host=host, port=port,
                                                 method="POST", path=OUTDATE_PATH, body=body, timeout=timeout)
    except ForgedAnswer:
        return FenceResult("not-fenced", f"peer {node} answer has a bad signature"), ""
    except SilentPeer as exc:
        # Its host is up: never unreachable, never powered off for it; asked again like a connected peer.
        return FenceResult("not-fenced", f"peer {node}: {exc}"), "connected"
    except (OSError, http.client.HTTPException) as exc:
        return FenceResult("not-fenced", f"peer {node} at {host}:{port} unreachable: {type(exc).__name__}: {exc}",
                           unreachable=True), ""
    if status != 200:
        # It answered, so it is alive: claiming "unreachable" would let DRBD assume it dead.
        return FenceResult("not-fenced", f"peer {node} refused: HTTP {status} {escape(reason)[:100]}"), ""
    try:
        data = json.loads(answer)
    except ValueError:
        return FenceResult("not-fenced", f"peer {node} answered something that is not JSON"), ""
    if not isinstance(data, dict) or data.get("node") != node or data.get("resource") != resource:
        return FenceResult("not-fenced",
                           f"peer answer is not about {resource} on {node}: {escape(repr(data))[:200]}"), ""
    outcome = str(data.get("outcome"))
    code = OUTCOMES.get(outcome, "not-fenced")
    detail = escape(str(data.get("detail", "")))[:300]
    return FenceResult(code, f"peer {node}: {escape(outcome)[:40]}: {detail}"), outcome


def _resource_vm(cluster: Cluster, node: str, resource: str) -> tuple[Vm, DesiredDrbd] | None:
    """The VM whose DRBD resource ``resource`` is on ``node``, with that resource as the node expands it."""
    try:
        desired = expand_node(cluster, node)
    except UnknownNodeError:
        return None
    drbds = {vm.name: vm.drbd for vm in desired.vms if vm.drbd is not None and vm.drbd.name == resource}
    vm = next((vm for vm in cluster.vms if vm.name in drbds), None)
    return None if vm is None else (vm, drbds[vm.name])


def fence_wait(delay: int, *, primary: bool, first: bool) -> float:
    """Seconds to wait before powering the peer off, so that when both links fail exactly one node fences.

    A Primary whose node name sorts first waits nothing; a Primary that sorts second waits ``delay``: in the
    classic layout each node runs VMs of its own, so both are Primary for something and both handlers run at
    once. A node that is not Primary (only a promotion runs its handler) waits twice ``delay``, so the node
    running the VM wins."""
    if primary:
        return 0.0 if first else float(delay)
    return 2.0 * delay


def local_view(host: Host, minor: int, replicator: Replicator = DEFAULT_BACKENDS.replicator) -> tuple[str, str]:
    """This node's role and disk state of the replica on ``minor`` as the replicator reads them without waiting
    on the replication's own locks; ``("Unknown", "Unknown")``, which never allows a power fence, when it
    cannot tell (:meth:`~reconciler.core.seams.Replicator.local_view`)."""
    return replicator.local_view(host, minor)


def _named_peer(hosts: tuple[DrbdHost, ...], request: FenceRequest) -> str | None:
    """The peer the request names, when it names one (by node id, or a single name)."""
    if request.peer_node_id is not None:
        return next((h.name for h in hosts if h.node_id == request.peer_node_id), "")
    return request.peer_names[0] if len(request.peer_names) == 1 else None


class PeerChoiceError(ValueError):
    """The request does not tell which peer to fence."""


def pick_peer(hosts: tuple[DrbdHost, ...], node: str, request: FenceRequest) -> DrbdHost:
    """The other host of the resource the request means (by node id, address or name; the only one if it names
    none)."""
    others = [h for h in hosts if h.name != node]
    if request.peer_node_id is not None:
        others = [h for h in others if h.node_id == request.peer_node_id]
    elif request.peer_address:
        try:
            wanted = ipaddress.ip_address(request.peer_address)
        except ValueError:
            raise PeerChoiceError(f"the peer address {request.peer_address!r} is not an address") from None
        others = [h for h in others if ipaddress.ip_address(h.address) == wanted]
    elif request.peer_names:
        others = [h for h in others if h.name in request.peer_names]
    if len(others) != 1:
        seen = ", ".join(h.name for h in others) or "none"
        raise PeerChoiceError(f"cannot tell which peer to fence (candidates: {seen})")
    return others[0]


def stonith_peer(host: Host, cluster: Cluster, resource: str, peer: str, state_dir: Path, *,
                 request: FenceRequest | None = None,
                 wait: Callable[[float], object] = time.sleep,
                 replicator: Replicator = DEFAULT_BACKENDS.replicator) -> FenceResult:
    """Power the unreachable ``peer`` off with its fence agent when the revision allows it; else "not-fenced".

    Only under ``fencing_policy: resource-and-stonith`` with a ``power_fence`` for the peer, and only while
    the local disk of ``resource`` is UpToDate: after a power loss of both nodes a Consistent disk may lack
    the peer's last writes, and "stonithed" would let the replication promote it. It waits first
    (``fence_wait``), so that when both links fail one node powers the other off, never both, and the node
    running the VM wins. ``request``: what the replication told the handler (the minors, the lost peer), read
    by the adapter of ``replicator`` (the node's), which also reads the local role and disk."""
    found = _resource_vm(cluster, host.node, resource)
    hosts = found[1].hosts if found is not None else ()
    if peer not in {h.name for h in hosts if h.name != host.node}:
        # A wrong --peer must never switch off a node that does not even hold the resource.
        return FenceResult("not-fenced", f"peer {peer} unreachable, and it is not the other host of {resource} in "
                                       "the revision in force: not powering anything off")
    spec = cluster.spec.nodes[peer].power_fence if peer in cluster.spec.nodes else None
    if found is None or found[0].safety.mechanism != "fencing" \
            or found[0].safety.fencing_policy != "resource-and-stonith":
        return FenceResult("not-fenced", f"peer {peer} unreachable; without resource-and-stonith and a power fence "
                                       "nothing proves it cannot write")
    if spec is None:
        return FenceResult("not-fenced", f"peer {peer} unreachable and cluster.yaml names no power_fence for it: "
                                       "nothing proves it cannot write")
    request = request or FenceRequest(resource)
    minors = list(request.minors)
    if minors and found[1].minor not in minors:
        return FenceResult("not-fenced", f"DRBD runs this handler for minor(s) {minors}, the revision in force has "
                                       f"{resource} on minor {found[1].minor}: not powering anything off")
    named = _named_peer(hosts, request)
    if named is not None and named != peer:
        return FenceResult("not-fenced", f"DRBD lost {named}, not {peer}: not powering anything off")
    role, disk = local_view(host, found[1].minor, replicator)
    if disk != "UpToDate":
        return FenceResult("not-fenced", f"peer {peer} unreachable; not powering it off: the local disk is {disk}, "
                                       "not UpToDate, and may lack its last writes")
    # One stagger for both sides (the larger delay): each side computing its own from the other's setting could
    # leave a standby waiting less than the Primary it powers off.
    mine = cluster.spec.nodes[host.node].power_fence if host.node in cluster.spec.nodes else None
    stagger = max(spec.delay, mine.delay if mine is not None else 0)
    pause = fence_wait(stagger, primary=role == "Primary", first=host.node < peer)
    if pause:
        wait(pause)
    began = time.time()
    try:
        record = power_fence(host, peer, resource, spec)
    except BaseException as stopped:
        # Stopped midway (the handler got SIGTERM): the off command may have run, so the attempt is recorded as
        # failed (nothing proven) before the stop goes on.
        interrupted = FenceRecord(peer, host.node, resource, "failed", began, time.time(),
                                  f"interrupted ({type(stopped).__name__} {stopped}) after the off command may "
                                  "have run: nothing was proven")
        with contextlib.suppress(OSError, HostFileError):  # the stop matters more than the record
            write_record(state_dir, interrupted)
        raise
    try:
        write_record(state_dir, record)
    except (OSError, HostFileError) as exc:
        # The node is off either way; the record is what the metrics show, so say that it is missing.
        record = dataclasses.replace(record, detail=f"{record.detail}; the record was not written: {exc}")
    if record.verified_off:
        return FenceResult("stonithed", f"peer {peer} powered off and verified off: {record.detail}")
    return FenceResult("not-fenced", f"peer {peer} unreachable and its power fence did not prove it off: "
                                   f"{record.detail}")

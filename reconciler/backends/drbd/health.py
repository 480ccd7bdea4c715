"""DRBD's part of a node's health (:mod:`reconciler.plan.health`): the conditions of one replicated resource, as
the :class:`~reconciler.core.seams.Replicator` reports them (``health_conditions``)."""

from __future__ import annotations

from reconciler.backends.drbd.quorum import quorum_lost
from reconciler.backends.drbd.splitbrain_plan import describe_incident, incident_of, recovery_hint
from reconciler.core.peer_view import PeerView
from reconciler.model.desired import DesiredVm
from reconciler.model.observed import DrbdResourceState
from reconciler.model.status import Condition


def drbd_conditions(vm: DesiredVm, res: DrbdResourceState, peer: PeerView | None,
                     hostname: str) -> list[Condition]:
    """What is wrong with the replica of ``vm`` here that the reconciler must not repair by itself: split brain,
    lost quorum, a local or peer disk not UpToDate, a lost tiebreaker. ``hostname``: this node's host name, the
    name DRBD's hosts and connections use."""
    assert vm.drbd is not None  # noqa: S101  (the caller checked)
    key, name = vm.drbd.key, vm.drbd.name
    out: list[Condition] = []
    if res.split_brain:
        incident = incident_of(vm, res, peer)
        out.append(Condition(key=key, vm=vm.name, kind="split-brain",
                             message=f"{name} is in split brain ({res.split_brain_detail or 'detected'}): both "
                                     f"sides wrote while disconnected; {describe_incident(vm, incident)}; "
                                     f"{recovery_hint(vm, incident)}"))
    if quorum_lost(vm, res):
        out.append(Condition(key=key, vm=vm.name, kind="quorum-lost",
                             message=f"{name}: this node has no quorum: its writes fail or freeze here; a Primary "
                                     "gives the VM up (domain destroyed, resource demoted), and the VM can run only "
                                     "where quorum is held"))
    me = next((h for h in vm.drbd.hosts if h.name == hostname), None)
    wants_disk = me is None or not me.diskless
    bad = sorted({d.disk_state for d in res.devices if d.disk_state != "UpToDate"})
    if wants_disk and (bad or not res.devices):
        writes_through = " (the domain's writes go to the peer only)" if res.role == "Primary" else ""
        shown = "/".join(bad) or "missing"
        out.append(Condition(key=key, vm=vm.name, kind="disk",
                             message=f"{name}: local disk is {shown}, not UpToDate{writes_through}"))
    diskless = {h.name for h in vm.drbd.hosts if h.diskless}  # a tiebreaker holds no data to be UpToDate
    peers = [(c.peer_name, c.connection_state, p.peer_disk_state) for c in res.connections
             if c.peer_name not in diskless for p in c.peer_devices]
    bad_peers = [f"{peer} {conn}/{disk}" for peer, conn, disk in peers if disk != "UpToDate"]
    missing = [c.peer_name for c in res.connections if not c.peer_devices and c.peer_name not in diskless]
    missing += [h.name for h in vm.drbd.hosts if h.name != hostname and not h.diskless
                and h.name not in {c.peer_name for c in res.connections}]
    if bad_peers or missing:
        seen = ", ".join(bad_peers + [f"{p} not connected" for p in missing])
        out.append(Condition(key=key, vm=vm.name, kind="peer-disk",
                             message=f"{name}: the peer's data is not known to be UpToDate ({seen}); "
                                     "a failover now could lose writes or find no good copy"))
    connected = {c.peer_name for c in res.connections if c.connection_state == "Connected"}
    lost = sorted(diskless - connected - {hostname})
    if lost and wants_disk:
        out.append(Condition(key=key, vm=vm.name, kind="tiebreaker-lost",
                             message=f"{name}: the tiebreaker {', '.join(lost)} is not connected: quorum rests on the "
                                     "two data nodes alone, and one more lost link leaves neither side with quorum "
                                     "(the Primary's writes then fail or freeze)"))
    return out

"""What this node knows about its peer beyond DRBD's own view: the peer's backing device sizes, its records of
split brains, and the VMs it runs after an automatic failover.

DRBD's status does not show the peer's backing size, so an online resize would be guessed; nor, once a split
brain dropped the connection, the peer's generation identifiers, which name the incident together with this
node's; nor why the peer is Primary. The daemon fills this in from peer status (tests also from observing a
simulated peer); without it a resize waits, and so does a split-brain recovery the desired state asks for.

A VM's designated primary that comes back after an automatic failover away from it (``failback: manual``)
learns here that the peer keeps the VM until a commit decides: it then plans no promotion, which could only wait
for a demotion that nothing is going to make, and reports the failover instead (:func:`failed_over_away`).
"""

from __future__ import annotations

from reconciler.model.base import Frozen, field
from reconciler.model.desired import DesiredNode, DesiredVm
from reconciler.model.observed import DrbdResourceState, ObservedNode
from reconciler.model.status import PeerTakeover


class PeerView(Frozen):
    node: str
    backing_bytes: dict[str, int] = field(default_factory=dict)  # DRBD resource -> size of the peer's backing device
    # DRBD resource -> the peer's generation identifiers when DRBD last reported a split brain there
    split_brain: dict[str, str] = field(default_factory=dict)
    # The VMs the peer runs after an automatic failover, as it reported them just now (empty: nothing known).
    takeovers: tuple[PeerTakeover, ...] = ()


def failed_over_away(vm: DesiredVm, res: DrbdResourceState | None, peer: PeerView | None, *,
                     domain_here: bool) -> PeerTakeover | None:
    """The peer's automatic failover that keeps ``vm`` away from this node, its designated primary, until a
    commit decides; None when there is none, or when anything else could be going on.

    All of these must hold: the peer reports that it took the VM over from this node; the VM's failback is
    manual (with ``automatic`` the peer gives it back by itself, and this node must promote then); DRBD shows
    the peer Primary and this node not; the domain does not exist here. What the peer says alone moves nothing:
    only DRBD's own view of the peer as Primary makes a promotion here pointless, one that the promotion's own
    rule (``safety.promotion_verdict``) would hold back anyway."""
    if peer is None or not peer.takeovers or vm.takeover is not None or not vm.is_primary_here:
        return None
    if vm.failover.failback != "manual" or vm.drbd is None or res is None or res.role == "Primary" or domain_here:
        return None
    taken = next((t for t in peer.takeovers if t.vm == vm.name and t.from_node == vm.this_node), None)
    if taken is None:
        return None
    diskless = {h.name for h in vm.drbd.hosts if h.diskless}  # a quorum tiebreaker never runs the VM
    if not any(c.peer_role == "Primary" and c.peer_name not in diskless for c in res.connections):
        return None
    return taken


def peer_view_from_observation(desired_peer: DesiredNode, observed_peer: ObservedNode) -> PeerView:
    """The peer's backing sizes as its own observation shows them (dm stripe or LV under each resource)."""
    sizes: dict[str, int] = {}
    for vm in desired_peer.vms:
        if vm.drbd is None:
            continue
        if vm.stripe is not None:
            dm = observed_peer.dm(vm.stripe.name)
            if dm is not None and dm.targets:
                sizes[vm.drbd.name] = sum(t.length for t in dm.targets) * 512
            continue
        for lv in vm.lvs:
            if lv.path == vm.drbd.backing_device:
                found = observed_peer.lv(lv.vg, lv.name)
                if found is not None:
                    sizes[vm.drbd.name] = found.size_bytes
    records = {r.name: r.split_brain_record for r in observed_peer.drbd.resources if r.split_brain_record}
    return PeerView(node=observed_peer.node, backing_bytes=sizes, split_brain=records)

"""What this node knows about its peer beyond DRBD's own view: the peer's backing device sizes and its
records of split brains.

DRBD's status does not show the peer's backing size, so an online resize would be guessed; nor, once a split
brain dropped the connection, the peer's generation identifiers, which name the incident together with this
node's. The daemon fills this in from peer status (tests also from observing a simulated peer); without it a
resize waits, and so does a split-brain recovery the desired state asks for.
"""

from __future__ import annotations

from reconciler.model.base import Frozen, field
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode


class PeerView(Frozen):
    node: str
    backing_bytes: dict[str, int] = field(default_factory=dict)  # DRBD resource -> size of the peer's backing device
    # DRBD resource -> the peer's generation identifiers when DRBD last reported a split brain there
    split_brain: dict[str, str] = field(default_factory=dict)


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

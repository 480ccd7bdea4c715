"""The DRBD resource of one VM: config file, metadata, up/adjust, online resize, role."""

from __future__ import annotations

from reconciler.core.actions import WaitFor
from reconciler.core.safety import FENCED_TAKEOVER, promotion_verdict
from reconciler.core.seams import PlanBuilder
from reconciler.core.vm_builder import SEMANTIC_REWRITE
from reconciler.model.desired import DesiredDrbd
from reconciler.model.observed import DrbdResourceState
from reconciler.sizes import format_size

_BROKEN_CONNECTIONS = ("StandAlone",)
DISKLESS = "none"  # the backing device of a quorum tiebreaker's replica (`disk none`)


def internal_metadata_bytes(backing_bytes: int) -> int:
    """A generous upper bound of DRBD's internal metadata: bitmap (a bit per 4 KiB, room for two peers),
    activity log, superblock and alignment. Growth smaller than this is not worth an online resize."""
    return backing_bytes // 16384 + 4 * 1024 * 1024


def backing_bytes(b: PlanBuilder) -> int | None:
    vm = b.vm
    if vm.stripe is not None:
        return vm.stripe.size_bytes
    drbd = vm.drbd
    return next((lv.size_bytes for lv in vm.lvs if drbd is not None and lv.path == drbd.backing_device), None)


def data_lv_paths(b: PlanBuilder) -> tuple[str, ...]:
    """The LVs beneath the DRBD backing device (the legs of a stripe), which a probe of the device cannot see
    (a linear backing device is its own LV: nothing lies beneath it but the disk)."""
    drbd = b.vm.drbd
    return tuple(lv.path for lv in b.vm.lvs
                 if lv.purpose == "data" and (drbd is None or lv.path != drbd.backing_device))


def storage_action_ids(b: PlanBuilder) -> tuple[str, ...]:
    keys = [lv.key for lv in b.vm.lvs if lv.purpose == "data"]
    if b.vm.stripe is not None:
        keys.append(b.vm.stripe.key)
    return b.ids_for(*keys)


def plan_drbd_config(b: PlanBuilder, drbd: DesiredDrbd) -> str | None:
    return b.owned_file("write-drbd-config", drbd.key, drbd.config_path, drbd.config_text, b.replicator)


def runtime_drift(res: DrbdResourceState, drbd: DesiredDrbd, this_node: str) -> str | None:
    """What DRBD's runtime shows that its config does not ask for; `drbdadm adjust` repairs each of these."""
    peers = {h.name for h in drbd.hosts if h.name != this_node}
    connected = {c.peer_name for c in res.connections}
    missing = sorted(peers - connected)
    if missing:
        return f"no connection configured to {', '.join(missing)}"
    standalone = [c.peer_name for c in res.connections if c.connection_state in _BROKEN_CONNECTIONS]
    if standalone:
        return f"connection to {', '.join(standalone)} is StandAlone"
    me = next((h for h in drbd.hosts if h.name == this_node), None)
    if me is not None and not me.diskless and any(d.disk_state == "Diskless" for d in res.devices):
        return "backing disk is detached (Diskless)"
    if not res.devices:
        return "the resource has no volume"
    return None


def plan_drbd(b: PlanBuilder, drbd: DesiredDrbd) -> None:
    res = b.observed.resource(drbd.name)
    config = plan_drbd_config(b, drbd)
    storage = storage_action_ids(b)
    if res is None and drbd.backing_device == DISKLESS:
        # A quorum tiebreaker: no disk, so no metadata to create; `drbdadm up` brings it up diskless.
        b.add("drbd-up", drbd.key, "create", f"bring up DRBD resource {drbd.name} on {drbd.device} (diskless)",
              commands=(b.command(b.replicator.up_argv(drbd.name)),), depends_on=(config,))
        return
    if res is None:
        created = any(a.kind == "create-lv" for a in b.actions)
        data_lvs = ",".join(lv.path for lv in b.vm.lvs if lv.purpose == "data")
        md = b.add("create-md", drbd.key, "create",
                   f"create DRBD metadata on {drbd.backing_device} (only if blkid -p finds no signature there "
                   "nor on any LV beneath it)",
                   commands=(b.command(b.replicator.create_metadata_argv(drbd.name)),), depends_on=(config, *storage),
                   destructive=True, probe_before=(drbd.backing_device,), probe_beneath=data_lv_paths(b),
                   identity=data_lvs,
                   reason="new" if created else "after-reboot")
        b.add("drbd-up", drbd.key, "create", f"bring up DRBD resource {drbd.name} on {drbd.device}",
              commands=(b.command(b.replicator.up_argv(drbd.name)),), depends_on=(md, config))
        return
    if res.split_brain:
        # adjust would reconnect into the same split brain (or apply a changed config mid-incident): the
        # health assessment reports it with the recovery; only the operator decides whose writes are lost.
        return
    drift = runtime_drift(res, drbd, b.vm.this_node)
    if drift is None and drbd.name in b.drbd_changes:
        drift = f"drbdadm -d adjust would run: {b.drbd_changes[drbd.name]}"
    written = next((a for a in b.actions if a.id == config), None) if config is not None else None
    if written is not None and (written.refused or written.reason == SEMANTIC_REWRITE):
        config = None  # refused, or a hand-written file replaced by one that means the same: nothing to adjust
    if res.two_primaries_allowed and (config is not None or drift is not None):
        # adjust would put the file's allow-two-primaries (no) back in the middle of a live migration's window;
        # the config file waits with it (written alone, it would hide what the kernel still runs).
        why = f"{drbd.name} has its live migration window open; adjusting waits until it is closed"
        b.actions[:] = [a.with_(waiting=why, wait_for="local-state") if a.id == config else a for a in b.actions]
        b.note("info", drbd.key, why)
        return
    if config is not None or drift is not None:
        why = "config rewritten" if config is not None else f"runtime differs from the config: {drift}"
        b.add("drbd-adjust", drbd.key, "change", f"adjust DRBD resource {drbd.name} ({why})",
              commands=(b.command(b.replicator.adjust_argv(drbd.name)),), depends_on=(config, *storage), reason=why)
    plan_resize(b, drbd, res, storage)


def plan_resize(b: PlanBuilder, drbd: DesiredDrbd, res: DrbdResourceState, storage: tuple[str, ...]) -> None:
    backing = backing_bytes(b)
    size_kib = res.devices[0].size_kib if res.devices else None
    if backing is None or size_kib is None:
        return
    if size_kib * 1024 + internal_metadata_bytes(backing) >= backing:
        return
    waiting = ""
    wait_for: WaitFor = "peer-state"
    if not res.connections or any(c.connection_state != "Connected" for c in res.connections):
        waiting = "the peer is not connected; DRBD resizes only with both nodes connected"
    elif b.peer is None:
        waiting = "the peer's backing size is unknown here (no peer status); resize waits for it"
        wait_for = "peer-backing-size"
    else:
        peer_size = b.peer.backing_bytes.get(drbd.name)
        if peer_size is None or peer_size < backing:
            waiting = (f"peer {b.peer.node} has not grown its backing device yet "
                       f"({format_size(peer_size) if peer_size else 'unknown'} < {format_size(backing)})")
    if not waiting and not b.vm.is_primary_here:
        # One resize grows the device on both connected nodes; issuing it from both would run it twice.
        waiting = f"the designated primary {b.vm.primary_node} resizes it (DRBD grows both nodes at once)"
    b.add("drbd-resize", drbd.key, "change",
          f"resize DRBD {drbd.name} to the grown backing device ({format_size(backing)})",
          commands=(b.command(b.replicator.resize_argv(drbd.name)),), depends_on=storage, waiting=waiting,
          wait_for=wait_for if waiting else "")
    if not waiting and b.vm.filesystem is not None:
        b.note("filesystem-growth", b.vm.filesystem.key,
               f"{drbd.device} grows to about {format_size(backing - internal_metadata_bytes(backing))}: grow the "
               "filesystem inside the guest (xfs_growfs on its mount point); dom0 never mounts it")


def plan_role(b: PlanBuilder, drbd: DesiredDrbd, *, want_primary: bool, domain_running: bool) -> str | None:
    """Promote (forced only for a brand-new pair) or demote. Returns the id of the promote action."""
    res = b.observed.resource(drbd.name)
    if not want_primary:
        if res is not None and res.role == "Primary":
            stop = b.find("shutdown-domain", b.vm.domain.key) if b.vm.domain else None
            if domain_running and stop is None:
                return None  # the domain keeps running here; demoting under it would fail
            return b.add("demote", drbd.key, "change", f"demote {drbd.name} to Secondary",
                         commands=(b.command(b.replicator.demote_argv(drbd.name)),), depends_on=(stop,))
        return None
    if res is not None and res.role == "Primary":
        return None
    up = b.find("drbd-up", drbd.key)
    adjust = b.find("drbd-adjust", drbd.key)
    if res is None:
        return b.add("promote", drbd.key, "change", f"promote {drbd.name}",
                     commands=(b.command(b.replicator.promote_argv(drbd.name)),), depends_on=(up,), safety=drbd.safety,
                     waiting=f"{drbd.name} comes up in this pass; promotion is decided from its state on the next pass")
    takeover = b.vm.takeover is not None and drbd.safety == "fencing"
    diskless = tuple(h.name for h in drbd.hosts if h.diskless)
    verdict = promotion_verdict(res, quorum_mechanism=drbd.safety == "quorum", handler_fences=takeover,
                                diskless=frozenset(diskless))
    if verdict.kind == "promote-force-initial":
        new = bool(res.connections) and not verdict.waiting
        what = (f"initial forced promotion of brand-new pair {drbd.name} (starts the first full sync)" if new
                else f"initial forced promotion of {drbd.name}")
        return b.add("promote-force-initial", drbd.key, "change", what,
                     commands=(b.command(b.replicator.promote_argv(drbd.name, force=True)),), depends_on=(adjust,),
                     destructive=True, waiting=verdict.waiting, refused=verdict.refused, safety=drbd.safety,
                     diskless_peers=diskless)
    if b.vm.takeover is not None:
        # DRBD may run the fence-peer handler inside this command: it gets the handler's whole budget.
        return b.add("promote", drbd.key, "change",
                     f"promote {drbd.name} to Primary (automatic failover {b.vm.takeover.id} from "
                     f"{b.vm.takeover.from_node})",
                     commands=(b.command(b.replicator.promote_argv(drbd.name)).model_copy(update={"retry": False}),),
                     depends_on=(adjust,), waiting=verdict.waiting, safety=FENCED_TAKEOVER if takeover else drbd.safety,
                     timeout=b.vm.failover.promote_timeout_seconds, diskless_peers=diskless)
    return b.add("promote", drbd.key, "change", f"promote {drbd.name} to Primary",
                 commands=(b.command(b.replicator.promote_argv(drbd.name)),), depends_on=(adjust,),
                 waiting=verdict.waiting, safety=drbd.safety, diskless_peers=diskless)

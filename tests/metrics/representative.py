"""A representative two-VM node, hand-made: one VM this node runs, one it stands by for.

Used to fill :class:`MetricsState` so every metric family has samples, for the exposition checks and
the dashboard test.
"""

from __future__ import annotations

from reconciler.metrics.state import MetricsState
from reconciler.model.desired import (
    DesiredDomain,
    DesiredDrbd,
    DesiredLV,
    DesiredNode,
    DesiredStripe,
    DesiredVm,
    DrbdHost,
)
from reconciler.model.observed import (
    DomainState,
    DrbdConnectionState,
    DrbdDeviceState,
    DrbdPeerDeviceState,
    DrbdResourceState,
    DrbdState,
    HostInfo,
    ObservedNode,
    OwnedFile,
    ToolStatus,
)
from reconciler.model.status import (
    ActionRecord,
    EscalationStatus,
    FailoverStatus,
    NodeStatus,
    PassResult,
    PeerStatus,
    ResourceStatus,
    RevisionInfo,
    Suspension,
    VerifyStatus,
)
from reconciler.ownership import dm_uuid

NODE = "xen1"
PEER = "xen2"
REV_A = "a" * 40
REV_B = "b" * 40


def desired_vm(vm_id: int, primary: str, *, this_node: str = NODE, safety: str = "fencing",
               memory_mib: int = 1024) -> DesiredVm:
    name = f"vm{vm_id}"
    lv = DesiredLV(vm=name, vg="vg-sda", name=f"root{vm_id}", size_bytes=1 << 30, purpose="data")
    stripe = DesiredStripe(vm=name, name=f"root{vm_id}", uuid=dm_uuid(f"root{vm_id}"), chunk_sectors=128,
                           legs=(lv.path,), length_sectors=(1 << 30) // 512)
    drbd = DesiredDrbd(
        vm=name, name=name, minor=vm_id, port=7700 + vm_id, backing_device=stripe.path, drbd_version="9",
        hosts=(DrbdHost(name=NODE, address="10.0.0.1", port=7700 + vm_id, node_id=0),
               DrbdHost(name=PEER, address="10.0.0.2", port=7700 + vm_id, node_id=1)),
        safety=safety,
        config_path=f"/etc/drbd.d/{name}.res", config_text=f"resource {name} {{}}\n",
    )
    domain = DesiredDomain(vm=name, name=name, memory_mib=memory_mib, maxmem_mib=memory_mib, vcpus=1,
                           maxvcpus=1, disks=(f"phy:/dev/drbd{vm_id},xvda,w",), config_path=f"/etc/xen/{name}.cfg",
                           config_text=f'name = "{name}"\n')
    return DesiredVm(name=name, id=vm_id, source_file=f"vms/{name}.yaml", lifecycle="present", layout="dm-striped",
                     nodes=(NODE, PEER), primary_node=primary, this_node=this_node, lvs=(lv,), stripe=stripe,
                     drbd=drbd, domain=domain)


def desired_node(*vms: DesiredVm, node: str = NODE) -> DesiredNode:
    return DesiredNode(cluster="lab", node=node, hostname=node, address="10.0.0.1", drbd_version="9",
                       volume_groups=("vg-sda",), vms=vms)


def drbd_resource(name: str, minor: int, *, role: str = "Secondary", peer_role: str = "Primary",
                  disk: str = "UpToDate", peer_disk: str = "UpToDate", conn: str = "Connected",
                  repl: str = "Established", out_of_sync: int = 0, resync_percent: float | None = None,
                  resync_eta: float | None = None, split_brain: bool = False, quorum: bool | None = True,
                  client: bool = False) -> DrbdResourceState:
    return DrbdResourceState(
        name=name, role=role, node_id=0, split_brain=split_brain,
        devices=(DrbdDeviceState(volume=0, minor=minor, disk_state=disk, client=client, quorum=quorum,
                                 size_kib=1 << 20),),
        connections=(DrbdConnectionState(
            peer_name=PEER, peer_node_id=1, connection_state=conn, peer_role=peer_role, congested=False,
            peer_devices=(DrbdPeerDeviceState(volume=0, replication_state=repl, peer_disk_state=peer_disk,
                                              out_of_sync_bytes=out_of_sync, resync_percent=resync_percent,
                                              resync_eta_seconds=resync_eta),)),),
    )


def desired_pair() -> DesiredNode:
    """vm100 runs here (primary xen1); vm101 runs on the peer and this node is its standby."""
    return desired_node(desired_vm(100, NODE), desired_vm(101, PEER))


def observed_node(*resources: DrbdResourceState, domains: tuple[DomainState, ...] = (),
                  free_mib: int = 8192, desired: DesiredNode | None = None) -> ObservedNode:
    files: list[OwnedFile] = []
    if desired is not None:
        for vm in desired.vms:
            if vm.drbd is not None:
                files.append(OwnedFile(path=vm.drbd.config_path, content=vm.drbd.config_text))
            if vm.domain is not None:
                files.append(OwnedFile(path=vm.domain.config_path, content=vm.domain.config_text))
    return ObservedNode(
        node=NODE,
        drbd=DrbdState(kernel_version="9.2.12", resources=resources),
        domains=domains,
        host=HostInfo(free_memory_mib=free_mib, total_memory_mib=16384, xen_version="4.17"),
        tools=(ToolStatus(name="drbdsetup", state="available", version="9.28.0"),),
        files=tuple(files),
    )


def healthy_observed(desired: DesiredNode) -> ObservedNode:
    return observed_node(
        drbd_resource("vm100", 100, role="Primary", peer_role="Secondary"),
        drbd_resource("vm101", 101, repl="SyncSource", out_of_sync=4096 * 1024, resync_percent=42.5,
                      resync_eta=120.0),
        domains=(DomainState(name="vm100", domid=3, state="blocked", memory_mib=1024),),
        desired=desired,
    )


def pass_result(revision: str, started: float, finished: float, outcome: str = "converged") -> PassResult:
    return PassResult(
        started_at=started, finished_at=finished, revision=revision, outcome=outcome,
        resources=(
            ResourceStatus(key="lv:vg-sda/root100", vm="vm100", kind="lv", phase="ready"),
            ResourceStatus(key="domain:vm100", vm="vm100", kind="domain", phase="degraded",
                           reason="vm100: restart needed for vcpus 2 -> 4", conditions=("restart-needed",)),
            ResourceStatus(key="drbd:vm101", vm="vm101", kind="drbd", phase="progressing", reason="resync"),
            ResourceStatus(key="domain:vm101", vm="vm101", kind="domain", phase="waiting", reason="peer primary"),
        ),
        actions=(
            ActionRecord(kind="lv_create", key="lv:vg-sda/root100", vm="vm100", result="ok", attempts=2),
            ActionRecord(kind="drbd_up", key="drbd:vm101", vm="vm101", result="failed", message="exit 10"),
        ),
        drift=2,
        retries=1,
    )


def node_status(revision: str, *, seen_at: float, committed_at: float | None = None, success_at: float | None = None,
                refusal: str = "", invalid: tuple[str, ...] = (),
                suspensions: tuple[Suspension, ...] = ()) -> NodeStatus:
    info = RevisionInfo(sha=revision, seen_at=seen_at, committed_at=committed_at)
    verify = (VerifyStatus(vm="vm100", resource="vm100", schedule="weekly", interval_seconds=604800,
                           next_due_at=seen_at + 604800, run_id="20270115T080000Z", started_at=seen_at - 3600,
                           last_run_id="20270115T080000Z", last_run_at=seen_at - 60, found_out_of_sync_bytes=4096),
              VerifyStatus(vm="vm101", resource="vm101", schedule="daily", interval_seconds=86400, running=True,
                           run_id="20270115T090000Z", started_at=seen_at - 30, progress_percent=12.5))
    failovers = (FailoverStatus(vm="vm100", id="fo-0123456789ab", state="running", from_node=PEER, to_node=NODE,
                                decided_at=seen_at - 600, updated_at=seen_at - 540, reason="lost"),
                 FailoverStatus(vm="vm101", watching="lost; failover after 30 s (12 s so far)"))
    escalations = (EscalationStatus(vm="vm102", resource="vm102", action="reboot-force", state="requested",
                                    decided_at=seen_at - 900, updated_at=seen_at - 900, failures=2),)
    return NodeStatus(node=NODE, cluster="lab", last_attempted=info, last_applied=info, pending_refusal=refusal,
                      invalid_errors=invalid, last_success_at=success_at, suspensions=suspensions, verify=verify,
                      failovers=failovers, escalations=escalations)


def representative_state(now: float = 1_800_000_000.0) -> MetricsState:
    """Every family populated: passes, revisions, peers, suspensions, DRBD with a resync, domains."""
    state = MetricsState(NODE, clock=lambda: now)
    desired = desired_pair()
    observed = healthy_observed(desired)
    state.record_revision_seen(REV_A, now - 30)
    state.record_pass(pass_result(REV_A, now - 20, now - 18), observed, desired,
                      node_status(REV_A, seen_at=now - 30, committed_at=now - 60, success_at=now - 18,
                                  refusal="not a descendant of the last applied revision",
                                  suspensions=(Suspension(scope="vm101", reason="maintenance", by="root",
                                                          at=now - 10),)))
    state.record_peer(PeerStatus(node=PEER, reachable=True, applied_revision=REV_B, ready=True, checked_at=now - 5))
    state.record_power_fences({PEER: ("off", now - 3600)})
    state.set_suspended("node", False)
    state.update_observed(observed)
    return state

"""Hand-built desired and observed values for planner tests: the classic layout of one VM on two nodes."""

from __future__ import annotations

from reconciler.model.desired import (
    DesiredDomain,
    DesiredDrbd,
    DesiredFilesystem,
    DesiredLV,
    DesiredNode,
    DesiredStripe,
    DesiredSwap,
    DesiredVm,
    DrbdHost,
    Lifecycle,
)
from reconciler.model.observed import (
    DmDevice,
    DmTarget,
    DomainState,
    DrbdConnectionState,
    DrbdDeviceState,
    DrbdPeerDeviceState,
    DrbdResourceState,
    DrbdState,
    LogicalVolume,
    ObservedNode,
    OwnedFile,
    VolumeGroup,
)
from reconciler.ownership import dm_uuid

GIB = 1024**3
VGS = ("vg-sda", "vg-sdb", "vg-sdc")
NODES = ("erdbeere", "himbeere")


def make_vm(vid: int = 100, *, node: str = "erdbeere", primary: str = "erdbeere", leg_gib: int = 10,
            lifecycle: Lifecycle = "present", memory: int = 1024, vcpus: int = 2, allow_restart: bool = False,
            suspended: bool = False, swap: bool = True) -> DesiredVm:
    name = f"vm{vid}"
    minor = vid - 100
    chunk = 128
    leg_bytes = leg_gib * GIB
    data = tuple(DesiredLV(vm=name, vg=vg, name=f"root{vid}", size_bytes=leg_bytes, purpose="data") for vg in VGS)
    swaps_lv = (DesiredLV(vm=name, vg="vg-sda", name=f"swap{vid}", size_bytes=GIB, purpose="swap"),) if swap else ()
    stripe = DesiredStripe(vm=name, name=f"root{vid}", uuid=dm_uuid(f"root{vid}"), chunk_sectors=chunk,
                           legs=tuple(lv.path for lv in data), length_sectors=3 * leg_bytes // 512)
    config = "".join([f"resource {name} {{\n    # {leg_gib}\n"] + [
        f"    on {n} {{ device /dev/drbd{minor}; disk /dev/mapper/root{vid}; address 192.168.2.{i + 1}:{7788 + minor}; "
        "meta-disk internal; }\n" for i, n in enumerate(NODES)] + ["}\n"])
    drbd = DesiredDrbd(vm=name, name=name, minor=minor, port=7788 + minor, backing_device=stripe.path,
                       drbd_version="9", safety="fencing", config_path=f"/etc/drbd.d/{name}.res", config_text=config,
                       hosts=(DrbdHost(name="erdbeere", address="192.168.2.1", port=7788 + minor, node_id=0),
                              DrbdHost(name="himbeere", address="192.168.2.2", port=7788 + minor, node_id=1)))
    fs = DesiredFilesystem(vm=name, device=f"/dev/drbd{minor}")
    swaps = tuple(DesiredSwap(vm=name, device=lv.path) for lv in swaps_lv)
    domain = DesiredDomain(vm=name, name=name, memory_mib=memory, maxmem_mib=2048, vcpus=vcpus, maxvcpus=4,
                           disks=(f"/dev/drbd{minor}", *(s.device for s in swaps)),
                           config_path=f"/etc/xen/{name}.cfg", config_text=f"name = '{name}'\nmemory = {memory}\n",
                           allow_restart=allow_restart)
    return DesiredVm(name=name, id=vid, source_file=f"vms/{name}.yaml", lifecycle=lifecycle, suspended=suspended,
                     layout="dm-striped", nodes=NODES, primary_node=primary, this_node=node, lvs=data + swaps_lv,
                     stripe=stripe, drbd=drbd, filesystem=fs, swaps=swaps, domain=domain)


def make_node(*vms: DesiredVm, node: str = "erdbeere", max_removals: int = 1) -> DesiredNode:
    return DesiredNode(cluster="beeren", node=node, hostname=node, address="192.168.2.1", drbd_version="9",
                       volume_groups=VGS, vms=vms, max_removals_per_revision=max_removals)


def empty_observed(node: str = "erdbeere") -> ObservedNode:
    return ObservedNode(node=node, volume_groups=tuple(
        VolumeGroup(name=vg, size_bytes=400 * GIB, free_bytes=400 * GIB, extent_size_bytes=4 * 1024**2) for vg in VGS))


def drbd_state(name: str, minor: int, *, role: str = "Primary", disk: str = "UpToDate", peer: str = "himbeere",
               conn: str = "Connected", peer_role: str = "Secondary", peer_disk: str = "UpToDate",
               size_kib: int | None = None, resync: float | None = None) -> DrbdResourceState:
    return DrbdResourceState(
        name=name, role=role, devices=(DrbdDeviceState(volume=0, minor=minor, disk_state=disk, size_kib=size_kib),),
        connections=(DrbdConnectionState(peer_name=peer, connection_state=conn, peer_role=peer_role,
                                         peer_devices=(DrbdPeerDeviceState(volume=0, replication_state="Established",
                                                                           peer_disk_state=peer_disk,
                                                                           resync_percent=resync),)),))


def converged(desired: DesiredNode, **drbd_overrides: object) -> ObservedNode:
    """What a node that matches ``desired`` exactly looks like to the observer."""
    obs = empty_observed(desired.node)
    lvs: list[LogicalVolume] = []
    dms: list[DmDevice] = []
    res: list[DrbdResourceState] = []
    doms: list[DomainState] = []
    files: list[OwnedFile] = []
    for vm in desired.vms:
        if vm.lifecycle != "present":
            continue
        lvs += [LogicalVolume(vg=lv.vg, name=lv.name, size_bytes=lv.size_bytes, attributes="-wi-a-----",
                              uuid=f"uuid-{lv.vg}-{lv.name}", tags=("reconciler",)) for lv in vm.lvs]
        if vm.stripe:
            legs = " ".join(f"8:{i} 0" for i in range(len(vm.stripe.legs)))
            args = f"{len(vm.stripe.legs)} {vm.stripe.chunk_sectors} {legs}"
            dms.append(DmDevice(name=vm.stripe.name, uuid=vm.stripe.uuid, major=253, minor=vm.id,
                                targets=(DmTarget(start=0, length=vm.stripe.length_sectors, target="striped",
                                                  args=args),)))
        if vm.drbd:
            primary = vm.is_primary_here
            backing = vm.stripe.size_bytes if vm.stripe else next(
                (lv.size_bytes for lv in vm.lvs if lv.path == vm.drbd.backing_device), 0)
            size = backing // 1024 - 2048
            kwargs: dict[str, object] = {"role": "Primary" if primary else "Secondary",
                                         "peer_role": "Secondary" if primary else "Primary", "size_kib": size,
                                         "peer": vm.peers[0]}
            kwargs.update(drbd_overrides)
            res.append(drbd_state(vm.drbd.name, vm.drbd.minor, **kwargs))  # type: ignore[arg-type]
            files.append(OwnedFile(path=vm.drbd.config_path, content=vm.drbd.config_text))
        if vm.domain:
            files.append(OwnedFile(path=vm.domain.config_path, content=vm.domain.config_text))
            if vm.is_primary_here:
                doms.append(DomainState(name=vm.domain.name, domid=vm.id, state="blocked",
                                        memory_mib=vm.domain.memory_mib, maxmem_mib=vm.domain.maxmem_mib,
                                        vcpus=vm.domain.vcpus))
    return obs.model_copy(update={"logical_volumes": tuple(lvs), "dm_devices": tuple(dms),
                                  "drbd": DrbdState(kernel_version="9.2.12", resources=tuple(res)),
                                  "domains": tuple(doms), "files": tuple(files)})

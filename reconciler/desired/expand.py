"""Expansion: the validated cluster -> the resources one node should have.

LVs -> stripe -> DRBD -> filesystem -> domain; swap LVs -> swap -> domain: each resource names the devices it
sits on (a stripe's legs, DRBD's backing device, the domain's disks); the planner orders its actions from
them. A pure function: the same cluster and node always give the same (frozen) result. The config files are the
node's backends' (those its ``backends`` in cluster.yaml names, registered in :mod:`reconciler.backends.registry`):
the expansion fills the typed settings of :mod:`reconciler.core.render_settings` and the hypervisor and the
replicator place and render them.
"""

from __future__ import annotations

from reconciler.backends.registry import backends_named
from reconciler.core.render_settings import DomainFileSettings, ResourceFileSettings, Vif
from reconciler.core.seams import Backends
from reconciler.desired.errors import UnknownNodeError
from reconciler.desired.load import Cluster
from reconciler.desired.resolve import Vm
from reconciler.desired.schema import ClusterFile
from reconciler.model.desired import (
    FENCE_HANDLER_SECONDS,
    PROVISION_LABEL_NEW,
    DesiredDomain,
    DesiredDrbd,
    DesiredFailover,
    DesiredFilesystem,
    DesiredLV,
    DesiredNode,
    DesiredProvision,
    DesiredStripe,
    DesiredSwap,
    DesiredVm,
    DrbdHost,
    DrbdVersion,
    NodeBackends,
    SplitBrainRecovery,
)
from reconciler.names import check_device_path, check_name
from reconciler.ownership import dm_uuid
from reconciler.sizes import SECTOR


def stripe_length_sectors(leg_bytes: int, stripes: int, chunk_sectors: int) -> int:
    """The dm stripe's length: whole chunks on every leg, i.e. the legs rounded down to stripes x chunk."""
    per_leg = leg_bytes // SECTOR // chunk_sectors * chunk_sectors
    return per_leg * stripes


def drbd_hosts(vm: Vm, spec: ClusterFile) -> tuple[DrbdHost, ...]:
    """The resource's hosts; node ids follow the sorted node names so reordering a file changes nothing."""
    members = [(name, False) for name in sorted(vm.nodes)]
    if vm.safety.mechanism == "quorum" and vm.safety.tiebreaker is not None:
        members.append((vm.safety.tiebreaker, True))
    hosts = []
    for node_id, (name, diskless) in enumerate(members):
        node = spec.nodes[name]
        hosts.append(DrbdHost(name=node.hostname or name, address=node.address, port=vm.port, node_id=node_id,
                              diskless=diskless))
    return tuple(hosts)


def _storage(vm: Vm) -> tuple[tuple[DesiredLV, ...], DesiredStripe | None, str]:
    """Data and swap LVs, the stripe (dm-striped only) and DRBD's backing device."""
    data_lv = check_name(vm.data_lv, "logical volume")
    lvs: list[DesiredLV] = []
    if vm.layout == "lvm-striped":
        lvs.append(DesiredLV(vm=vm.name, vg=vm.data_vgs[0], name=data_lv, size_bytes=vm.data_size, purpose="data",
                             stripes=vm.stripes, stripe_size_bytes=vm.chunk_sectors * SECTOR))
    else:
        lvs += [DesiredLV(vm=vm.name, vg=vg, name=data_lv, size_bytes=vm.data_size, purpose="data")
                for vg in vm.data_vgs]
    stripe: DesiredStripe | None = None
    if vm.layout == "dm-striped":
        stripe = DesiredStripe(
            vm=vm.name,
            name=data_lv,
            uuid=dm_uuid(data_lv),
            chunk_sectors=vm.chunk_sectors,
            legs=tuple(check_device_path(lv.path, "stripe leg") for lv in lvs),
            length_sectors=stripe_length_sectors(vm.data_size, vm.stripes, vm.chunk_sectors),
        )
        backing = stripe.path
    else:
        backing = lvs[0].path
    swap_lv = check_name(vm.swap_lv, "logical volume")
    lvs += [DesiredLV(vm=vm.name, vg=vg, name=swap_lv, size_bytes=vm.swap_size or 0, purpose="swap")
            for vg in vm.swap_vgs]
    return tuple(lvs), stripe, check_device_path(backing, "backing device")


# Room beyond the handler's own worst case, for drbdadm and the kernel around it.
PROMOTE_MARGIN_SECONDS = 30.0


def _failover(vm: Vm, spec: ClusterFile) -> DesiredFailover:
    """The VM's failover settings, with the time a promotion may take when DRBD runs the fence-peer handler:
    its questions to the peer, then (for a power fence) its wait (at most twice the delay), the off command and
    the status polling."""
    fences = [spec.nodes[n].power_fence for n in vm.nodes if n in spec.nodes]
    fence_seconds = max((2 * f.delay + 2 * f.timeout for f in fences if f is not None), default=0)
    budget = FENCE_HANDLER_SECONDS + fence_seconds + PROMOTE_MARGIN_SECONDS
    return vm.failover.model_copy(update={"promote_timeout_seconds": budget})


def _expand_vm(vm: Vm, spec: ClusterFile, node: str, backends: Backends) -> DesiredVm:
    version = spec.nodes[node].drbd_version
    hosts = drbd_hosts(vm, spec)
    if node not in vm.nodes:
        # A quorum tiebreaker: a diskless DRBD peer and nothing else; its resource file is the same as the
        # data nodes' so that all three agree on every host's settings.
        backing = _storage(vm)[2]
        drbd = _drbd(vm, version, hosts, backends, data_backing=backing, own_backing="none")
        return _desired_vm(vm, spec, node, lvs=(), drbd=drbd)
    lvs, stripe, backing = _storage(vm)
    drbd = _drbd(vm, version, hosts, backends, data_backing=backing, own_backing=backing)
    # `none`: the guest makes its own (a partition table, another filesystem); nothing is written here.
    filesystem = DesiredFilesystem(vm=vm.name, device=drbd.device) if vm.filesystem != "none" else None
    provision = None
    if filesystem is not None and vm.provision is not None:
        wanted = vm.provision
        provision = DesiredProvision(vm=vm.name, device=drbd.device, provisioner=wanted.provisioner,
                                     image=wanted.image, attempt=wanted.attempt, timeout_s=wanted.timeout)
        # The label is the proof, for the provisioning, that this project made the filesystem for it.
        filesystem = filesystem.model_copy(update={"label": PROVISION_LABEL_NEW})
    swaps = tuple(DesiredSwap(vm=vm.name, device=lv.path) for lv in lvs if lv.purpose == "swap")
    devices = (drbd.device, *(swap.device for swap in swaps))
    domain = DesiredDomain(
        vm=vm.name,
        name=vm.name,
        memory_mib=vm.domain.memory_mib,
        maxmem_mib=vm.domain.maxmem_mib,
        vcpus=vm.domain.vcpus,
        maxvcpus=vm.domain.maxvcpus,
        disks=devices,
        config_path=backends.hypervisor.config_path(vm.name),
        config_text=backends.hypervisor.render_config(_domain_file(vm), devices),
        allow_restart=vm.domain.allow_restart,
        live_migration=vm.domain.live_migration,
    )
    return _desired_vm(vm, spec, node, lvs=lvs, stripe=stripe, drbd=drbd, filesystem=filesystem, swaps=swaps,
                       domain=domain, split_brain_recovery=vm.split_brain_recovery, provision=provision)


def _domain_file(vm: Vm) -> DomainFileSettings:
    """What the domain config says of the VM: the hypervisor renders it without reading the VM file's model."""
    domain = vm.domain
    return DomainFileSettings(
        name=vm.name, source=vm.source, type=domain.type, memory_mib=domain.memory_mib,
        maxmem_mib=domain.maxmem_mib, vcpus=domain.vcpus, maxvcpus=domain.maxvcpus, bootloader=domain.bootloader,
        kernel=domain.kernel, ramdisk=domain.ramdisk, extra=domain.extra,
        vifs=tuple(Vif(mac=vif.mac, bridge=vif.bridge) for vif in domain.vifs))


def _resource_file(vm: Vm) -> ResourceFileSettings:
    """What the resource file says of the VM: the replicator renders it without reading the VM file's model."""
    safety = vm.safety
    return ResourceFileSettings(
        vm=vm.name, source=vm.source, resource=vm.resource, protocol=vm.protocol, on_io_error=vm.on_io_error,
        al_extents=vm.al_extents, mechanism=safety.mechanism, fencing_policy=safety.fencing_policy,
        fence_peer_handler=safety.fence_peer_handler, unfence_peer_handler=safety.unfence_peer_handler,
        on_no_quorum=safety.on_no_quorum, verify=vm.verify, extra_options=vm.drbd_options,
        wfc_timeout=vm.wfc_timeout, degr_wfc_timeout=vm.degr_wfc_timeout)


def _desired_vm(
    vm: Vm,
    spec: ClusterFile,
    node: str,
    *,
    lvs: tuple[DesiredLV, ...],
    drbd: DesiredDrbd,
    stripe: DesiredStripe | None = None,
    filesystem: DesiredFilesystem | None = None,
    swaps: tuple[DesiredSwap, ...] = (),
    domain: DesiredDomain | None = None,
    split_brain_recovery: SplitBrainRecovery | None = None,
    provision: DesiredProvision | None = None,
) -> DesiredVm:
    """The VM as ``node`` sees it, with the resources it has there."""
    return DesiredVm(name=vm.name, id=vm.id, source_file=vm.source, lifecycle=vm.lifecycle, suspended=vm.suspended,
                     layout=vm.layout, nodes=vm.nodes, primary_node=vm.primary, this_node=node,
                     failover=_failover(vm, spec), lvs=lvs, stripe=stripe, drbd=drbd, filesystem=filesystem,
                     swaps=swaps, domain=domain, split_brain_recovery=split_brain_recovery, provision=provision)


def _drbd(
    vm: Vm,
    version: DrbdVersion,
    hosts: tuple[DrbdHost, ...],
    backends: Backends,
    *,
    data_backing: str,
    own_backing: str,
) -> DesiredDrbd:
    # Never in the file: a dual-primary allowance must be in force only inside a live migration's window, which
    # the daemons open and withdraw at run time (`drbdadm net-options`); a resource coming up from its file (a
    # reboot inside the window) must not allow a second `drbdadm primary`.
    allow_two = False
    text = backends.replicator.render_config(_resource_file(vm), version, hosts, vm.minor, data_backing,
                                             allow_two_primaries=allow_two)
    return DesiredDrbd(
        vm=vm.name,
        name=vm.resource,
        minor=vm.minor,
        port=vm.port,
        backing_device=own_backing,
        protocol=vm.protocol,
        drbd_version=version,
        hosts=hosts,
        safety=vm.safety.mechanism,
        on_demote_failure=vm.safety.on_demote_failure,
        allow_two_primaries=allow_two,
        config_path=backends.replicator.config_path(vm.resource),
        config_text=text,
        verify=vm.verify,
    )


def expand_node(cluster: Cluster, node: str, backends: Backends | None = None) -> DesiredNode:
    """Everything ``node`` should have: its VMs (and the VMs it is a quorum tiebreaker for), with the config files
    of ``backends`` (the node's hypervisor and replicator; by default those its ``backends`` in cluster.yaml
    names, which the validation has checked against the registry)."""
    spec = cluster.spec
    if node not in spec.nodes:
        raise UnknownNodeError(node, tuple(spec.nodes))
    own = spec.nodes[node]
    if backends is None:
        backends = backends_named(NodeBackends(hypervisor=own.backends.hypervisor,
                                               replicator=own.backends.replicator))
    vms = tuple(
        _expand_vm(vm, spec, node, backends)
        for vm in cluster.vms
        if node in vm.nodes or (vm.safety.mechanism == "quorum" and vm.safety.tiebreaker == node)
    )
    return DesiredNode(
        cluster=spec.cluster,
        node=node,
        hostname=own.hostname or node,
        address=own.address,
        drbd_version=own.drbd_version,
        volume_groups=own.volume_groups,
        vms=vms,
        max_removals_per_revision=spec.guards.max_removals_per_revision,
        allow_mass_delete=spec.guards.allow_mass_delete,
        backends=NodeBackends(hypervisor=backends.hypervisor.name, replicator=backends.replicator.name),
    )

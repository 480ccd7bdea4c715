"""Rules that span settings, files or nodes: everything the schema alone cannot see."""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Iterable, Mapping

from reconciler.backends.registry import HYPERVISORS, REPLICATORS
from reconciler.desired.errors import Issue
from reconciler.desired.resolve import Origin, Vm
from reconciler.desired.safefs import CLUSTER_FILE
from reconciler.desired.schema import ClusterFile, VmFile
from reconciler.desired.verify import RATE_OPTIONS
from reconciler.desired.yamlload import Document, KeyPath
from reconciler.model.desired import derived_vm_name
from reconciler.sizes import KIB, MIB, SECTOR, format_size

MIN_CHUNK_SECTORS = 8
MIN_SWAP_BYTES = 40 * KIB  # mkswap refuses fewer than ten 4 KiB pages
VM_NODES = 2
MAX_MINOR_84 = 255  # the 8.4 module's minor_count cannot exceed 255


class _Reporter:
    def __init__(self, docs: Mapping[str, Document]) -> None:
        self.docs = docs
        self.issues: list[Issue] = []

    def at(self, origin: Origin, message: str, hint: str, *, at_key: bool = False) -> None:
        path, keypath = origin
        doc = self.docs.get(path)
        if doc is None:
            self.issues.append(Issue(path, 1, 1, message, hint))
        else:
            self.issues.append(doc.issue(keypath, message, hint, at_key=at_key))

    def in_file(self, path: str, keypath: KeyPath, message: str, hint: str, *, at_key: bool = False) -> None:
        self.at((path, keypath), message, hint, at_key=at_key)


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(sorted(known))


def _check_backends(report: _Reporter, node: str, hypervisor: str, replicator: str) -> None:
    for role, name, known in (("hypervisor", hypervisor, HYPERVISORS), ("replicator", replicator, REPLICATORS)):
        if name not in known:
            report.in_file(CLUSTER_FILE, ("nodes", node, "backends", role),
                           f"node {node}: no {role} named {name!r} is registered",
                           f"{_suggest(name, known)} (a backend is registered in reconciler/backends/registry.py)")


def check_cluster(cluster: ClusterFile, doc: Document) -> list[Issue]:
    report = _Reporter({CLUSTER_FILE: doc})
    if cluster.defaults.verify is not None and cluster.defaults.verify.resync_found is not None:
        report.in_file(CLUSTER_FILE, ("defaults", "verify", "resync_found"),
                       "resync_found answers one verify run of one VM; it cannot be a default",
                       "write it in the VM file, under verify")
    hostnames: dict[str, str] = {}
    addresses: dict[str, str] = {}
    for name, node in cluster.nodes.items():
        hostname = node.hostname or name
        if hostname in hostnames:
            report.in_file(
                CLUSTER_FILE,
                ("nodes", name, "hostname") if node.hostname else ("nodes", name),
                f"host name {hostname!r} is already used by node {hostnames[hostname]}",
                "each node needs the host name its `uname -n` prints",
                at_key=node.hostname is None,
            )
        hostnames.setdefault(hostname, name)
        if node.address in addresses:
            report.in_file(
                CLUSTER_FILE,
                ("nodes", name, "address"),
                f"address {node.address} is already used by node {addresses[node.address]}",
                "give each node its own replication address",
            )
        addresses.setdefault(node.address, name)
        _check_backends(report, name, node.backends.hypervisor, node.backends.replicator)
        seen: set[str] = set()
        for i, vg in enumerate(node.volume_groups):
            if vg in seen:
                report.in_file(CLUSTER_FILE, ("nodes", name, "volume_groups", i),
                               f"volume group {vg!r} is listed twice", "list each volume group once")
            seen.add(vg)
    return report.issues


def check_vm_file(vm: VmFile, doc: Document) -> list[Issue]:
    """Rules about one VM file on its own (lifecycle statement, node list, primary)."""
    report = _Reporter({doc.path: doc})
    name = vm.name or derived_vm_name(vm.id)
    path = doc.path
    if vm.lifecycle == "deleted" and vm.confirm_delete != name:
        if vm.confirm_delete is None:
            report.in_file(path, ("lifecycle",), "lifecycle 'deleted' removes the VM's data and needs confirmation",
                           f"add confirm_delete: {name}")
        else:
            report.in_file(path, ("confirm_delete",),
                           f"confirm_delete {vm.confirm_delete!r} does not match the VM name {name!r}",
                           f"write confirm_delete: {name}")
    if vm.confirm_delete is not None and vm.lifecycle != "deleted":
        report.in_file(path, ("confirm_delete",), "confirm_delete is only allowed with lifecycle: deleted",
                       "remove confirm_delete, or set lifecycle: deleted to remove the VM's data")
    seen: set[str] = set()
    for i, node in enumerate(vm.nodes):
        if node in seen:
            report.in_file(path, ("nodes", i), f"node {node!r} is listed twice", "list each node once")
        seen.add(node)
    if len(vm.nodes) != VM_NODES:
        report.in_file(path, ("nodes",), f"a VM runs on exactly {VM_NODES} nodes, not {len(vm.nodes)}",
                       "list the two nodes that hold its replicas")
    if vm.primary not in vm.nodes:
        report.in_file(path, ("primary",), f"primary {vm.primary!r} is not one of the VM's nodes",
                       "choose one of: " + ", ".join(vm.nodes))
    recovery = vm.split_brain_recovery
    if recovery is not None and recovery.discard not in vm.nodes:
        report.in_file(path, ("split_brain_recovery", "discard"),
                       f"discard {recovery.discard!r} is not one of the VM's nodes: a split brain is resolved on "
                       "one of the two nodes that hold its replicas",
                       "name the node whose changes are discarded, one of: " + ", ".join(vm.nodes))
    if recovery is not None and vm.lifecycle != "present":
        report.in_file(path, ("split_brain_recovery",),
                       f"split_brain_recovery needs lifecycle: present, not {vm.lifecycle}",
                       "resolve the split brain first, then change the lifecycle")
    _check_provision(vm, report, path)
    return report.issues


def _check_provision(vm: VmFile, report: _Reporter, path: str) -> None:
    provision = vm.provision
    if provision is None:
        return
    if (provision.provisioner is None) == (provision.image is None):
        report.in_file(path, ("provision",), "provision names exactly one of provisioner and image",
                       "write provision: {provisioner: NAME} (a command configured on the node) or "
                       "provision: {image: /srv/images/NAME.tar} (a tar archive or directory on the node)")
    if vm.filesystem == "none":
        report.in_file(path, ("provision",), "provision fills the XFS filesystem the reconciler makes; this VM has "
                       "filesystem: none", "remove provision, or the filesystem: none line")


def check_vm(vm: Vm, cluster: ClusterFile, docs: Mapping[str, Document]) -> list[Issue]:
    """Rules about one VM against the cluster: nodes, volume groups, stripes, DRBD version, safety, domain."""
    report = _Reporter(docs)
    nodes = cluster.nodes
    known_nodes = [n for n in vm.nodes if n in nodes]
    for i, node in enumerate(vm.nodes):
        if node not in nodes:
            report.at((vm.source, ("nodes", i)), f"node {node!r} is not declared in cluster.yaml",
                      _suggest(node, nodes))
    _check_storage(vm, cluster, known_nodes, report)
    _check_drbd_version(vm, cluster, known_nodes, report)
    _check_safety(vm, cluster, report)
    _check_failover(vm, cluster, report)
    _check_domain(vm, report)
    _check_verify(vm, report)
    return report.issues


def _check_verify(vm: Vm, report: _Reporter) -> None:
    """The verify settings write verify-alg, c-max-rate and resync-rate: the same option passed through
    drbd.options too would be written twice, and drbdadm refuses a file that sets an option twice."""
    spec = vm.spec.verify
    if vm.verify is None:
        if spec is not None and spec.resync_found is not None:
            report.at((vm.source, ("verify", "resync_found")), "resync_found names a verify run, but no verify "
                      "is scheduled for this VM", "add verify.schedule (here or under defaults), or remove it")
        return
    passed = {(section, key) for section, values in vm.drbd_options for key, _ in values}
    if ("net", "verify-alg") in passed:
        report.at(vm.where("verify.schedule"), "verify-alg is set both by verify and by drbd.options.net",
                  "remove verify-alg from drbd.options; verify.alg sets it")
    if vm.verify.rate_bytes is not None:
        for section, key in RATE_OPTIONS:
            if (section, key) in passed:
                report.at(vm.where("verify.rate"), f"verify.rate sets the resync controller, but drbd.options."
                          f"{section} sets {key} too", f"remove {key} from drbd.options, or remove verify.rate")


def _check_storage(vm: Vm, cluster: ClusterFile, nodes: list[str], report: _Reporter) -> None:
    checks = [("data", vm.data_vgs, "storage.volume_groups")]
    if vm.swap_vgs != vm.data_vgs:  # swap on the data volume groups is checked with them
        checks.append(("swap", vm.swap_vgs, "swap.volume_groups"))
    for what, vgs, setting in checks:
        seen: set[str] = set()
        for i, vg in enumerate(vgs):
            missing = [node for node in nodes if vg not in cluster.nodes[node].volume_groups]
            if vg in seen or missing:
                origin = vm.where(setting)
                item = (origin[0], (*origin[1], i))
                if vg in seen:
                    report.at(item, f"volume group {vg!r} is listed twice for {what}", "list each volume group once")
                for node in missing:
                    declared = cluster.nodes[node].volume_groups
                    report.at(item, f"volume group {vg!r} is not declared on node {node}",
                              f"{_suggest(vg, declared)} (or add it to the node in cluster.yaml)")
            seen.add(vg)
    count = len(vm.data_vgs)
    if vm.layout == "dm-striped":
        if count < 2:
            report.at(vm.where("storage.volume_groups"),
                      f"a dm-striped layout needs at least 2 volume groups, got {count}",
                      "list one volume group per disk, or use layout: linear")
        if vm.stripes != count:
            report.at(vm.where("storage.stripes"),
                      f"stripes is {vm.stripes} but {count} volume group(s) are listed",
                      "a dm stripe has one leg per volume group: make them equal")
    elif count != 1:
        report.at(vm.where("storage.volume_groups"), f"a {vm.layout} layout uses exactly one volume group, got {count}",
                  "list a single volume group, or use layout: dm-striped to stripe over several")
    if vm.layout == "lvm-striped" and vm.stripes < 2:
        report.at(vm.where("storage.stripes"), f"an lvm-striped layout needs stripes of at least 2, got {vm.stripes}",
                  "set stripes to the number of physical volumes to stripe over (lvcreate -i)")
    if vm.layout == "linear" and vm.stripes != 1:
        report.at(vm.where("storage.stripes"), f"a linear layout has no stripes (got {vm.stripes})",
                  "remove stripes, or use layout: lvm-striped")
    own = vm.spec.storage
    if vm.layout == "linear" and own is not None:
        # Settings the VM's own file gives that its layout ignores: the operator meant something that will not
        # happen (cluster defaults are for the VMs whose layout uses them, so only the VM file is checked).
        if own.stripes == 1:
            report.at(vm.where("storage.stripes"), "stripes has no effect on a linear layout",
                      "remove stripes, or use layout: lvm-striped or dm-striped")
        if own.chunk_sectors is not None:
            report.at(vm.where("storage.chunk_sectors"), "chunk_sectors has no effect on a linear layout",
                      "remove chunk_sectors, or use layout: lvm-striped or dm-striped")
    chunk = vm.chunk_sectors
    if vm.layout != "linear" and (chunk < MIN_CHUNK_SECTORS or chunk & (chunk - 1)):
        report.at(vm.where("storage.chunk_sectors"),
                  f"chunk_sectors {chunk} is not a power of two of at least {MIN_CHUNK_SECTORS}",
                  "use e.g. 64 (32 KiB) or 128 (64 KiB)")
    if vm.data_size % SECTOR:
        report.at(vm.where("storage.size"), f"size {vm.data_size} bytes is not a whole number of 512-byte sectors",
                  f"round it, e.g. to {format_size(vm.data_size // MIB * MIB or MIB)}")
    elif vm.layout == "dm-striped" and vm.data_size // SECTOR < chunk:
        report.at(vm.where("storage.size"),
                  f"each leg ({format_size(vm.data_size)}) is smaller than one chunk ({chunk} sectors)",
                  "the stripe's length is the legs rounded down to whole chunks: make the legs larger")
    if vm.swap_size is not None and vm.swap_size < MIN_SWAP_BYTES:
        report.at(vm.where("swap.size"), f"swap size {format_size(vm.swap_size)} is below mkswap's minimum of 40KiB",
                  "use e.g. 2G")


def _check_drbd_version(vm: Vm, cluster: ClusterFile, nodes: list[str], report: _Reporter) -> None:
    versions = {cluster.nodes[n].drbd_version for n in nodes}
    if len(versions) > 1:
        shown = ", ".join(f"{n} runs {cluster.nodes[n].drbd_version}" for n in nodes)
        report.at((vm.source, ("nodes",)), f"the VM's nodes run different DRBD versions ({shown})",
                  "replicate only between nodes of the same DRBD major version")
    old = [n for n in nodes if cluster.nodes[n].drbd_version == "8.4"]
    if old and vm.minor > MAX_MINOR_84:
        report.at(vm.where("drbd.minor"), f"DRBD 8.4 has minors 0-{MAX_MINOR_84} only (node {old[0]} runs 8.4)",
                  f"pick a minor of at most {MAX_MINOR_84}")
    if vm.safety.mechanism == "quorum":
        for node in nodes:
            if cluster.nodes[node].drbd_version != "9":
                report.at(vm.where("safety.mechanism"),
                          f"quorum is not available on DRBD 8.4 (node {node} runs 8.4)",
                          "use mechanism: fencing with a fence-peer handler on DRBD 8.4")
                break


def _check_safety(vm: Vm, cluster: ClusterFile, report: _Reporter) -> None:
    safety = vm.safety
    def given(key: str) -> bool:
        spec_at = vm.where("safety")
        doc = report.docs.get(spec_at[0])
        return doc is not None and doc.has((*spec_at[1], key))

    if safety.mechanism == "quorum":
        for key in ("fencing_policy", "fence_peer_handler", "unfence_peer_handler"):
            if given(key):
                report.at(vm.where(f"safety.{key}"), f"{key} belongs to mechanism fencing, not quorum",
                          "remove it, or use mechanism: fencing")
        tiebreaker = safety.tiebreaker
        if tiebreaker is None:
            report.at(vm.where("safety.mechanism"), "quorum with two replicas needs a diskless tiebreaker node",
                      "add tiebreaker: <a third node of the cluster running DRBD 9>")
        elif tiebreaker not in cluster.nodes:
            report.at(vm.where("safety.tiebreaker"), f"tiebreaker {tiebreaker!r} is not declared in cluster.yaml",
                      _suggest(tiebreaker, cluster.nodes))
        elif tiebreaker in vm.nodes:
            report.at(vm.where("safety.tiebreaker"), f"tiebreaker {tiebreaker!r} is one of the VM's own nodes",
                      "the tiebreaker must be a third node that holds no data")
        elif cluster.nodes[tiebreaker].drbd_version != "9":
            report.at(vm.where("safety.tiebreaker"),
                      f"tiebreaker {tiebreaker!r} runs DRBD 8.4, which has no quorum or diskless nodes",
                      "pick a node running DRBD 9")
    else:
        for key in ("tiebreaker", "on_no_quorum", "on_demote_failure"):
            if given(key):
                report.at(vm.where(f"safety.{key}"), f"{key} belongs to mechanism quorum, not {safety.mechanism}",
                          "remove it, or use mechanism: quorum (DRBD 9)")


def _check_failover(vm: Vm, cluster: ClusterFile, report: _Reporter) -> None:
    """Automatic failover only with a mechanism that keeps the standby from being stale and the old primary
    from writing on: DRBD 9 quorum with a tiebreaker (checked with safety), or fencing that powers a lost peer
    off (resource-and-stonith, a power fence for each node, DRBD 8.4)."""
    if vm.failover.mode != "automatic" or vm.safety.mechanism == "quorum":
        return
    where = vm.where("failover.mode")
    if vm.safety.mechanism != "fencing":
        report.at(where, "automatic failover needs a safety mechanism: with none, nothing keeps the standby from "
                  "being stale or the old primary from writing on",
                  "use mechanism: fencing with fencing_policy: resource-and-stonith and a power_fence for each "
                  "node, or mechanism: quorum with a tiebreaker (DRBD 9), or failover: manual")
        return
    if vm.safety.fence_peer_handler is not None:
        report.at(vm.where("safety.fence_peer_handler"), "automatic failover relies on `reconciler fence-peer`, which "
                  "answers DRBD 7 only after a power-off it saw; another fence-peer handler cannot be checked for that",
                  "remove fence_peer_handler (the default handler is the reconciler's own), or use failover: manual")
    if vm.safety.fencing_policy != "resource-and-stonith":
        report.at(where, f"automatic failover under fencing_policy {vm.safety.fencing_policy}: after a link loss the "
                  "primary writes on alone (its handler cannot outdate a peer it cannot reach), and if it then dies "
                  "the standby still looks UpToDate but lacks every write since",
                  "use fencing_policy: resource-and-stonith with a power_fence for each node, or failover: manual")
    known = [n for n in vm.nodes if n in cluster.nodes]
    unfenced = [n for n in known if cluster.nodes[n].power_fence is None]
    if unfenced:
        report.at(where, f"automatic failover needs a power_fence for {', '.join(unfenced)}: only a verified "
                  "power-off proves that a lost node no longer writes",
                  "add power_fence under each node in cluster.yaml (docs/desired-state.md, \"Power fence\")")
    nine = [n for n in known if cluster.nodes[n].drbd_version == "9"]
    if nine:
        report.at(where, f"automatic failover by power fence needs DRBD 8.4; on DRBD 9 ({', '.join(nine)}) the "
                  "fence-peer handler cannot read its own disk state safely and never powers a peer off",
                  "on DRBD 9 use mechanism: quorum with a tiebreaker, or failover: manual")


def _check_domain(vm: Vm, report: _Reporter) -> None:
    domain = vm.domain
    if domain.memory_bytes % MIB:
        report.at(vm.where("domain.memory"), f"memory {format_size(domain.memory_bytes)} is not a whole number of MiB",
                  "Xen counts memory in MiB: use e.g. 2G or 1536M")
    if domain.maxmem_bytes % MIB and domain.maxmem_bytes != domain.memory_bytes:
        report.at(vm.where("domain.maxmem"), f"maxmem {format_size(domain.maxmem_bytes)} is not a whole number of MiB",
                  "Xen counts memory in MiB: use e.g. 4G")
    if domain.maxmem_bytes < domain.memory_bytes:
        report.at(vm.where("domain.maxmem"),
                  f"maxmem ({format_size(domain.maxmem_bytes)}) is below memory ({format_size(domain.memory_bytes)})",
                  "raise maxmem or lower memory")
    if domain.maxvcpus < domain.vcpus:
        report.at(vm.where("domain.maxvcpus"), f"maxvcpus ({domain.maxvcpus}) is below vcpus ({domain.vcpus})",
                  "raise maxvcpus or lower vcpus")
    if (domain.bootloader is None) == (domain.kernel is None):
        both = domain.bootloader is not None
        report.at(vm.where("domain.kernel" if both else "domain.memory"),
                  "a domain boots with either a bootloader or a kernel" + (", not both" if both else ""),
                  "set bootloader: pygrub, or kernel: /path/to/vmlinuz" if not both else "remove one of them")
    if domain.kernel is None:
        for key in ("ramdisk", "extra"):
            if getattr(domain, key) is not None:
                report.at(vm.where(f"domain.{key}"), f"{key} is only used with kernel",
                          "remove it, or boot with kernel: instead of a bootloader")
    if domain.live_migration and vm.protocol != "C":
        report.at(vm.where("domain.live_migration"), f"live migration needs DRBD protocol C, not {vm.protocol}",
                  "set drbd.protocol: C or live_migration: false")
    if domain.live_migration and vm.swap_vgs:
        # The guest's memory moves, its swap LVs do not: the target attaches its own (local, never replicated),
        # so every page the guest had swapped out is lost or read back as another node's garbage.
        report.at(vm.where("domain.live_migration"),
                  f"live migration needs every disk on replicated storage, but the VM gets swap LVs on "
                  f"{', '.join(vm.swap_vgs)}: swap LVs are local to each node, so swapped-out memory would not "
                  "move with the guest",
                  "set swap: {volume_groups: []} so the VM gets no swap LVs (a swap file on its replicated "
                  "filesystem moves with it), or live_migration: false")


def check_fleet(vms: list[Vm], cluster: ClusterFile, docs: Mapping[str, Document]) -> list[Issue]:
    """Rules across VMs: unique ids, names and MACs; DRBD minors and ports unique on every node."""
    report = _Reporter(docs)
    ids: dict[int, str] = {}
    names: dict[str, str] = {}
    minors: dict[tuple[str, int], str] = {}
    ports: dict[tuple[str, int], str] = {}
    macs: dict[str, str] = {}
    resources: dict[str, str] = {}
    volumes: dict[tuple[str, str], str] = {}
    for vm in vms:
        if vm.id in ids:
            report.at(vm.where("id"), f"VM id {vm.id} is already used by {ids[vm.id]}", "give each VM its own id")
        ids.setdefault(vm.id, vm.source)
        if vm.name in names and ids[vm.id] == vm.source:  # a name derived from a duplicate id is that id's problem
            report.at(vm.where("name"), f"VM name {vm.name!r} is already used by {names[vm.name]}",
                      "give each VM its own name")
        names.setdefault(vm.name, vm.source)
        _check_explicit_names(vm, resources, volumes, report)
        members = [n for n in vm.nodes if n in cluster.nodes]
        if vm.safety.mechanism == "quorum" and vm.safety.tiebreaker in cluster.nodes:
            members.append(vm.safety.tiebreaker)
        for table, value, setting, what in ((minors, vm.minor, "drbd.minor", "DRBD minor"),
                                            (ports, vm.port, "drbd.port", "DRBD port")):
            clash = next(((n, table[(n, value)]) for n in members if (n, value) in table), None)
            if clash is not None:
                report.at(vm.where(setting), f"{what} {value} is already used on node {clash[0]} by {clash[1]}",
                          f"pick a {what} no other VM on {clash[0]} uses")
            for node in members:
                table.setdefault((node, value), vm.source)
        for i, vif in enumerate(vm.domain.vifs):
            if vif.mac in macs:
                report.at((vm.source, ("domain", "vifs", i, "mac")),
                          f"MAC address {vif.mac} is already used by {macs[vif.mac]}",
                          "give each interface its own MAC")
            macs.setdefault(vif.mac, vm.source)
    _check_address_families(vms, cluster, report)
    return report.issues


def _check_explicit_names(vm: Vm, resources: dict[str, str], volumes: dict[tuple[str, str], str],
                          report: _Reporter) -> None:
    """Names given under ``names:`` may not collide with another VM's (derived names of unique ids never do)."""
    if vm.resource_name is None and vm.data_lv_name is None and vm.swap_lv_name is None:
        resources.setdefault(vm.resource, vm.source)
        volumes.update(dict.fromkeys(_lv_names(vm), vm.source))
        return
    if resources.get(vm.resource, vm.source) != vm.source:
        report.at((vm.source, ("names", "resource")), f"DRBD resource {vm.resource!r} is already used by "
                  f"{resources[vm.resource]}", "give each VM its own resource name")
    resources.setdefault(vm.resource, vm.source)
    for vg, lv in _lv_names(vm):
        if volumes.get((vg, lv), vm.source) != vm.source:
            report.at((vm.source, ("names",)), f"LV {vg}/{lv} is already used by {volumes[(vg, lv)]}",
                      "give each VM its own LV names")
        volumes.setdefault((vg, lv), vm.source)


def _lv_names(vm: Vm) -> list[tuple[str, str]]:
    return [(vg, vm.data_lv) for vg in vm.data_vgs] + [(vg, vm.swap_lv) for vg in vm.swap_vgs]


def _check_address_families(vms: list[Vm], cluster: ClusterFile, report: _Reporter) -> None:
    family = {name: ipaddress.ip_address(node.address).version for name, node in cluster.nodes.items()}
    for vm in vms:
        if len({family[n] for n in vm.nodes if n in family}) > 1:
            report.at((vm.source, ("nodes",)), "the VM's nodes mix IPv4 and IPv6 replication addresses",
                      "DRBD connects two nodes over one address family")

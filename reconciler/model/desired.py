"""What one node should have: the output of expanding the validated cluster for that node.

Every resource has a stable ``key`` (used in plans, status and metrics). The order between resources
(LVs -> stripe -> DRBD -> filesystem -> domain; swap LVs -> swap -> domain) is the planner's: it follows
from the devices each resource names (a stripe's legs, DRBD's backing device, the domain's disks), and the
planner wires the dependencies of its actions (reconciler.plan), so the resources carry no edges of their own.
"""

from __future__ import annotations

import re
from typing import Literal

from reconciler.model.base import Frozen, field
from reconciler.sizes import SECTOR

# What a VM's parts are called when its file does not name them (`names:` in reconciler.desired.schema): the
# VM and its DRBD resource vm<id>, its data LVs root<id>, its swap LVs swap<id>.
VM_NAME_PREFIX = "vm"
DATA_LV_PREFIX = "root"
SWAP_LV_PREFIX = "swap"


def derived_vm_name(vm_id: int) -> str:
    return f"{VM_NAME_PREFIX}{vm_id}"


def derived_data_lv(vm_id: int) -> str:
    return f"{DATA_LV_PREFIX}{vm_id}"


def derived_swap_lv(vm_id: int) -> str:
    return f"{SWAP_LV_PREFIX}{vm_id}"


Lifecycle = Literal["present", "absent", "deleted"]
"""present: converge it. absent: stop the domain, keep all data. deleted: tear down and remove its data
(only when the VM file says so explicitly)."""

StorageLayout = Literal["dm-striped", "lvm-striped", "linear"]
SafetyMechanism = Literal["fencing", "quorum", "none"]
DrbdVersion = Literal["8.4", "9"]
DemoteFailureAction = Literal["reboot", "reboot-force", "reboot-immediate", "none"]
"""What a node does when it cannot demote a resource after losing quorum (systemd's names, as drbd-reactor's
``on-drbd-demote-failure``): ``systemctl reboot``, with ``--force``, with ``--force --force``, or nothing."""
DrbdProtocol = Literal["A", "B", "C"]
FailoverMode = Literal["manual", "automatic"]

# The settings a VM gets when neither its file nor the cluster's defaults give them, where the models need them too.
DEFAULT_PROTOCOL: DrbdProtocol = "C"
DEFAULT_ON_DEMOTE_FAILURE: DemoteFailureAction = "reboot-force"


class DesiredLV(Frozen):
    vm: str
    vg: str
    name: str
    size_bytes: int
    purpose: Literal["data", "swap"]
    stripes: int = 1
    stripe_size_bytes: int | None = None

    @property
    def key(self) -> str:
        return f"lv:{self.vg}/{self.name}"

    @property
    def path(self) -> str:
        return f"/dev/{self.vg}/{self.name}"


class DesiredStripe(Frozen):
    """A device-mapper ``striped`` target over the data LVs of one VM."""

    vm: str
    name: str
    uuid: str
    chunk_sectors: int
    legs: tuple[str, ...]
    length_sectors: int

    @property
    def key(self) -> str:
        return f"dm:{self.name}"

    @property
    def path(self) -> str:
        return f"/dev/mapper/{self.name}"

    @property
    def table(self) -> str:
        legs = " ".join(f"{leg} 0" for leg in self.legs)
        return f"0 {self.length_sectors} striped {len(self.legs)} {self.chunk_sectors} {legs}"

    @property
    def size_bytes(self) -> int:
        return self.length_sectors * SECTOR


class DrbdHost(Frozen):
    name: str
    address: str
    port: int
    node_id: int
    diskless: bool = False


class DesiredVerify(Frozen):
    """Online verification of one resource, run by the daemon on the primary (reconciler.desired.verify)."""

    schedule: str  # as written: daily, weekly or an interval like 12h
    interval_seconds: int
    alg: str
    rate_bytes: int | None = None
    resync_found: str | None = None  # the verify run whose out-of-sync blocks the desired state asks to resync


class DesiredDrbd(Frozen):
    vm: str
    name: str
    minor: int
    port: int
    backing_device: str
    protocol: DrbdProtocol = DEFAULT_PROTOCOL
    drbd_version: DrbdVersion
    hosts: tuple[DrbdHost, ...]
    safety: SafetyMechanism
    on_demote_failure: DemoteFailureAction = DEFAULT_ON_DEMOTE_FAILURE
    allow_two_primaries: bool = False
    config_path: str
    config_text: str
    verify: DesiredVerify | None = None

    @property
    def key(self) -> str:
        return f"drbd:{self.name}"

    @property
    def device(self) -> str:
        return f"/dev/drbd{self.minor}"


class DesiredFilesystem(Frozen):
    vm: str
    device: str
    fstype: Literal["xfs"] = "xfs"
    label: str | None = None

    @property
    def key(self) -> str:
        return f"fs:{self.device}"


# The attempt is recorded in the filesystem's XFS label (12 characters at most): rprov-try999.
MAX_PROVISION_ATTEMPT = 999
# The label mkfs.xfs gives a filesystem made for provisioning (the other labels: reconciler.core.provisioning).
PROVISION_LABEL_NEW = "rprov-new"


class DesiredProvision(Frozen):
    """How the VM's filesystem is filled once, on the primary, before its domain first starts: a provisioner
    configured on the node (by name) or an image (a tar archive or a directory) on the node. ``attempt`` is the
    statement that allows a new try after a failed one (reconciler.core.provisioning)."""

    vm: str
    device: str
    provisioner: str | None = None
    image: str | None = None
    attempt: int = 1
    timeout_s: int = 1800

    @property
    def key(self) -> str:
        return f"provision:{self.device}"

    @property
    def source(self) -> str:
        return f"provisioner {self.provisioner}" if self.provisioner else f"image {self.image}"


class DesiredSwap(Frozen):
    vm: str
    device: str
    label: str | None = None

    @property
    def key(self) -> str:
        return f"swap:{self.device}"


class DesiredDomain(Frozen):
    vm: str
    name: str
    memory_mib: int
    maxmem_mib: int
    vcpus: int
    maxvcpus: int
    disks: tuple[str, ...]
    config_path: str  # where the node's hypervisor keeps it (Hypervisor.config_path)
    config_text: str  # in the hypervisor's own syntax (Hypervisor.render_config): xl's for Xen
    allow_restart: bool = False
    live_migration: bool = False

    @property
    def key(self) -> str:
        return f"domain:{self.name}"


INCIDENT_RE = re.compile(r"sb-[0-9a-f]{12}")
"""How a split-brain incident is named (reconciler.backends.drbd.splitbrain_markers.incident_id)."""


class SplitBrainRecovery(Frozen):
    """An operator's decision for one split brain of one VM: ``discard`` (a node name) loses the changes it made
    while disconnected. It applies only while the split brain named ``incident`` persists, never to a later one."""

    incident: str
    discard: str


# How long `reconciler fence-peer` asks the peer's daemon at most (its --timeout default), before any power fence.
FENCE_HANDLER_SECONDS = 60.0


class DesiredFailover(Frozen):
    """What the standby may do by itself when the node running the VM is lost (reconciler.daemon.peers.failover)."""

    mode: FailoverMode = "manual"
    grace_seconds: int = 30
    min_interval_seconds: int = 3600
    failback: FailoverMode = "manual"
    hold: bool = False
    # The longest the promotion may take: DRBD runs the fence-peer handler, which may wait for the peer,
    # then its fence delay, then the off and status commands.
    promote_timeout_seconds: float = 60.0


class Takeover(Frozen):
    """This node runs the VM after an automatic failover away from ``from_node``. ``designated``: the node the
    desired state names (``from_node``, or this node when it takes its own VM back from a lost peer)."""

    id: str
    from_node: str
    decided_at: float
    designated: str


class DemoteEscalation(Frozen):
    """How often this node failed to give the VM up after losing quorum (the domain's destroy or the demotion);
    ``reboot_due``: a forced demotion failed too, long enough after the first failure; ``reboot_held``: why the
    reboot may not run now (the node rebooted itself for lost quorum recently)."""

    failures: int
    reboot_due: bool = False
    reboot_held: str = ""


class DesiredVm(Frozen):
    """One VM as this node should see it."""

    name: str
    id: int
    source_file: str
    lifecycle: Lifecycle
    suspended: bool = False
    layout: StorageLayout
    nodes: tuple[str, ...]
    primary_node: str
    this_node: str
    lvs: tuple[DesiredLV, ...]
    stripe: DesiredStripe | None = None
    drbd: DesiredDrbd | None = None
    filesystem: DesiredFilesystem | None = None
    provision: DesiredProvision | None = None
    swaps: tuple[DesiredSwap, ...] = ()
    domain: DesiredDomain | None = None
    split_brain_recovery: SplitBrainRecovery | None = None
    failover: DesiredFailover = DesiredFailover()
    # Set only on the daemon's own view, never by expansion: primary_node is then this node.
    takeover: Takeover | None = None
    # Set only on the daemon's own view: the escalation after failed attempts to stop a Primary without quorum.
    escalation: DemoteEscalation | None = None

    @property
    def designated_primary(self) -> str:
        """The node the desired state names, whatever a failover did."""
        return self.takeover.designated if self.takeover is not None else self.primary_node

    @property
    def is_primary_here(self) -> bool:
        return self.primary_node == self.this_node

    @property
    def peers(self) -> tuple[str, ...]:
        return tuple(n for n in self.nodes if n != self.this_node)


class NodeBackends(Frozen):
    """The names of the hypervisor and the replicator a node runs (``cluster.yaml``'s ``backends`` of the node),
    registered in :mod:`reconciler.backends.registry`; the defaults are the registry's defaults."""

    hypervisor: str = "xen"
    replicator: str = "drbd"


class DesiredNode(Frozen):
    """Everything one node should have, for one revision of the repository."""

    cluster: str
    node: str
    hostname: str
    address: str
    drbd_version: DrbdVersion
    volume_groups: tuple[str, ...]
    vms: tuple[DesiredVm, ...]
    max_removals_per_revision: int = 1
    allow_mass_delete: bool = False
    backends: NodeBackends = field(default_factory=NodeBackends)

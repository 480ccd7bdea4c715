"""What one node has, as reported by its tools. Produced by the parsers and the observer."""

from __future__ import annotations

from typing import Literal

from reconciler.model.base import Frozen

ToolState = Literal["available", "missing", "failed"]


class ToolStatus(Frozen):
    name: str
    state: ToolState
    version: str | None = None
    detail: str | None = None


class VolumeGroup(Frozen):
    name: str
    size_bytes: int
    free_bytes: int
    extent_size_bytes: int | None = None
    pv_count: int | None = None


class LogicalVolume(Frozen):
    vg: str
    name: str
    size_bytes: int
    attributes: str = ""
    uuid: str | None = None
    segtype: str | None = None
    stripes: int | None = None
    stripe_size_bytes: int | None = None
    devices: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return f"/dev/{self.vg}/{self.name}"


class DmTarget(Frozen):
    start: int
    length: int
    target: str
    args: str


class DmDevice(Frozen):
    name: str
    uuid: str = ""
    major: int | None = None
    minor: int | None = None
    open_count: int | None = None
    suspended: bool = False
    targets: tuple[DmTarget, ...] = ()
    # From the attr column of ``dmsetup info``; None where unknown (e.g. a device seen only by ``table``).
    live_table: bool | None = None
    inactive_table: bool | None = None
    read_only: bool | None = None

    @property
    def table(self) -> str:
        return "\n".join(f"{t.start} {t.length} {t.target} {t.args}" for t in self.targets)


class DrbdDeviceState(Frozen):
    volume: int
    minor: int
    disk_state: str
    client: bool = False
    quorum: bool | None = None
    size_kib: int | None = None


class DrbdPeerDeviceState(Frozen):
    volume: int
    replication_state: str
    peer_disk_state: str
    out_of_sync_bytes: int | None = None
    resync_percent: float | None = None
    resync_eta_seconds: float | None = None
    verify_percent: float | None = None  # while an online verify runs (VerifyS/VerifyT)


class DrbdConnectionState(Frozen):
    peer_name: str
    peer_node_id: int | None = None
    connection_state: str
    peer_role: str
    congested: bool | None = None
    peer_devices: tuple[DrbdPeerDeviceState, ...] = ()


class DrbdResourceState(Frozen):
    name: str
    role: str
    node_id: int | None = None
    suspended: bool = False
    devices: tuple[DrbdDeviceState, ...] = ()
    connections: tuple[DrbdConnectionState, ...] = ()
    split_brain: bool = False
    split_brain_detail: str = ""  # when, with whom, and this node's generation identifiers then
    # This node's generation identifiers when DRBD last reported a split brain of this resource (kept after the
    # split brain is resolved: with the peer's record they name the incident,
    # reconciler.backends.drbd.splitbrain_markers).
    split_brain_record: str = ""
    # The runtime net option allow-two-primaries (``drbdsetup show``), never the file's: True only while a live
    # migration's window is open. None: not read (a capture without it, or the read failed).
    two_primaries_allowed: bool | None = None


class DrbdState(Frozen):
    """DRBD runtime state. ``kernel_version`` is e.g. '9.2.12' or '8.4.11'; None when no module is loaded."""

    kernel_version: str | None = None
    resources: tuple[DrbdResourceState, ...] = ()

    @property
    def major(self) -> Literal["8.4", "9"] | None:
        if self.kernel_version is None:
            return None
        return "9" if self.kernel_version.startswith("9") else "8.4"

    def resource(self, name: str) -> DrbdResourceState | None:
        return next((r for r in self.resources if r.name == name), None)


# The replication model every replicator reports in, under the names the seams use (reconciler.core.seams):
# its words are DRBD's because the shared safety gate reasons in them (roles, disk and connection states,
# quorum, split brain). The classes keep DRBD's names, as the observed JSON keeps its `drbd` key.
ReplicationState = DrbdState
ReplicaState = DrbdResourceState


DomainRunState = Literal["running", "blocked", "paused", "crashed", "shutdown", "dying", "unknown"]


def never_ran(state: DomainRunState, cpu_time_s: float | None) -> bool:
    """Paused without a moment of CPU time: what ``xl create`` leaves when it is killed before it unpauses
    the domain (it destroys the domain itself only when it fails on its own). Its guest wrote nothing."""
    return state == "paused" and cpu_time_s == 0.0


class DomainState(Frozen):
    name: str
    domid: int
    state: DomainRunState
    memory_mib: int
    maxmem_mib: int | None = None
    vcpus: int | None = None
    uuid: str | None = None
    disks: tuple[str, ...] = ()
    nics: tuple[str, ...] = ()
    cpu_time_s: float | None = None

    @property
    def is_running(self) -> bool:
        return self.state in ("running", "blocked")

    @property
    def never_ran(self) -> bool:
        return never_ran(self.state, self.cpu_time_s)


class HostInfo(Frozen):
    free_memory_mib: int | None = None
    total_memory_mib: int | None = None
    xen_version: str | None = None


class Signature(Frozen):
    """What ``blkid -p`` found on a device; ``type`` None means no signature at all."""

    device: str
    type: str | None = None
    uuid: str | None = None
    label: str | None = None
    usage: str | None = None


class OwnedFile(Frozen):
    path: str
    content: str | None


class ObservedNode(Frozen):
    node: str
    volume_groups: tuple[VolumeGroup, ...] = ()
    logical_volumes: tuple[LogicalVolume, ...] = ()
    dm_devices: tuple[DmDevice, ...] = ()
    drbd: DrbdState = DrbdState()
    domains: tuple[DomainState, ...] = ()
    host: HostInfo = HostInfo()
    tools: tuple[ToolStatus, ...] = ()
    files: tuple[OwnedFile, ...] = ()
    commands_run: int = 0

    def lv(self, vg: str, name: str) -> LogicalVolume | None:
        return next((lv for lv in self.logical_volumes if lv.vg == vg and lv.name == name), None)

    def vg(self, name: str) -> VolumeGroup | None:
        return next((vg for vg in self.volume_groups if vg.name == name), None)

    def dm(self, name: str) -> DmDevice | None:
        return next((d for d in self.dm_devices if d.name == name), None)

    def domain(self, name: str) -> DomainState | None:
        return next((d for d in self.domains if d.name == name and d.state != "dying"), None)

    def file(self, path: str) -> str | None:
        return next((f.content for f in self.files if f.path == path), None)

    def tool(self, name: str) -> ToolStatus | None:
        return next((t for t in self.tools if t.name == name), None)

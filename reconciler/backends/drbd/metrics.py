"""DRBD replication metrics.

Names and labels follow drbd-reactor's Prometheus plugin (with ``enums = true``) where it has the
metric, so dashboards and alerts written for it keep working: resource ``name``; connection ``name``,
``conn_name``, ``peer_node_id``; device ``name``, ``volume``, ``minor``; peer device the connection's
labels plus ``volume``. What it lacks and failover health needs is added under the same prefixes:
peer role, peer disk state, replication state, resync progress and estimated time, split brain.
"""

from __future__ import annotations

from prometheus_client.metrics_core import Metric

from reconciler.core.metric_families import add_enum, flag, gauge, non_empty
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import (
    DrbdConnectionState,
    DrbdPeerDeviceState,
    DrbdResourceState,
    ObservedNode,
)

ROLES = ("Unknown", "Primary", "Secondary")
DISK_STATES = (
    "Diskless", "Attaching", "Detaching", "Failed", "Negotiating",
    "Inconsistent", "Outdated", "DUnknown", "Consistent", "UpToDate",
)
CONNECTION_STATES = (
    "StandAlone", "Disconnecting", "Unconnected", "Timeout", "BrokenPipe",
    "NetworkFailure", "ProtocolError", "TearDown", "Connecting", "Connected",
)
REPLICATION_STATES = (
    "Off", "Established", "StartingSyncS", "StartingSyncT", "WFBitMapS", "WFBitMapT", "WFSyncUUID",
    "SyncSource", "SyncTarget", "VerifyS", "VerifyT", "PausedSyncS", "PausedSyncT", "Ahead", "Behind",
)
RESYNC_STATES = frozenset({"SyncSource", "SyncTarget", "PausedSyncS", "PausedSyncT"})

RESOURCE_LABELS = ("name",)
CONNECTION_LABELS = ("name", "conn_name", "peer_node_id")
DEVICE_LABELS = ("name", "volume", "minor")
PEERDEVICE_LABELS = ("name", "conn_name", "peer_node_id", "volume")


def _intentionally_diskless(desired: DesiredNode | None, resource: str) -> bool:
    """Whether the desired state makes this node a diskless client of ``resource``."""
    if desired is None:
        return False
    for vm in desired.vms:
        if vm.drbd is not None and vm.drbd.name == resource:
            return any(h.diskless for h in vm.drbd.hosts if h.name == desired.node)
    return False


def _connection_labels(resource: DrbdResourceState, conn: DrbdConnectionState) -> list[str]:
    node_id = "" if conn.peer_node_id is None else str(conn.peer_node_id)
    return [resource.name, conn.peer_name, node_id]


class _Families:
    def __init__(self) -> None:
        self.version = gauge("drbd_version", "Version of the loaded DRBD kernel module and DRBD utils",
                             ["kmod", "utils"])
        self.resources = gauge("drbd_resource_resources", "Number of resources")
        self.role = gauge("drbd_resource_role", "DRBD role of the resource",
                          [*RESOURCE_LABELS, "drbd_resource_role"])
        self.suspended = gauge("drbd_resource_suspended", "Boolean whether the resource is suspended",
                               RESOURCE_LABELS)
        self.split_brain = gauge("drbd_resource_split_brain",
                                 "Boolean whether DRBD detected a split brain on the resource",
                                 RESOURCE_LABELS)
        self.conn_state = gauge("drbd_connection_state", "DRBD connection state",
                                [*CONNECTION_LABELS, "drbd_connection_state"])
        self.congested = gauge(
            "drbd_connection_congested",
            "Boolean whether the TCP send buffer of the data connection is more than 80% filled",
            CONNECTION_LABELS)
        self.peer_role = gauge("drbd_connection_peer_role", "DRBD role of the peer, as this node sees it",
                               [*CONNECTION_LABELS, "drbd_connection_peer_role"])
        self.dev_state = gauge("drbd_device_state", "DRBD device state",
                               [*DEVICE_LABELS, "drbd_device_state"])
        self.client = gauge("drbd_device_client",
                            "Boolean whether this device is a client (i.e., intentional diskless)", DEVICE_LABELS)
        self.diskless = gauge(
            "drbd_device_unintentionaldiskless",
            "Boolean whether the device is diskless although neither DRBD nor the desired state make it a client "
            "(typically after a detach on an I/O error)",
            DEVICE_LABELS)
        self.quorum = gauge("drbd_device_quorum", "Boolean if this device has DRBD quorum", DEVICE_LABELS)
        self.size = gauge("drbd_device_size_bytes", "Device size in bytes", DEVICE_LABELS)
        self.outofsync = gauge(
            "drbd_peerdevice_outofsync_bytes",
            "Number of bytes currently out of sync with this peer, according to the bitmap that DRBD has for it",
            PEERDEVICE_LABELS)
        self.peer_disk = gauge("drbd_peerdevice_peer_disk_state", "Disk state of the peer's replica",
                               [*PEERDEVICE_LABELS, "drbd_peerdevice_peer_disk_state"])
        self.repl = gauge("drbd_peerdevice_replication_state", "Replication state towards the peer",
                          [*PEERDEVICE_LABELS, "drbd_peerdevice_replication_state"])
        self.resync_done = gauge("drbd_peerdevice_resync_done_ratio",
                                 "Fraction of the running resync that is done (DRBD's percent done / 100)",
                                 PEERDEVICE_LABELS)
        self.resync_eta = gauge("drbd_peerdevice_resync_eta_seconds",
                                "DRBD's estimate of the seconds left in the running resync", PEERDEVICE_LABELS)

    def all(self) -> list[Metric]:
        return [v for v in vars(self).values() if isinstance(v, Metric)]


def _add_peer_device(f: _Families, labels: list[str], pd: DrbdPeerDeviceState) -> None:
    pd_labels = [*labels, str(pd.volume)]
    if pd.out_of_sync_bytes is not None:
        f.outofsync.add_metric(pd_labels, float(pd.out_of_sync_bytes))
    add_enum(f.peer_disk, pd_labels, DISK_STATES, pd.peer_disk_state)
    add_enum(f.repl, pd_labels, REPLICATION_STATES, pd.replication_state)
    if pd.replication_state in RESYNC_STATES:
        if pd.resync_percent is not None:
            f.resync_done.add_metric(pd_labels, min(max(pd.resync_percent, 0.0), 100.0) / 100.0)
        if pd.resync_eta_seconds is not None:
            f.resync_eta.add_metric(pd_labels, float(pd.resync_eta_seconds))


def collect(observed: ObservedNode | None, desired: DesiredNode | None) -> list[Metric]:
    """DRBD's part of a scrape (:class:`~reconciler.core.metric_families.BackendMetrics`): none before the
    first observation."""
    return drbd_metrics(observed, desired) if observed is not None else []


def drbd_metrics(observed: ObservedNode, desired: DesiredNode | None) -> list[Metric]:
    f = _Families()
    drbd = observed.drbd
    if drbd.kernel_version is not None:
        utils = observed.tool("drbdsetup") or observed.tool("drbdadm")
        f.version.add_metric([drbd.kernel_version, (utils.version if utils else None) or ""], 1.0)
    f.resources.add_metric([], float(len(drbd.resources)))
    for res in drbd.resources:
        add_enum(f.role, [res.name], ROLES, res.role)
        f.suspended.add_metric([res.name], flag(res.suspended))
        f.split_brain.add_metric([res.name], flag(res.split_brain))
        for conn in res.connections:
            labels = _connection_labels(res, conn)
            add_enum(f.conn_state, labels, CONNECTION_STATES, conn.connection_state)
            add_enum(f.peer_role, labels, ROLES, conn.peer_role)
            if conn.congested is not None:
                f.congested.add_metric(labels, flag(conn.congested))
            for pd in conn.peer_devices:
                _add_peer_device(f, labels, pd)
        intended_client = _intentionally_diskless(desired, res.name)
        for dev in res.devices:
            labels = [res.name, str(dev.volume), str(dev.minor)]
            client = dev.client or intended_client
            add_enum(f.dev_state, labels, DISK_STATES, dev.disk_state)
            f.client.add_metric(labels, flag(client))
            f.diskless.add_metric(labels, flag(not client and dev.disk_state == "Diskless"))
            if dev.quorum is not None:
                f.quorum.add_metric(labels, flag(dev.quorum))
            if dev.size_kib is not None:
                f.size.add_metric(labels, float(dev.size_kib) * 1024.0)
    return non_empty(f.all())

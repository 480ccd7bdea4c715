"""DRBD families: drbd-reactor's names and labels, plus what failover health needs."""

from __future__ import annotations

from reconciler.backends.drbd.metrics import CONNECTION_STATES, DISK_STATES, drbd_metrics
from reconciler.model.observed import DrbdDeviceState, DrbdResourceState, DrbdState, ObservedNode
from tests.metrics.representative import (
    desired_node,
    desired_vm,
    drbd_resource,
    observed_node,
)
from tests.metrics.scrape import Samples, parse, series, value


def _samples(observed: ObservedNode, desired: object = None) -> Samples:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.registry import Collector

    class _Once(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            return drbd_metrics(observed, desired)  # type: ignore[arg-type]

    registry = CollectorRegistry()
    registry.register(_Once())
    return parse(generate_latest(registry).decode())


CONN = {"name": "vm100", "conn_name": "xen2", "peer_node_id": "1"}
DEV = {"name": "vm100", "volume": "0", "minor": "100"}
PD = {**CONN, "volume": "0"}


def test_enum_gauges_are_one_hot_with_reactor_label_names() -> None:
    s = _samples(observed_node(drbd_resource("vm100", 100, conn="Connecting", disk="Outdated")))
    conn = {lab["drbd_connection_state"]: value(s, "drbd_connection_state", **lab)
            for lab in series(s, "drbd_connection_state")}
    assert set(conn) == set(CONNECTION_STATES)
    assert conn["Connecting"] == 1.0
    assert sum(v or 0.0 for v in conn.values()) == 1.0
    disk = {lab["drbd_device_state"] for lab in series(s, "drbd_device_state")}
    assert disk == set(DISK_STATES)
    assert value(s, "drbd_device_state", **DEV, drbd_device_state="Outdated") == 1.0
    assert value(s, "drbd_resource_role", name="vm100", drbd_resource_role="Secondary") == 1.0


def test_state_outside_the_known_list_still_shows() -> None:
    s = _samples(observed_node(drbd_resource("vm100", 100, conn="WFConnection")))
    assert value(s, "drbd_connection_state", **CONN, drbd_connection_state="WFConnection") == 1.0
    assert value(s, "drbd_connection_state", **CONN, drbd_connection_state="Connected") == 0.0


def test_peer_role_disk_and_replication_state() -> None:
    s = _samples(observed_node(drbd_resource("vm100", 100, peer_role="Primary", peer_disk="Inconsistent",
                                             repl="SyncTarget", out_of_sync=8 << 20, resync_percent=12.5,
                                             resync_eta=300.0)))
    assert value(s, "drbd_connection_peer_role", **CONN, drbd_connection_peer_role="Primary") == 1.0
    assert value(s, "drbd_peerdevice_peer_disk_state", **PD, drbd_peerdevice_peer_disk_state="Inconsistent") == 1.0
    assert value(s, "drbd_peerdevice_replication_state", **PD, drbd_peerdevice_replication_state="SyncTarget") == 1.0
    assert value(s, "drbd_peerdevice_outofsync_bytes", **PD) == float(8 << 20)
    assert value(s, "drbd_peerdevice_resync_done_ratio", **PD) == 0.125
    assert value(s, "drbd_peerdevice_resync_eta_seconds", **PD) == 300.0


def test_resync_progress_only_while_a_resync_runs() -> None:
    s = _samples(observed_node(drbd_resource("vm100", 100, repl="Established", resync_percent=100.0)))
    assert series(s, "drbd_peerdevice_resync_done_ratio") == []


def test_split_brain_and_suspended() -> None:
    s = _samples(observed_node(drbd_resource("vm100", 100, split_brain=True)))
    assert value(s, "drbd_resource_split_brain", name="vm100") == 1.0
    assert value(s, "drbd_resource_suspended", name="vm100") == 0.0


def test_diskless_after_detach_is_unintentional() -> None:
    s = _samples(observed_node(drbd_resource("vm100", 100, disk="Diskless")))
    assert value(s, "drbd_device_unintentionaldiskless", **DEV) == 1.0
    assert value(s, "drbd_device_client", **DEV) == 0.0


def test_diskless_client_by_drbd_or_by_desired_state_is_intentional() -> None:
    s = _samples(observed_node(drbd_resource("vm100", 100, disk="Diskless", client=True)))
    assert value(s, "drbd_device_unintentionaldiskless", **DEV) == 0.0
    vm = desired_vm(100, "xen2")
    assert vm.drbd is not None
    hosts = tuple(h.model_copy(update={"diskless": h.name == "xen1"}) for h in vm.drbd.hosts)
    vm = vm.model_copy(update={"drbd": vm.drbd.model_copy(update={"hosts": hosts})})
    s = _samples(observed_node(drbd_resource("vm100", 100, disk="Diskless")), desired_node(vm))
    assert value(s, "drbd_device_unintentionaldiskless", **DEV) == 0.0
    assert value(s, "drbd_device_client", **DEV) == 1.0


def test_sizes_in_bytes_and_version_labels() -> None:
    s = _samples(observed_node(drbd_resource("vm100", 100)))
    assert value(s, "drbd_device_size_bytes", **DEV) == float(1 << 30)
    assert value(s, "drbd_version", kmod="9.2.12", utils="9.28.0") == 1.0
    assert value(s, "drbd_resource_resources") == 1.0


def test_drbd84_without_node_ids_or_quorum() -> None:
    res = DrbdResourceState(name="r0", role="Primary",
                            devices=(DrbdDeviceState(volume=0, minor=0, disk_state="UpToDate"),))
    s = _samples(ObservedNode(node="xen1", drbd=DrbdState(kernel_version="8.4.11", resources=(res,))))
    assert series(s, "drbd_device_quorum") == []
    assert value(s, "drbd_device_state", name="r0", volume="0", minor="0", drbd_device_state="UpToDate") == 1.0
    assert value(s, "drbd_version", kmod="8.4.11", utils="") == 1.0


def test_no_drbd_loaded_exports_zero_resources() -> None:
    s = _samples(ObservedNode(node="xen1"))
    assert value(s, "drbd_resource_resources") == 0.0
    assert series(s, "drbd_version") == []

"""Expansion of a validated cluster into one node's resources and the devices they sit on."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.desired.errors import UnknownNodeError
from reconciler.desired.expand import expand_node, stripe_length_sectors
from reconciler.desired.load import Cluster, load_cluster
from reconciler.model.desired import DesiredVm
from tests.desired.repo import CLUSTER, VM100, VM101, with_quorum, write_repo

GIB = 1024**3


def load(tmp_path: Path, cluster: str = CLUSTER, vms: dict[str, str] | None = None) -> Cluster:
    return load_cluster(str(write_repo(tmp_path / "repo", cluster, vms)))


def vm_named(vms: tuple[DesiredVm, ...], name: str) -> DesiredVm:
    return next(v for v in vms if v.name == name)


def test_classic_vm_resources_and_devices(tmp_path: Path) -> None:
    node = expand_node(load(tmp_path), "erdbeere")
    assert (node.node, node.hostname, node.address, node.drbd_version) == ("erdbeere", "erdbeere", "192.168.2.1", "9")
    vm = vm_named(node.vms, "vm100")
    data = [lv for lv in vm.lvs if lv.purpose == "data"]
    swap = [lv for lv in vm.lvs if lv.purpose == "swap"]
    assert [lv.path for lv in data] == ["/dev/vg-sda/root100", "/dev/vg-sdb/root100", "/dev/vg-sdc/root100"]
    assert [lv.path for lv in swap] == ["/dev/vg-sda/swap100", "/dev/vg-sdb/swap100", "/dev/vg-sdc/swap100"]
    assert {lv.size_bytes for lv in data} == {100 * GIB}
    assert {lv.size_bytes for lv in swap} == {2 * GIB}

    assert vm.stripe is not None
    assert vm.drbd is not None
    assert vm.filesystem is not None
    assert vm.domain is not None
    assert vm.stripe.uuid == "RECONCILER-root100"
    assert vm.stripe.legs == tuple(lv.path for lv in data)
    assert vm.drbd.backing_device == "/dev/mapper/root100"
    assert vm.drbd.backing_device == vm.stripe.path
    assert vm.filesystem.device == "/dev/drbd0"
    assert vm.filesystem.device == vm.drbd.device
    assert [s.device for s in vm.swaps] == [lv.path for lv in swap]
    assert vm.domain.disks == ("/dev/drbd0", "/dev/vg-sda/swap100", "/dev/vg-sdb/swap100", "/dev/vg-sdc/swap100")
    assert vm.is_primary_here
    assert vm.peers == ("himbeere",)


def test_every_device_a_resource_uses_is_a_resource_of_the_same_vm(tmp_path: Path) -> None:
    node = expand_node(load(tmp_path, vms={"vm100.yaml": VM100, "vm101.yaml": VM101}), "himbeere")
    for vm in node.vms:
        assert vm.drbd is not None
        lv_paths = {lv.path for lv in vm.lvs}
        below_drbd = {vm.stripe.path} if vm.stripe is not None else {lv.path for lv in vm.lvs if lv.purpose == "data"}
        assert vm.stripe is None or set(vm.stripe.legs) <= lv_paths
        assert vm.drbd.backing_device in below_drbd
        assert vm.filesystem is None or vm.filesystem.device == vm.drbd.device
        assert {swap.device for swap in vm.swaps} <= lv_paths
        assert vm.domain is not None
        assert set(vm.domain.disks) == {vm.drbd.device, *(swap.device for swap in vm.swaps)}


def test_dm_table_is_exact_and_length_is_rounded_down_to_whole_chunks(tmp_path: Path) -> None:
    vm = vm_named(expand_node(load(tmp_path), "erdbeere").vms, "vm100")
    assert vm.stripe is not None
    assert vm.stripe.table == (
        "0 629145600 striped 3 64 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0 /dev/vg-sdc/root100 0"
    )
    # 100 MiB + 1 sector per leg: the odd sector of each leg is not part of any whole chunk.
    assert stripe_length_sectors(100 * 1024 * 1024 + 512, 3, 64) == 3 * 204800
    assert stripe_length_sectors(100 * 1024 * 1024 + 64 * 512, 3, 64) == 3 * (204800 + 64)


def test_linear_vm_backs_drbd_with_its_lv(tmp_path: Path) -> None:
    node = expand_node(load(tmp_path, vms={"vm100.yaml": VM100, "vm101.yaml": VM101}), "erdbeere")
    vm = vm_named(node.vms, "vm101")
    assert vm.layout == "linear"
    assert vm.stripe is None
    assert [lv.path for lv in vm.lvs] == ["/dev/vg-sdb/root101"]
    assert vm.drbd is not None
    assert vm.drbd.backing_device == "/dev/vg-sdb/root101"
    assert vm.swaps == ()
    assert not vm.is_primary_here


def test_lvm_striped_vm_is_one_striped_lv(tmp_path: Path) -> None:
    text = VM101.replace("layout: linear", "layout: lvm-striped\n  stripes: 2\n  chunk_sectors: 128")
    vm = vm_named(expand_node(load(tmp_path, vms={"vm101.yaml": text}), "erdbeere").vms, "vm101")
    assert [(lv.vg, lv.name, lv.stripes, lv.stripe_size_bytes) for lv in vm.lvs] == [("vg-sdb", "root101", 2, 65536)]
    assert vm.stripe is None


def test_quorum_tiebreaker_gets_a_diskless_resource_only(tmp_path: Path) -> None:
    cluster = load(tmp_path, with_quorum())
    kiwi = expand_node(cluster, "kiwi")
    vm = vm_named(kiwi.vms, "vm100")
    assert vm.lvs == ()
    assert vm.domain is None
    assert vm.filesystem is None
    assert vm.stripe is None
    assert vm.drbd is not None
    assert vm.drbd.backing_device == "none"
    assert [(h.name, h.node_id, h.diskless) for h in vm.drbd.hosts] == [
        ("erdbeere", 0, False), ("himbeere", 1, False), ("kiwi", 2, True)]
    erdbeere = vm_named(expand_node(cluster, "erdbeere").vms, "vm100")
    assert erdbeere.drbd is not None
    assert erdbeere.drbd.config_text == vm.drbd.config_text, "all three nodes get the same resource file"


def test_node_ids_do_not_depend_on_the_order_of_nodes(tmp_path: Path) -> None:
    swapped = VM100.replace("nodes: [erdbeere, himbeere]", "nodes: [himbeere, erdbeere]")
    first = vm_named(expand_node(load(tmp_path / "a"), "erdbeere").vms, "vm100")
    second = vm_named(expand_node(load(tmp_path / "b", vms={"vm100.yaml": swapped}), "erdbeere").vms, "vm100")
    assert first.drbd is not None
    assert second.drbd is not None
    assert first.drbd.hosts == second.drbd.hosts


def test_expansion_is_pure(tmp_path: Path) -> None:
    cluster = load(tmp_path, vms={"vm100.yaml": VM100, "vm101.yaml": VM101})
    assert expand_node(cluster, "erdbeere") == expand_node(cluster, "erdbeere")
    assert expand_node(cluster, "erdbeere") != expand_node(cluster, "himbeere")


def test_sizes_are_binary_in_every_spelling(tmp_path: Path) -> None:
    sizes = {}
    for spelling in ("2G", "2GiB", "2g", "2147483648"):
        cluster = load(tmp_path / spelling, vms={"vm100.yaml": VM100.replace("size: 2G", f"size: {spelling}")})
        vm = vm_named(expand_node(cluster, "erdbeere").vms, "vm100")
        sizes[spelling] = {lv.size_bytes for lv in vm.lvs if lv.purpose == "swap"}
    assert set(map(frozenset, sizes.values())) == {frozenset({2 * GIB})}


def test_guards_reach_the_node(tmp_path: Path) -> None:
    text = CLUSTER.replace("max_removals_per_revision: 1", "max_removals_per_revision: 3\n  allow_mass_delete: true")
    node = expand_node(load(tmp_path, text), "erdbeere")
    assert (node.max_removals_per_revision, node.allow_mass_delete) == (3, True)


def test_lifecycle_and_suspend_are_carried(tmp_path: Path) -> None:
    text = VM100.replace("id: 100\n", "id: 100\nlifecycle: deleted\nconfirm_delete: vm100\nsuspended: true\n")
    vm = vm_named(expand_node(load(tmp_path, vms={"vm100.yaml": text}), "erdbeere").vms, "vm100")
    assert (vm.lifecycle, vm.suspended) == ("deleted", True)


def test_unknown_node_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnknownNodeError, match="kiwi"):
        expand_node(load(tmp_path), "kiwi")


def test_node_without_vms_gets_none(tmp_path: Path) -> None:
    node = expand_node(load(tmp_path, with_quorum().replace("mechanism: quorum", "mechanism: none")
                            .replace("    tiebreaker: kiwi\n    on_no_quorum: io-error\n", "")), "kiwi")
    assert node.vms == ()


def test_inherited_swap_can_be_turned_off(tmp_path: Path) -> None:
    cluster = CLUSTER.replace("defaults:\n", "defaults:\n  swap:\n    size: 1G\n", 1)
    vms = {"vm100.yaml": VM100.replace("swap:\n  size: 2G\n", ""),
           "vm101.yaml": VM101 + "swap:\n  volume_groups: []\n"}
    node = expand_node(load(tmp_path, cluster, vms), "erdbeere")
    swap = {vm.name: [lv.path for lv in vm.lvs if lv.purpose == "swap"] for vm in node.vms}
    assert swap == {"vm100": ["/dev/vg-sda/swap100", "/dev/vg-sdb/swap100", "/dev/vg-sdc/swap100"], "vm101": []}


def test_filesystem_none_leaves_the_disk_to_the_guest(tmp_path: Path) -> None:
    from reconciler.plan.diff import plan_node
    from tests.plan.factories import empty_observed

    assert "filesystem:" not in VM100
    node = expand_node(load(tmp_path, vms={"vm100.yaml": VM100 + "filesystem: none\n"}), "erdbeere")
    vm = vm_named(node.vms, "vm100")
    assert vm.filesystem is None
    assert vm.domain is not None
    assert vm.drbd is not None
    assert vm.domain.disks == (vm.drbd.device, *(swap.device for swap in vm.swaps))
    kinds = [a.kind for a in plan_node(node, empty_observed()).actions]
    assert "make-fs" not in kinds
    assert "start-domain" in kinds
    # Left out, the default is still XFS made once on the primary.
    default = expand_node(load(tmp_path / "d", vms={"vm100.yaml": VM100}), "erdbeere")
    assert vm_named(default.vms, "vm100").filesystem is not None

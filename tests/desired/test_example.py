"""The example repository in desired-state/ is valid and expresses the classic setup."""

from __future__ import annotations

from reconciler.desired.expand import expand_node
from reconciler.desired.load import load_cluster
from reconciler.sizes import parse_size
from tests.conftest import EXAMPLE_DIR


def test_example_is_valid_and_has_the_classic_vm() -> None:
    cluster = load_cluster(str(EXAMPLE_DIR))
    assert cluster.name == "classic"
    assert cluster.nodes == ("erdbeere", "himbeere")
    assert {n: s.address for n, s in cluster.spec.nodes.items()} == {"erdbeere": "192.168.2.1",
                                                                     "himbeere": "192.168.2.2"}
    vm = next(v for v in cluster.vms if v.id == 100)
    assert (vm.name, vm.data_lv, vm.swap_lv) == ("vm100", "root100", "swap100")
    assert vm.data_vgs == vm.swap_vgs == ("vg-sda", "vg-sdb", "vg-sdc")
    assert vm.data_size == parse_size("100GiB")
    assert vm.swap_size == parse_size("2GiB")
    assert (vm.layout, vm.stripes, vm.chunk_sectors) == ("dm-striped", 3, 64)
    assert (vm.minor, vm.port, vm.protocol) == (0, 7788, "C")
    assert (vm.degr_wfc_timeout, vm.on_io_error, vm.al_extents) == (120, "detach", 257)
    assert vm.primary == "erdbeere"
    assert vm.filesystem == "xfs"


def test_example_has_a_second_vm_with_another_layout() -> None:
    cluster = load_cluster(str(EXAMPLE_DIR))
    others = [v for v in cluster.vms if v.id != 100]
    assert others, "the example must hold more than the classic VM"
    assert any(v.layout != "dm-striped" for v in others)
    assert any(v.primary == "himbeere" for v in others)


def test_example_dm_table_for_erdbeere_is_exact() -> None:
    node = expand_node(load_cluster(str(EXAMPLE_DIR)), "erdbeere")
    vm100 = next(v for v in node.vms if v.name == "vm100")
    assert vm100.stripe is not None
    assert vm100.stripe.table == (
        "0 629145600 striped 3 64 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0 /dev/vg-sdc/root100 0"
    )

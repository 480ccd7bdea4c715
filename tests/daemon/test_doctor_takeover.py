"""Doctor checks a takeover and every later pass need, on simulated nodes: volume groups with enough PVs, and
nothing foreign holding the names and minors of the desired state."""

from __future__ import annotations

from pathlib import Path

from reconciler.backends.lvm.doctor import check_volume_groups
from reconciler.daemon.node.doctor import check_foreign_holders
from reconciler.desired.expand import expand_node
from reconciler.desired.load import load_cluster
from reconciler.model.desired import DesiredNode
from reconciler.sim.host import SimHost
from reconciler.sim.state import SimCluster
from tests.conftest import EXAMPLE_DIR
from tests.desired.repo import CLUSTER, VM100, write_repo

GIB = 1024**3


def _example(node: str = "erdbeere") -> DesiredNode:
    return expand_node(load_cluster(str(EXAMPLE_DIR)), node)


def test_a_missing_volume_group_fails(tmp_path: Path) -> None:
    SimCluster.init(tmp_path, ["erdbeere"], {"vg-sda": 400 * GIB, "vg-sdb": 400 * GIB})
    check = check_volume_groups(SimHost(tmp_path, "erdbeere"), _example())
    assert check.verdict == "fail"
    assert "vg-sdc does not exist" in check.detail


def test_an_lvm_stripe_wider_than_the_volume_group_fails(tmp_path: Path) -> None:
    vm = VM100.replace("primary: erdbeere\n", "primary: erdbeere\nstorage:\n  layout: lvm-striped\n"
                       "  volume_groups: [vg-sda]\n  stripes: 3\n  size: 10G\n").replace("storage:\n  size: 100G\n", "")
    repo = write_repo(tmp_path / "repo", cluster=CLUSTER, vms={"vm100.yaml": vm})
    desired = expand_node(load_cluster(str(repo)), "erdbeere")
    sim = tmp_path / "sim"
    SimCluster.init(sim, ["erdbeere"], {"vg-sda": 100 * GIB, "vg-sdb": 100 * GIB, "vg-sdc": 100 * GIB},
                    pv_counts={"vg-sda": 2})
    check = check_volume_groups(SimHost(sim, "erdbeere"), desired)
    assert check.verdict == "fail"
    assert "over 3 PVs, but vg-sda has 2" in check.detail


def test_all_volume_groups_present_pass(tmp_path: Path) -> None:
    SimCluster.init(tmp_path, ["erdbeere"], dict.fromkeys(("vg-sda", "vg-sdb", "vg-sdc"), 400 * GIB))
    assert check_volume_groups(SimHost(tmp_path, "erdbeere"), _example()).verdict == "ok"


def test_a_foreign_dm_device_under_a_stripe_name_fails_and_an_adoptable_one_does_not(tmp_path: Path) -> None:
    SimCluster.init(tmp_path, ["erdbeere"], dict.fromkeys(("vg-sda", "vg-sdb", "vg-sdc"), 400 * GIB))
    host = SimHost(tmp_path, "erdbeere")
    assert check_foreign_holders(host, _example()).verdict == "ok"
    for vg in ("vg-sda", "vg-sdb", "vg-sdc"):
        assert host.run(["lvcreate", "-L", "100G", "-n", "root100", vg]).ok
    stripe = next(vm.stripe for vm in _example().vms if vm.stripe is not None)
    assert host.run(["dmsetup", "create", "root100"], stdin=stripe.table + "\n").ok
    assert check_foreign_holders(host, _example()).verdict == "ok"
    assert host.run(["dmsetup", "remove", "root100"]).ok
    assert host.run(["dmsetup", "create", "root100", "--uuid", "CRYPT-root100"], stdin=stripe.table + "\n").ok
    check = check_foreign_holders(host, _example())
    assert check.verdict == "fail"
    assert "uuid CRYPT-root100" in check.detail

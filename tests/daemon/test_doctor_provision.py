"""The doctor's provisioning checks, on a simulated node (the same helper command the executor runs first)."""

from __future__ import annotations

from pathlib import Path

from reconciler.daemon.node.doctor_provision import check_provisioning
from reconciler.model.desired import DesiredProvision
from reconciler.sim.host import SimHost
from reconciler.sim.state import SimCluster
from tests.plan.factories import make_node, make_vm

CONFIG = "/etc/reconciler/provisioning.toml"
TEXT = ('image_roots = ["/srv/images"]\n[provisioners.deb]\ncommand = ["/usr/sbin/debootstrap", "{target}"]\n'
        '[provisioners.gone]\ncommand = ["/usr/local/sbin/nothing-here"]\n')


def host(tmp_path: Path) -> SimHost:
    SimCluster.init(tmp_path, ["erdbeere"], {"vg-sda": 10 * 1024**3})
    return SimHost(tmp_path, "erdbeere")


def with_image(image: str) -> object:
    vm = make_vm(100)
    return make_node(vm.model_copy(update={"provision": DesiredProvision(vm="vm100", device="/dev/drbd0",
                                                                         image=image)}))


def test_no_config_and_no_provisioning_is_skipped(tmp_path: Path) -> None:
    assert check_provisioning(host(tmp_path), make_node(make_vm(100))) == [
        ("provisioning", "skip", f"no {CONFIG} and no VM here names a provisioning")]


def test_a_vm_naming_a_provisioning_without_config_fails(tmp_path: Path) -> None:
    found = check_provisioning(host(tmp_path), with_image("/srv/images/x.tar"))  # type: ignore[arg-type]
    assert found[0][:2] == ("provisioning", "fail")
    assert "vm100 name a provisioning" in found[0][2]


def test_each_provisioner_and_each_wanted_image_is_checked(tmp_path: Path) -> None:
    node = host(tmp_path)
    node.write_file(CONFIG, TEXT, 0o644)
    node.write_file("/usr/sbin/debootstrap", "I: installed\n", 0o755)
    found = {name: (verdict, detail) for name, verdict, detail in
             check_provisioning(node, with_image("/srv/images/missing.tar"))}  # type: ignore[arg-type]
    assert found["provisioning config"][0] == "ok"
    assert found["tool xfs_admin"][0] == "ok"
    assert found["tool unshare"][0] == "ok"
    assert found["provisioner deb"] == ("ok", "ok: provisioner deb")
    assert found["provisioner gone"][0] == "fail"
    assert "/usr/local/sbin/nothing-here is not an executable file" in found["provisioner gone"][1]
    assert found["provisioning of vm100"][0] == "fail"
    assert "image /srv/images/missing.tar does not exist on this node" in found["provisioning of vm100"][1]


def test_a_broken_config_is_one_failure_naming_the_file(tmp_path: Path) -> None:
    node = host(tmp_path)
    node.write_file(CONFIG, "provisioners = 3\n", 0o644)
    [(name, verdict, detail)] = check_provisioning(node, None)
    assert (name, verdict) == ("provisioning", "fail")
    assert detail.startswith(CONFIG)

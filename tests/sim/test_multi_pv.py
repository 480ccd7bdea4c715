"""Volume groups of several PVs on the simulator: an lvm-striped VM converges, striped over all of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.sim.host import SimHost

CLUSTER = """cluster: striped
nodes:
  erdbeere: {hostname: erdbeere, address: 192.168.2.1, volume_groups: [vg-data, vg-sda], drbd_version: "9"}
  himbeere: {hostname: himbeere, address: 192.168.2.2, volume_groups: [vg-data, vg-sda], drbd_version: "9"}
defaults:
  safety: {mechanism: none}
  domain: {type: pv, bootloader: pygrub, bridge: xenbr0}
"""
VM = """id: 200
nodes: [erdbeere, himbeere]
primary: erdbeere
storage: {layout: lvm-striped, volume_groups: [vg-data], stripes: 3, chunk_sectors: 128, size: 30G}
swap: {size: 1G, volume_groups: [vg-sda]}
drbd: {minor: 0, port: 7800}
domain: {memory: 1G, vcpus: 1}
"""


def test_sim_init_makes_a_volume_group_of_several_pvs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "init", str(tmp_path / "sim"), "--vg", "vg-data:100Gx3", "--vg", "vg-sda:50G"]) == 0
    assert "vg-data (3 x 100GiB)" in capsys.readouterr().out
    pvs = SimHost(str(tmp_path / "sim"), "himbeere").run(("pvs", "--noheadings", "-o", "pv_name,vg_name"))
    assert sorted(line.split() for line in pvs.stdout.splitlines()) == [
        ["/dev/data1", "vg-data"], ["/dev/data2", "vg-data"], ["/dev/data3", "vg-data"], ["/dev/sda", "vg-sda"]]


@pytest.mark.parametrize("spec", ["vg-data:100Gx0", "vg-data:100Gx99", "vg-data:100Gxthree"])
def test_a_bad_pv_count_is_refused(tmp_path: Path, spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "init", str(tmp_path / "sim"), "--vg", spec]) != 0
    assert "number of physical volumes" in capsys.readouterr().err


@pytest.mark.timeout(300)
def test_an_lvm_striped_vm_converges_over_three_pvs(tmp_path: Path) -> None:
    sim, desired = tmp_path / "sim", tmp_path / "desired"
    (desired / "vms").mkdir(parents=True)
    (desired / "cluster.yaml").write_text(CLUSTER)
    (desired / "vms" / "vm200.yaml").write_text(VM)
    assert main(["sim", "init", str(sim), "--vg", "vg-data:100Gx3", "--vg", "vg-sda:50G"]) == 0
    for _ in range(4):  # a new DRBD pair converges over a few passes on each node
        for node in ("erdbeere", "himbeere"):
            # 3 while steps wait, 4 (degraded) while the initial full sync runs
            assert main(["apply", "--sim", str(sim), "--node", node, str(desired)]) in (0, 3, 4)
        assert main(["sim", "advance", str(sim), "3600"]) == 0
    for node in ("erdbeere", "himbeere"):
        assert main(["plan", "--sim", str(sim), "--node", node, str(desired)]) == 0
        assert main(["apply", "--sim", str(sim), "--node", node, str(desired)]) == 0  # converged and healthy
        lvs = SimHost(str(sim), node).run(("lvs", "--noheadings", "-o", "lv_name,stripes,devices", "vg-data"))
        assert lvs.stdout.split() == ["root200", "3", "/dev/data1(0),/dev/data2(0),/dev/data3(0)"]

"""Imports of hand-built variations: DRBD 9, options the schema lacks, names off the id pattern, another minor, a
linear LV, nodes that disagree, and the old definitions and cluster managers a takeover must list."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.sim.state import SimCluster
from tests.apply.simlab import NODES, SimLab
from tests.apply.test_takeover import DRBD_RES, GIB, VGS, XEN_CFG, build_by_hand, import_both, sim_exec


def _cluster(tmp_path: Path, version: str = "8.4") -> Path:
    directory = tmp_path / "sim"
    SimCluster.init(directory, list(NODES), dict.fromkeys(VGS, 100 * GIB), drbd_version=version)
    return directory


def _ownership_only(lab: SimLab, mark: int) -> list[list[str]]:
    mutating = [e["argv"] for e in lab.log()[mark:] if e.get("mutating")]
    return [a for a in mutating if a[:2] not in (["dmsetup", "rename"], ["lvchange", "--addtag"])]


def test_drbd_9_imports_and_the_auto_promote_difference_is_refused_not_applied(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _cluster(tmp_path, "9")
    build_by_hand(monkeypatch, directory)
    out = tmp_path / "repo"
    import_both(directory, out)
    assert 'drbd_version: "9"' in (out / "cluster.yaml").read_text()
    lab = SimLab(directory, desired_dir=out)
    mark = len(lab.log())
    lab.converge(passes=3, resync_seconds=60)
    refused = lab.apply("erdbeere").plan.action("write-drbd-config@drbd:vm100")
    assert refused is not None
    assert "options auto-promote: (default) -> no" in refused.refused
    assert _ownership_only(lab, mark) == []


OPTIONS_RES = DRBD_RES.replace("  net { sndbuf-size 512k; }\n", """\
  net {
    sndbuf-size 512k;
    max-buffers 8000;
  }
  handlers {
    outdate-peer "/usr/lib/heartbeat/drbd-peer-outdater";
  }
""").replace("  startup { degr-wfc-timeout 120; }\n", """\
  startup {
    degr-wfc-timeout 120;
    become-primary-on erdbeere;
  }
""")


def test_options_are_passed_through_and_what_cannot_be_expressed_is_listed_with_file_and_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _cluster(tmp_path)
    build_by_hand(monkeypatch, directory, drbd_res=OPTIONS_RES)
    out = tmp_path / "repo"
    report = import_both(directory, out)
    vm_file = (out / "vms" / "vm100.yaml").read_text()
    assert 'net: {max-buffers: "8000", sndbuf-size: "512k"}' in vm_file
    lines = OPTIONS_RES.splitlines()
    handler = next(i for i, line in enumerate(lines, 1) if "outdate-peer" in line)
    become = next(i for i, line in enumerate(lines, 1) if "become-primary-on" in line)
    assert f"/etc/drbd.d/vm100.res:{handler}: [old-definition] the dopd handler of Heartbeat" in report
    assert f"/etc/drbd.d/vm100.res:{become}: [unsupported] startup become-primary-on erdbeere" in report


NAMED_RES = DRBD_RES.replace("resource vm100", "resource r0").replace("/dev/drbd0", "/dev/drbd3").replace(
    "/dev/mapper/root100", "/dev/mapper/web").replace(":7788", ":7790")
NAMED_CFG = XEN_CFG.replace('"vm100"', '"web"').replace("/dev/drbd0", "/dev/drbd3").replace("swap100", "swap-web")


def test_names_off_the_id_pattern_and_another_minor_are_imported_and_taken_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _cluster(tmp_path)
    for node in NODES:
        for vg in VGS:
            sim_exec(monkeypatch, directory, node, "lvcreate", "-L", "1G", "-n", "swap-web", vg)
            sim_exec(monkeypatch, directory, node, "lvcreate", "-L", "10G", "-n", "web", vg)
        table = "0 62914560 striped 3 64 " + " ".join(f"/dev/{vg}/web 0" for vg in VGS) + "\n"
        sim_exec(monkeypatch, directory, node, "dmsetup", "create", "web", stdin=table)
        sim_exec(monkeypatch, directory, node, "tee", "/etc/drbd.d/r0.res", stdin=NAMED_RES)
        sim_exec(monkeypatch, directory, node, "tee", "/etc/xen/web.cfg", stdin=NAMED_CFG)
        sim_exec(monkeypatch, directory, node, "drbdadm", "create-md", "r0")
        sim_exec(monkeypatch, directory, node, "drbdadm", "up", "r0")
    sim_exec(monkeypatch, directory, "erdbeere", "drbdadm", "primary", "--force", "r0")
    SimCluster(directory).advance(3600)
    sim_exec(monkeypatch, directory, "erdbeere", "mkfs.xfs", "/dev/drbd3")
    sim_exec(monkeypatch, directory, "erdbeere", "xl", "create", "/etc/xen/web.cfg")
    out = tmp_path / "repo"
    import_both(directory, out)
    vm_file = (out / "vms" / "web.yaml").read_text()
    assert "names: {data_lv: web, swap_lv: swap-web, resource: r0}" in vm_file
    assert "minor: 3" in vm_file
    assert "port: 7790" in vm_file
    lab = SimLab(directory, desired_dir=out)
    mark = len(lab.log())
    steps = lab.converge(passes=4, resync_seconds=60)
    assert all(s.result is not None and s.result.converged for s in steps.values())
    assert _ownership_only(lab, mark) == []


def test_a_linear_lv_under_drbd_imports_as_linear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _cluster(tmp_path)
    res = DRBD_RES.replace("/dev/mapper/root100", "/dev/vg-sdb/root100")
    cfg = XEN_CFG.replace(", 'phy:/dev/vg-sdb/swap100,xvdc,w', 'phy:/dev/vg-sdc/swap100,xvdd,w'", "")
    for node in NODES:
        sim_exec(monkeypatch, directory, node, "lvcreate", "-L", "1G", "-n", "swap100", "vg-sda")
        sim_exec(monkeypatch, directory, node, "lvcreate", "-L", "20G", "-n", "root100", "vg-sdb")
        sim_exec(monkeypatch, directory, node, "tee", "/etc/drbd.d/vm100.res", stdin=res)
        sim_exec(monkeypatch, directory, node, "tee", "/etc/xen/vm100.cfg", stdin=cfg)
        sim_exec(monkeypatch, directory, node, "drbdadm", "create-md", "vm100")
        sim_exec(monkeypatch, directory, node, "drbdadm", "up", "vm100")
    out = tmp_path / "repo"
    import_both(directory, out)
    vm_file = (out / "vms" / "vm100.yaml").read_text()
    assert "layout: linear" in vm_file
    assert "volume_groups: [vg-sdb]" in vm_file
    assert "size: 20G" in vm_file
    assert "swap:\n  size: 1G\n  volume_groups: [vg-sda]" in vm_file


def test_nodes_that_disagree_are_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _cluster(tmp_path)
    build_by_hand(monkeypatch, directory)
    sim_exec(monkeypatch, directory, "himbeere", "tee", "/etc/xen/vm100.cfg",
             stdin=XEN_CFG.replace("memory = 4096", "memory = 2048"))
    out = tmp_path / "repo"
    report = import_both(directory, out)
    assert "Disagreements between the nodes (1)" in report
    assert "vm100: domain.memory_mib: 4096 vs 2048 (erdbeere vs himbeere)" in report
    assert "memory: 4G" in (out / "vms" / "vm100.yaml").read_text()  # the node running it wins


def test_old_definitions_and_a_cluster_manager_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _cluster(tmp_path)
    build_by_hand(monkeypatch, directory)
    for path, text in (("/etc/xen/auto/vm100", XEN_CFG), ("/etc/ha.d/haresources", "erdbeere drbddisk::vm100 xen\n"),
                       ("/etc/rc.local", "#!/bin/sh\necho '0 1 zero' | dmsetup create root100\n")):
        sim_exec(monkeypatch, directory, "erdbeere", "tee", path, stdin=text)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    out = tmp_path / "repo"
    assert main(["import", "--sim", str(directory), "--node", "erdbeere", "--out", str(out)]) == 0
    report = (out / "import" / "REPORT.txt").read_text()
    assert "erdbeere: /etc/xen/auto/vm100: [old-definition] xendomains starts this domain at boot" in report
    assert "erdbeere: /etc/ha.d/haresources: [cluster-manager] Heartbeat is configured" in report
    assert "erdbeere: /etc/rc.local: [old-definition] runs `dmsetup create` at boot" in report
    assert re.search(r"himbeere: \[note\] node himbeere was not imported", report)

"""A node built by hand with the article's commands, imported on both nodes, then taken over with no downtime.

The article's steps run through `reconciler sim exec` (LVs, a `dmsetup create` stripe without uuid, a
hand-written DRBD resource, create-md/up, the forced first promotion, mkfs.xfs and mkswap, a Xen config and
`xl create`). `reconciler import` on both nodes writes one desired-state directory; one-shot passes of both
nodes then converge it, and the only mutating commands they run are the two ownership commands.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply.executor import ApplyOptions, apply_plan
from reconciler.apply.retry import RetryPolicy
from reconciler.cli.main import main
from reconciler.desired.expand import expand_node
from reconciler.desired.load import load_cluster
from reconciler.desired.render import render_node
from reconciler.observe.observer import Observer
from reconciler.plan.diff import plan_node
from reconciler.sim.state import SimCluster
from tests.apply.simlab import NODES, SimLab

GIB = 1024**3
VGS = ("vg-sda", "vg-sdb", "vg-sdc")

DRBD_RES = """\
resource vm100 {
  protocol C;
  startup { degr-wfc-timeout 120; }
  disk { on-io-error detach; }
  net { sndbuf-size 512k; }
  on erdbeere {
    device /dev/drbd0;
    disk /dev/mapper/root100;
    address 192.168.2.1:7788;
    meta-disk internal;
  }
  on himbeere {
    device /dev/drbd0;
    disk /dev/mapper/root100;
    address 192.168.2.2:7788;
    meta-disk internal;
  }
}
"""

XEN_CFG = """\
name = "vm100"
memory = 4096
vcpus = 2
bootloader = "pygrub"
disk = ['phy:/dev/drbd0,xvda,w', 'phy:/dev/vg-sda/swap100,xvdb,w', 'phy:/dev/vg-sdb/swap100,xvdc,w', \
'phy:/dev/vg-sdc/swap100,xvdd,w']
vif = ['mac=00:16:3e:00:01:00,bridge=xenbr0']
"""

# 3 x 10 GiB legs, chunk 64 sectors: the length of the stripe is what the article computes by hand.
STRIPE = ("0 62914560 striped 3 64 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0 /dev/vg-sdc/root100 0\n")


def sim_exec(monkeypatch: pytest.MonkeyPatch, directory: Path, node: str, *argv: str, stdin: str = "") -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(["sim", "exec", str(directory), node, "--", *argv]) == 0, argv


def build_by_hand(monkeypatch: pytest.MonkeyPatch, directory: Path, drbd_res: str = DRBD_RES,
                  drbd_path: str = "/etc/drbd.d/vm100.res") -> None:
    """The article's commands, node by node."""
    for node in NODES:
        for vg in VGS:
            sim_exec(monkeypatch, directory, node, "lvcreate", "-L", "1G", "-n", "swap100", vg)
            sim_exec(monkeypatch, directory, node, "lvcreate", "-L", "10G", "-n", "root100", vg)
        sim_exec(monkeypatch, directory, node, "dmsetup", "create", "root100", stdin=STRIPE)
        sim_exec(monkeypatch, directory, node, "tee", drbd_path, stdin=drbd_res)
        sim_exec(monkeypatch, directory, node, "tee", "/etc/xen/vm100.cfg", stdin=XEN_CFG)
        sim_exec(monkeypatch, directory, node, "drbdadm", "create-md", "vm100")
        sim_exec(monkeypatch, directory, node, "drbdadm", "up", "vm100")
    sim_exec(monkeypatch, directory, "erdbeere", "drbdadm", "primary", "--force", "vm100")
    SimCluster(directory).advance(3600)
    sim_exec(monkeypatch, directory, "erdbeere", "mkfs.xfs", "/dev/drbd0")
    for vg in VGS:
        sim_exec(monkeypatch, directory, "erdbeere", "mkswap", f"/dev/{vg}/swap100")
    sim_exec(monkeypatch, directory, "erdbeere", "xl", "create", "/etc/xen/vm100.cfg")


def import_both(directory: Path, out: Path) -> str:
    for node in NODES:
        assert main(["import", "--sim", str(directory), "--node", node, "--out", str(out)]) == 0
    return (out / "import" / "REPORT.txt").read_text()


def _domain(lab: SimLab) -> dict[str, Any]:
    state = lab.cluster.read()
    domain: dict[str, Any] = state["nodes"]["erdbeere"]["domains"]["vm100"]
    return domain


def hand_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A simulated DRBD 8.4 pair built with the article's commands, and where its import is to go."""
    directory = tmp_path / "sim"
    SimCluster.init(directory, list(NODES), dict.fromkeys(VGS, 100 * GIB), drbd_version="8.4")
    build_by_hand(monkeypatch, directory)
    return directory, tmp_path / "repo"


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    return hand_built(tmp_path, monkeypatch)


def test_import_writes_a_valid_directory_that_renders_the_running_configuration(built: tuple[Path, Path]) -> None:
    directory, out = built
    report = import_both(directory, out)
    assert "Disagreements between the nodes (0)" in report
    vm_file = (out / "vms" / "vm100.yaml").read_text()
    for line in ("id: 100", "primary: erdbeere", "stripes: 3", "chunk_sectors: 64", "size: 10G",
                 'net: {sndbuf-size: "512k"}', "degr_wfc_timeout: 120", "memory: 4G", "vcpus: 2"):
        assert line in vm_file
    cluster = load_cluster(str(out))
    lab = SimLab(directory, desired_dir=out)
    for node in NODES:
        files = render_node(expand_node(cluster, node))
        table = next(text for rel, text in files.items() if rel.endswith("root100.table"))
        live = lab.host(node).run(["dmsetup", "table", "root100"]).stdout
        info = ["dmsetup", "info", "-c", "--noheadings", "-o", "major,minor", "--separator", ":"]
        legs = {f"/dev/{vg}/root100": lab.host(node).run([*info, f"{vg.replace('-', '--')}-root100"]).stdout.strip()
                for vg in VGS}
        for path, number in legs.items():
            table = table.replace(path, number)
        assert table.split() == live.split()


def test_the_takeover_runs_only_ownership_commands_and_never_stops_the_domain(built: tuple[Path, Path]) -> None:
    directory, out = built
    import_both(directory, out)
    lab = SimLab(directory, desired_dir=out)
    before = _domain(lab)
    mark = len(lab.log())
    steps = lab.converge(passes=4, resync_seconds=60)
    assert all(s.result is not None and s.result.converged for s in steps.values())
    mutating = [e["argv"] for e in lab.log()[mark:] if e.get("mutating")]
    assert mutating, "ownership was taken"
    assert all(argv[:2] == ["dmsetup", "rename"] or argv[:2] == ["lvchange", "--addtag"] for argv in mutating), \
        mutating
    assert sum(argv[:2] == ["dmsetup", "rename"] for argv in mutating) == 2  # one stripe per node
    assert sum(argv[0] == "lvchange" for argv in mutating) == 12  # 3 data + 3 swap LVs per node
    after = _domain(lab)
    assert (after["domid"], after["started"]) == (before["domid"], before["started"])
    for node in NODES:
        host = lab.host(node)
        assert host.read_file("/etc/drbd.d/vm100.res").startswith("# vm100: written by the reconciler")  # type: ignore[union-attr]
        assert host.read_file("/etc/xen/vm100.cfg").startswith("# vm100: written by the reconciler")  # type: ignore[union-attr]
        assert host.run(["drbdadm", "-d", "adjust", "vm100"]).stdout == ""
        uuid = host.run(["dmsetup", "info", "-c", "--noheadings", "-o", "uuid", "root100"]).stdout.strip()
        assert uuid == "RECONCILER-root100"
    assert main(["sim", "check", str(directory)]) == 0


@pytest.mark.timeout(240)
def test_after_the_takeover_a_growth_commit_works_without_a_restart(built: tuple[Path, Path]) -> None:
    directory, out = built
    import_both(directory, out)
    lab = SimLab(directory, desired_dir=out)
    lab.converge(passes=4, resync_seconds=60)
    before = _domain(lab)
    vm_file = out / "vms" / "vm100.yaml"
    vm_file.write_text(vm_file.read_text().replace("size: 10G", "size: 12G"))
    lab.converge(passes=6, resync_seconds=3600)
    for node in NODES:
        live = lab.host(node).run(["dmsetup", "table", "root100"]).stdout.split()
        assert live[1] == str(3 * 12 * GIB // 512)
    after = _domain(lab)
    assert (after["domid"], after["started"]) == (before["domid"], before["started"])
    assert main(["sim", "check", str(directory)]) == 0


def test_a_config_that_means_something_else_is_refused_with_the_difference(built: tuple[Path, Path]) -> None:
    directory, out = built
    import_both(directory, out)
    vm_file = out / "vms" / "vm100.yaml"
    vm_file.write_text(vm_file.read_text().replace('sndbuf-size: "512k"', 'sndbuf-size: "1M"'))
    lab = SimLab(directory, desired_dir=out)
    mark = len(lab.log())
    lab.converge(passes=3, resync_seconds=60)
    plan = lab.apply("erdbeere").plan
    refused = plan.action("write-drbd-config@drbd:vm100")
    assert refused is not None
    assert "net sndbuf-size: 512k -> 1M" in refused.refused
    assert lab.host("erdbeere").read_file("/etc/drbd.d/vm100.res") == DRBD_RES
    assert not any(e["argv"][0] == "drbdadm" for e in lab.log()[mark:] if e.get("mutating"))


def test_ownership_is_refused_when_the_device_changed_after_planning(built: tuple[Path, Path]) -> None:
    directory, out = built
    import_both(directory, out)
    lab = SimLab(directory, desired_dir=out)
    host = lab.host("erdbeere")
    desired = expand_node(load_cluster(str(out)), "erdbeere")
    plan = plan_node(desired, Observer(host).observe())
    assert plan.action("adopt-stripe@dm:root100") is not None
    # Between planning and the step, someone gives the device a uuid and grows an LV by hand.
    assert host.run(["dmsetup", "rename", "root100", "--setuuid", "OTHER-root100"]).ok
    assert host.run(["lvextend", "-L", "11G", "vg-sda/root100"]).ok
    result = apply_plan(host, plan, options=ApplyOptions(policy=RetryPolicy(attempts=1), sleep=lambda _s: None))
    outcome = {f"{a.kind}@{a.key}": (a.result, a.message) for a in result.actions}
    assert outcome["adopt-stripe@dm:root100"][0] == "refused"
    assert "has uuid OTHER-root100" in outcome["adopt-stripe@dm:root100"][1]
    assert outcome["adopt-lv@lv:vg-sda/root100"][0] == "refused"
    assert "not the desired 10GiB" in outcome["adopt-lv@lv:vg-sda/root100"][1]
    assert outcome["adopt-lv@lv:vg-sdb/root100"][0] == "ok"


OLD_DRBD_CONF = "global { usage-count no; }\n" + DRBD_RES


def test_a_resource_in_an_old_drbd_conf_is_never_defined_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "sim"
    SimCluster.init(directory, list(NODES), dict.fromkeys(VGS, 100 * GIB), drbd_version="8.4")
    build_by_hand(monkeypatch, directory, drbd_res=OLD_DRBD_CONF, drbd_path="/etc/drbd.conf")
    out = tmp_path / "repo"
    report = import_both(directory, out)
    assert "erdbeere: /etc/drbd.conf:2: [old-definition] resource vm100 is defined here" in report
    lab = SimLab(directory, desired_dir=out)
    mark = len(lab.log())
    lab.converge(passes=3, resync_seconds=60)
    refused = lab.apply("erdbeere").plan.action("write-drbd-config@drbd:vm100")
    assert refused is not None
    assert "resource vm100 is defined in /etc/drbd.conf:2" in refused.refused
    assert lab.host("erdbeere").read_file("/etc/drbd.d/vm100.res") is None
    mutating = [e["argv"] for e in lab.log()[mark:] if e.get("mutating")]
    assert all(a[:2] in (["dmsetup", "rename"], ["lvchange", "--addtag"]) for a in mutating), mutating
    assert lab.host("erdbeere").run(["drbdadm", "status", "vm100"]).ok
    # The documented step: the block moves to the rendered path first (the old drbd.conf does not include
    # drbd.d, so drbdadm still sees one definition), then drbd.conf is replaced by one that includes drbd.d.
    for node in NODES:
        sim_exec(monkeypatch, directory, node, "tee", "/etc/drbd.d/vm100.res", stdin=DRBD_RES)
        assert lab.host(node).run(["drbdadm", "status", "vm100"]).ok
        sim_exec(monkeypatch, directory, node, "tee", "/etc/drbd.conf", stdin='include "drbd.d/*.res";\n')
        assert lab.host(node).run(["drbdadm", "status", "vm100"]).ok
    mark = len(lab.log())
    steps = lab.converge(passes=3, resync_seconds=60)
    assert all(s.result is not None and s.result.converged for s in steps.values())
    assert [e["argv"] for e in lab.log()[mark:] if e.get("mutating")] == []
    for node in NODES:
        assert lab.host(node).read_file("/etc/drbd.d/vm100.res").startswith("# vm100: written by")  # type: ignore[union-attr]
        assert lab.host(node).run(["drbdadm", "-d", "adjust", "vm100"]).stdout == ""

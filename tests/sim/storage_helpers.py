"""Small builders for the storage, Xen and fault tests of the simulator (no tests here)."""

from __future__ import annotations

import re
from pathlib import Path

from reconciler.host.base import CommandResult
from reconciler.sim.host import SimHost
from reconciler.sim.state import SimCluster, add_pv, add_vg

GIB = 1024**3
ACTIVATION_WARNING = "  WARNING: Activation disabled. No device-mapper interaction will be attempted.\n"
LVM_UUID_RE = re.compile(r"\b[A-Za-z0-9]{6}(?:-[A-Za-z0-9]{4}){5}-[A-Za-z0-9]{6}\b")
UUID_RE = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def ok(host: SimHost, *argv: str, stdin: str | None = None) -> CommandResult:
    result = host.run(argv, stdin=stdin)
    assert result.ok, result.describe()
    return result


def cluster(tmp_path: Path, nodes: tuple[str, ...] = ("erdbeere", "himbeere"), size: int = 400 * GIB,
            vgs: tuple[str, ...] = ("vg-sda", "vg-sdb", "vg-sdc"), drbd_version: str = "9") -> Path:
    SimCluster.init(tmp_path, list(nodes), dict.fromkeys(vgs, size), drbd_version=drbd_version)
    return tmp_path


def capture_layout(tmp_path: Path) -> SimHost:
    """The layout the lvm2 captures were taken on: 8 GiB loop devices, vg-sda..vg-sdc and a 3-PV vg-multi,
    each single-PV VG holding swap100 (2G, created first) and root100 (1G)."""
    SimCluster.init(tmp_path, ["erdbeere"], {})
    with SimCluster(tmp_path).transaction() as state:
        node = state["nodes"]["erdbeere"]
        for index, vg in enumerate(("vg-sda", "vg-sdb", "vg-sdc")):
            add_vg(node, vg, 8 * GIB, pv_name=f"/dev/loop{index}")
        add_vg(node, "vg-multi", 8 * GIB, pv_name="/dev/loop3")
        add_pv(node, "vg-multi", "/dev/loop4", 8 * GIB)
        add_pv(node, "vg-multi", "/dev/loop5", 8 * GIB)
    host = SimHost(tmp_path, "erdbeere")
    for vg in ("vg-sda", "vg-sdb", "vg-sdc"):
        ok(host, "lvcreate", "-Wn", "-Zn", "-L", "2G", "-n", "swap100", vg)
        ok(host, "lvcreate", "-Wn", "-Zn", "-L", "1G", "-n", "root100", vg)
    return host


def mask_ids(text: str) -> str:
    return UUID_RE.sub("<uuid>", LVM_UUID_RE.sub("<lvm-uuid>", text))

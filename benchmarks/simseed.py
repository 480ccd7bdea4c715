"""Seed a simulated two-node cluster with many converged VMs without bringing each one up through apply.

Bringing 1,000 VMs up through ``reconciler apply`` on the simulator takes long: each action's checks list
every LV and DRBD resource, so the bring-up is quadratic in the number of VMs (bench_sim.py measures it).
Instead, a few template VMs are brought up for real (one per primary node), and every further VM is a replica
of the template with the same primary: its LVs get fresh uuids and extents after the last used one on each PV,
its dm stripe, DRBD runtime and metadata, Xen domain, oracle bookkeeping and owned files (rendered by
``reconciler.desired.render`` from the desired state) are those of the template with the VM's names, minor,
port, MAC and ids. The seed is only trusted when ``reconciler plan`` finds nothing to do and the oracle
reports nothing (see ``validate``).

Desired state: the example repository's cluster.yaml and N generated dm-striped VMs (``write_desired``).
"""

from __future__ import annotations

import json
import posixpath
import random
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.desired.expand import expand_node
from reconciler.desired.load import load_cluster
from reconciler.desired.render import render_node
from reconciler.host.base import DEFAULT_TIMEOUT, CommandResult
from reconciler.sim.host import SimHost
from reconciler.sim.state import SimCluster, State, lvm_uuid, new_uuid

ROOT = Path(__file__).resolve().parent.parent
NODES = ("erdbeere", "himbeere")
FIRST_ID = 1000
GIB = 1024**3
# Room for 1,000 VMs of 3 x 10 GiB stripes and 3 x 1 GiB swaps per node, and their 1 GiB domains.
VG_BYTES = 16 * 1024**4
MEMORY_MIB = 2 * 1024 * 1024

VM = """# VM {id}: generated for the no-op pass benchmark
id: {id}
nodes: [erdbeere, himbeere]
primary: {primary}
storage:
  layout: dm-striped
  volume_groups: [vg-sda, vg-sdb, vg-sdc]
  stripes: 3
  chunk_sectors: 64
  size: 10G
swap:
  size: 1G
  volume_groups: [vg-sda, vg-sdb, vg-sdc]
drbd:
  minor: {minor}
  port: {port}
domain:
  memory: 1G
  maxmem: 1G
  vcpus: 1
  maxvcpus: 2
  vifs:
    - mac: "{mac}"
  live_migration: false
"""


def vm_id(index: int) -> int:
    return FIRST_ID + index


def primary_of(index: int) -> str:
    return NODES[index % 2]


def mac_of(index: int) -> str:
    return f"00:16:3e:{(index >> 16) & 255:02x}:{(index >> 8) & 255:02x}:{index & 255:02x}"


def write_desired(directory: Path, count: int) -> None:
    """The example cluster with COUNT VMs; VM i has id 1000+i, DRBD minor i and port 7788+i."""
    (directory / "vms").mkdir(parents=True)
    shutil.copyfile(ROOT / "desired-state" / "cluster.yaml", directory / "cluster.yaml")
    for index in range(count):
        text = VM.format(id=vm_id(index), primary=primary_of(index), minor=index, port=7788 + index,
                         mac=mac_of(index))
        (directory / "vms" / f"vm{vm_id(index)}.yaml").write_text(text, encoding="utf-8")


def init_cluster(directory: Path) -> SimCluster:
    return SimCluster.init(directory, list(NODES), dict.fromkeys(("vg-sda", "vg-sdb", "vg-sdc"), VG_BYTES),
                           memory_mib=MEMORY_MIB)


# --- replication ---------------------------------------------------------------------------------


def _names(ident: int) -> tuple[str, ...]:
    return (f"root{ident}", f"swap{ident}", f"vm{ident}")


def _template_part(state: State, ident: int) -> dict[str, Any]:
    """Everything the state holds about one VM, keyed as in the state."""
    root, swap, domain = _names(ident)
    part: dict[str, Any] = {"nodes": {}, "disks": {}, "oracle": {}}
    for node in NODES:
        ns = state["nodes"][node]
        drbd = ns["drbd"]
        part["nodes"][node] = {
            "lvs": {vg: {lv: data for lv, data in body["lvs"].items() if lv in (root, swap)}
                    for vg, body in ns["vgs"].items()},
            "dm": {root: ns["dm"][root]},
            "domains": {domain: ns["domains"][domain]} if domain in ns["domains"] else {},
            "resource": drbd["resources"][domain],
            "last_keys": drbd.get("last_keys", {}).get(domain),
        }
    for key, body in state["disks"].items():
        if any(f"lv:{lv['uuid']}" in key for n in NODES for lvs in part["nodes"][n]["lvs"].values()
               for lv in lvs.values()):
            part["disks"][key] = body
    oracle = state["oracle"]
    part["oracle"] = {"acked": oracle["acked"].get(domain), "domain": oracle["domains"].get(domain),
                      "primaries": oracle["primaries"].get(domain)}
    return part


def _uuids(part: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    """The template's LV uuids, other (domain, filesystem, swap) uuids and DRBD device uuids."""
    lv_ids: set[str] = set()
    other: set[str] = set()
    device: set[str] = set()
    for body in part["nodes"].values():
        for lvs in body["lvs"].values():
            lv_ids.update(lv["uuid"] for lv in lvs.values())
        other.update(d["uuid"] for d in body["domains"].values())
    for disk in part["disks"].values():
        if disk.get("signature"):
            other.add(disk["signature"]["uuid"])
        if disk.get("drbd_md"):
            device.add(disk["drbd_md"]["device_uuid"])
    return lv_ids, other, device


class Seeder:
    """Adds replicas of the converged template VMs to one state (all in memory; the caller saves)."""

    def __init__(self, state: State, templates: dict[str, int]) -> None:
        self.state = state
        # Serialised once per template; each replica is a renamed copy of this text.
        self.templates: dict[str, tuple[int, str, dict[str, Any]]] = {}
        for primary, ident in templates.items():
            part = _template_part(state, ident)
            self.templates[primary] = (ident, json.dumps(part), part)
        self.next_extent: dict[tuple[str, str], int] = {}
        for node in NODES:
            for vg, body in state["nodes"][node]["vgs"].items():
                end = 0
                for lv in body["lvs"].values():
                    for seg in lv["segments"]:
                        per_area = int(seg["extents"]) // len(seg["areas"])
                        end = max([end] + [int(start) + per_area for _pv, start in seg["areas"]])
                self.next_extent[(node, vg)] = end

    def add(self, index: int, template_index: int) -> None:
        ident, text, part = self.templates[primary_of(index)]
        new = vm_id(index)
        replaced = self._rename(text, part, ident, new, old_minor=template_index, minor=index)
        self._merge(json.loads(replaced), new, index)

    def _rename(self, text: str, part: dict[str, Any], ident: int, new: int, *, old_minor: int, minor: int) -> str:
        lv_ids, other, device = _uuids(part)
        mapping = {u: lvm_uuid() for u in lv_ids}
        mapping.update({u: new_uuid() for u in other})
        mapping.update({u: f"{random.getrandbits(64):016X}" for u in device})
        for old, fresh in mapping.items():
            text = text.replace(f'"{old}"', f'"{fresh}"').replace(f"lv:{old}", f"lv:{fresh}")
        text = re.sub(rf"\b(root|swap|vm){ident}\b", rf"\g<1>{new}", text)
        return re.sub(rf"/dev/drbd{old_minor}\b", f"/dev/drbd{minor}", text)

    def _merge(self, part: dict[str, Any], new: int, index: int) -> None:
        state = self.state
        root, _swap, domain = _names(new)
        generation = random.getrandbits(63)
        for node in NODES:
            ns = state["nodes"][node]
            body = part["nodes"][node]
            for vg, lvs in body["lvs"].items():
                target = ns["vgs"][vg]
                for name, lv in sorted(lvs.items(), key=lambda item: int(item[1]["order"])):
                    (seg,) = lv["segments"]
                    (area,) = seg["areas"]
                    area[1] = self.next_extent[(node, vg)]
                    self.next_extent[(node, vg)] += int(seg["extents"])
                    if self.next_extent[(node, vg)] > int(target["pvs"][0]["pe_count"]):
                        raise RuntimeError(f"{vg} on {node} is too small for {name}")
                    lv["minor"] = self._minor(ns)
                    lv["order"] = int(target["next_order"])
                    target["next_order"] = lv["order"] + 1
                    target["lvs"][name] = lv
            dm = body["dm"][root]
            dm["minor"] = self._minor(ns)
            ns["dm"][root] = dm
            for dom in body["domains"].values():
                dom["domid"] = int(ns["next_domid"])
                ns["next_domid"] = dom["domid"] + 1
                dom["vifs"] = [re.sub(r"mac=[0-9a-f:]+", f"mac={mac_of(index)}", v) for v in dom["vifs"]]
                ns["domains"][domain] = dom
            resource = body["resource"]
            for host in resource["config"]["hosts"]:
                host["port"] = 7788 + index
                for volume in host["volumes"]:
                    volume["minor"] = index
            for dev in resource["devices"].values():
                dev["minor"] = index
            ns["drbd"]["resources"][domain] = resource
            if body["last_keys"] is not None:
                ns["drbd"].setdefault("last_keys", {})[domain] = body["last_keys"]
        for key, disk in part["disks"].items():
            if disk.get("drbd_md"):
                # Both replicas of one resource share their generation uuid, as after a finished resync.
                disk["drbd_md"]["current"] = generation
            state["disks"][key] = disk
        oracle = state["oracle"]
        if part["oracle"]["acked"] is not None:
            oracle["acked"][domain] = part["oracle"]["acked"]
        if part["oracle"]["domain"] is not None:
            oracle["domains"][domain] = part["oracle"]["domain"]
        if part["oracle"]["primaries"] is not None:
            oracle["primaries"][domain] = part["oracle"]["primaries"]

    @staticmethod
    def _minor(ns: dict[str, Any]) -> int:
        minor = int(ns["next_minor"])
        ns["next_minor"] = minor + 1
        return minor


def write_files(state: State, desired_dir: Path) -> None:
    """The owned files of every node, exactly as apply writes them (rendered from the desired state)."""
    cluster = load_cluster(str(desired_dir))
    for node in NODES:
        files = state["nodes"][node]["files"]
        mode = next(f["mode"] for p, f in files.items() if p.startswith("/etc/drbd.d/"))
        for path, text in render_node(expand_node(cluster, node)).items():
            if path.startswith("etc/"):
                files["/" + path] = {"content": text, "mode": mode}


def seed(sim: Path, desired_dir: Path, count: int, templates: int) -> None:
    """Replicate VMs templates..count-1 into the cluster in SIM, whose first TEMPLATES VMs are converged."""
    cluster = SimCluster(sim)
    with cluster.transaction() as state:
        seeder = Seeder(state, {primary_of(i): vm_id(i) for i in range(templates)})
        for index in range(templates, count):
            seeder.add(index, index % 2)
        write_files(state, desired_dir)


def copy_cluster(source: Path, target: Path) -> None:
    shutil.copytree(source, target)
    # The command log of the bring-up is not part of the seeded cluster's story.
    (target / "commands.log").write_text("", encoding="utf-8")


class SnapshotReads(SimHost):
    """A ``SimHost`` whose file reads share one state snapshot until the next command or file write.

    The plain ``SimHost`` re-reads and re-parses the whole state file for every file read; with 1,000 VMs
    that is 2,000 owned files times a ~12 MB state per observation, a cost of the simulator that a real
    node's file reads do not have. Commands are untouched (each still is one transaction, and logged), and
    nothing else changes the cluster during a measured pass, so the answers are the same."""

    def __init__(self, cluster_dir: str | Path, node: str) -> None:
        super().__init__(cluster_dir, node)
        self._snapshot: State | None = None
        self.file_reads = 0

    def _state(self) -> State:
        if self._snapshot is None:
            self._snapshot = self.cluster.read()
        return self._snapshot

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        self._snapshot = None
        return super().run(argv, timeout=timeout, stdin=stdin)

    def read_file(self, path: str) -> str | None:
        self.file_reads += 1
        if not path.startswith("/"):
            return super().read_file(path)  # the plain host's error for a relative path
        state = self._state()
        self._require_up(state)
        return self._context(state).read_file(posixpath.normpath(path))

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        self._snapshot = None
        super().write_file(path, content, mode)

    def remove_file(self, path: str) -> None:
        self._snapshot = None
        super().remove_file(path)

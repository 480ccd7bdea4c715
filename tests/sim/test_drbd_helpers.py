"""A simulated two- or three-node DRBD cluster for the DRBD and oracle tests (no tests here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconciler.host.base import CommandResult
from reconciler.sim import faults
from reconciler.sim.host import SimHost
from reconciler.sim.state import SimCluster, State

GIB = 1024**3


def resource_text(name: str = "vm100", *, minor: int = 0, port: int = 7788,
                  nodes: tuple[str, ...] = ("erdbeere", "himbeere"), net: str = "",
                  disk: str = "on-io-error detach; al-extents 257;", options: str = "", handlers: str = "",
                  tiebreaker: str | None = None, lv: str = "root100", protocol: str = "C") -> str:
    lines = [f"resource {name} {{", f"  protocol {protocol};"]
    if net:
        lines.append(f"  net {{ {net} }}")
    lines.append(f"  disk {{ {disk} }}")
    if options:
        lines.append(f"  options {{ {options} }}")
    if handlers:
        lines.append(f"  handlers {{ {handlers} }}")
    for index, node in enumerate(nodes, start=1):
        lines.append(f"  on {node} {{ node-id {index - 1}; device /dev/drbd{minor}; disk /dev/vg-sda/{lv}; "
                     f"address 192.168.2.{index}:{port}; meta-disk internal; }}")
    if tiebreaker is not None:
        index = len(nodes) + 1
        lines.append(f"  on {tiebreaker} {{ node-id {index - 1}; device /dev/drbd{minor}; disk none; "
                     f"address 192.168.2.{index}:{port}; meta-disk internal; }}")
    lines.append("}")
    return "\n".join(lines) + "\n"


class DrbdCluster:
    """Nodes sharing one simulated cluster directory, driven through the host seam."""

    def __init__(self, directory: Path, nodes: tuple[str, ...] = ("erdbeere", "himbeere"),
                 drbd_version: str = "9", vgs: tuple[str, ...] = ("vg-sda",)) -> None:
        self.directory = directory
        self.cluster = SimCluster.init(directory, list(nodes), dict.fromkeys(vgs, 400 * GIB),
                                       drbd_version=drbd_version)
        self.hosts = {node: SimHost(directory, node) for node in nodes}

    def run(self, node: str, *argv: str, stdin: str | None = None) -> CommandResult:
        return self.hosts[node].run(list(argv), stdin=stdin)

    def ok(self, node: str, *argv: str) -> CommandResult:
        result = self.run(node, *argv)
        assert result.returncode == 0, f"{node}: {' '.join(argv)} -> {result.returncode}\n{result.stderr}"
        return result

    def prepare(self, text: str, nodes: tuple[str, ...] | None = None, *, lv: str = "root100",
                size: str = "1G", name: str = "vm100") -> None:
        """LV, resource file and metadata on each node, then ``drbdadm up``."""
        for node in nodes or tuple(self.hosts):
            self.hosts[node].write_file(f"/etc/drbd.d/{name}.res", text)
            if self._diskful(text, node):
                self.ok(node, "lvcreate", "-n", lv, "-L", size, "vg-sda")
                self.ok(node, "drbdadm", "create-md", name)
            self.ok(node, "drbdadm", "up", name)

    @staticmethod
    def _diskful(text: str, node: str) -> bool:
        for line in text.splitlines():
            if line.strip().startswith(f"on {node} "):
                return "disk none" not in line
        return True

    def status(self, node: str, name: str = "vm100") -> dict[str, Any]:
        data = json.loads(self.ok(node, "drbdsetup", "status", "--json").stdout)
        return next(r for r in data if r["name"] == name)

    def disk(self, node: str, name: str = "vm100") -> str:
        return str(self.status(node, name)["devices"][0]["disk-state"])

    def conn(self, node: str, peer: str, name: str = "vm100") -> dict[str, Any]:
        return next(c for c in self.status(node, name)["connections"] if c["name"] == peer)

    def advance(self, seconds: float) -> None:
        self.cluster.advance(seconds)

    def state(self) -> State:
        return self.cluster.read()

    def partition(self, a: str, b: str, *, management: bool = False) -> None:
        with self.cluster.transaction() as state:
            faults.partition(state, a, b, management=management)

    def heal(self) -> None:
        with self.cluster.transaction() as state:
            faults.heal(state)

    def crash(self, node: str) -> None:
        with self.cluster.transaction() as state:
            faults.crash(state, node)

    def boot(self, node: str) -> None:
        with self.cluster.transaction() as state:
            faults.boot(state, node)

    def start_domain(self, node: str, domain: str = "vm100", device: str = "/dev/drbd0") -> None:
        """A running domain using ``device`` (written into the state the way the Xen simulator keeps it)."""
        with self.cluster.transaction() as state:
            domains = state["nodes"][node].setdefault("domains", {})
            domains[domain] = {"domid": 1, "state": "running", "memory": 1024,
                               "disks": [{"target": device, "vdev": "xvda"}]}

    def stop_domain(self, node: str, domain: str = "vm100") -> None:
        with self.cluster.transaction() as state:
            state["nodes"][node].get("domains", {}).pop(domain, None)

    def new_pair(self, text: str | None = None, *, sync: bool = True) -> None:
        """A fresh pair, erdbeere forced primary and (by default) fully synced."""
        self.prepare(text or resource_text())
        self.ok("erdbeere", "drbdadm", "primary", "--force", "vm100")
        if sync:
            self.advance(20)

"""Drive the example desired state on a simulated two-node cluster (shared by the integration tests)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.apply.executor import ApplyOptions
from reconciler.apply.oneshot import Step, converge_once, observed_peer
from reconciler.apply.retry import RetryPolicy
from reconciler.desired.expand import expand_node
from reconciler.desired.load import load_cluster
from reconciler.host.base import Host
from reconciler.sim.host import SimHost
from reconciler.sim.state import SimCluster
from tests.conftest import EXAMPLE_DIR

NODES = ("erdbeere", "himbeere")
GIB = 1024**3


def init_cluster(directory: Path) -> SimCluster:
    return SimCluster.init(directory, list(NODES), dict.fromkeys(("vg-sda", "vg-sdb", "vg-sdc"), 400 * GIB))


@dataclass
class SimLab:
    directory: Path
    desired_dir: Path = EXAMPLE_DIR
    sleeps: list[float] = field(default_factory=list)

    @property
    def cluster(self) -> SimCluster:
        return SimCluster(self.directory)

    def host(self, node: str) -> SimHost:
        return SimHost(self.directory, node)

    def apply(self, node: str, *, allow_mass_delete: bool = False, wrap: Callable[[Host], Host] | None = None) -> Step:
        cluster = load_cluster(str(self.desired_dir))
        desired = expand_node(cluster, node)
        peer_name = next(n for n in NODES if n != node)

        def peer() -> Any:
            return observed_peer(self.host(peer_name), expand_node(cluster, peer_name))

        options = ApplyOptions(policy=RetryPolicy(attempts=4), sleep=self.sleeps.append)
        host: Host = self.host(node)
        return converge_once(wrap(host) if wrap else host, desired, peer=peer, allow_mass_delete=allow_mass_delete,
                             options=options)

    def log(self) -> list[dict[str, Any]]:
        return self.cluster.read_log()

    def converge(self, *, passes: int = 6, resync_seconds: float = 3600.0) -> dict[str, Step]:
        """Alternate the nodes until both converge, letting simulated time pass for the initial resync."""
        last: dict[str, Step] = {}
        for _ in range(passes):
            for node in NODES:
                last[node] = self.apply(node)
            self.cluster.advance(resync_seconds)
            if all(s.result is not None and s.result.converged and not s.plan.actions for s in last.values()):
                break
        return last


def edit_vm(lab: SimLab, vm: str, pattern: str, replacement: str) -> None:
    path = lab.desired_dir / "vms" / f"{vm}.yaml"
    text = path.read_text()
    changed = re.sub(pattern, replacement, text, count=1, flags=re.M)
    assert changed != text, f"{pattern!r} not found in {path}"
    path.write_text(changed)


def run_on(lab: SimLab, node: str, *argv: str) -> None:
    """Run ``argv`` on a simulated node by hand (as an operator would); it must succeed."""
    result = SimHost(lab.directory, node).run(list(argv), timeout=30)
    assert result.ok, result.describe()

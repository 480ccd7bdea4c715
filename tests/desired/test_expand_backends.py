"""Expansion places and renders the config files through the node's backends (the registry's hypervisor and
replicator), so another backend's files come from its own renderer, and `desired` names no backend package."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path

import pytest

from reconciler.backends import registry
from reconciler.backends.drbd.replicator import DrbdReplicator
from reconciler.backends.registry import DEFAULT_BACKENDS
from reconciler.backends.xen.hypervisor import XenHypervisor
from reconciler.core.render_settings import DomainFileSettings, ResourceFileSettings
from reconciler.core.seams import Backends
from reconciler.desired.expand import expand_node
from reconciler.desired.load import collect, load_cluster
from reconciler.model.desired import DrbdHost, DrbdVersion, NodeBackends
from reconciler.plan.diff import plan_node
from tests.desired.repo import CLUSTER, write_repo
from tests.plan.factories import empty_observed

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]


class OtherHypervisor(XenHypervisor):
    def config_path(self, domain: str) -> str:
        return f"/etc/other/{domain}.xml"

    def render_config(self, settings: DomainFileSettings, disks: Sequence[str]) -> str:
        return f"<domain name='{settings.name}' memory='{settings.memory_mib}'>{','.join(disks)}</domain>\n"


class OtherReplicator(DrbdReplicator):
    def config_path(self, resource: str) -> str:
        return f"/etc/other/{resource}.repl"

    def render_config(self, settings: ResourceFileSettings, version: DrbdVersion, hosts: Sequence[DrbdHost],
                      minor: int, backing_device: str, *, allow_two_primaries: bool) -> str:
        return f"{settings.resource} {minor} {backing_device} {' '.join(h.name for h in hosts)}\n"


def test_the_node_backends_place_and_render_the_files() -> None:
    cluster = load_cluster(str(ROOT / "desired-state"))
    other = expand_node(cluster, "erdbeere", Backends(hypervisor=OtherHypervisor(), replicator=OtherReplicator()))
    usual = expand_node(cluster, "erdbeere")
    assert usual == expand_node(cluster, "erdbeere", DEFAULT_BACKENDS)
    assert len(other.vms) == len(usual.vms) > 0
    for vm, before in zip(other.vms, usual.vms, strict=True):
        assert vm.domain is not None
        assert vm.drbd is not None
        assert before.domain is not None
        assert vm.domain.config_path == f"/etc/other/{vm.name}.xml"
        assert vm.domain.config_text == (f"<domain name='{vm.name}' memory='{vm.domain.memory_mib}'>"
                                         f"{','.join(vm.domain.disks)}</domain>\n")
        assert vm.drbd.config_path == f"/etc/other/{vm.drbd.name}.repl"
        assert vm.drbd.config_text.startswith(f"{vm.drbd.name} {vm.drbd.minor} ")
        # Only the files differ: every other value of the VM is the expansion's own.
        assert vm.domain.disks == before.domain.disks
        assert vm.lvs == before.lvs


def test_desired_imports_no_backend_package_only_the_registry() -> None:
    found = set()
    for path in sorted((ROOT / "reconciler" / "desired").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reconciler.backends"):
                found.add(node.module)
    assert found == {"reconciler.backends.registry"}


class NamedHypervisor(OtherHypervisor):
    @property
    def name(self) -> str:
        return "other"

    def start_argv(self, domain: str) -> tuple[str, ...]:
        return ("other-hv", "start", self.config_path(domain))


def test_a_node_runs_the_backends_its_cluster_entry_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.HYPERVISORS, "other", NamedHypervisor())  # type: ignore[index]
    text = CLUSTER.replace('    drbd_version: "9"\n', '    drbd_version: "9"\n    backends: {hypervisor: other}\n', 1)
    cluster, issues = collect(str(write_repo(tmp_path / "repo", text)))
    assert issues == []
    assert cluster is not None
    chosen, usual = expand_node(cluster, "erdbeere"), expand_node(cluster, "himbeere")
    assert chosen.backends == NodeBackends(hypervisor="other", replicator="drbd")
    assert usual.backends == NodeBackends()
    [vm] = chosen.vms
    assert vm.domain is not None
    assert vm.domain.config_path == f"/etc/other/{vm.name}.xml"
    assert usual.vms[0].domain is not None
    assert usual.vms[0].domain.config_path == f"/etc/xen/{vm.name}.cfg"
    # The planner takes the node's pair without being told: the start and the config step are the other one's.
    plan = plan_node(chosen, empty_observed("erdbeere"))
    starts = [a for a in plan.actions if a.kind == "start-domain"]
    assert [c.argv for a in starts for c in a.commands] == [("other-hv", "start", f"/etc/other/{vm.name}.xml")]
    assert any(a.file_path == f"/etc/other/{vm.name}.xml" for a in plan.actions)


def test_no_backends_entry_means_the_registry_defaults() -> None:
    cluster = load_cluster(str(ROOT / "desired-state"))
    for node in cluster.spec.nodes:
        desired = expand_node(cluster, node)
        assert desired.backends == NodeBackends()
        assert registry.node_backends(desired) == DEFAULT_BACKENDS
    assert DEFAULT_BACKENDS.hypervisor is registry.HYPERVISORS["xen"]
    assert DEFAULT_BACKENDS.replicator is registry.REPLICATORS["drbd"]

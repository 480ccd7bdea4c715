"""The host factory: one way to reach a node per kind (this machine, a simulated cluster, a capture)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.host import factory
from reconciler.host.factory import NodeAccess, NoProvider, known_nodes, make_host, peer_ports
from reconciler.host.real import RealHost
from reconciler.host.replay import ReplayError, ReplayHost

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "tests" / "observe" / "fixtures" / "lab-converged-erdbeere"


def test_access_follows_the_command_line_options(tmp_path: Path) -> None:
    assert NodeAccess.of() == NodeAccess("real")
    assert NodeAccess.of(sim="rel") == NodeAccess("sim", str(Path("rel").absolute()))
    assert NodeAccess.of(replay=tmp_path) == NodeAccess("replay", str(tmp_path))
    assert NodeAccess.of().this_machine
    assert not NodeAccess.of(sim=tmp_path).this_machine
    assert not NodeAccess.of(replay=tmp_path).this_machine
    with pytest.raises(ValueError, match="exclude each other"):
        NodeAccess.of(sim=tmp_path, replay=tmp_path)


@pytest.mark.parametrize(("kind", "location"), [("real", "/x"), ("sim", None), ("replay", None)])
def test_a_location_goes_with_every_kind_but_this_machine(kind: factory.NodeKind, location: str | None) -> None:
    with pytest.raises(ValueError, match="location"):
        NodeAccess(kind, location)


def test_this_machine() -> None:
    host = make_host(NodeAccess(), "n1")
    assert isinstance(host, RealHost)
    assert host.node == "n1"
    assert known_nodes(NodeAccess()) is None
    assert peer_ports(NodeAccess()) is None


def test_a_replayed_node_answers_as_the_captured_one() -> None:
    host = make_host(NodeAccess.of(replay=CAPTURE), None)
    assert isinstance(host, ReplayHost)
    assert host.node == "erdbeere"
    with pytest.raises(ReplayError):
        make_host(NodeAccess.of(replay=ROOT / "desired-state"), None)


def test_a_simulated_node_comes_from_the_simulator_provider(tmp_path: Path) -> None:
    from reconciler.sim.state import SimCluster, SimStateError

    SimCluster.init(tmp_path / "sim", ["erdbeere", "himbeere"], {"vg-sda": 100 << 30})
    access = NodeAccess.of(sim=tmp_path / "sim")
    host = make_host(access, "himbeere")
    assert host.node == "himbeere"
    assert host.run(["vgs", "--noheadings", "-o", "vg_name"]).stdout.split() == ["vg-sda"]
    assert known_nodes(access) == ("erdbeere", "himbeere")
    ports = peer_ports(access)
    assert ports is not None
    assert set(ports) == {"erdbeere", "himbeere"}
    with pytest.raises(SimStateError, match="brombeere"):
        make_host(access, "brombeere")
    with pytest.raises(SimStateError):
        make_host(NodeAccess.of(sim=tmp_path / "nothing"), "erdbeere")


def test_a_provider_that_is_not_installed_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(factory._PROVIDERS, "sim", raising=False)
    monkeypatch.setattr(factory, "PROVIDER_MODULES", {"sim": "reconciler.no_such_simulator.provider"})
    with pytest.raises(NoProvider, match=r"cannot reach a sim node \(reconciler.no_such_simulator.provider is not"):
        make_host(NodeAccess("sim", "/x"), "n1")


def test_a_provider_with_a_broken_import_is_not_mistaken_for_a_missing_one(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_provider.py").write_text("import no_such_dependency_of_the_provider\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(factory._PROVIDERS, "sim", raising=False)
    monkeypatch.setattr(factory, "PROVIDER_MODULES", {"sim": "broken_provider"})
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_of_the_provider"):
        make_host(NodeAccess("sim", "/x"), "n1")


def test_the_simulator_is_loaded_only_for_a_simulated_node(tmp_path: Path) -> None:
    """The provider registers itself when first needed: a replayed or real node never loads the simulator."""
    program = ("import sys\n"
               "from reconciler.cli.main import main\n"
               "code = main(sys.argv[1:])\n"
               "print(code, sorted(m for m in sys.modules if m.startswith('reconciler.sim')))\n")
    replay = subprocess.run([sys.executable, "-c", program, "observe", "--json", "--replay", str(CAPTURE)],
                            capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
    assert replay.stdout.splitlines()[-1] == "0 []", replay.stderr
    from reconciler.sim.state import SimCluster

    SimCluster.init(tmp_path / "sim", ["erdbeere"], {"vg-sda": 100 << 30})
    sim = subprocess.run([sys.executable, "-c", program, "observe", "--sim", str(tmp_path / "sim"), "--node",
                          "erdbeere"], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
    code, loaded = sim.stdout.splitlines()[-1].split(" ", 1)
    assert code == "0", sim.stderr
    assert "'reconciler.sim.provider'" in loaded

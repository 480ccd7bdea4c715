"""The Observer against the simulated node: the real command lines and parsers, the whole stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.host.capture import CapturingHost
from reconciler.host.replay import ReplayHost
from reconciler.observe.observer import MAX_COMMANDS_PER_PASS, Observer
from reconciler.sim import commands
from reconciler.sim.host import SimHost
from reconciler.sim.state import SimCluster

TIB = 1024**4
RES = """resource vm100 {
  protocol C;
  on erdbeere { device /dev/drbd0; disk /dev/mapper/root100; address 192.168.2.1:7788; meta-disk internal; }
  on himbeere { device /dev/drbd0; disk /dev/mapper/root100; address 192.168.2.2:7788; meta-disk internal; }
}
"""
STRIPE = "0 4194304 striped 2 128 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0\n"


def _ok(host: SimHost, *argv: str, stdin: str | None = None) -> None:
    result = host.run(argv, stdin=stdin)
    assert result.ok, result.describe()


def _vm100_cluster(directory: Path, drbd_version: str) -> SimHost:
    """Both nodes carry vm100 (two data LVs, a stripe, DRBD); erdbeere is primary."""
    SimCluster.init(directory, ["erdbeere", "himbeere"], {"vg-sda": TIB, "vg-sdb": TIB}, drbd_version=drbd_version)
    for node in ("erdbeere", "himbeere"):
        host = SimHost(directory, node)
        for vg in ("vg-sda", "vg-sdb"):
            _ok(host, "lvcreate", "--yes", "-n", "root100", "-L", "1g", vg)
        _ok(host, "lvcreate", "--yes", "-n", "swap100", "-L", "2g", "vg-sda")
        _ok(host, "dmsetup", "create", "root100", "--uuid", "RECONCILER-root100", stdin=STRIPE)
        host.write_file("/etc/drbd.d/vm100.res", RES)
        _ok(host, "drbdadm", "create-md", "--force", "vm100")
        _ok(host, "drbdadm", "up", "vm100")
    primary = SimHost(directory, "erdbeere")
    _ok(primary, "drbdadm", "primary", "--force", "vm100")
    return primary


@pytest.mark.slow
def test_commands_per_pass_stay_fixed_while_the_node_grows_to_500_lvs(tmp_path: Path) -> None:
    SimCluster.init(tmp_path, ["erdbeere"], {"vg-sda": TIB, "vg-sdb": TIB})
    host = SimHost(tmp_path, "erdbeere")
    observer = Observer(host)
    counts = []
    created = 0
    for target in (1, 10, 100, 500):
        # Setting up: the simulated lvcreate runs straight on the state, in one transaction, to spare
        # the per-command bookkeeping of the host; the observation below goes through the host as usual.
        with host.cluster.transaction() as state:
            while created < target:
                argv = ("lvcreate", "--yes", "-n", f"lv{created}", "-L", "4m", ("vg-sda", "vg-sdb")[created % 2])
                result = commands.dispatch(commands.CommandContext(state=state, node="erdbeere", argv=argv))
                assert result.ok, result.describe()
                created += 1
        observed = observer.observe()
        assert len(observed.logical_volumes) == target
        counts.append(observed.commands_run)
    assert counts[0] <= MAX_COMMANDS_PER_PASS
    assert len(set(counts)) == 1, f"commands per pass changed with the node's size: {counts}"


@pytest.mark.parametrize("drbd_version", ["9", "8.4"])
def test_whole_stack_is_observed_and_replays_identically(tmp_path: Path, drbd_version: str) -> None:
    host = _vm100_cluster(tmp_path / "cluster", drbd_version)
    observed = Observer(CapturingHost(host, tmp_path / "bundle")).observe()

    assert {t.name: t.state for t in observed.tools if t.name != "drbdadm"} == {
        "lvm": "available", "dmsetup": "available", "drbd": "available", "xl": "available", "files": "available"}
    assert observed.drbd.major == drbd_version
    assert observed.lv("vg-sda", "swap100").size_bytes == 2 * 1024**3  # type: ignore[union-attr]
    stripe = observed.dm("root100")
    assert stripe is not None
    assert stripe.uuid == "RECONCILER-root100"
    assert stripe.targets[0].target == "striped"
    resource = observed.drbd.resource("vm100")
    assert resource is not None
    assert resource.role == "Primary"
    assert resource.devices[0].minor == 0
    peer = resource.connections[0]
    assert peer.peer_name == "himbeere"
    assert peer.peer_role == "Secondary"
    assert observed.commands_run <= MAX_COMMANDS_PER_PASS

    assert Observer(ReplayHost(tmp_path / "bundle")).observe() == observed


def test_cli_observes_a_simulated_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _vm100_cluster(tmp_path, "9")
    assert main(["observe", "--json", "--sim", str(tmp_path), "--node", "himbeere"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["node"] == "himbeere"
    assert [(r["name"], r["role"]) for r in doc["drbd"]["resources"]] == [("vm100", "Secondary")]
    assert doc["drbd"]["resources"][0]["connections"][0]["peer_role"] == "Primary"
    assert main(["observe", "--sim", str(tmp_path), "--node", "himbeere"]) == 0
    assert "vm100     Secondary" in capsys.readouterr().out


def test_a_crashed_node_is_observed_as_failed_tools_not_an_exception(tmp_path: Path) -> None:
    host = _vm100_cluster(tmp_path, "9")
    with host.cluster.transaction() as state:
        state["nodes"]["erdbeere"]["up"] = False
    observed = Observer(host).observe()
    states = {t.name: t.state for t in observed.tools}
    assert states["lvm"] == states["dmsetup"] == states["xl"] == "failed"
    assert states["files"] == "failed"
    assert observed.logical_volumes == ()
    assert observed.drbd.resources == ()
    assert observed.domains == ()


def test_versions_are_asked_again_when_the_node_was_down_at_first(tmp_path: Path) -> None:
    host = _vm100_cluster(tmp_path, "9")
    with host.cluster.transaction() as state:
        state["nodes"]["erdbeere"]["up"] = False
    observer = Observer(host)
    down = observer.observe()
    assert down.tool("lvm").version is None  # type: ignore[union-attr]
    assert "node is down" in (down.tool("files").detail or "")  # type: ignore[union-attr]
    assert "Errno" not in (down.tool("files").detail or "")  # type: ignore[union-attr]
    with host.cluster.transaction() as state:
        state["nodes"]["erdbeere"]["up"] = True
    up = observer.observe()
    assert up.tool("lvm").state == "available"  # type: ignore[union-attr]
    assert up.tool("lvm").version is not None  # type: ignore[union-attr]
    assert observer.version_commands_run == 6
    observer.observe()
    assert observer.version_commands_run == 6, "answered once: not asked again"

"""Live migration on the simulator: two in-process daemons (the real engine on simulated nodes), a virtual clock
and the data oracle after every step (two Primaries only inside the window, never the domain on two nodes, no
acknowledged write lost, the allowance never left in force)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.sim import drbd_machine as machine
from reconciler.sim import faults, oracle, xen
from reconciler.sim.state import SimCluster
from tests.apply.simlab import GIB, NODES, SimLab, edit_vm
from tests.conftest import EXAMPLE_DIR
from tests.daemon.daemonpair import Pair

pytestmark = pytest.mark.timeout(300)

TRANSPORT = "ssh -o BatchMode=yes"
NET_OPTIONS = ["drbdadm", "net-options"]


def _desired(tmp_path: Path, drbd_version: str) -> Path:
    desired = tmp_path / "desired"
    shutil.copytree(EXAMPLE_DIR, desired)
    cluster = desired / "cluster.yaml"
    cluster.write_text(cluster.read_text().replace('drbd_version: "9"', f'drbd_version: "{drbd_version}"'))
    for vm in ("vm100", "vm101"):
        path = desired / "vms" / f"{vm}.yaml"
        path.write_text(path.read_text().replace("size: 100G", "size: 2G"))
    vm100 = desired / "vms" / "vm100.yaml"
    vm100.write_text(vm100.read_text().replace("live_migration: false", "live_migration: true"))
    return desired


def _converged(base: Path, drbd_version: str) -> None:
    SimCluster.init(base / "sim", list(NODES), dict.fromkeys(("vg-sda", "vg-sdb", "vg-sdc"), 400 * GIB),
                    drbd_version=drbd_version)
    pair = Pair(SimLab(base / "sim", desired_dir=_desired(base, drbd_version)), base, transport=TRANSPORT)
    for node in NODES:
        pair.start(node)
    for _ in range(40):
        pair.tick(60.0)
        if pair.running("erdbeere") == {"vm100"} and pair.running("himbeere") == {"vm101"} \
                and pair.disk("himbeere") == pair.disk("erdbeere") == "UpToDate" and _converged_both(pair):
            break
    assert pair.running("erdbeere") == {"vm100"}
    assert pair.disk("himbeere") == pair.disk("erdbeere") == "UpToDate"


def _converged_both(pair: Pair) -> bool:
    for node in NODES:
        status = pair.daemons[node].rec.status
        if status is None or status.last_pass is None or status.last_pass.outcome != "converged":
            return False
    return True


@pytest.fixture(scope="module", params=["9", "8.4"])
def converged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp(f"live-{request.param}")
    _converged(base, str(request.param))
    return base


def _copy(converged: Path, tmp_path: Path, transport: str = TRANSPORT) -> Pair:
    for name in ("sim", "desired", "state"):
        shutil.copytree(converged / name, tmp_path / name)
    pair = Pair(SimLab(tmp_path / "sim", desired_dir=tmp_path / "desired"), tmp_path, transport=transport)
    for node in NODES:
        pair.start(node)
    pair.tick()
    return pair


def _switch(pair: Pair, to: str = "himbeere") -> int:
    """Commit the move of vm100 to ``to``; returns the command log's position before it."""
    mark = len(pair.lab.log())
    edit_vm(pair.lab, "vm100", r"^primary: \w+", f"primary: {to}")
    pair.reload()
    return mark


def _ran(pair: Pair, mark: int, node: str | None = None) -> list[list[str]]:
    return [e["argv"] for e in pair.lab.log()[mark:] if e.get("mutating") and (node is None or e["node"] == node)]


def _allowed(pair: Pair, node: str, resource: str = "vm100") -> bool:
    res = machine.runtime(pair.state(), node, resource)
    return res is not None and machine.config_of(res).allow_two_primaries


def _migration(pair: Pair, node: str, vm: str = "vm100") -> tuple[str, str]:
    status = pair.daemons[node].rec.status
    assert status is not None
    found = next((m for m in status.migrations if m.vm == vm), None)
    return (found.phase, found.reason) if found is not None else ("", "")


def _ticks(pair: Pair, count: int, until: object = None) -> None:
    for _ in range(count):
        pair.tick()
        if callable(until) and until():
            return


def test_a_switchover_of_a_vm_that_allows_it_moves_the_running_domain_live(converged: Path, tmp_path: Path) -> None:
    pair = _copy(converged, tmp_path)
    started = pair.state()["nodes"]["erdbeere"]["domains"]["vm100"]["started"]
    mark = _switch(pair)
    _ticks(pair, 12, lambda: _migration(pair, "himbeere")[0] == "done" and _migration(pair, "erdbeere")[0] == "done")
    assert pair.running("himbeere") == {"vm100", "vm101"}
    assert pair.running("erdbeere") == set()
    assert (pair.role("himbeere"), pair.role("erdbeere")) == ("Primary", "Secondary")
    assert not _allowed(pair, "himbeere") and not _allowed(pair, "erdbeere")
    moved = pair.state()["nodes"]["himbeere"]["domains"]["vm100"]
    assert moved["started"] == started, "the domain was restarted, not migrated"
    assert moved["config_path"] == "/etc/xen/vm100.cfg"
    ran = _ran(pair, mark)
    assert not [a for a in ran if a[:2] in (["xl", "shutdown"], ["xl", "create"], ["xl", "destroy"])], ran
    migrate = [a for a in ran if a[:2] == ["xl", "migrate"]]
    assert migrate == [["xl", "migrate", "-s", TRANSPORT, "vm100", "himbeere"]]
    for node in NODES:
        windows = [a for a in _ran(pair, mark, node) if a[:2] == NET_OPTIONS]
        assert windows == [NET_OPTIONS + ["--allow-two-primaries=yes", "vm100"],
                           NET_OPTIONS + ["--allow-two-primaries=no", "vm100"]], (node, windows)
        assert _migration(pair, node)[0] == "done"
    assert oracle.check(pair.state()) == []
    assert oracle.summary(pair.state())["acknowledged"]["vm100"] > 0
    # Nothing more to do: both converge and a further pass runs nothing.
    _ticks(pair, 3)
    after = len(pair.lab.log())
    pair.tick()
    assert _ran(pair, after) == []

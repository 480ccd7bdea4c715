"""The takeover of a hand-built pair by two in-process daemons (`reconciler run`'s loop on each simulated node,
one virtual clock, peer status over the simulated management network): the article's commands, `reconciler
import` on both nodes, then the daemons. The only mutating commands are the ownership commands, DRBD never goes
down or disconnects, the domain is never stopped, and a growth commit afterwards works; the data oracle holds
after every step."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.apply.simlab import NODES, SimLab
from tests.apply.test_takeover import GIB, hand_built, import_both
from tests.daemon.daemonpair import Pair

pytestmark = pytest.mark.timeout(300)

DISRUPTIVE = (["drbdadm", "down"], ["drbdadm", "disconnect"], ["drbdadm", "create-md"], ["xl", "shutdown"],
              ["xl", "destroy"], ["xl", "create"])


def test_two_daemons_take_a_hand_built_pair_over_without_a_restart_and_then_grow_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory, out = hand_built(tmp_path, monkeypatch)
    assert "Disagreements between the nodes (0)" in import_both(directory, out)
    pair = Pair(SimLab(directory, desired_dir=out), tmp_path)
    before = pair.state()["nodes"]["erdbeere"]["domains"]["vm100"]
    mark = len(pair.lab.log())
    for node in NODES:
        pair.start(node)
    for _ in range(24):
        pair.tick()
        if all(pair.daemons[n].rec.status is not None and pair.daemons[n].rec.status.last_pass is not None
               and pair.daemons[n].rec.status.last_pass.outcome == "converged" for n in NODES):
            break
    for node in NODES:
        status = pair.daemons[node].rec.status
        assert status is not None
        assert status.last_pass is not None
        assert status.last_pass.outcome == "converged", (node, status.resources)
    mutating = [e["argv"] for e in pair.lab.log()[mark:] if e.get("mutating")]
    assert sorted({tuple(a[:2]) for a in mutating}) == [("dmsetup", "rename"), ("lvchange", "--addtag")], mutating
    assert sum(a[:2] == ["dmsetup", "rename"] for a in mutating) == 2
    after = pair.state()["nodes"]["erdbeere"]["domains"]["vm100"]
    assert (after["domid"], after["started"]) == (before["domid"], before["started"])
    assert pair.running("himbeere") == set()
    assert pair.role("erdbeere") == "Primary"

    # A growth commit now works as on any managed pair, still without a restart.
    vm_file = out / "vms" / "vm100.yaml"
    vm_file.write_text(vm_file.read_text().replace("size: 10G", "size: 12G"))
    pair.reload()
    for _ in range(60):
        pair.tick(60.0)
        table = pair.lab.host("himbeere").run(["dmsetup", "table", "root100"]).stdout.split()
        if table[1] == str(3 * 12 * GIB // 512) and pair.disk("himbeere") == "UpToDate":
            break
    for node in NODES:
        table = pair.lab.host(node).run(["dmsetup", "table", "root100"]).stdout.split()
        assert table[1] == str(3 * 12 * GIB // 512), node
    grown = pair.state()["nodes"]["erdbeere"]["domains"]["vm100"]
    assert (grown["domid"], grown["started"]) == (before["domid"], before["started"])
    ran = [e["argv"] for e in pair.lab.log()[mark:]]
    assert not [a for a in ran if any(a[:len(d)] == d for d in DISRUPTIVE)], "a disruptive command ran"

"""The lab's scenarios on real Xen 4.17, DRBD 8.4, device-mapper and LVM (docs/lab.md).

They run in order on one lab (each starts from the state the previous one left) and assert on what the
real kernels show; every wait polls an observed condition with a generous deadline.
"""

from __future__ import annotations

import threading
import time

import pytest

from reconciler_lab.desired import cluster_yaml, vm_yaml
from reconciler_lab.lab import Lab, Node, capture, wait_until
from reconciler_lab.proc import LabError
from tests.lab.observe import (
    Replica,
    commands,
    domains,
    helper_exits,
    legs,
    lv_devices,
    passes,
    replica,
)

CONVERGE = 1800.0     # from empty disks: LVs, create-md, full sync of 384 MiB, mkfs.xfs, a domU boot, on TCG
MOVE = 1200.0
VM = "vm100"

# Commands that only read: anything else in a no-op pass's command log is a mutation.
READ_ONLY = {
    "lvs": None, "vgs": None, "pvs": None, "blkid": None, "lvm": {"version"},
    "dmsetup": {"info", "table", "ls", "status", "deps", "version"},
    "xl": {"list", "info"},
    "drbdadm": {"--version", "dump", "sh-resources", "sh-ll-dev", "show-gi", "dstate", "cstate", "role"},
    "drbdsetup": {"events2", "status", "show"},
}


def _read_only(argv: list[str]) -> bool:
    tool = argv[0].rsplit("/", 1)[-1]
    if tool not in READ_ONLY:
        return False
    verbs = READ_ONLY[tool]
    return verbs is None or any(a in verbs for a in argv[1:3])


def _running(node: Node) -> bool:
    out = node.check(["xl", "list"], timeout=120)
    for line in out.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == VM:
            return "r" in fields[4] or "b" in fields[4]
    return False


def _converged(node: Node) -> bool:
    ends = passes(node)
    return bool(ends) and "result=converged" in ends[-1]


class Sampler:
    """Samples both nodes' DRBD roles and domains until stopped; records every sample that breaks the rules."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.samples = 0
        self.violations: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=300)

    def _loop(self) -> None:
        while not self._stop.is_set():
            seen: dict[str, tuple[Replica | None, set[str]]] = {}
            for node in self.lab.nodes.values():
                if not node.qemu.running():
                    continue
                try:
                    seen[node.name] = (replica(node), domains(node))
                except LabError:
                    continue
            primaries = [n for n, (r, _) in seen.items() if r is not None and r.role == "Primary"]
            both_views = [n for n, (r, _) in seen.items() if r is not None and r.role == r.peer_role == "Primary"]
            hosting = [n for n, (_, d) in seen.items() if VM in d]
            if len(primaries) > 1 or both_views:
                self.violations.append(f"two Primaries: {seen}")
            if len(hosting) > 1:
                self.violations.append(f"{VM} on both nodes: {seen}")
            self.samples += 1
            self._stop.wait(1.0)


@pytest.mark.timeout(3600)
def test_1_bring_up(lab: Lab) -> None:
    started = time.monotonic()
    erdbeere, himbeere = lab.node("erdbeere"), lab.node("himbeere")

    def converged() -> bool:
        mine = replica(erdbeere)
        return (mine == Replica("Connected", "Primary", "Secondary", "UpToDate", "UpToDate")
                and replica(himbeere) == Replica("Connected", "Secondary", "Primary", "UpToDate", "UpToDate")
                and _running(erdbeere) and _converged(erdbeere) and _converged(himbeere))

    wait_until("bring-up to converge on both nodes", converged, CONVERGE, poll=5.0)
    lab.timings["scenario 1 (bring-up)"] = time.monotonic() - started
    assert VM not in domains(himbeere)
    for node in (erdbeere, himbeere):
        vgs = lv_devices(node)
        assert legs(node) == [vgs["vg-sda"], vgs["vg-sdb"], vgs["vg-sdc"]], f"{node.name}: legs are not the data LVs"
    mkfs = [(n.name, c["argv"]) for n in (erdbeere, himbeere) for c in commands(n) if c["argv"][0] == "mkfs.xfs"]
    assert len(mkfs) == 1, f"XFS must be made exactly once: {mkfs}"
    assert mkfs[0][0] == "erdbeere", f"XFS must be made on the primary: {mkfs}"
    # The domU really uses the replicated XFS.
    wait_until("the domU to mount its disk", lambda: "lab-domu: data mounted" in erdbeere.check(
        ["cat", f"/var/log/xen/console/guest-{VM}.log"]), 600, poll=5.0)
    capture(erdbeere, "converged")
    capture(himbeere, "converged")


@pytest.mark.timeout(1800)
def test_2_no_op_pass(lab: Lab) -> None:
    started = time.monotonic()
    before = {n.name: (len(commands(n)), len(passes(n))) for n in lab.nodes.values()}
    for node in lab.nodes.values():
        node.check(["reconciler", "reconcile-now"], timeout=120)
    for node in lab.nodes.values():
        wait_until(f"{node.name} to finish two passes", lambda n=node: len(passes(n)) >= before[n.name][1] + 2,
                   600, poll=3.0)
    for node in lab.nodes.values():
        new_passes = passes(node)[before[node.name][1]:]
        assert all("result=converged" in p and "actions=0" in p for p in new_passes), new_passes
        new = commands(node)[before[node.name][0]:]
        assert new, f"{node.name}: no command logged during two passes: the log proves nothing"
        mutating = [c["argv"] for c in new if not _read_only(list(c["argv"]))]  # type: ignore[arg-type]
        assert not mutating, f"{node.name}: a no-op pass ran mutating commands: {mutating}"
    lab.timings["scenario 2 (no-op)"] = time.monotonic() - started


@pytest.mark.timeout(2400)
def test_4_planned_switchover(lab: Lab) -> None:
    started = time.monotonic()
    erdbeere, himbeere = lab.node("erdbeere"), lab.node("himbeere")
    lab.repo.write(cluster_yaml(), vm_yaml(primary="himbeere"))
    lab.repo.commit("lab: move vm100 to himbeere")
    with Sampler(lab) as sampler:
        def moved() -> bool:
            return (replica(himbeere) == Replica("Connected", "Primary", "Secondary", "UpToDate", "UpToDate")
                    and _running(himbeere) and VM not in domains(erdbeere) and _converged(himbeere)
                    and _converged(erdbeere))

        wait_until("vm100 to move to himbeere", moved, MOVE, poll=5.0)
    assert sampler.samples > 5, "too few samples to show anything"
    assert not sampler.violations, "\n".join(sampler.violations[:5])
    lab.timings["scenario 4 (switchover)"] = time.monotonic() - started


@pytest.mark.timeout(3600)
def test_5_power_loss_of_the_primary(lab: Lab) -> None:
    started = time.monotonic()
    erdbeere, himbeere = lab.node("erdbeere"), lab.node("himbeere")
    was = replica(himbeere)
    assert was is not None
    assert was.role == "Primary"
    passes_before = len(passes(erdbeere))
    logged_before = len(commands(himbeere))
    himbeere.power_off()

    # The survivor notices and runs passes; it is not the designated primary, so nothing changes yet.
    wait_until("erdbeere to lose its peer", lambda: (r := replica(erdbeere)) is not None and r.cs != "Connected",
               600, poll=3.0)
    lost = len(passes(erdbeere))
    wait_until("two passes on erdbeere after the loss", lambda: len(passes(erdbeere)) >= max(lost, passes_before) + 2,
               600, poll=3.0)
    capture(erdbeere, "peer-lost")

    # The documented failover (docs/operations.md): the dead node is powered off; record the decision in git.
    lab.repo.write(cluster_yaml(), vm_yaml(primary="erdbeere"))
    lab.repo.commit("lab: failover of vm100 to erdbeere (himbeere lost power)")
    head = lab.repo.git("rev-parse", "--short=12", "HEAD").strip()
    wait_until("erdbeere to apply the failover revision", lambda: head in erdbeere.check(
        ["reconciler", "status"], timeout=120), 600, poll=3.0)
    seen = len(passes(erdbeere))
    wait_until("two passes on the failover revision", lambda: len(passes(erdbeere)) >= seen + 2, 600, poll=3.0)
    # Unreachable proves nothing: the daemon alone must not promote.
    mine = replica(erdbeere)
    assert mine is not None
    assert mine.role == "Secondary", f"erdbeere promoted without proof: {mine}"
    assert VM not in domains(erdbeere)
    status = erdbeere.check(["reconciler", "status"], timeout=120)
    assert "cannot prove the peer is not writing" in status, status
    # Step 1 of the runbook made sure the peer cannot write (its power is off). The operator's promotion runs
    # DRBD's fence-peer handler, which cannot reach the peer (exit 5); DRBD then marks the peer Outdated,
    # which is the proof the daemon waits for: it starts the domain.
    erdbeere.check(["drbdadm", "primary", "vm100"], timeout=300)
    wait_until("vm100 to run on erdbeere", lambda: _running(erdbeere), MOVE, poll=5.0)
    assert 5 in helper_exits(erdbeere), f"fence-peer exit codes on erdbeere: {helper_exits(erdbeere)}"

    # The dead node boots again: Secondary, resyncs, never starts the domain.
    with Sampler(lab) as sampler:
        himbeere.boot(fresh=False)

        def back() -> bool:
            return (replica(erdbeere) == Replica("Connected", "Primary", "Secondary", "UpToDate", "UpToDate")
                    and _converged(himbeere))

        wait_until("himbeere to return as an UpToDate Secondary", back, MOVE, poll=5.0)
    assert not sampler.violations, "\n".join(sampler.violations[:5])
    assert VM not in domains(himbeere)
    after_return = [c["argv"] for c in commands(himbeere)[logged_before:]]
    assert not [a for a in after_return if a[:2] == ["xl", "create"] or a[:2] == ["drbdadm", "primary"]], after_return
    lab.timings["scenario 5 (power loss)"] = time.monotonic() - started

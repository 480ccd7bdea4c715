"""The lab's scenarios on real Xen 4.17, DRBD 8.4, device-mapper and LVM (docs/lab.md).

They run in order on one lab (each starts from the state the previous one left) and assert on what the
real kernels show; every wait polls an observed condition with a generous deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import threading
import time
from typing import Any

import pytest

from reconciler import __version__
from reconciler_lab import package, paths, rootimage
from reconciler_lab.desired import PROVISIONED_ID, VM_ID, cluster_yaml, provisioned_vm_yaml, vm_yaml
from reconciler_lab.lab import Lab, Node, capture, start_daemon, wait_until
from reconciler_lab.proc import LabError
from tests.lab.observe import (
    Replica,
    commands,
    dm_bytes,
    domain_id,
    domain_states,
    domains,
    drbd_bytes,
    helper_exits,
    kernel_log,
    legs,
    lv_bytes,
    lv_devices,
    metrics,
    passes,
    records_acknowledged,
    records_held,
    replica,
    running_state,
)

CONVERGE = 1800.0     # from empty disks: LVs, create-md, full sync of 384 MiB, mkfs.xfs, a domU boot, on TCG
MOVE = 1200.0
_INCIDENT = re.compile(r"incident (sb-[0-9a-f]{12})")
VM = "vm100"
MIB = 1024 * 1024
GROWN_LV = 160 * MIB
SYNCED = ("Connected", "UpToDate", "UpToDate")

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


def _size(lab: Lab) -> str:
    """The data LVs' size in the desired state now (a later commit must not ask for a shrink)."""
    text = (lab.repo.path / "vms" / f"{VM}.yaml").read_text()
    found = re.search(r"^storage:\n(?:  .*\n)*?  size: (\S+)$", text, re.M)
    assert found, text
    return found.group(1)


def _roles(lab: Lab) -> tuple[Node, Node]:
    """(the node where DRBD is Primary, the other one), from what DRBD shows."""
    for node in lab.nodes.values():
        mine = replica(node)
        if mine is not None and mine.role == "Primary":
            other = next(n for n in lab.nodes.values() if n is not node)
            return node, other
    raise AssertionError(f"no Primary: {[replica(n) for n in lab.nodes.values()]}")


def _synced(node: Node, role: str) -> bool:
    mine = replica(node)
    return mine is not None and (mine.cs, mine.disk, mine.peer_disk) == SYNCED and mine.role == role


def _settled(primary: Node, secondary: Node) -> bool:
    """Connected, UpToDate on both sides, the domU on the primary only, and both daemons converged."""
    return (_synced(primary, "Primary") and _synced(secondary, "Secondary") and _running(primary)
            and VM not in domains(secondary) and _converged(primary) and _converged(secondary))


def _passes_after(node: Node, count: int, what: str, deadline: float = 600.0) -> None:
    seen = len(passes(node))
    wait_until(f"{count} passes on {node.name} {what}", lambda: len(passes(node)) >= seen + count, deadline,
               poll=3.0)


def _verify_records(lab: Lab, before: Node, after: Node, boots_seen: int, event: str) -> None:
    """The write verifier: the first boot of the domU on ``after`` since ``boots_seen`` of its boots there must
    find on its disk every record the domU announced as durable while it ran on ``before``. Protocol C
    acknowledges a write once both disks have it, so nothing announced may be missing, whatever ended the
    domU on ``before`` (a shutdown, a power loss)."""
    acked = records_acknowledged(before)
    assert acked > 0, f"the domU on {before.name} announced no durable record: the check would prove nothing"
    counts = wait_until(f"the domU on {after.name} to count the records on its disk",
                        lambda: records_held(after)[boots_seen:] or None, MOVE, poll=5.0)
    assert counts[0] >= acked, (f"{event}: the domU on {after.name} found records 1..{counts[0]} on its disk, but "
                                f"it had announced up to {acked} as durable on {before.name}")
    lab.figures["write checks"] = lab.figures.get("write checks", 0) + 1
    lab.figures["records verified"] = max(lab.figures.get("records verified", 0), acked)
    lab.notes.append(f"write verifier, {event}: {before.name} announced records up to {acked}; the domU on "
                     f"{after.name} found 1..{counts[0]}")


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

    def verify(self) -> None:
        """Enough samples to show something, and none broke the rules."""
        assert self.samples > 5, f"too few samples to show anything ({self.samples})"
        assert not self.violations, "\n".join(self.violations[:5])

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


def _grown_everywhere(lab: Lab, leg_bytes: int, primary: Node, secondary: Node) -> bool:
    """Every node's three legs at ``leg_bytes``, its stripe over all three, its DRBD device grown into it, and
    the pair settled."""
    backing = 3 * leg_bytes
    for node in lab.nodes.values():
        if set(lv_bytes(node).values()) != {leg_bytes} or dm_bytes(node) != backing:
            return False
        # DRBD keeps its internal metadata (activity log, bitmap) at the end of the backing device.
        if not backing - 4 * MIB < drbd_bytes(node) < backing:
            return False
    return _settled(primary, secondary)


@pytest.mark.timeout(2400)
def test_3_growth_by_commit(lab: Lab) -> None:
    started = time.monotonic()
    primary, secondary = _roles(lab)
    domid = domain_id(primary, VM)
    assert domid is not None
    marks = {n.name: len(commands(n)) for n in lab.nodes.values()}
    before = drbd_bytes(primary)
    lab.repo.write(cluster_yaml(), vm_yaml(primary=primary.name, size=f"{GROWN_LV // MIB}M"))
    lab.repo.commit("lab: grow vm100's three legs to 160M")

    def grown() -> bool:
        return _grown_everywhere(lab, GROWN_LV, primary, secondary)

    wait_until("vm100 to grow on both nodes and settle", grown, MOVE, poll=5.0)
    assert drbd_bytes(primary) == drbd_bytes(secondary)
    assert drbd_bytes(primary) > before + 3 * 30 * MIB, (before, drbd_bytes(primary))
    ran = {n.name: [c["argv"] for c in commands(n)[marks[n.name]:]] for n in lab.nodes.values()}
    resizes = [(name, a) for name, argvs in ran.items() for a in argvs if a[:2] == ["drbdadm", "resize"]]
    assert resizes == [(primary.name, ["drbdadm", "resize", VM])], f"drbdadm resize must run once: {resizes}"
    for name, argvs in ran.items():
        assert sum(a[0] == "lvextend" for a in argvs) == 3, f"{name}: {argvs}"
        assert ["dmsetup", "resume", "root100"] in argvs, f"{name}: the stripe was not reloaded: {argvs}"
    assert domain_id(primary, VM) == domid, "the domU was restarted by a growth"
    lab.timings["scenario 3 (growth)"] = time.monotonic() - started


@pytest.mark.timeout(2400)
def test_4_planned_switchover(lab: Lab) -> None:
    started = time.monotonic()
    erdbeere, himbeere = lab.node("erdbeere"), lab.node("himbeere")
    boots_seen = len(records_held(himbeere))
    lab.repo.write(cluster_yaml(), vm_yaml(primary="himbeere", size=_size(lab)))
    lab.repo.commit("lab: move vm100 to himbeere")
    with Sampler(lab) as sampler:
        def moved() -> bool:
            return (replica(himbeere) == Replica("Connected", "Primary", "Secondary", "UpToDate", "UpToDate")
                    and _running(himbeere) and VM not in domains(erdbeere) and _converged(himbeere)
                    and _converged(erdbeere))

        wait_until("vm100 to move to himbeere", moved, MOVE, poll=5.0)
    sampler.verify()
    _verify_records(lab, erdbeere, himbeere, boots_seen, "switchover")
    lab.timings["scenario 4 (switchover)"] = time.monotonic() - started


@pytest.mark.timeout(2400)
def test_6_replication_link_cut(lab: Lab) -> None:
    started = time.monotonic()
    primary, secondary = _roles(lab)
    exits_before = {n.name: len(helper_exits(n)) for n in lab.nodes.values()}
    with Sampler(lab) as sampler:
        primary.set_link("rep", up=False)
        try:
            wait_until("both nodes to notice the cut", lambda: all(
                (r := replica(n)) is not None and r.cs != "Connected" for n in lab.nodes.values()), 600, poll=3.0)
            # The primary's DRBD runs fence-peer; the handler asks the peer over the management link.
            wait_until("the primary's fence-peer handler to finish",
                       lambda: len(helper_exits(primary)) > exits_before[primary.name], 600, poll=3.0)
            wait_until("the secondary's disk to be Outdated",
                       lambda: (r := replica(secondary)) is not None and r.disk == "Outdated", 300, poll=3.0)
            _passes_after(secondary, 2, "during the cut")
            _passes_after(primary, 2, "during the cut")
            assert replica(secondary) == Replica("WFConnection", "Secondary", "Unknown", "Outdated", "DUnknown")
            mine = replica(primary)
            assert mine is not None
            assert (mine.role, mine.disk) == ("Primary", "UpToDate"), mine
            assert _running(primary)
            assert VM not in domains(secondary)
            assert "degraded" in passes(primary)[-1], passes(primary)[-1]
            capture(primary, "link-cut")
            capture(secondary, "link-cut")
        finally:
            primary.set_link("rep", up=True)
        wait_until("the replica to reconnect, resync and settle", lambda: _settled(primary, secondary), MOVE,
                   poll=5.0)
    sampler.verify()
    exits = {n.name: helper_exits(n)[exits_before[n.name]:] for n in lab.nodes.values()}
    # 5 ("unreachable") or 7 would let DRBD treat a live peer as dead; 4 is the peer's own confirmation.
    assert exits[primary.name], f"fence-peer exit codes: {exits}"
    assert set(exits[primary.name]) <= {3, 4}, f"fence-peer exit codes: {exits}"
    assert not {5, 7} & set(exits[secondary.name]), f"fence-peer exit codes: {exits}"
    for node in lab.nodes.values():
        assert "Split-Brain detected" not in kernel_log(node), f"{node.name}: split brain after a link cut"
    lab.timings["scenario 6 (link cut)"] = time.monotonic() - started


@pytest.mark.timeout(3600)
def test_7_clean_reboot_of_the_primary(lab: Lab) -> None:
    started = time.monotonic()
    primary, secondary = _roles(lab)
    marks = {n.name: len(commands(n)) for n in lab.nodes.values()}
    with Sampler(lab) as sampler:
        report = primary.clean_shutdown()
        wait_until("the secondary to lose its peer", lambda: (r := replica(secondary)) is not None
                   and r.cs != "Connected", 600, poll=3.0)
        _passes_after(secondary, 2, "with its peer down")
        # The designated primary left cleanly (a Secondary that went away): nothing moves to the other node.
        mine = replica(secondary)
        assert mine is not None
        assert (mine.role, mine.disk) == ("Secondary", "UpToDate"), mine
        assert VM not in domains(secondary)
        primary.boot(fresh=False)
        wait_until("the rebooted primary to run vm100 again and both to settle",
                   lambda: _settled(primary, secondary), MOVE, poll=5.0)
    sampler.verify()
    ran = [c["argv"] for c in commands(primary)[marks[primary.name]:]]
    assert any(a[:3] == ["dmsetup", "create", "root100"] for a in ran), f"stripe not rebuilt: {ran}"
    assert not [a for a in ran if a[0] in ("lvcreate", "mkfs.xfs", "mkswap", "wipefs")
                or (a[0] == "drbdadm" and "create-md" in a)], f"rebuilt over existing data: {ran}"
    assert ["xl", "create", f"/etc/xen/{VM}.cfg"] in ran, ran
    assert not [c for c in commands(secondary)[marks[secondary.name]:] if c["argv"][:2] in (
        ["xl", "create"], ["drbdadm", "primary"])], "the secondary took over although the primary left cleanly"
    vgs = lv_devices(primary)
    assert legs(primary) == [vgs["vg-sda"], vgs["vg-sdb"], vgs["vg-sdc"]]
    lab.notes.append(f"clean shutdown of {primary.name}: {report.strip()[:300]}")
    lab.timings["scenario 7 (clean reboot)"] = time.monotonic() - started


def _refused(node: Node, phrase: str) -> bool:
    return phrase in node.check(["reconciler", "status"], timeout=120)


def _all_read_only(node: Node, since: int) -> list[list[str]]:
    """The mutating commands among those logged since ``since`` (an empty list is the point)."""
    return [list(c["argv"]) for c in commands(node)[since:] if not _read_only(list(c["argv"]))]  # type: ignore[arg-type]


@pytest.mark.timeout(3600)
def test_9_destructive_changes_are_refused(lab: Lab) -> None:
    """The classes the independent checks found on the simulator, on real kernels: each is refused with its
    reason, runs nothing that writes, and leaves the running VM and any data alone."""
    started = time.monotonic()
    primary, secondary = _roles(lab)
    domid = domain_id(primary, VM)
    original = vm_yaml(primary=primary.name, size=_size(lab))

    def refused_everywhere(what: str, phrase: str, marks: dict[str, int]) -> None:
        wait_until(f"both nodes to refuse {what}", lambda: all(_refused(n, phrase) for n in lab.nodes.values()),
                   600, poll=5.0)
        for node in lab.nodes.values():
            _passes_after(node, 2, f"refusing {what}")
            assert not _all_read_only(node, marks[node.name]), f"{node.name} wrote while refusing {what}"
        assert domain_id(primary, VM) == domid, f"the running domU was touched while refusing {what}"
        assert _synced(primary, "Primary")
        assert _synced(secondary, "Secondary")

    def restore(message: str) -> None:
        lab.repo.write(cluster_yaml(), original)
        lab.repo.commit(message)
        wait_until("both nodes to settle again", lambda: _settled(primary, secondary), MOVE, poll=5.0)

    # (a) A layout change of an existing VM: its DRBD backing device would become another device.
    marks = {n.name: len(commands(n)) for n in lab.nodes.values()}
    striped = "layout: dm-striped\n  volume_groups: [vg-sda, vg-sdb, vg-sdc]\n"
    assert striped in original
    lab.repo.write(cluster_yaml(), original.replace(striped, "layout: lvm-striped\n  volume_groups: [vg-sda]\n", 1))
    lab.repo.commit("lab: vm100 on an LVM-striped volume instead of the dm stripe")
    refused_everywhere("a layout change", "would change", marks)
    restore("lab: vm100 back on its dm stripe")

    # (b) A new id that keeps the live minor and port: never a second resource on minor 0.
    marks = {n.name: len(commands(n)) for n in lab.nodes.values()}
    renamed = original.replace(f"id: {VM_ID}", "id: 101")
    lab.repo.remove_vm(VM)
    lab.repo.write_vm("vm101", renamed)
    lab.repo.commit("lab: vm100 renamed to vm101, same minor and port")
    refused_everywhere("an id change on the live minor", "DRBD minor 0 (/dev/drbd0) is held by resource vm100",
                       marks)
    for node in lab.nodes.values():
        assert "vm101" not in node.check(["cat", "/proc/drbd"], timeout=60)
        assert "vm101" not in domains(node)
    lab.repo.remove_vm("vm101")
    restore("lab: vm101 back to vm100")

    # (c) LVs under a new VM's names, made by hand, one leg carrying a filesystem.
    for node in lab.nodes.values():
        for vg in ("vg-sda", "vg-sdb", "vg-sdc"):
            node.check(["lvcreate", "-q", "-y", "-L", "128M", "-n", "root102", vg], timeout=300)
        node.check(["mkfs.ext4", "-q", "-F", "/dev/vg-sdb/root102"], timeout=300)
    marks = {n.name: len(commands(n)) for n in lab.nodes.values()}
    new_vm = original.replace(f"id: {VM_ID}", "id: 102").replace("minor: 0, port: 7788", "minor: 2, port: 7790")
    lab.repo.write_vm("vm102", new_vm)
    lab.repo.commit("lab: a new vm102 over LVs someone made by hand")
    refused_everywhere("LVs the project did not create", "LV vg-sda/root102 already exists and was not created",
                       marks)
    # The operator takes them over by tagging them; the leg's filesystem must still stop create-md and mkfs.
    marks = {n.name: len(commands(n)) for n in lab.nodes.values()}
    for node in lab.nodes.values():
        for vg in ("vg-sda", "vg-sdb", "vg-sdc"):
            node.check(["lvchange", "-q", "--addtag", "reconciler", f"{vg}/root102"], timeout=300)
    wait_until("both nodes to refuse metadata over the leg's filesystem", lambda: all(
        _refused(n, "/dev/vg-sdb/root102") for n in lab.nodes.values()), 600, poll=5.0)
    for node in lab.nodes.values():
        # A refused step fails the pass, and failed passes back off (up to 300 s plus jitter): wait for one.
        _passes_after(node, 1, "refusing create-md over a filesystem", deadline=900.0)
        ran = [list(c["argv"]) for c in commands(node)[marks[node.name]:]]
        assert not [a for a in ran if a[0] in ("mkfs.xfs", "wipefs") or (a[0] == "drbdadm" and "create-md" in a)
                    or (a[0] == "lvcreate" and "root102" in a)], f"{node.name}: {ran}"
        assert "ext4" in node.check(["blkid", "-p", "-o", "value", "-s", "TYPE", "/dev/vg-sdb/root102"],
                                    timeout=120), f"{node.name}: the leg's filesystem is gone"
        assert "vm102" not in domains(node)
    # Withdrawn the documented way: the reconciler removes only what carries the project's marks.
    lab.repo.write_vm("vm102", new_vm.replace("id: 102", "id: 102\nlifecycle: deleted\nconfirm_delete: vm102"))
    lab.repo.commit("lab: vm102 deleted")
    wait_until("vm102's devices to be gone on both nodes", lambda: all(
        not lv_bytes(n, "root102") and not lv_bytes(n, "swap102") for n in lab.nodes.values()), MOVE, poll=5.0)
    wait_until("both nodes to settle again", lambda: _settled(primary, secondary), MOVE, poll=5.0)
    lab.timings["scenario 9 (destructive changes)"] = time.monotonic() - started


@pytest.mark.timeout(3600)
def test_5_power_loss_of_the_primary(lab: Lab) -> None:
    started = time.monotonic()
    dead, survivor = _roles(lab)
    passes_before = len(passes(survivor))
    logged_before = len(commands(dead))
    boots_seen = len(records_held(survivor))
    dead.power_off()

    # The survivor notices and runs passes; it is not the designated primary, so nothing changes yet.
    wait_until(f"{survivor.name} to lose its peer",
               lambda: (r := replica(survivor)) is not None and r.cs != "Connected", 600, poll=3.0)
    lost = len(passes(survivor))
    wait_until(f"two passes on {survivor.name} after the loss",
               lambda: len(passes(survivor)) >= max(lost, passes_before) + 2, 600, poll=3.0)
    capture(survivor, "peer-lost")

    # The documented failover (docs/operations.md): the dead node is powered off; record the decision in git.
    lab.repo.write(cluster_yaml(), vm_yaml(primary=survivor.name, size=_size(lab)))
    lab.repo.commit(f"lab: failover of vm100 to {survivor.name} ({dead.name} lost power)")
    head = lab.repo.git("rev-parse", "--short=12", "HEAD").strip()
    wait_until(f"{survivor.name} to apply the failover revision", lambda: head in survivor.check(
        ["reconciler", "status"], timeout=120), 600, poll=3.0)
    seen = len(passes(survivor))
    wait_until("two passes on the failover revision", lambda: len(passes(survivor)) >= seen + 2, 600, poll=3.0)
    # Unreachable proves nothing: the daemon alone must not promote.
    mine = replica(survivor)
    assert mine is not None
    assert mine.role == "Secondary", f"{survivor.name} promoted without proof: {mine}"
    assert VM not in domains(survivor)
    status = survivor.check(["reconciler", "status"], timeout=120)
    assert "cannot prove the peer is not writing" in status, status
    # The operator's promotion runs DRBD's fence-peer handler. It cannot reach the peer's daemon, which proves
    # nothing; under resource-and-stonith it powers the peer off with the lab's power switch (the node is off
    # already: the switch says so) and exits 7 only after the status query says off. DRBD then marks the peer
    # Outdated, which is the proof the daemon waits for: it starts the domain.
    asked = len(survivor.fence_relay.handled)
    survivor.check(["drbdadm", "primary", "vm100"], timeout=300)
    wait_until(f"vm100 to run on {survivor.name}", lambda: _running(survivor), MOVE, poll=5.0)
    _verify_records(lab, dead, survivor, boots_seen, f"power loss of {dead.name}, failover by commit")
    lab.figures["power losses"] = lab.figures.get("power losses", 0) + 1
    exits = helper_exits(survivor)
    assert 7 in exits, f"fence-peer exit codes on {survivor.name}: {exits}"
    assert 5 not in exits, f"fence-peer exit codes on {survivor.name}: {exits}"
    switched = [(h["action"], h["target"], h.get("power")) for h in survivor.fence_relay.handled[asked:]]
    assert ("status", dead.name, "OFF") in switched, switched
    record = json.loads(survivor.check(["cat", f"/var/lib/reconciler/power-fence/{dead.name}.json"], timeout=60))
    assert (record["outcome"], record["by"], record["resource"]) == ("off", survivor.name, VM), record
    exported = f'reconciler_power_fence_last_outcome{{outcome="off",peer="{dead.name}"}} 1.0'
    wait_until("the power fence in the survivor's metrics", lambda: exported in metrics(survivor), 300, poll=5.0)

    # The dead node boots again: Secondary, resyncs, never starts the domain.
    with Sampler(lab) as sampler:
        dead.boot(fresh=False)

        def back() -> bool:
            return (replica(survivor) == Replica("Connected", "Primary", "Secondary", "UpToDate", "UpToDate")
                    and _converged(dead))

        wait_until(f"{dead.name} to return as an UpToDate Secondary", back, MOVE, poll=5.0)
    sampler.verify()
    assert VM not in domains(dead)
    after_return = [c["argv"] for c in commands(dead)[logged_before:]]
    assert not [a for a in after_return if a[:2] == ["xl", "create"] or a[:2] == ["drbdadm", "primary"]], after_return
    lab.timings["scenario 5 (power loss)"] = time.monotonic() - started


@pytest.mark.timeout(3600)
def test_11_full_partition_with_power_fences(lab: Lab) -> None:
    """Both links of the primary cut under resource-and-stonith: its fence-peer handler cannot reach the other
    node's daemon, powers that node off with the lab's switch and answers 7 once the switch says off; the
    primary's frozen I/O resumes and the domU runs on. The other node never fences (it would wait its delay
    and only when promoted), and when it boots again it rejoins as Secondary."""
    started = time.monotonic()
    primary, secondary = _roles(lab)
    exits_before = len(helper_exits(primary))
    asked = len(primary.fence_relay.handled)
    marks = {n.name: len(commands(n)) for n in lab.nodes.values()}
    with Sampler(lab) as sampler:
        for link in ("rep", "mgmt"):
            primary.set_link(link, up=False)
        try:
            wait_until(f"{primary.name}'s power fence to power {secondary.name} off",
                       lambda: not secondary.qemu.running(), 600, poll=3.0)
            wait_until("the primary's fence-peer handler to finish",
                       lambda: len(helper_exits(primary)) > exits_before, 600, poll=3.0)
            exits = helper_exits(primary)[exits_before:]
            assert exits == [7], f"fence-peer exit codes on {primary.name}: {exits}"
            switched = [(h["action"], h["target"], h.get("power")) for h in primary.fence_relay.handled[asked:]]
            assert switched[0] == ("off", secondary.name, "OFF"), switched
            assert ("status", secondary.name, "OFF") in switched, switched
            assert not secondary.fence_relay.handled, "the node without the VM fenced too"
            mine = replica(primary)
            assert mine is not None
            assert (mine.role, mine.disk, mine.peer_disk) == ("Primary", "UpToDate", "Outdated"), mine
            assert _running(primary)
            # I/O resumed: the domU's disk takes a write through DRBD (it would hang while frozen).
            primary.check(["dd", "if=/dev/drbd0", "of=/dev/null", "bs=4096", "count=1", "iflag=direct"],
                          timeout=120)
            record = json.loads(primary.check(["cat", f"/var/lib/reconciler/power-fence/{secondary.name}.json"],
                                              timeout=60))
            assert (record["outcome"], record["by"]) == ("off", primary.name), record
        finally:
            for link in ("rep", "mgmt"):
                primary.set_link(link, up=True)
        secondary.boot(fresh=False)
        wait_until(f"{secondary.name} to return as an UpToDate Secondary and both to settle",
                   lambda: _settled(primary, secondary), MOVE, poll=5.0)
    sampler.verify()
    assert not [c["argv"] for c in commands(secondary)[marks[secondary.name]:]
                if c["argv"][:2] in (["xl", "create"], ["drbdadm", "primary"])]
    lab.timings["scenario 11 (full partition, power fence)"] = time.monotonic() - started


@pytest.mark.timeout(3600)
def test_8_split_brain_made_by_hand(lab: Lab) -> None:
    started = time.monotonic()
    primary, secondary = _roles(lab)
    # A cluster without a power fence (resource-only): with one, the primary's handler would power the other
    # node off when the partition starts, and there would be nothing left to promote by mistake.
    lab.repo.write(cluster_yaml(power_fence=False), vm_yaml(primary=primary.name, size=_size(lab)))
    lab.repo.commit("lab: fencing without a power fence (resource-only)")
    head = lab.repo.git("rev-parse", "--short=12", "HEAD").strip()
    wait_until("both nodes to take the revision without a power fence", lambda: all(
        head in n.check(["reconciler", "status"], timeout=120) for n in lab.nodes.values()), 600, poll=3.0)
    wait_until("both nodes to settle on it", lambda: _settled(primary, secondary), MOVE, poll=5.0)
    assert all("resource-only" in n.check(["drbdadm", "dump", VM], timeout=60) for n in lab.nodes.values())
    marks = {n.name: len(commands(n)) for n in lab.nodes.values()}
    # A full partition, then the mistake the classic setup warns about: promoting the other side by hand.
    exits_before = len(helper_exits(primary))
    for link in ("rep", "mgmt"):
        primary.set_link(link, up=False)
    try:
        wait_until("both nodes to notice the partition", lambda: all(
            (r := replica(n)) is not None and r.cs != "Connected" for n in lab.nodes.values()), 600, poll=3.0)
        # Without a power fence the primary's handler can prove nothing about the unreachable peer: 1, never 5.
        wait_until("the primary's fence-peer handler to finish",
                   lambda: len(helper_exits(primary)) > exits_before, 600, poll=3.0)
        assert helper_exits(primary)[exits_before:] == [1], helper_exits(primary)
        secondary.stop_daemon()  # the operator stops the daemon there first, as they would to work by hand
        secondary.check(["drbdadm", "primary", "--force", VM], timeout=300)
        # Writes on both sides: the domU keeps writing on the primary; here a block near the device's end.
        blocks = drbd_bytes(secondary) // 4096
        secondary.check(["dd", "if=/dev/urandom", "of=/dev/drbd0", "bs=4096", "count=4", f"seek={blocks - 8}",
                         "oflag=direct", "conv=notrunc"], timeout=120)
        secondary.check(["drbdadm", "secondary", VM], timeout=300)
        start_daemon(secondary)
    finally:
        for link in ("rep", "mgmt"):
            primary.set_link(link, up=True)
    wait_until("DRBD to detect the split brain on both nodes", lambda: all(
        "Split-Brain detected" in kernel_log(n) for n in lab.nodes.values()), MOVE, poll=5.0)

    def reported(node: Node) -> bool:
        exposed = metrics(node)
        return ('drbd_resource_split_brain{name="vm100"} 1.0' in exposed
                and "split brain" in node.check(["reconciler", "status"], timeout=120))

    wait_until("both nodes to report the split brain in status and metrics",
               lambda: all(reported(n) for n in lab.nodes.values()), 600, poll=5.0)
    for node in lab.nodes.values():
        _passes_after(node, 2, "in split brain")
        mine = replica(node)
        assert mine is not None
        assert mine.cs == "StandAlone", f"{node.name} reconnected into the split brain: {mine}"
        assert "result=converged" not in passes(node)[-1], passes(node)[-1]
        capture(node, "split-brain")
    # Nothing discarded, nothing adjusted or reconnected: only the operator decides whose writes are lost.
    for node in lab.nodes.values():
        ran = [c["argv"] for c in commands(node)[marks[node.name]:]]
        assert not [a for a in ran if (a[0] == "drbdadm" and a[1] in ("connect", "adjust", "invalidate"))
                    or "--discard-my-data" in a], f"{node.name}: {ran}"
    assert _running(primary)
    assert VM not in domains(secondary)

    # The recovery by commit (docs/split-brain.md): both name the incident alike; the secondary's writes go.
    def named() -> set[str] | None:
        # Each node names it once it has the peer's record from peer status.
        ids = [set(_INCIDENT.findall(n.check(["reconciler", "status"], timeout=120))) for n in lab.nodes.values()]
        return set.union(*ids) if all(ids) else None

    incidents = wait_until("both nodes to name the incident", named, 300, poll=5.0)
    assert len(incidents) == 1, f"the nodes name the split brain differently: {incidents}"
    (incident,) = incidents
    domid = domain_id(primary, VM)
    marks = {n.name: len(commands(n)) for n in lab.nodes.values()}
    lab.repo.write(cluster_yaml(power_fence=False), vm_yaml(primary=primary.name, size=_size(lab)) +
                   f"split_brain_recovery: {{incident: {incident}, discard: {secondary.name}}}\n")
    lab.repo.commit(f"lab: resolve split brain {incident} of vm100, discarding {secondary.name}'s changes")
    wait_until("the replica to resync from the primary and both to settle", lambda: _settled(primary, secondary),
               MOVE, poll=5.0)
    discarded = [c["argv"] for c in commands(secondary)[marks[secondary.name]:]]
    survived = [c["argv"] for c in commands(primary)[marks[primary.name]:]]
    assert discarded.count(["drbdadm", "connect", "--discard-my-data", VM]) == 1, discarded
    assert ["drbdadm", "disconnect", VM] not in discarded, discarded
    assert survived.count(["drbdadm", "connect", VM]) == 1, survived
    assert not [a for a in survived if "--discard-my-data" in a or a[:2] == ["xl", "shutdown"]], survived
    assert "Split-Brain detected, manually solved. Sync from peer node" in kernel_log(secondary)
    assert "Split-Brain detected, manually solved. Sync from this node" in kernel_log(primary)
    assert domain_id(primary, VM) == domid, "the survivor's domain was restarted"
    lab.timings["scenario 8 (split brain)"] = time.monotonic() - started


DOMAIN_UNIT = f"reconciler-domain-{VM}.service"


def _active(node: Node, *units: str) -> bool:
    result = node.run(["systemctl", "is-active", *units], timeout=120)
    return result.stdout.split() == ["active"] * len(units)


def _status_field(node: Node, pid: str, field: str) -> str:
    """One field of /proc/PID/status (``Seccomp``, ``CapBnd``)."""
    for line in node.check(["cat", f"/proc/{pid}/status"], timeout=60).splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return value.strip()
    raise AssertionError(f"{node.name}: no {field} in /proc/{pid}/status")


def _cgroup_processes(node: Node, cgroup: str) -> dict[str, list[str]]:
    """pid -> command line of every process in a cgroup (v2, as systemd mounts it), read in one go inside the
    node. A process that exits meanwhile (the daemon's own short `xl list`, `drbdsetup` ...) is left out."""
    script = ('for p in $(cat "$1/cgroup.procs"); do '
              'c=$(tr "\\0" " " 2>/dev/null < "/proc/$p/cmdline") && echo "$p $c"; done; true')
    out = node.check(["sh", "-c", script, "sh", f"/sys/fs/cgroup{cgroup}"], timeout=60)
    found = {}
    for line in out.splitlines():
        pid, _, command = line.partition(" ")
        if command.strip():
            found[pid] = command.split()
    return found



def _reboot_under_systemd(primary: Node, node: Node) -> None:
    """A clean shutdown of the secondary ``node``, then a boot with systemd as its init and the shipped units (as
    the package installs them); back when both units are active and the pair has settled."""
    node.clean_shutdown()
    node.boot(fresh=False, systemd=True)
    wait_until(f"{node.name}: both shipped units active", lambda: _active(
        node, "reconciler.service", "reconciler-shutdown.service"), 900, poll=5.0)
    wait_until(f"{node.name} to rejoin as Secondary under systemd and both to settle",
               lambda: _settled(primary, node), MOVE, poll=5.0)


@pytest.mark.timeout(5400)
def test_10_the_units_as_shipped(lab: Lab) -> None:
    """dom0 boots systemd as its init from the shared root and runs reconciler.service and
    reconciler-shutdown.service as shipped: the daemon in its sandbox, the domain it starts outside it, and a
    clean shutdown of the node through the shutdown unit."""
    started = time.monotonic()
    primary, node = _roles(lab)
    _reboot_under_systemd(primary, node)

    # The daemon runs in the unit's sandbox: a seccomp filter and a reduced capability bounding set.
    daemon = node.check(["systemctl", "show", "--property=MainPID", "--value", "reconciler.service"],
                        timeout=60).strip()
    assert daemon.isdigit(), daemon
    assert daemon != "0", "reconciler.service has no main process"
    assert _status_field(node, daemon, "Seccomp") == "2", "the daemon runs without its system call filter"
    full = _status_field(node, "1", "CapBnd")
    assert _status_field(node, daemon, "CapBnd") != full, "the daemon kept every capability"

    # A switchover by commit to the systemd node: it starts the domain as a transient service of its own.
    lab.repo.write(cluster_yaml(), vm_yaml(primary=node.name, size=_size(lab)))
    lab.repo.commit(f"lab: move vm100 to {node.name}, which runs the shipped units")
    with Sampler(lab) as sampler:
        wait_until(f"vm100 to move to {node.name}", lambda: _settled(node, primary), MOVE, poll=5.0)
    sampler.verify()
    assert _active(node, DOMAIN_UNIT), f"{DOMAIN_UNIT} is not active"
    cgroup = node.check(["systemctl", "show", "--property=ControlGroup", "--value", DOMAIN_UNIT], timeout=60).strip()
    assert cgroup == f"/machine.slice/{DOMAIN_UNIT}", cgroup
    outside = _cgroup_processes(node, cgroup)
    # The `xl` that `xl create` leaves per domain (systemd may have started it by its full path).
    monitors = [argv for argv in outside.values() if argv[0].rsplit("/", 1)[-1] == "xl"]
    assert monitors, f"no xl monitor in {cgroup}: {outside}"
    for pid, argv in outside.items():
        name = " ".join(argv)
        assert _status_field(node, pid, "Seccomp") == "0", f"{name} ({pid}) runs with the daemon's filter"
        assert _status_field(node, pid, "CapBnd") == full, f"{name} ({pid}) runs with the daemon's capabilities"
    inside = _cgroup_processes(node, "/system.slice/reconciler.service")
    stray = [argv for argv in inside.values() if argv in monitors]
    assert not stray, f"an xl monitor lives in the daemon's cgroup: {inside}"

    # Restarting the daemon's unit leaves the domain alone.
    domid = domain_id(node, VM)
    node.check(["systemctl", "restart", "reconciler.service"], timeout=1200)
    _passes_after(node, 2, "after a restart of reconciler.service")
    assert domain_id(node, VM) == domid, "restarting reconciler.service restarted the domain"
    wait_until("both to settle after the restart", lambda: _settled(node, primary), MOVE, poll=5.0)

    # A clean shutdown of the node: `systemctl poweroff`; the shutdown unit's ExecStop shuts the domain down,
    # demotes and downs DRBD while the domain's unit (its xl monitor) is still there to destroy it.
    marks = len(commands(node))
    kernel_mark = len(kernel_log(primary))
    with Sampler(lab) as sampler:
        node.system_poweroff()
        wait_until(f"{primary.name} to lose its peer", lambda: (r := replica(primary)) is not None
                   and r.cs != "Connected", 600, poll=3.0)
        _passes_after(primary, 2, "with its peer powered off")
        mine = replica(primary)
        assert mine is not None
        assert (mine.role, mine.disk) == ("Secondary", "UpToDate"), mine
        assert VM not in domains(primary), "the other node started the domain after a clean shutdown"
    sampler.verify()
    assert "peer( Primary -> Secondary )" in kernel_log(primary)[kernel_mark:], \
        f"{primary.name} never saw its peer demote before it went away"

    # Boot it again: the journal on its persistent disk has the shutdown unit's record, the command log what
    # that unit ran; and the domain comes back where it is designated, started by the unit again.
    node.boot(fresh=False, systemd=True)
    ran = [(list(c["argv"]), c["rc"]) for c in commands(node)[marks:]]
    for step in (["xl", "shutdown", "-w", VM], ["drbdadm", "secondary", VM], ["drbdadm", "down", VM]):
        assert (step, 0) in ran, f"the shutdown unit did not run {step} successfully: {ran}"
    assert not [a for a, _ in ran if a[:2] == ["xl", "destroy"]], f"a domain was destroyed at shutdown: {ran}"
    record = node.check(["journalctl", "--no-pager", "--output=cat", "--boot=-1",
                         "--unit=reconciler-shutdown.service"], timeout=120)
    assert VM in record, f"the shutdown unit's journal does not mention {VM}:\n{record[-3000:]}"
    wait_until(f"vm100 to run on {node.name} again and both to settle", lambda: _settled(node, primary), MOVE,
               poll=5.0)
    lab.notes.append(f"shutdown unit on {node.name}: {record.strip()[-400:]}")
    lab.timings["scenario 10 (units as shipped)"] = time.monotonic() - started


@pytest.mark.timeout(3600)
def test_12_automatic_failover_on_power_loss(lab: Lab) -> None:
    """failover: automatic under resource-and-stonith with the lab's power switch. The primary loses power; the
    survivor waits the grace, its promotion runs the fence-peer handler (which powers the lost node off and sees
    it off: exit 7) and it starts the domU, with no commit and no operator. The returning node rejoins as
    Secondary, never starts the domU and never stops it on the survivor; a commit naming the survivor then ends
    the failover."""
    started = time.monotonic()
    dead, survivor = _roles(lab)
    lab.repo.write(cluster_yaml(automatic_failover=True), vm_yaml(primary=dead.name, size=_size(lab)))
    lab.repo.commit("lab: automatic failover")
    head = lab.repo.git("rev-parse", "--short=12", "HEAD").strip()
    for node in lab.nodes.values():
        wait_until(f"{node.name} to apply the automatic-failover revision", lambda n=node: head in n.check(
            ["reconciler", "status"], timeout=120) and _converged(n), 600, poll=3.0)
    logged_before = len(commands(dead))
    asked = len(survivor.fence_relay.handled)
    exits_before = len(helper_exits(survivor))
    record_path = f"/var/lib/reconciler/failover/{VM}.json"
    boots_seen = len(records_held(survivor))
    with Sampler(lab) as sampler:
        lost_at = time.monotonic()
        dead.power_off()
        wait_until(f"{VM} to run on {survivor.name} by itself", lambda: _running(survivor), MOVE, poll=5.0)
        took = time.monotonic() - lost_at
        _verify_records(lab, dead, survivor, boots_seen, f"power loss of {dead.name}, automatic failover")
        lab.figures["power losses"] = lab.figures.get("power losses", 0) + 1
        exits = helper_exits(survivor)[exits_before:]
        assert 7 in exits, f"fence-peer exit codes on {survivor.name}: {exits}"
        assert 5 not in exits, f"fence-peer exit codes on {survivor.name}: {exits}"
        switched = [(h["action"], h["target"], h.get("power")) for h in survivor.fence_relay.handled[asked:]]
        assert ("status", dead.name, "OFF") in switched, switched

        def record() -> dict[str, object]:
            loaded: dict[str, object] = json.loads(survivor.check(["cat", record_path], timeout=60))
            return loaded

        wait_until("the failover record to say running", lambda: record()["state"] == "running", 300, poll=5.0)
        taken = record()
        assert (taken["from_node"], taken["to_node"]) == (dead.name, survivor.name), taken
        exported = f'reconciler_failover_active{{from_node="{dead.name}",vm="{VM}"}} 1.0'
        wait_until("the failover in the survivor's metrics", lambda: exported in metrics(survivor), 300, poll=5.0)
        status = survivor.check(["reconciler", "status"], timeout=120)
        assert str(taken["id"]) in status, status

        dead.boot(fresh=False)

        def back() -> bool:
            return replica(survivor) == Replica("Connected", "Primary", "Secondary", "UpToDate", "UpToDate")

        wait_until(f"{dead.name} to return as an UpToDate Secondary", back, MOVE, poll=5.0)
        _passes_after(dead, 2, "after its return")
        assert _running(survivor)
        assert VM not in domains(dead)
    sampler.verify()
    after_return = [c["argv"] for c in commands(dead)[logged_before:]]
    assert not [a for a in after_return if a[:2] in (["xl", "create"], ["drbdadm", "primary"])], after_return
    assert record()["state"] == "running"  # failback: manual, so the VM stays until a commit decides

    # The returned node says why it does not take its VM back: degraded with the failover's id and the choices,
    # not "progressing" with a promotion that waits for a demotion nothing is going to make.
    def held() -> dict[str, Any] | None:
        status = _status_json(dead)
        last = status.get("last_pass") or {}
        mine = [r for r in status.get("resources") or [] if "failed-over-away" in r.get("conditions", [])]
        return status if last.get("outcome") == "degraded" and mine and str(taken["id"]) in mine[0]["reason"] else None

    held_status = wait_until(f"{dead.name} to report {VM} failed over away from it", held, 600, poll=5.0)
    waiting = [r for r in held_status["resources"] if r["phase"] == "waiting"]
    assert not waiting, f"{dead.name} still waits: {waiting}"
    lab.notes.append(f"automatic failover: {dead.name} after its return: " + next(
        r["reason"] for r in held_status["resources"] if "failed-over-away" in r["conditions"]))

    # The decision, by commit: the VM stays on the survivor. The failover record ends; both settle.
    lab.repo.write(cluster_yaml(), vm_yaml(primary=survivor.name, size=_size(lab)))
    lab.repo.commit(f"lab: keep {VM} on {survivor.name} after the automatic failover")
    wait_until("both to settle after the commit", lambda: _settled(survivor, dead), MOVE, poll=5.0)
    assert record()["state"] == "ended"
    lab.notes.append(f"automatic failover: {VM} ran on {survivor.name} {took:.0f} s after {dead.name} lost power")
    lab.timings["scenario 12 (automatic failover)"] = time.monotonic() - started


def _power_losses() -> int:
    text = os.environ.get("LAB_POWER_LOSSES", "3")
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"LAB_POWER_LOSSES must be a whole number of at least 1, not {text!r}")
    return int(text)


POWER_LOSSES = _power_losses()


@pytest.mark.timeout(900 + 1800 * POWER_LOSSES)
def test_15_repeated_power_losses(lab: Lab) -> None:
    """The write verifier's soak: LAB_POWER_LOSSES times (default 3), whichever node runs the domU loses power;
    the other fails over by itself (failover: automatic, the lab's power fence), and its domU must find on the
    disk every record the lost node's domU announced as durable. The lost node boots and rejoins as an UpToDate
    Secondary without starting the domU; a commit then names the survivor as the VM's primary (ending the
    failover), and the next power loss hits the survivor. DRBD roles and domains are sampled throughout: never
    two Primaries, never the domU on both nodes."""
    started = time.monotonic()
    runner, _ = _roles(lab)
    lab.repo.write(cluster_yaml(automatic_failover=True), vm_yaml(primary=runner.name, size=_size(lab)))
    lab.repo.commit("lab: automatic failover for the repeated power losses")
    head = lab.repo.git("rev-parse", "--short=12", "HEAD").strip()
    for node in lab.nodes.values():
        wait_until(f"{node.name} to apply the automatic-failover revision", lambda n=node: head in n.check(
            ["reconciler", "status"], timeout=120) and _converged(n), 600, poll=3.0)
    took: list[float] = []
    with Sampler(lab) as sampler:
        for cycle in range(1, POWER_LOSSES + 1):
            dead, survivor = _roles(lab)
            boots_seen = len(records_held(survivor))
            proven = lab.figures.get("records verified", 0)
            # A fresh announcement on this node this cycle, so the check below is about this stay, not an old one.
            wait_until(f"the domU on {dead.name} to announce a record past {proven}",
                       lambda d=dead, p=proven: records_acknowledged(d) > p, MOVE, poll=5.0)
            logged_before = len(commands(dead))
            lost_at = time.monotonic()
            dead.power_off()
            wait_until(f"{VM} to run on {survivor.name} by itself (power loss {cycle})", lambda s=survivor: _running(s),
                       MOVE, poll=5.0)
            took.append(time.monotonic() - lost_at)
            _verify_records(lab, dead, survivor, boots_seen, f"power loss {cycle} of {dead.name}, automatic failover")
            lab.figures["power losses"] = lab.figures.get("power losses", 0) + 1
            dead.boot(fresh=False)

            def back(s: Node = survivor) -> bool:
                return replica(s) == Replica("Connected", "Primary", "Secondary", "UpToDate", "UpToDate")

            wait_until(f"{dead.name} to return as an UpToDate Secondary (power loss {cycle})", back, MOVE, poll=5.0)
            _passes_after(dead, 2, f"after its return (power loss {cycle})")
            assert VM not in domains(dead), f"{dead.name} started {VM} after its return (power loss {cycle})"
            after_return = [c["argv"] for c in commands(dead)[logged_before:]]
            assert not [a for a in after_return if a[:2] in (["xl", "create"], ["drbdadm", "primary"])], after_return
            lab.repo.write(cluster_yaml(automatic_failover=True), vm_yaml(primary=survivor.name, size=_size(lab)))
            lab.repo.commit(f"lab: keep {VM} on {survivor.name} after power loss {cycle}")
            wait_until(f"both to settle after power loss {cycle}", lambda s=survivor, d=dead: _settled(s, d), MOVE,
                       poll=5.0)
            ended = json.loads(survivor.check(["cat", f"/var/lib/reconciler/failover/{VM}.json"], timeout=60))
            assert ended["state"] == "ended", ended
            lab.notes.append(f"repeated power losses: {cycle}: {dead.name} lost power, {VM} ran on {survivor.name} "
                             f"{took[-1]:.0f} s later, {lab.figures['records verified']} records verified")
    sampler.verify()
    primary, secondary = _roles(lab)
    lab.repo.write(cluster_yaml(), vm_yaml(primary=primary.name, size=_size(lab)))
    lab.repo.commit("lab: failover back to manual after the repeated power losses")
    wait_until("both to settle with manual failover", lambda: _settled(primary, secondary), MOVE, poll=5.0)
    lab.notes.append(f"repeated power losses: {len(took)} survived, failover took {min(took):.0f}-{max(took):.0f} s, "
                     f"{sampler.samples} samples of roles and domains")
    lab.timings["scenario 15 (repeated power losses)"] = time.monotonic() - started


HAND_VM = "vm101"
HAND_LEG = 112 * MIB      # three legs: a 336 MiB stripe, room for XFS's 300 MiB beside vm100 on the 512 MiB disks
HAND_GROWN = 128 * MIB
HAND_SWAP = "16M"
OWNERSHIP = (["dmsetup", "rename"], ["lvchange", "--addtag"])


def _hand_drbd(lab: Lab) -> str:
    """A resource file as an operator writes it (the lab's fencing and timeouts, minor 1, port 7789)."""
    hosts = "".join(f"  on {n.name} {{\n    device /dev/drbd1;\n    disk /dev/mapper/root101;\n"
                    f"    address {n.spec.address('rep')}:7789;\n    meta-disk internal;\n  }}\n"
                    for n in lab.nodes.values())
    return ("resource vm101 {\n  protocol C;\n  startup { degr-wfc-timeout 120; }\n"
            "  disk { on-io-error detach; al-extents 257; fencing resource-and-stonith; }\n"
            '  handlers { fence-peer "/usr/local/sbin/lab-fence-peer"; }\n' + hosts + "}\n")


def _hand_xen() -> str:
    swaps = ", ".join(f"'phy:/dev/{vg}/swap101,xvd{letter},w'" for vg, letter in
                      (("vg-sda", "b"), ("vg-sdb", "c"), ("vg-sdc", "d")))
    return (f'name = "{HAND_VM}"\nmemory = 128\nvcpus = 1\nkernel = "{paths.vmlinuz()}"\n'
            f'ramdisk = "{paths.DOMU_INITRD}"\nextra = "console=hvc0 loglevel=4"\n'
            f"disk = ['phy:/dev/drbd1,xvda,w', {swaps}]\n")


def _hand_state(node: Node) -> tuple[str, str]:
    """(connection state, disk states) of the hand-built resource, as drbdadm reports them."""
    return (node.check(["drbdadm", "cstate", HAND_VM], timeout=60).strip(),
            node.check(["drbdadm", "dstate", HAND_VM], timeout=60).strip())


def _copy_dir(source: Node, target: Node, directory: str) -> None:
    archive = source.check(["sh", "-c", f"tar -C {directory} -cf - . | base64 -w0"], timeout=300)
    target.check(["sh", "-c", f"mkdir -p {directory} && base64 -d | tar -C {directory} -xf -"], timeout=300,
                 stdin=archive)


def _disconnects(node: Node) -> int:
    """Connection losses DRBD 8.4 logged for the hand-built resource (``drbd vm101: peer( Secondary -> Unknown )
    conn( Connected -> Disconnecting ) ...``, or the same for its device ``block drbd1:``)."""
    return sum("conn( Connected ->" in line and (f"drbd {HAND_VM}:" in line or "block drbd1:" in line)
               for line in kernel_log(node).splitlines())


@pytest.mark.timeout(3600)
def test_13_takeover_of_a_hand_built_vm(lab: Lab) -> None:
    """The article's commands build vm101 by hand beside vm100 (LVs, a `dmsetup create` stripe without a uuid, a
    hand-written DRBD file, create-md, up, the forced first promotion, mkfs.xfs, mkswap, a Xen config, `xl
    create`); `reconciler import` runs on both nodes into one directory; its vm101.yaml is committed. Both
    daemons then take vm101 over with ownership commands only: the domU keeps its id, DRBD never disconnects.
    A growth commit afterwards works without a restart."""
    started = time.monotonic()
    erdbeere, himbeere = lab.node("erdbeere"), lab.node("himbeere")
    leg = f"{HAND_LEG // MIB}M"
    sectors = 3 * HAND_LEG // 512
    table = f"0 {sectors} striped 3 64 " + " ".join(f"/dev/{vg}/root101 0" for vg in ("vg-sda", "vg-sdb", "vg-sdc"))
    for node in (erdbeere, himbeere):
        for vg in ("vg-sda", "vg-sdb", "vg-sdc"):
            node.check(["lvcreate", "-q", "-L", HAND_SWAP, "-n", "swap101", vg], timeout=300)
            node.check(["lvcreate", "-q", "-L", leg, "-n", "root101", vg], timeout=300)
        node.check(["env", "DM_DISABLE_UDEV=1", "dmsetup", "create", "root101"], timeout=120, stdin=table + "\n")
        node.check(["tee", "/etc/drbd.d/vm101.res"], stdin=_hand_drbd(lab))
        node.check(["tee", "/etc/xen/vm101.cfg"], stdin=_hand_xen())
        node.check(["drbdadm", "create-md", "--force", HAND_VM], timeout=300)
        node.check(["drbdadm", "up", HAND_VM], timeout=300)
    erdbeere.check(["drbdadm", "primary", "--force", HAND_VM], timeout=300)
    wait_until("the hand-built resource's first sync", lambda: _hand_state(erdbeere) == (
        "Connected", "UpToDate/UpToDate"), CONVERGE, poll=5.0)
    erdbeere.check(["mkfs.xfs", "-q", "/dev/drbd1"], timeout=600)
    for vg in ("vg-sda", "vg-sdb", "vg-sdc"):
        erdbeere.check(["mkswap", f"/dev/{vg}/swap101"], timeout=120)
    erdbeere.check(["xl", "create", "/etc/xen/vm101.cfg"], timeout=600)
    wait_until("the hand-built domU to mount its disk", lambda: "lab-domu: data mounted" in erdbeere.check(
        ["cat", f"/var/log/xen/console/guest-{HAND_VM}.log"]), 600, poll=5.0)
    domid = domain_id(erdbeere, HAND_VM)
    assert domid is not None

    # reconciler import on both nodes into one directory, carried from one node to the other.
    out = "/run/import"
    for source, node in ((None, erdbeere), (erdbeere, himbeere)):
        if source is not None:
            _copy_dir(source, node, out)
        node.check(["reconciler", "import", "--node", node.name, "--out", out], timeout=600)
    report = himbeere.check(["cat", f"{out}/import/REPORT.txt"], timeout=60)
    assert "Disagreements between the nodes (0)" in report, report
    imported = himbeere.check(["cat", f"{out}/vms/{HAND_VM}.yaml"], timeout=60)
    lab.notes.append(f"import report: {report.strip()[-600:]}")

    marks = {n.name: len(commands(n)) for n in (erdbeere, himbeere)}
    disconnects = {n.name: _disconnects(n) for n in (erdbeere, himbeere)}
    lab.repo.write_vm(HAND_VM, imported)
    head = lab.repo.commit(f"lab: take {HAND_VM}, built by hand, over as imported")[:12]

    def taken() -> bool:
        return all(head in n.check(["reconciler", "status"], timeout=120) and _converged(n)
                   and n.check(["dmsetup", "info", "-c", "--noheadings", "-o", "uuid", "root101"],
                               timeout=60).strip() == "RECONCILER-root101" for n in (erdbeere, himbeere))

    wait_until(f"both daemons to take {HAND_VM} over", taken, MOVE, poll=5.0)
    for node in (erdbeere, himbeere):
        ran = [list(c["argv"]) for c in commands(node)[marks[node.name]:]]  # type: ignore[call-overload]
        mutating = [a for a in ran if not _read_only(a)]
        assert mutating, f"{node.name}: no ownership command ran"
        assert all(any(a[:len(o)] == o for o in OWNERSHIP) for a in mutating), f"{node.name}: {mutating}"
        assert sum(a[:2] == ["dmsetup", "rename"] for a in mutating) == 1, mutating
        assert sum(a[0] == "lvchange" for a in mutating) == 6, mutating
        for path in ("/etc/drbd.d/vm101.res", "/etc/xen/vm101.cfg"):
            assert "written by the reconciler" in node.check(["head", "-1", path], timeout=60), path
        assert node.check(["drbdadm", "-d", "adjust", HAND_VM], timeout=120).strip() == ""
    assert domain_id(erdbeere, HAND_VM) == domid, "the takeover restarted the domU"
    assert HAND_VM not in domains(himbeere)
    assert _hand_state(erdbeere) == ("Connected", "UpToDate/UpToDate")
    assert {n.name: _disconnects(n) for n in (erdbeere, himbeere)} == disconnects, "DRBD disconnected"

    # A growth commit, as on any VM the daemons built.
    grown = re.sub(r"^(storage:\n(?:  .*\n)*?  size: )\S+$", rf"\g<1>{HAND_GROWN // MIB}M", imported, count=1,
                   flags=re.M)
    assert grown != imported, imported
    lab.repo.write_vm(HAND_VM, grown)
    lab.repo.commit(f"lab: grow {HAND_VM}'s three legs to {HAND_GROWN // MIB}M")
    backing = 3 * HAND_GROWN

    def bigger() -> bool:
        for node in (erdbeere, himbeere):
            if set(lv_bytes(node, "root101").values()) != {HAND_GROWN} or dm_bytes(node, "root101") != backing:
                return False
            if not backing - 4 * MIB < drbd_bytes(node, 1) < backing:
                return False
        return _hand_state(erdbeere) == ("Connected", "UpToDate/UpToDate") and _converged(erdbeere) \
            and _converged(himbeere)

    wait_until(f"{HAND_VM} to grow on both nodes", bigger, MOVE, poll=5.0)
    assert domain_id(erdbeere, HAND_VM) == domid, "the growth restarted the domU"
    lab.timings["scenario 13 (takeover of a hand-built VM)"] = time.monotonic() - started


PACKAGE_PREFIX = "/usr/lib/reconciler"
PACKAGE_PYTHON = f"{PACKAGE_PREFIX}/bin/python3"
# dpkg rather than apt: every dependency is installed already, and apt would rebuild its package cache from the
# host's lists on every run through the shared root (many minutes on an emulated CPU).
DPKG = ["env", "DEBIAN_FRONTEND=noninteractive", "dpkg"]
FIREWALL = "reconciler_lab_runbook"
# The runbook's port table between the nodes (docs/operations.md, "Firewall"): the daemons' peer status and
# fence requests, DRBD at 7788 + n (the lab's resources use 7788 and 7789), ssh. Metrics (9793) are not
# among them: they are for the Prometheus server only.
FIREWALL_PORTS = (("peer", "9791"), ("drbd", "7788-7799"), ("ssh", "22"))
PROBE = ("import socket, sys\n"
         "try:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()\n"
         "except OSError as exc:\n    print(type(exc).__name__)\nelse:\n    print('connected')\n")
_COUNTER = re.compile(r'counter packets (\d+) bytes \d+ (?:accept|drop) comment "([^"]+)"')


def _status_json(node: Node) -> dict[str, Any]:
    """``reconciler status --json`` (it exits non-zero while the status is stale, and still prints it)."""
    result = node.run(["reconciler", "status", "--json"], timeout=120)
    if not result.stdout.strip():
        raise LabError(result.describe())
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def _ready(node: Node, head: str) -> bool:
    """What the runbook's upgrade waits for: ``reconciler status`` shows every resource Ready and the peer
    reachable (and converged), on the repository's head, from a daemon that is running (not stale)."""
    status = _status_json(node)
    applied = (status.get("last_applied") or {}).get("sha") or ""
    resources = status.get("resources") or []
    peers = status.get("peers") or []
    return (bool(applied) and applied[:12] == head[:12] and not status.get("stale")
            and bool(resources) and all(r["phase"] == "ready" for r in resources)
            and bool(peers) and all(p["reachable"] and p["ready"] for p in peers))


def _head(lab: Lab) -> str:
    return lab.repo.git("rev-parse", "HEAD").strip()


def _daemon_pid(node: Node) -> str:
    if node.systemd:
        pid = node.check(["systemctl", "show", "--property=MainPID", "--value", "reconciler.service"],
                         timeout=60).strip()
    else:
        pid = node.check(["cat", "/run/reconciler.pid"], timeout=60).strip()
    assert pid.isdigit(), f"{node.name}: no daemon pid ({pid!r})"
    assert pid != "0", f"{node.name}: no daemon running"
    return pid


def _from_package(node: Node) -> str:
    """The running daemon's command line, asserted to be the package's interpreter and command with the
    package's libraries mapped."""
    pid = _daemon_pid(node)
    args = node.check(["ps", "-o", "args=", "-p", pid], timeout=60).strip()
    assert args.startswith(f"{PACKAGE_PYTHON} /usr/bin/reconciler run"), f"{node.name}: the daemon runs {args!r}"
    # The interpreter maps the bundled extensions (pydantic's, PyYAML's) as it imports them, seconds after start.
    wait_until(f"{node.name}'s daemon to map the package's libraries", lambda: node.run(
        ["grep", "-q", f"{PACKAGE_PREFIX}/lib/", f"/proc/{pid}/maps"], timeout=60).rc == 0, 300, poll=3.0)
    return args


def _sha256(node: Node, path: str) -> str:
    return node.check(["sha256sum", path], timeout=60).split()[0]


def _exists(node: Node, path: str) -> bool:
    return node.run(["test", "-e", path], timeout=60).rc == 0


def _firewall_rules(node: Node, peer: Node) -> str:
    """nftables rules on ``node``: from ``peer``'s lab addresses only the runbook's ports (and the answers from
    them: the rules hold no connection state, so connections that were open before them keep flowing);
    anything else to the node's lab addresses is dropped."""
    mine = ", ".join(node.spec.address(link) for link in ("rep", "mgmt"))
    theirs = ", ".join(peer.spec.address(link) for link in ("rep", "mgmt"))
    rules = "".join(f'        ip saddr {{ {theirs} }} tcp dport {{ {ports} }} counter accept comment "{what} in"\n'
                    f'        ip saddr {{ {theirs} }} tcp sport {{ {ports} }} counter accept comment "{what} out"\n'
                    for what, ports in FIREWALL_PORTS)
    return (f"table inet {FIREWALL} {{\n"
            "    chain input {\n        type filter hook input priority filter; policy accept;\n"
            f"        iif lo accept\n        ip daddr {{ {mine} }} jump lab_links\n    }}\n"
            f"    chain lab_links {{\n{rules}"
            '        counter drop comment "everything else"\n    }\n}\n')


def _firewall_counters(node: Node) -> dict[str, int]:
    listed = node.check(["nft", "list", "chain", "inet", FIREWALL, "lab_links"], timeout=60)
    return {what: int(packets) for packets, what in _COUNTER.findall(listed)}


def _probe(source: Node, address: str, port: int) -> str:
    """Connect from ``source`` to ``address:port``: ``connected``, ``ConnectionRefusedError`` (nothing listens:
    the host answered) or ``TimeoutError`` (the packet was dropped)."""
    return source.check(["python3", "-c", PROBE, address, str(port), "10"], timeout=120).strip()


def _no_manual_index(node: Node) -> None:
    """Turn off man-db's index update on ``node``, as ``man-db/auto-update=false`` in debconf does: its dpkg
    trigger re-reads the host's 97 MiB of manual pages over 9p on an emulated CPU, most of an installation's
    time there (measured: minutes, against about 90 s for the rest of ``dpkg -i``). Only the node's own
    overlay loses the file; a real node runs the trigger natively in seconds."""
    node.check(["rm", "-f", "/var/lib/man-db/auto-update"], timeout=60)


def _units_gone(node: Node) -> bool:
    """After removal on a systemd node: both units stopped (the shutdown unit's ExecStop does nothing while the
    system runs), their unit files and enablement links gone."""
    active = node.run(["systemctl", "is-active", "reconciler.service", "reconciler-shutdown.service"], timeout=120)
    links = node.run(["sh", "-c", "ls /etc/systemd/system/*.wants/reconciler*.service "
                      "/lib/systemd/system/reconciler*.service 2>/dev/null; true"], timeout=60)
    return active.stdout.split() == ["inactive", "inactive"] and not links.stdout.strip()


def _install(node: Node, deb: str) -> None:
    """``dpkg -i reconciler_*.deb`` (what ``apt install ./reconciler_*.deb`` does once every dependency is
    installed, as it is in the nodes, which have no network), then what dpkg says about it."""
    node.check([*DPKG, "-i", deb], timeout=2700)
    state = node.check(["dpkg-query", "-W", "-f=${Status} ${Version}", "reconciler"], timeout=60)
    assert state.startswith("install ok installed "), f"{node.name}: {state}"
    target = node.check(["readlink", "-f", "/usr/bin/reconciler"], timeout=60).strip()
    assert target == f"{PACKAGE_PREFIX}/bin/reconciler", f"{node.name}: /usr/bin/reconciler is {target}"
    owner = node.check(["dpkg-query", "-S", "/usr/bin/reconciler"], timeout=60).strip()
    assert owner == "reconciler: /usr/bin/reconciler", owner


def _restart_after_install(node: Node, *, was_running: bool) -> None:
    """The package's postinst restarts a running daemon where systemd runs (``systemctl try-restart``); the
    lab's own init has no systemd, so the lab restarts it the same way (the daemon's SIGTERM, then its start
    script, which runs /usr/bin/reconciler)."""
    if node.systemd:
        return
    if was_running:
        node.stop_daemon()
    start_daemon(node)


@pytest.mark.timeout(5400)
def test_14_the_runbook_on_the_lab_nodes(lab: Lab) -> None:
    """docs/operations.md, tried on the lab's nodes: the peer key, the firewall's port table, installing and
    upgrading from the Debian package one node at a time, rolling a growth back by revert, and removal. The
    secondary runs systemd with the shipped units (as scenario 10 boots it), so the package's maintainer
    scripts meet systemd there (try-restart on upgrade, stop and disable on removal) and the runbook's
    ``systemctl enable --now`` starts a fresh installation; the primary keeps the lab's own init."""
    started = time.monotonic()
    primary, secondary = _roles(lab)
    if not secondary.systemd:
        _reboot_under_systemd(primary, secondary)
    for node in lab.nodes.values():
        _no_manual_index(node)
    deb = package.build_deb()
    guest_deb = package.in_guest(deb)
    lab.notes.append(f"runbook: package {deb}")
    domid = domain_id(primary, VM)
    assert domid is not None

    # The peer key: one secret, the same on every node.
    keys = {n.name: _sha256(n, "/etc/reconciler/peer.key") for n in lab.nodes.values()}
    assert len(set(keys.values())) == 1, f"the peer keys differ: {keys}"

    # The firewall: between the nodes only the runbook's ports; the cluster must not notice.
    firewalled = all(_exists(n, "/usr/sbin/nft") for n in lab.nodes.values())
    if not firewalled:
        lab.notes.append("runbook: firewall step skipped: no nft in the host's root (scripts/lab setup installs it)")
    try:
        if firewalled:
            closed = {n.name: _probe(n, lab.nodes[o].spec.address("mgmt"), 9793)
                      for n, o in ((primary, secondary.name), (secondary, primary.name))}
            assert set(closed.values()) == {"ConnectionRefusedError"}, closed
            for node, peer in ((primary, secondary), (secondary, primary)):
                node.check(["modprobe", "nf_tables"], timeout=120)
                node.check(["nft", "-f", "-"], timeout=120, stdin=_firewall_rules(node, peer))
            dropped = {n.name: _probe(n, lab.nodes[o].spec.address("mgmt"), 9793)
                       for n, o in ((primary, secondary.name), (secondary, primary.name))}
            assert set(dropped.values()) == {"TimeoutError"}, f"the firewall let a probe of 9793 through: {dropped}"
        head = _head(lab)
        for node in lab.nodes.values():
            node.check(["reconciler", "reconcile-now"], timeout=120)
        for node in lab.nodes.values():
            _passes_after(node, 2, "behind the firewall")
        wait_until("both nodes Ready with the peer reachable", lambda: all(
            _ready(n, head) for n in lab.nodes.values()), 600, poll=5.0)
        assert _settled(primary, secondary)

        # Different peer keys: each daemon reports its peer unreachable (authentication failed).
        secondary.stop_daemon()
        secondary.check(["tee", "/etc/reconciler/peer.key"], timeout=60, stdin=secrets.token_hex(32) + "\n")
        start_daemon(secondary)

        def refused_both() -> dict[str, str] | None:
            errors = {}
            for node in lab.nodes.values():
                status = _status_json(node)
                peers = status.get("peers") or []
                if status.get("stale") or not peers or peers[0]["reachable"]:
                    return None
                errors[node.name] = str(peers[0].get("error") or "")
            # Until the restarted daemon listens, the other one's error is a refused connection.
            return errors if all(re.search(r"HTTP (401|429)", e) for e in errors.values()) else None

        errors = wait_until("both daemons to report the peer unreachable with different keys", refused_both,
                            600, poll=5.0)
        lab.notes.append(f"runbook: with different peer keys: {errors}")
        secondary.stop_daemon()
        secondary.check(["tee", "/etc/reconciler/peer.key"], timeout=60, stdin=lab.peer_key + "\n")
        assert _sha256(secondary, "/etc/reconciler/peer.key") == keys[primary.name]

        start_daemon(secondary)
        wait_until("both nodes Ready again with the same key", lambda: all(
            _ready(n, head) for n in lab.nodes.values()), 600, poll=5.0)

        # Rolling back by revert: a growth, its revert (a shrink: refused, nothing shrinks), the revert's revert.
        grown_mib = int(_size(lab).removesuffix("M")) + 16
        grown = grown_mib * MIB
        backing = 3 * grown
        marks = {n.name: len(commands(n)) for n in lab.nodes.values()}
        lab.repo.write_vm(VM, vm_yaml(primary=primary.name, size=f"{grown_mib}M"))
        lab.repo.commit(f"lab: grow vm100's three legs to {grown_mib}M")

        def bigger() -> bool:
            return _grown_everywhere(lab, grown, primary, secondary)

        wait_until(f"vm100 to grow to {grown_mib}M legs on both nodes", bigger, MOVE, poll=5.0)
        resized = drbd_bytes(primary)
        # The runbook's check of the DRBD device's size.
        assert int(primary.check(["blockdev", "--getsize64", "/dev/drbd0"], timeout=60)) == resized
        ran = {n.name: [c["argv"] for c in commands(n)[marks[n.name]:]] for n in lab.nodes.values()}
        resizes = [(name, a) for name, argvs in ran.items() for a in argvs if a[:2] == ["drbdadm", "resize"]]
        assert resizes == [(primary.name, ["drbdadm", "resize", VM])], f"drbdadm resize by the daemon: {resizes}"

        marks = {n.name: len(commands(n)) for n in lab.nodes.values()}
        lab.repo.git("revert", "--no-edit", "HEAD")
        reverted = _head(lab)

        def shrink_refused(node: Node) -> bool:
            status = _status_json(node)
            seen = [(status.get(k) or {}).get("sha", "")[:12] for k in ("last_attempted", "last_applied")]
            return (reverted[:12] in seen and any(r["phase"] == "refused" for r in status.get("resources") or [])
                    and "shrinking" in json.dumps(status))

        wait_until("both nodes to refuse the reverted growth (a shrink)", lambda: all(
            shrink_refused(n) for n in lab.nodes.values()), 600, poll=5.0)
        for node in lab.nodes.values():
            # A refused step fails the pass, and failed passes back off: wait for one more.
            _passes_after(node, 1, "refusing the shrink", deadline=900.0)
            assert set(lv_bytes(node).values()) == {grown}, f"{node.name}: {lv_bytes(node)}"
            assert dm_bytes(node) == backing
            assert drbd_bytes(node) == resized
            shrank = [list(c["argv"]) for c in commands(node)[marks[node.name]:]
                      if c["argv"][0] in ("lvreduce", "lvresize") or "--size" in str(c["argv"])]
            assert not shrank, f"{node.name} shrank: {shrank}"
        refusals = [line for line in primary.check(["reconciler", "status"], timeout=120).splitlines()
                    if "shrinking" in line or "Refused" in line]
        lab.notes.append(f"runbook: the reverted growth on {primary.name}: {refusals}")
        assert domain_id(primary, VM) == domid, "the refused shrink touched the domU"
        assert _synced(primary, "Primary")
        assert _synced(secondary, "Secondary")

        marks = {n.name: len(commands(n)) for n in lab.nodes.values()}
        lab.repo.git("revert", "--no-edit", "HEAD")
        head = _head(lab)
        wait_until("both nodes Ready again on the revert of the revert", lambda: all(
            _ready(n, head) for n in lab.nodes.values()), MOVE, poll=5.0)
        assert _settled(primary, secondary)
        for node in lab.nodes.values():
            assert set(lv_bytes(node).values()) == {grown}
            assert not _all_read_only(node, marks[node.name]), f"{node.name}: {_all_read_only(node, marks[node.name])}"

        # Upgrading the reconciler, one node at a time: the secondary, then the primary (each with its daemon
        # running). After each: status Ready with the peer reachable, --version, the package's command,
        # the domU untouched, the DRBD file not rewritten (its handlers already named /usr/bin/reconciler).
        version = node_version = ""
        for node in (secondary, primary):
            marks = len(commands(node))
            drbd_file = _sha256(node, f"/etc/drbd.d/{VM}.res")
            before = _daemon_pid(node)
            _install(node, guest_deb)
            _restart_after_install(node, was_running=True)
            args = _from_package(node)
            # Under systemd the restart is the package's own (postinst's try-restart), not the lab's.
            assert _daemon_pid(node) != before, f"{node.name}: the upgrade did not restart the daemon"
            wait_until(f"both nodes Ready with the peer reachable after {node.name}'s upgrade", lambda: all(
                _ready(n, head) for n in lab.nodes.values()), MOVE, poll=5.0)
            node_version = node.check(["reconciler", "--version"], timeout=120).strip()
            assert node_version == f"reconciler {__version__}", node_version
            version = version or node_version
            assert domain_id(primary, VM) == domid, f"{node.name}'s upgrade restarted the domU"
            assert _settled(primary, secondary)
            assert _sha256(node, f"/etc/drbd.d/{VM}.res") == drbd_file, f"{node.name}: the DRBD file was rewritten"
            assert not _all_read_only(node, marks), f"{node.name}: the upgrade ran {_all_read_only(node, marks)}"
            lab.notes.append(f"runbook: {node.name} upgraded: {node_version}; the daemon runs {args[:80]}")
        for node in lab.nodes.values():
            rendered = node.check(["cat", f"/etc/drbd.d/{VM}.res"], timeout=60)
            assert '"/usr/bin/reconciler split-brain"' in rendered, rendered
            handler = node.check(["cat", "/usr/local/sbin/lab-fence-peer"], timeout=60)
            assert "exec /usr/bin/reconciler fence-peer" in handler, handler

        # The firewall's counters: the cluster's traffic went through the runbook's ports, the probe was dropped.
        if firewalled:
            for node in lab.nodes.values():
                counted = _firewall_counters(node)
                assert counted["peer in"] > 0, f"{node.name}: {counted}"
                assert counted["peer out"] > 0, f"{node.name}: {counted}"
                assert counted["drbd in"] + counted["drbd out"] > 0, f"{node.name}: {counted}"
                assert counted["everything else"] > 0, f"{node.name}: {counted}"
                lab.notes.append(f"runbook: firewall counters on {node.name}: {counted}")

        # Removal on the systemd node: prerm stops and disables both units; DRBD and the LVs stay as they are.
        lvs_before = lv_bytes(secondary)
        # The journal's position now: the shutdown unit's stop below is judged from what is logged after it.
        shown = secondary.check(["journalctl", "--no-pager", "--output=cat", "--show-cursor", "-n", "1"], timeout=120)
        cursor = next(line.removeprefix("-- cursor: ") for line in shown.splitlines() if line.startswith("-- cursor: "))
        secondary.check([*DPKG, "--remove", "reconciler"], timeout=2700)
        assert _units_gone(secondary), f"{secondary.name}: units left after removal: " + secondary.run(
            ["systemctl", "status", "--no-pager", "reconciler.service"], timeout=120).stdout[-1500:]
        stopped = secondary.check(["journalctl", "--no-pager", "--output=cat", f"--after-cursor={cursor}",
                                   "--unit=reconciler-shutdown.service"], timeout=120)
        assert "leaving domains and DRBD alone" in stopped, f"{secondary.name}: {stopped[-1500:]}"
        secondary.check([*DPKG, "--purge", "reconciler"], timeout=2700)
        for path in ("/etc/reconciler/reconciler.env", "/etc/reconciler/peer.key", "/var/lib/reconciler/status.json"):
            assert _exists(secondary, path), f"{secondary.name}: {path} is gone after dpkg --purge"
        assert _synced(secondary, "Secondary")
        assert lv_bytes(secondary) == lvs_before
        assert domain_id(primary, VM) == domid, "removing the package on the secondary touched the domU"
        # A fresh installation starts nothing; the runbook's `systemctl enable --now` does.
        _install(secondary, guest_deb)
        installed = secondary.run(["systemctl", "is-active", "reconciler.service"], timeout=120).stdout.strip()
        assert installed == "inactive", f"{secondary.name}: after installing, reconciler.service is {installed}"
        secondary.check(["systemctl", "enable", "--now", "reconciler-shutdown", "reconciler"], timeout=1200)
        assert _active(secondary, "reconciler.service", "reconciler-shutdown.service")
        _from_package(secondary)
        wait_until(f"both nodes Ready after {secondary.name}'s new installation", lambda: all(
            _ready(n, head) for n in lab.nodes.values()), MOVE, poll=5.0)
        assert _settled(primary, secondary)
        lab.notes.append(f"runbook: {secondary.name} removed, purged, installed afresh and enabled under systemd")

        # Removal on the primary: domains, DRBD and LVs keep running; settings and state stay, also on purge.
        lvs_before = lv_bytes(primary)
        if not primary.systemd:
            primary.stop_daemon()   # what the package's prerm does where systemd runs (systemctl stop)
        primary.check([*DPKG, "--remove", "reconciler"], timeout=2700)
        assert not _exists(primary, "/usr/bin/reconciler")
        assert not _exists(primary, PACKAGE_PREFIX), f"{PACKAGE_PREFIX} is left after removal"
        primary.check([*DPKG, "--purge", "reconciler"], timeout=2700)
        for path in ("/etc/reconciler/reconciler.env", "/etc/reconciler/peer.key",
                     "/var/lib/reconciler/status.json"):
            assert _exists(primary, path), f"{path} is gone after apt purge"
        wait_until(f"{secondary.name} to see its peer's daemon gone", lambda: not any(
            p["reachable"] for p in _status_json(secondary).get("peers") or []), 600, poll=5.0)
        assert domain_id(primary, VM) == domid, "removing the package touched the domU"
        assert _running(primary)
        assert _synced(primary, "Primary")
        assert _synced(secondary, "Secondary")
        assert lv_bytes(primary) == lvs_before
        assert dm_bytes(primary) == backing

        # Back to the lab's own command (the checkout's), so that the node stays managed.
        primary.check(["ln", "-sfn", f"{paths.PROJECT}/.venv/bin/reconciler", "/usr/bin/reconciler"], timeout=60)
        start_daemon(primary)
        wait_until("both nodes Ready after the daemon is back", lambda: all(
            _ready(n, head) for n in lab.nodes.values()), MOVE, poll=5.0)
        assert domain_id(primary, VM) == domid, "the daemon's return restarted the domU"
    finally:
        if firewalled:
            for node in lab.nodes.values():
                with contextlib.suppress(LabError):
                    node.run(["nft", "delete", "table", "inet", FIREWALL], timeout=120)
    lab.notes.append(f"runbook: {version} on both nodes")
    lab.timings["scenario 14 (the runbook)"] = time.monotonic() - started



PROVISIONED = f"vm{PROVISIONED_ID}"
PROVISIONED_MINOR = 2
PROVISIONED_DEVICE = f"/dev/drbd{PROVISIONED_MINOR}"


def _argvs(node: Node, since: int) -> list[list[str]]:
    return [list(c["argv"]) for c in commands(node)[since:]]  # type: ignore[call-overload]


def _provisioned_vm_settled(primary: Node, secondary: Node) -> bool:
    here, there = replica(primary, PROVISIONED_MINOR), replica(secondary, PROVISIONED_MINOR)
    return (here == Replica("Connected", "Primary", "Secondary", "UpToDate", "UpToDate")
            and there == Replica("Connected", "Secondary", "Primary", "UpToDate", "UpToDate")
            and domain_id(primary, PROVISIONED) is not None and PROVISIONED not in domains(secondary)
            and _converged(primary) and _converged(secondary))


def _provisioned_roles(lab: Lab) -> tuple[Node, Node]:
    """(the node where vm102's DRBD is Primary, the other one)."""
    for node in lab.nodes.values():
        mine = replica(node, PROVISIONED_MINOR)
        if mine is not None and mine.role == "Primary":
            return node, next(n for n in lab.nodes.values() if n is not node)
    raise AssertionError(f"{PROVISIONED} has no Primary")


def _image_path(lab: Lab, node: Node) -> str:
    return f"{node.image_root}/root{PROVISIONED_ID}.tar"


@pytest.mark.timeout(3600)
def test_16_a_vm_installed_from_a_commit(lab: Lab) -> None:
    """One commit adds vm102 with `provision: {image: ...}`: the chain LVs, stripe, DRBD, XFS (labelled
    ``rprov-new``), the image copied in once under a private mount on the primary, the label ``rprov-done``, and a
    domU whose root file system is that XFS on the DRBD device boots (its init prints the image's token)."""
    started = time.monotonic()
    primary, secondary = _roles(lab)
    token = secrets.token_hex(8)
    rootimage.build(lab.image_dir / f"root{PROVISIONED_ID}.tar", token)
    marks = {n.name: len(commands(n)) for n in lab.nodes.values()}
    lab.repo.write_vm(PROVISIONED, provisioned_vm_yaml(_image_path(lab, primary), primary=primary.name))
    lab.repo.commit(f"lab: {PROVISIONED}, installed from an image by its first commit")
    console = f"/var/log/xen/console/guest-{PROVISIONED}.log"

    def booted() -> bool:
        shown = primary.run(["cat", console], timeout=60)
        return shown.rc == 0 and rootimage.MARKER + token in shown.stdout

    wait_until(f"{PROVISIONED} to boot from its provisioned root", booted, CONVERGE, poll=5.0)
    wait_until(f"{PROVISIONED} to settle on both nodes", lambda: _provisioned_vm_settled(primary, secondary), MOVE,
               poll=5.0)
    ran = {n.name: _argvs(n, marks[n.name]) for n in lab.nodes.values()}
    device = PROVISIONED_DEVICE
    runs = [(name, a) for name, argvs in ran.items() for a in argvs if "provision-run" in a]
    assert len(runs) == 1, f"the image must be copied exactly once: {runs}"
    assert runs[0][0] == primary.name, runs
    assert runs[0][1][0] == "unshare", runs
    here = ran[primary.name]
    mkfs = [a for argvs in ran.values() for a in argvs if a[0] == "mkfs.xfs" and device in a]
    assert len(mkfs) == 1, f"XFS must be made exactly once on {device}: {mkfs}"
    assert "rprov-new" in mkfs[0], mkfs
    labels = [a[2] for a in here if a[:2] == ["xfs_admin", "-L"]]
    assert labels == ["rprov-try1", "rprov-done"], labels
    done_at = here.index(["xfs_admin", "-L", "rprov-done", device])
    create_at = next(i for i, a in enumerate(here) if a[:2] == ["xl", "create"] and PROVISIONED in " ".join(a))
    assert done_at < create_at, "the domain started before the provisioning was recorded as done"
    assert primary.check(["blkid", "-o", "value", "-s", "LABEL", device], timeout=60).strip() == "rprov-done"
    assert device not in primary.check(["cat", "/proc/mounts"], timeout=60), "dom0 still has the VM's disk mounted"
    wait_until(f"{PROVISIONED} to write records on its provisioned root",
               lambda: rootimage.ACK + "3" in primary.console_text(), MOVE, poll=5.0)
    # Never again: further passes on both nodes copy nothing.
    again = {n.name: len(commands(n)) for n in lab.nodes.values()}
    for node in lab.nodes.values():
        node.check(["reconciler", "reconcile-now"], timeout=120)
        _passes_after(node, 2, "after the provisioning")
    repeated = [a for n in lab.nodes.values() for a in _argvs(n, again[n.name])
                if "provision-run" in a or a[:2] == ["xfs_admin", "-L"] or a[0] == "mkfs.xfs"]
    assert not repeated, f"a finished provisioning was touched again: {repeated}"
    lab.notes.append(f"provisioning: {PROVISIONED} made, filled once from its image on {primary.name} and booted from "
                     f"{device} (token {token} on its console), writing records there")
    lab.timings["scenario 16 (installed from a commit)"] = time.monotonic() - started


MIGRATE_NAMES = (PROVISIONED, f"{PROVISIONED}--incoming", f"{PROVISIONED}--migratedaway")
_PROV_ACK = re.compile(r"lab-prov: ack (\d+)")
_PROV_BOOT = re.compile(r"lab-prov: booted from")


class AckClock:
    """Timestamps, on the host, each record vm102 announces on either node's serial console: the gaps between
    consecutive records show how long the domU stood still (its writer announces one record about every second)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> AckClock:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for node in self.lab.nodes.values():
                for match in _PROV_ACK.finditer(node.console_text()):
                    self.seen.setdefault(int(match.group(1)), now)
            self._stop.wait(0.2)

    def gaps(self, since: float, until: float) -> list[float]:
        """Seconds between consecutive records first seen within [since, until]."""
        numbers = sorted(n for n, t in self.seen.items() if since <= t <= until)
        return [self.seen[n] - self.seen[n - 1] for n in numbers if n - 1 in self.seen]


class MigrationSampler(Sampler):
    """A live migration's rules, sampled: the domU executes on at most one node (xl shows it on both while it
    moves, paused or suspended on one side), and two Primaries are counted, not refused (the window allows them)."""

    def __init__(self, lab: Lab) -> None:
        super().__init__(lab)
        self.two_primaries = 0
        self.on_both = 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            roles: list[str] = []
            executing: list[str] = []
            present: list[str] = []
            for node in self.lab.nodes.values():
                try:
                    mine = replica(node, PROVISIONED_MINOR)
                    states = domain_states(node)
                except LabError:
                    continue
                roles.append(mine.role if mine is not None else "")
                names = {n: s for n, s in states.items() if n in MIGRATE_NAMES}
                if names:
                    present.append(node.name)
                if any(running_state(s) for s in names.values()):
                    executing.append(f"{node.name}: {names}")
            if len(executing) > 1:
                self.violations.append(f"{PROVISIONED} executing on both nodes: {executing}")
            self.two_primaries += roles.count("Primary") > 1
            self.on_both += len(present) > 1
            self.samples += 1
            self._stop.wait(0.5)


def _allows_two_primaries(node: Node) -> bool:
    """The runtime allowance, as DRBD 8.4 shows the resource's net options (an option at its default, as ``no``
    is, may be left out)."""
    shown = node.check(["drbdsetup", "show", PROVISIONED], timeout=60)
    return re.search(r"^\s*allow-two-primaries\s+(yes|on|true)\s*;", shown, re.M) is not None


@pytest.mark.timeout(3600)
def test_17_live_migration(lab: Lab) -> None:
    """vm102 (scenario 16's, with no swap LVs: every disk it has is replicated) is allowed to move live, then a
    commit moves it to the other node: the daemons open the dual-primary window, `xl migrate` runs between the
    two dom0s over the lab's transport on the management link (received by `reconciler migrate-receive`), the
    source demotes and the window closes. The domU keeps running (no new boot, its records go on), executes on one
    node at a time, and afterwards one Primary is left and two primaries are allowed on neither node. Reports how
    long the domU's records stood still."""
    started = time.monotonic()
    source, target = _provisioned_roles(lab)
    image = _image_path(lab, source)
    lab.repo.write_vm(PROVISIONED, provisioned_vm_yaml(image, primary=source.name, live=True))
    head = lab.repo.commit(f"lab: {PROVISIONED} may move live")[:12]
    for node in lab.nodes.values():
        wait_until(f"{node.name} to apply the live-migration revision", lambda n=node: head in n.check(
            ["reconciler", "status"], timeout=120) and _converged(n), MOVE, poll=3.0)
    assert _provisioned_vm_settled(source, target)
    domid = domain_id(source, PROVISIONED)
    assert domid is not None
    boots = {n.name: len(_PROV_BOOT.findall(n.console_text())) for n in lab.nodes.values()}
    marks = {n.name: len(commands(n)) for n in lab.nodes.values()}
    sampler = MigrationSampler(lab)
    with AckClock(lab) as clock, sampler:
        wait_until("the domU to announce records before the move", lambda: len(clock.seen) >= 3, MOVE, poll=1.0)
        acked_before = max(clock.seen)
        committed = time.monotonic()
        lab.repo.write_vm(PROVISIONED, provisioned_vm_yaml(image, primary=target.name, live=True))
        lab.repo.commit(f"lab: move {PROVISIONED} live to {target.name}")

        def moved() -> bool:
            return (_provisioned_vm_settled(target, source)
                    and not set(MIGRATE_NAMES) & (domains(source) | domains(target)) - {PROVISIONED})

        wait_until(f"{PROVISIONED} to move live to {target.name}", moved, MOVE, poll=3.0)
        wait_until(f"the domU to announce records on {target.name}",
                   lambda: max(clock.seen) >= acked_before + 5 and _PROV_ACK.search(target.console_text()), MOVE,
                   poll=1.0)
        finished = time.monotonic()
    sampler.verify()
    ran = {n.name: commands(n)[marks[n.name]:] for n in lab.nodes.values()}
    migrations = [c for c in ran[source.name] if c["argv"][:2] == ["xl", "migrate"]]  # type: ignore[index]
    assert len(migrations) == 1, migrations
    assert migrations[0]["rc"] == 0, migrations
    argvs = [(name, c["argv"]) for name, cs in ran.items() for c in cs]
    starts = [(name, a) for name, a in argvs if a[:2] == ["xl", "create"]]  # type: ignore[index]
    assert not starts, f"a live migration must not start the domU anew: {starts}"
    stops = [(name, a) for name, a in argvs if a[:2] in (["xl", "shutdown"], ["xl", "destroy"])]  # type: ignore[index]
    assert not stops, f"a live migration must not stop the domU: {stops}"
    for node in lab.nodes.values():
        assert len(_PROV_BOOT.findall(node.console_text())) == boots[node.name], f"the domU booted on {node.name}"
        assert not _allows_two_primaries(node), f"{node.name}: two primaries still allowed after the migration"
    assert sampler.two_primaries > 0, "no sample saw the window's two Primaries: the move was not seen"
    log = source.daemon_log()
    assert "event=migration.begin" in log, "the source logged no migration"
    assert "event=migration.aborted" not in log, log[-3000:]
    assert "event=migration.held" not in log, log[-3000:]
    gaps = clock.gaps(committed, finished)
    assert len(gaps) >= 5, f"too few records around the move to time it: {gaps}"
    usual = sorted(gaps)[len(gaps) // 2]
    longest = max(gaps)
    seconds = float(migrations[0]["seconds"])  # type: ignore[arg-type]
    lab.figures["live migrations"] = lab.figures.get("live migrations", 0) + 1
    lab.notes.append(
        f"live migration: {PROVISIONED} from {source.name} to {target.name}; `xl migrate` took {seconds:.1f} s; the "
        f"domU's records stood still for at most {longest:.1f} s (usual gap {usual:.1f} s, so about "
        f"{longest - usual:.1f} s paused); {sampler.samples} samples, two Primaries in {sampler.two_primaries}, "
        f"xl's names on both nodes in {sampler.on_both}; records {acked_before} -> {max(clock.seen)}, no new boot")
    lab.timings["scenario 17 (live migration)"] = time.monotonic() - started

"""The soak: two daemons on the simulator through random, seeded sequences of commits and faults.

Each simulated node runs the real engine in process (as ``tests/daemon/daemonpair.py`` does), with one virtual
clock, peer status as the simulated management network allows it, and the desired state served by a real git
repository in the run's directory (each daemon has its own mirror and :class:`GitSource`, so an invalid revision
and a force-push are judged exactly as on a real node). The run is a sequence of *episodes*: random commits
(a new VM, growth, a switchover, a deletion with its explicit statement, an invalid revision, a force-push) and
random faults (transient, permanent and hanging commands, a daemon killed at a random command, a node crash or
reboot, a cut replication or management link, a failed disk, a clock jump), with random waits; then the faults
stop (links healed, nodes booted, command faults removed, a bad tip fixed) and the soak waits, up to a bound,
for every resource to converge or report a reason.

After every step it checks:

* the data oracle (no acknowledged write lost, never two Primaries outside a live migration, a domain never on
  two nodes);
* no destructive command (``lvremove``, ``wipefs -a``, ``mkfs``, ``drbdadm create-md``, a forced promotion)
  succeeded twice on the same object, unless the desired state asked again (a forced promotion may repeat
  after a new loss of the peer);
* no daemon ever put an invalid revision, or a rewritten one nobody allowed, in force;
* after the faults stop: both daemons converged, or settled with every unhealthy resource giving a reason,
  within the bound.

The seed decides everything (the git commits carry simulated dates, so even their ids replay).
``python -m reconciler.sim.soak --help``; ``scripts/soak`` runs it from a checkout. docs/soak.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.daemon.loop.gating import BootGate
from reconciler.daemon.loop.real_engine import RealEngine
from reconciler.daemon.loop.reconcile import PassContext, Reconciler
from reconciler.daemon.node.control import ControlState
from reconciler.daemon.records.logs import LOGGER_NAME
from reconciler.daemon.schedule.backoff import Backoff
from reconciler.daemon.schedule.clock import VirtualClock
from reconciler.daemon.schedule.liveness import Liveness
from reconciler.daemon.schedule.next_pass import Schedule
from reconciler.host.base import DEFAULT_TIMEOUT, CommandResult, Host, HostWrapper
from reconciler.metrics.state import MetricsState
from reconciler.model.status import PeerStatus
from reconciler.sim import drbd, faults, oracle, xen
from reconciler.sim.host import SimHost
from reconciler.sim.state import SimCluster, State, can_talk, content, resolve_device
from reconciler.source.gitsource import GitSource
from reconciler.source.mirror import Mirror

NODES = ("erdbeere", "himbeere")
VGS = ("vg-sda", "vg-sdb", "vg-sdc")
GIB = 1024**3
PASS_EVERY = 5.0  # the daemon's progress interval
DRIFT_EVERY = 300.0  # the daemon's drift interval: a converged node looks again this often (or when woken)
MAX_STEP = 10.0  # simulated time moves at most this far at once (the DRBD and domain watches notice changes then)
STABLE_S = 120.0  # a settled, unchanged status for this long ends the wait after the faults stop
EPOCH = 1_780_000_000
MAX_VMS = 6  # VMs present at once (each node must be able to run all of them after a failover)
EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "desired-state"

FAULT_KINDS = ("transient", "permanent", "hang", "kill", "crash", "reboot", "partition", "partition-management",
               "disk-fail", "clock-jump")
COMMIT_KINDS = ("new-vm", "grow", "switchover", "delete", "invalid", "force-push")
FAULT_WEIGHTS = {"transient": 5, "permanent": 3, "hang": 3, "kill": 5, "crash": 4, "reboot": 3, "partition": 3,
                 "partition-management": 3, "disk-fail": 1, "clock-jump": 2}
COMMIT_WEIGHTS = {"new-vm": 3, "grow": 3, "switchover": 4, "delete": 2, "invalid": 2, "force-push": 2}
# Programs a command fault picks from (what the engine runs while observing and acting).
FAULT_PROGRAMS = (("lvs",), ("lvcreate",), ("lvextend",), ("lvremove",), ("dmsetup",), ("drbdadm",),
                  ("drbdsetup",), ("xl",), ("xl", "create"), ("xl", "shutdown"), ("mkfs.xfs",), ("wipefs",),
                  ("blkid",), ("drbdadm", "primary"), ("drbdadm", "adjust"), ("drbdadm", "up"))
# The steps of a live migration a command fault may hit instead (drawn from the run's second sequence, below).
MIGRATION_PROGRAMS = (("xl", "migrate"), ("drbdadm", "net-options"), ("drbdadm", "secondary"))
MIGRATION_FAULT_SHARE = 0.3  # of the command faults while a VM that migrates live is present
LIVE_SHARE = 0.5  # of the VMs that allow live migration
LIVE_SWITCH_SHARE = 0.15  # of the episode's steps preceded by a switchover of such a VM (its fault hits the window)
UNDEFINED_SHARE = 0.2  # of those switchovers whose `xl migrate` ends in xl's undefined state
OPERATOR_S = 60.0  # how soon the operator answers a held migration (well inside the oracle's grace for a window)
TRANSPORT = "ssh -o BatchMode=yes"  # each daemon's RECONCILER_MIGRATE_TRANSPORT

FENCE = """    power_fence:
      off: [/usr/sbin/fence_lab, --action=off, --plug={node}]
      status: [/usr/sbin/fence_lab, --action=status, --plug={node}]
      delay: 15
"""

GIT_ENV = {"GIT_AUTHOR_NAME": "soak", "GIT_AUTHOR_EMAIL": "soak@example.invalid", "GIT_COMMITTER_NAME": "soak",
           "GIT_COMMITTER_EMAIL": "soak@example.invalid", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


class DaemonKilled(BaseException):
    """A daemon killed with SIGKILL in the middle of a pass: nothing after this point runs."""


class SoakError(RuntimeError):
    """The soak could not set up its cluster (not a finding about the product)."""


# --- time and the host seam -------------------------------------------------------------------


class NodeClock:
    """A node's clock: the shared virtual clock, plus the steps its wall clock took (monotonic time never jumps)."""

    def __init__(self, base: VirtualClock) -> None:
        self.base = base
        self.offset = 0.0

    def monotonic(self) -> float:
        return self.base.monotonic()

    def time(self) -> float:
        return self.base.time() + self.offset


class KillableHost(HostWrapper):
    """The host seam of a daemon that SIGKILL may hit: armed with a fuse of N commands, it raises
    :class:`DaemonKilled` before the N-th command runs or right after it ran (its effect done, its answer lost).

    Armed to cut short, a kill that hits ``mkfs.xfs`` leaves what mkfs.xfs leaves when it dies midway: its
    superblock written (the command logged as run) with ``sb_inprogress`` still set (``cut`` marks it so)."""

    def __init__(self, inner: Host, cut: Callable[[Sequence[str]], None]) -> None:
        super().__init__(inner)
        self.cut = cut
        self.fuse: int | None = None
        self.after = False
        self.cut_short = False
        self.fired = False

    def arm(self, commands: int, *, after: bool, cut_short: bool = False) -> None:
        self.fuse, self.after, self.cut_short, self.fired = commands, after, cut_short, False

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        if self.fuse is not None:
            self.fuse -= 1
            if self.fuse <= 0:
                self.fuse = None
                self.fired = True
                if not self.after:
                    raise DaemonKilled(f"killed before {' '.join(argv)}")
                result = self._inner.run(argv, timeout=timeout, stdin=stdin)
                if self.cut_short and result.ok and tuple(argv[:1]) == ("mkfs.xfs",):
                    self.cut(argv)
                    raise DaemonKilled(f"killed during {' '.join(argv)} (its superblock still says in progress)")
                raise DaemonKilled(f"killed after {' '.join(argv)}")
        return self._inner.run(argv, timeout=timeout, stdin=stdin)


# --- the desired state and its repository -----------------------------------------------------


@dataclass
class Vm:
    id: int
    primary: str
    size_g: int
    layout: str = "linear"
    vg: str = "vg-sda"
    lifecycle: str = "present"
    live: bool = False

    @property
    def name(self) -> str:
        return f"vm{self.id}"

    def yaml(self) -> str:
        minor = self.id - 100
        lines = [f"id: {self.id}", f"nodes: [{', '.join(NODES)}]", f"primary: {self.primary}",
                 f"lifecycle: {self.lifecycle}"]
        if self.lifecycle == "deleted":
            lines.append(f"confirm_delete: {self.name}")
        vgs = ", ".join(VGS) if self.layout == "dm-striped" else self.vg
        if self.layout == "dm-striped":
            lines += ["storage:", "  layout: dm-striped", f"  volume_groups: [{vgs}]", "  stripes: 3",
                      "  chunk_sectors: 64", f"  size: {self.size_g}G"]
        else:
            lines += ["storage:", "  layout: linear", f"  volume_groups: [{vgs}]", f"  size: {self.size_g}G"]
        # Swap LVs are local to each node: a VM that moves live has none (its swapped-out memory would not move).
        lines += ["swap:", "  volume_groups: []"] if self.live else ["swap:", "  size: 1G", f"  volume_groups: [{vgs}]"]
        lines += ["drbd:", f"  minor: {minor}", f"  port: {7788 + minor}", "filesystem: xfs",
                  "domain:", "  memory: 1G", "  vcpus: 1", "  bootloader: pygrub",
                  "  vifs:", f'    - mac: "00:16:3e:00:{self.id // 256:02x}:{self.id % 256:02x}"',
                  f"  live_migration: {'true' if self.live else 'false'}", "  allow_restart: true"]
        return "\n".join(lines) + "\n"


def cluster_yaml(failover: str) -> str:
    text = (EXAMPLE_DIR / "cluster.yaml").read_text()
    text = text.replace('drbd_version: "9"', 'drbd_version: "8.4"')
    text = text.replace("fencing_policy: resource-only", "fencing_policy: resource-and-stonith")
    for node in NODES:
        anchor = f"  {node}:\n"
        text = text.replace(anchor, anchor + FENCE.format(node=node), 1)
    return text.replace("\nguards:", f"\n  failover: {failover}\n\nguards:", 1)


INVALID_EDITS = (
    ("memory: 1G", "memory: lots"),  # a size that is not one
    ("lifecycle: present", "lifecycle: gone"),  # a value outside its choices
    ("vcpus: 1", "vcpus: [1"),  # YAML that does not parse
    ("filesystem: xfs", "filesystem: xfs\ncolour: blue"),  # a key the schema does not know
)


class Repo:
    """The desired-state repository the daemons fetch from (a local git repository; a force-push is a reset)."""

    def __init__(self, path: Path, failover: str) -> None:
        self.path = path
        self.failover = failover
        path.mkdir(parents=True)
        (path / "vms").mkdir()
        self.git("init", "-q", "-b", "main")
        self.git("config", "gc.auto", "0")  # keep the commits a force-push dropped: the checks ask about them

    def git(self, *args: str, when: float = EPOCH) -> str:
        env = {**os.environ, **GIT_ENV, "GIT_AUTHOR_DATE": f"@{int(when)} +0000",
               "GIT_COMMITTER_DATE": f"@{int(when)} +0000"}
        out = subprocess.run(["git", "-C", str(self.path), *args], env=env, capture_output=True, text=True,  # noqa: S607
                             check=False, timeout=60)
        if out.returncode != 0:
            raise SoakError(f"git {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout.strip()

    def write(self, vms: dict[str, Vm], broken: tuple[str, str, str] | None = None) -> None:
        (self.path / "cluster.yaml").write_text(cluster_yaml(self.failover))
        for old in (self.path / "vms").iterdir():
            old.unlink()
        for vm in vms.values():
            text = vm.yaml()
            if broken is not None and broken[0] == vm.name:
                text = text.replace(broken[1], broken[2], 1)
            (self.path / "vms" / f"{vm.name}.yaml").write_text(text)

    def commit(self, message: str, when: float) -> str:
        self.git("add", "-A", when=when)
        self.git("commit", "-q", "--allow-empty", "-m", message, when=when)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def descends(self, sha: str, ancestor: str) -> bool:
        """Whether ``sha`` descends from (or is) ``ancestor`` (commits a force-push dropped stay in the store)."""
        env = {**os.environ, **GIT_ENV}
        out = subprocess.run(["git", "-C", str(self.path), "merge-base", "--is-ancestor", ancestor, sha],  # noqa: S607
                             env=env, capture_output=True, check=False, timeout=60)
        return out.returncode == 0


# --- the daemons ------------------------------------------------------------------------------


@dataclass
class Daemon:
    rec: Reconciler
    host: KillableHost
    mirror: Mirror
    boot_id: str
    fetched: str = ""
    seen: set[str] = field(default_factory=set)
    schedule: Schedule = field(default_factory=Schedule)
    watched: str = ""  # what the DRBD and domain watches saw last (a change wakes the daemon at once)


@dataclass
class Figures:
    steps: int = 0
    ticks: int = 0
    passes: int = 0
    episodes: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    commits: Counter[str] = field(default_factory=Counter)
    destructive: Counter[str] = field(default_factory=Counter)
    migrations: Counter[str] = field(default_factory=Counter)  # live, aborted, held
    converge: list[float] = field(default_factory=list)  # after the last fault: both converged
    settled: list[float] = field(default_factory=list)  # after the last fault: settled with reasons
    reasons: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    simulated_s: float = 0.0
    wall_s: float = 0.0
    interrupted: bool = False
    harness_errors: list[str] = field(default_factory=list)

    def add(self, other: Figures) -> None:
        """Pool another seed's figures into these (the summary of a run of several seeds)."""
        self.steps += other.steps
        self.ticks += other.ticks
        self.passes += other.passes
        self.episodes += other.episodes
        for mine, theirs in ((self.faults, other.faults), (self.commits, other.commits),
                             (self.destructive, other.destructive), (self.reasons, other.reasons),
                             (self.migrations, other.migrations)):
            mine.update(theirs)
        self.converge += other.converge
        self.settled += other.settled
        self.violations += other.violations
        self.harness_errors += other.harness_errors
        self.simulated_s += other.simulated_s
        self.wall_s += other.wall_s
        self.interrupted = self.interrupted or other.interrupted


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _destructive(argv: Sequence[str]) -> str | None:
    """The kind of a destructive command, or None."""
    if not argv:
        return None
    program = os.path.basename(argv[0])
    if program == "lvremove":
        return "lvremove"
    if program == "wipefs" and any(a in ("-a", "--all") for a in argv[1:]):
        return "wipefs"
    if program.startswith("mkfs") or program == "mkswap":
        return "mkfs"
    if program == "drbdadm" and len(argv) > 1 and argv[1] == "create-md":
        return "create-md"
    if program in ("drbdadm", "drbdsetup") and "primary" in argv[1:3] and any(a.startswith("--force") for a in argv):
        return "forced-promotion"
    return None


class Soak:
    """One seeded run. :meth:`run` returns the figures; ``figures.violations`` must stay empty."""

    def __init__(self, directory: Path, seed: int, *, failover: str = "random", fault_budget: int = 20,
                 step_budget: int | None = None, converge_bound: float = 3600.0, wall_budget: float | None = None,
                 log: Any = None) -> None:
        self.dir = directory
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311  (a seeded simulation, not cryptography)
        # Live migration's draws (which VMs allow it, which command faults hit its steps) come from a sequence of
        # their own, so that the run's sequence draws what it drew before they were added.
        self.live_rng = random.Random(f"live {seed}")  # noqa: S311
        self.stopped_migrations: set[tuple[str, str, str]] = set()  # (vm, revision, aborted|held) counted
        # Drawn apart from the run's sequence, so that the replay command (which names the mode drawn) replays it.
        drawn = random.Random(f"failover {seed}").choice(("automatic", "manual"))  # noqa: S311
        self.failover = failover if failover != "random" else drawn
        self.fault_budget = fault_budget
        self.step_budget = step_budget
        self.bound = converge_bound
        self.wall_budget = wall_budget
        self.log = log
        self.clock = VirtualClock(float(EPOCH))
        self.node_clocks = {n: NodeClock(self.clock) for n in NODES}
        self.daemons: dict[str, Daemon] = {}
        self.figures = Figures()
        self.vms: dict[str, Vm] = {}
        self.next_id = 102
        self.models: dict[str, dict[str, Vm]] = {}  # commit -> the desired VMs it holds
        self.invalid: set[str] = set()  # commits whose desired state does not validate
        self.applied: dict[str, str] = {}  # node -> the revision its daemon had in force at the last check
        self.allowed: set[str] = set()
        self.invalid_tip: str | None = None
        self.rewritten: tuple[str, str] | None = None  # (the tip before the force-push, the rewritten tip)
        self.recoveries: list[tuple[float, str, tuple[str, ...]]] = []  # (due, what, args)
        self.held_kept: dict[str, str] = {}  # vm -> the node whose instance the operator keeps (renamed back)
        self.destroyed: Counter[tuple[str, ...]] = Counter()
        self.cut_short: Counter[tuple[str, ...]] = Counter()  # mkfs runs a kill left unfinished: each allows a redo
        self.redo_wipes: Counter[tuple[str, ...]] = Counter()  # the wipes those redos run
        self.losses = 0  # node crashes and full partitions so far: a forced promotion may follow each
        self.log_offset = 0
        self.mutating = 0  # mutating commands seen in the simulator's log
        self.node_passes: Counter[str] = Counter()
        self.fresh_after: Counter[str] = Counter()  # a status counts only from a pass after this many
        self.failed_disks: set[str] = set()
        self.started_wall = time.monotonic()

    # -- set-up ----------------------------------------------------------------------------------
    @property
    def cluster(self) -> SimCluster:
        return SimCluster(self.dir / "sim")

    def state(self) -> State:
        return self.cluster.read()

    def say(self, text: str) -> None:
        if self.log is not None:
            print(f"[t={self.clock.time() - EPOCH:9.0f}s] {text}", file=self.log, flush=True)

    def setup(self) -> None:
        SimCluster.init(self.dir / "sim", list(NODES), dict.fromkeys(VGS, 400 * GIB), drbd_version="8.4")
        with self.cluster.transaction() as state:
            for node in NODES:
                drbd.set_fence_peer(state, node, "stonith")
        self.repo = Repo(self.dir / "repo", self.failover)
        self.vms = {"vm100": Vm(100, "erdbeere", 4, "dm-striped", live=self.live_rng.random() < LIVE_SHARE),
                    "vm101": Vm(101, "himbeere", 4, "dm-striped", live=self.live_rng.random() < LIVE_SHARE)}
        self.repo.write(self.vms)
        self.models[self.repo.commit("Two VMs", self.clock.time())] = copy.deepcopy(self.vms)
        for node in NODES:
            self.start(node)
        for _ in range(60):
            self.tick(600.0, every=True)
            if self.converged():
                break
        if not self.converged():
            raise SoakError("the initial cluster did not converge: " + self.describe())
        self.check()

    def start(self, node: str) -> Daemon:
        """A daemon (re)starting on ``node``: memory empty, its state directory (and git mirror) kept."""
        state_dir = self.dir / "state" / node
        state_dir.mkdir(parents=True, exist_ok=True)
        mirror = Mirror(state_dir, str(self.repo.path), "main")
        host = KillableHost(SimHost(self.dir / "sim", node), lambda argv: self.leave_unfinished(node, argv))
        rec = Reconciler(node=node, state_dir=state_dir, source=GitSource(mirror, state_dir),
                         engine=RealEngine(host), clock=self.node_clocks[node],
                         liveness=Liveness(self.node_clocks[node].monotonic),
                         metrics=MetricsState(node, clock=self.node_clocks[node].time),
                         migrate_transport=TRANSPORT)
        boot_id = str(self.state()["nodes"][node].get("boot_id", ""))
        # The schedule's backoff jitter, seeded too: an unseeded one moved the passes of a replay in time.
        jitter = random.Random(f"backoff {self.seed} {node} {self.figures.steps}")  # noqa: S311
        schedule = Schedule()
        schedule.backoff = Backoff(base=schedule.backoff.base, cap=schedule.backoff.cap, rng=jitter)
        self.daemons[node] = Daemon(rec, host, mirror, boot_id, schedule=schedule)
        return self.daemons[node]

    def leave_unfinished(self, node: str, argv: Sequence[str]) -> None:
        device = argv[-1]
        with self.cluster.transaction() as state:
            key = resolve_device(state, node, device)
            signature = content(state, key).get("signature") if key is not None else None
            if not isinstance(signature, dict) or signature.get("type") != "xfs":
                raise SoakError(f"{' '.join(argv)} ran on {node}, but {device} shows no XFS to leave unfinished")
            signature["inprogress"] = True
        # Each cut allows one redo: the mkfs once more, and the wipe before it (the first wipe is allowed anyway).
        self.cut_short[(node, *argv)] += 1
        self.redo_wipes[(node, "wipefs", "-a", device)] += 1

    # -- one pass on each node -------------------------------------------------------------------
    def up(self, node: str) -> bool:
        return bool(self.state()["nodes"][node].get("up"))

    def in_force(self, node: str) -> str | None:
        daemon = self.daemons.get(node)
        loaded = daemon.rec.source.in_force if daemon is not None else None
        return loaded.info.sha if loaded is not None else None

    def step(self, node: str) -> None:
        daemon = self.daemons[node]
        head = self.repo.head()
        if daemon.fetched != head:
            daemon.mirror.fetch()  # the repository's server is on another network: always reachable
            daemon.fetched = head
        state = self.state()
        peers = []
        for peer in (n for n in NODES if n != node):
            reachable = can_talk(state, node, peer, link="management_cut") and peer in self.daemons
            if reachable:
                daemon.seen.add(peer)
            answering = self.daemons[peer].rec if reachable else None
            # What the peer's status server answers: its revision, its takeovers and its live migrations' phases.
            peers.append(PeerStatus(node=peer, reachable=reachable,
                                    applied_revision=self.in_force(peer) if reachable else None, ready=reachable,
                                    error="" if reachable else "connection refused",
                                    checked_at=self.node_clocks[node].time(),
                                    takeovers=answering.taken_over() if answering is not None else (),
                                    migrations=answering.migrations.peer_report() if answering is not None else ()))
        gate = BootGate(fetched=True, fetch_deadline_passed=True, peers_seen=frozenset(daemon.seen))
        control = ControlState(allowed_revisions=frozenset(self.allowed))
        split_brain = {p.node: dict(self.daemons[p.node].rec.split_brain_records) for p in peers if p.reachable}
        backing = {p: dict(self.daemons[p].rec.backing_sizes) for p in split_brain}
        try:
            result = daemon.rec.run_pass(control, PassContext(peers=tuple(peers), gate=gate,
                                                              peer_split_brain=split_brain, peer_backing=backing))
            status = daemon.rec.publish(control, tuple(peers), None, None, result)
            now = self.clock.time()
            daemon.schedule.after(result, now, has_revision=result.revision is not None,
                                  waiting=bool(status.boot_gate), progress_interval=PASS_EVERY,
                                  drift_interval=DRIFT_EVERY)
            self.figures.passes += 1
            self.node_passes[node] += 1
            self.count_stopped_migrations(status.migrations)
        except DaemonKilled as killed:
            self.figures.faults["kill"] += 1
            self.say(f"kill -9 of the daemon on {node} ({killed})")
            del self.daemons[node]  # systemd starts it again before the next pass

    def count_stopped_migrations(self, migrations: Sequence[Any]) -> None:
        """Live migrations that ended aborted or held (each attempt once: a VM's migration at one revision)."""
        for found in migrations:
            stop = "aborted" if found.phase in ("aborting", "aborted") else "held" if found.phase == "held" else ""
            if stop and (found.vm, found.revision, stop) not in self.stopped_migrations:
                self.stopped_migrations.add((found.vm, found.revision, stop))
                self.figures.migrations[stop] += 1
                self.say(f"live migration of {found.vm} {stop}: {found.reason}")
                if stop == "held":
                    self.later(OPERATOR_S, "resolve-held", found.vm)

    def wake(self, reason: str = "drbd") -> None:
        """Something happened that the daemons' watches report at once (a fault, a commit, a recovery)."""
        now = self.clock.time()
        for daemon in self.daemons.values():
            daemon.schedule.woken(now, {reason})

    def next_event(self) -> float:
        now = self.clock.time()
        due = [d.schedule.next_due for d in self.daemons.values()] + [r[0] for r in self.recoveries]
        due += [now + PASS_EVERY] if len(self.daemons) < len(NODES) else []  # a daemon that systemd restarts
        return min([now + MAX_STEP, *due])

    def tick(self, seconds: float | None = None, *, every: bool = False) -> None:
        """Time passes (guests write, resyncs move) up to the next pass due (or ``seconds``), then every daemon
        due runs one (``every``: each daemon whose node is up, as in the initial bring-up)."""
        now = self.clock.time()
        step = seconds if seconds is not None else max(0.5, self.next_event() - now)
        self.clock.advance(step)
        self.cluster.advance(step)
        self.figures.ticks += 1
        self.run_recoveries(self.clock.time())
        state = self.state()
        for node in NODES:
            ns = state["nodes"][node]
            if not ns.get("up"):
                self.daemons.pop(node, None)
                continue
            daemon = self.daemons.get(node)
            if daemon is None or daemon.boot_id != str(ns.get("boot_id", "")):
                daemon = self.start(node)  # restarted by systemd, or the node rebooted (a power fence, say)
            watched = json.dumps([ns.get("drbd", {}).get("event_seq"),
                                  sorted((k, v.get("state")) for k, v in ns.get("domains", {}).items())])
            if watched != daemon.watched:
                daemon.watched = watched
                daemon.schedule.woken(self.clock.time(), {"drbd"})
            if every or daemon.schedule.next_due <= self.clock.time():
                self.step(node)
        self.check()

    def wait(self, seconds: float) -> None:
        end = self.clock.time() + seconds
        while self.clock.time() < end:
            self.tick(max(0.5, min(end, self.next_event()) - self.clock.time()))

    # -- invariants ------------------------------------------------------------------------------
    def violate(self, text: str) -> None:
        line = f"[t={self.clock.time() - EPOCH:.0f}s] {text}"
        if line not in self.figures.violations:
            self.figures.violations.append(line)
            self.say("VIOLATION " + text)

    def check(self) -> None:
        state = self.state()
        for violation in oracle.check(state):
            text = f"oracle {violation}"
            if not any(text in v for v in self.figures.violations):
                self.violate(text)
        self.check_destructive()
        for node in self.daemons:
            sha = self.in_force(node)
            before = self.applied.get(node)
            if sha is None or sha == before:
                continue
            self.applied[node] = sha
            if sha in self.invalid:
                self.violate(f"{node} put the invalid revision {sha[:12]} in force")
            elif before is not None and sha not in self.allowed and not self.repo.descends(sha, before):
                # A rewrite a node never saw (its revision in force is still an ancestor) is no force-push for it.
                self.violate(f"{node} put {sha[:12]} in force, which does not descend from {before[:12]}, "
                             "without an allow-revision")

    def check_destructive(self) -> None:
        path = self.dir / "sim" / "commands.log"
        with open(path, encoding="utf-8") as handle:
            handle.seek(self.log_offset)
            text = handle.read()
        complete = text[: text.rfind("\n") + 1]
        self.log_offset += len(complete.encode())
        for line in complete.splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            self.mutating += bool(entry.get("mutating"))
            argv = [str(a) for a in entry.get("argv", [])]
            if argv[:2] == ["xl", "migrate"] and entry.get("exit") == 0:
                self.figures.migrations["live"] += 1
                self.say(f"live migration on {entry.get('node')}: {' '.join(argv)}")
            kind = _destructive(argv)
            if kind is None or entry.get("exit") != 0:
                continue
            node = str(entry.get("node"))
            self.figures.destructive[kind] += 1
            key = (node, *argv) if kind != "forced-promotion" else (node, *argv, f"loss {self.losses}")
            self.destroyed[key] += 1
            if self.destroyed[key] > max(1 + self.cut_short[key], self.redo_wipes[key]):
                self.violate(f"destructive step repeated on {node}: {' '.join(argv)} "
                             f"({self.destroyed[key]} times)")

    def statuses(self) -> list[Any]:
        """Both nodes' statuses, each from a pass after the faults stopped (else nothing)."""
        found = []
        for node in NODES:
            daemon = self.daemons.get(node)
            status = daemon.rec.status if daemon is not None else None
            if status is None or status.last_pass is None or self.node_passes[node] <= self.fresh_after[node]:
                return []
            found.append(status)
        return found

    def converged(self) -> bool:
        found = self.statuses()
        return bool(found) and all(s.last_pass.outcome == "converged" for s in found)

    def settled(self) -> tuple[str, ...] | None:
        """What both nodes report when each either converged or says why not (None: still working)."""
        found = self.statuses()
        if not found:
            return None
        signature: list[str] = []
        for status in found:
            if status.last_pass.outcome == "error":
                return None
            for res in status.resources:
                if res.phase == "ready":
                    continue
                if not res.reason:
                    return None
                signature.append(f"{status.node} {res.key} {res.phase}: {res.reason}")
        return tuple(signature)

    def describe(self) -> str:
        parts = []
        for node in NODES:
            daemon = self.daemons.get(node)
            status = daemon.rec.status if daemon is not None else None
            if status is None or status.last_pass is None:
                parts.append(f"{node}: no daemon" if daemon is None else f"{node}: no pass yet")
                continue
            bad = [f"{r.key} {r.phase} {r.reason!r}" for r in status.resources if r.phase != "ready"]
            parts.append(f"{node}: {status.last_pass.outcome} {status.last_pass.errors[:2]} {bad[:4]}")
        return "; ".join(parts)

    # -- commits ---------------------------------------------------------------------------------
    def present(self) -> list[Vm]:
        return [vm for vm in self.vms.values() if vm.lifecycle == "present"]

    def publish(self, message: str, kind: str) -> str:
        self.repo.write(self.vms)
        sha = self.repo.commit(message, self.clock.time())
        self.models[sha] = copy.deepcopy(self.vms)
        self.figures.commits[kind] += 1
        self.say(f"commit {sha[:12]} {kind}: {message}")
        self.wake("revision")
        return sha

    def commit(self) -> None:
        kind = self.rng.choices(COMMIT_KINDS, weights=[COMMIT_WEIGHTS[k] for k in COMMIT_KINDS])[0]
        if self.invalid_tip is not None or self.rewritten is not None:
            kind = "fix"  # the operator repairs the branch before anything else
        present = self.present()
        if kind == "fix":
            self.fix_branch()
        elif kind == "new-vm" and len(present) < MAX_VMS:
            vm = Vm(self.next_id, self.rng.choice(NODES), self.rng.randint(1, 3), vg=self.rng.choice(VGS),
                    live=self.live_rng.random() < LIVE_SHARE)
            self.next_id += 1
            self.vms[vm.name] = vm
            self.publish(f"New VM {vm.name} on {vm.primary}", kind)
        elif kind == "grow" and present:
            vm = self.rng.choice(present)
            vm.size_g += 1
            self.publish(f"Grow {vm.name} to {vm.size_g}G", kind)
        elif kind == "switchover" and present:
            vm = self.rng.choice(present)
            vm.primary = next(n for n in NODES if n != vm.primary)
            self.publish(f"Move {vm.name} to {vm.primary}", kind)
        elif kind == "delete" and len(present) > 1:
            vm = self.rng.choice(present)
            vm.lifecycle = "deleted"
            self.failed_disks = {d for d in self.failed_disks if not d.endswith(f"/{vm.name}")}
            self.publish(f"Delete {vm.name}", kind)
        elif kind == "invalid" and present:
            vm = self.rng.choice(present)
            old, new = self.rng.choice(INVALID_EDITS)
            self.repo.write(self.vms, (vm.name, old, new))
            sha = self.repo.commit(f"Break {vm.name}", self.clock.time())
            self.invalid.add(sha)
            self.invalid_tip = sha
            self.wake("revision")
            self.figures.commits[kind] += 1
            self.say(f"commit {sha[:12]} invalid: {vm.name} {new!r}")
        elif kind == "force-push":
            self.force_push()
        else:
            self.wait(self.rng.choice((5.0, 30.0)))

    def live_switchover(self) -> None:
        """A switchover of a VM that migrates live, right before the step's fault (which then hits the window)."""
        live = [vm for vm in self.present() if vm.live]
        if not live or self.invalid_tip is not None or self.rewritten is not None:
            return
        vm = self.live_rng.choice(live)
        source, vm.primary = vm.primary, next(n for n in NODES if n != vm.primary)
        if self.live_rng.random() < UNDEFINED_SHARE and self.up(source):
            with self.cluster.transaction() as state:
                faults.migrate_undefined(state, source)  # its next `xl migrate` fails in the final handshake
            self.figures.faults["migrate-undefined"] += 1
            self.say(f"fault migrate-undefined on {source}")
        self.publish(f"Move {vm.name} to {vm.primary} (live)", "live-switchover")

    def resolve_held(self, name: str) -> None:
        """The operator's answer to a held migration (docs/operations.md, "Held"): keep one instance (the
        target's, unless only the source's is left), `xl destroy` the other, `xl rename` the kept one back and
        `xl unpause` it, demote the node that does not run it. A step that cannot be done now (a node down, a
        command failing) is tried again later, from where it stopped."""
        state = self.state()
        found = {}
        for node in NODES:
            for suffix in (xen.INCOMING_SUFFIX, xen.MIGRATED_AWAY_SUFFIX):
                if self.up(node) and name + suffix in state["nodes"][node].get("domains", {}):
                    found[node] = name + suffix
        keep = self.held_kept.get(name)
        if found:
            if keep not in found:
                keep = next((n for n, d in found.items() if d.endswith(xen.INCOMING_SUFFIX)), next(iter(found)))
            other = next(n for n in NODES if n != keep)
            if other in found and not SimHost(self.dir / "sim", other).run(["xl", "destroy", found[other]]).ok:
                self.later(30.0, "resolve-held", name)
                return
            if not SimHost(self.dir / "sim", keep).run(["xl", "rename", found[keep], name]).ok:
                self.later(30.0, "resolve-held", name)
                return
            self.held_kept[name] = keep
        elif keep is None or not self.up(keep) or name not in state["nodes"][keep].get("domains", {}):
            self.held_kept.pop(name, None)
            return  # nothing of xl's names left, or the kept domain since gone (a crash took them)
        other = next(n for n in NODES if n != keep)
        ok = SimHost(self.dir / "sim", keep).run(["xl", "unpause", name]).ok
        if self.up(other):
            ok = SimHost(self.dir / "sim", other).run(["drbdadm", "secondary", name]).ok and ok
        self.say(f"operator: held migration of {name} resolved, kept on {keep}" + ("" if ok else " (a step failed)"))
        if ok:
            del self.held_kept[name]
        else:
            self.later(30.0, "resolve-held", name)

    def force_push(self) -> None:
        head = self.repo.head()
        # Counted, not guessed from the models seen: an amended first commit is a second model without a parent.
        has_parent = int(self.repo.git("rev-list", "--count", "HEAD")) > 1
        parent = self.repo.git("rev-parse", "HEAD~1") if has_parent else None
        valid = parent in self.models and parent not in self.invalid
        if parent is not None and self.rng.random() < 0.5 and valid:  # never roll back onto an invalid commit
            self.repo.git("reset", "-q", "--hard", "HEAD~1")  # a rollback of the last commit
            sha = self.repo.commit("Rewritten: " + self.repo.git("log", "-1", "--format=%s", "HEAD"),
                                   self.clock.time() + 1)
            self.models[sha] = copy.deepcopy(self.models[parent])
            what = "rollback"
        else:
            self.repo.git("commit", "-q", "--amend", "--allow-empty", "-m", "Amended", when=self.clock.time() + 1)
            sha = self.repo.head()
            self.models[sha] = copy.deepcopy(self.models[head])
            what = "amend"
        self.rewritten = (head, sha)
        self.wake("revision")
        self.figures.commits["force-push"] += 1
        self.say(f"force-push ({what}) {head[:12]} -> {sha[:12]}")

    def fix_branch(self) -> None:
        """The operator's answer: a fixing commit on top of an invalid tip; after a force-push, either the lost
        commits pushed back or the rewritten commit allowed on every node (docs/operations.md)."""
        if self.rewritten is not None:
            old, new = self.rewritten
            self.rewritten = None
            if self.rng.random() < 0.5:
                self.repo.git("reset", "-q", "--hard", old)
                self.say(f"the lost commit {old[:12]} pushed back")
            else:
                self.allowed.add(new)
                self.vms = copy.deepcopy(self.models[new])
                self.say(f"allow-revision {new[:12]} on every node")
            self.figures.commits["fix"] += 1
            self.wake("revision")
            return
        if self.invalid_tip is not None:
            self.invalid_tip = None
            self.publish("Fix the invalid file", "fix")

    # -- faults ----------------------------------------------------------------------------------
    def later(self, seconds: float, what: str, *args: str) -> None:
        self.recoveries.append((self.clock.time() + seconds, what, args))

    def run_recoveries(self, now: float | None) -> None:
        due = [r for r in self.recoveries if now is None or r[0] <= now]
        self.recoveries = [r for r in self.recoveries if not (now is None or r[0] <= now)]
        for _, what, args in due:
            if what == "resolve-held":
                self.resolve_held(args[0])
                self.wake("peer")
                continue
            with self.cluster.transaction() as state:
                if what == "boot":
                    faults.boot(state, args[0])
                elif what == "heal":
                    faults.heal(state, args[0], args[1])
                elif what == "remove":
                    faults.remove_fault(state, int(args[0]))
            self.say(f"recovery: {what} {' '.join(args)}")
            self.wake("peer")

    def fault(self) -> None:
        kind = self.rng.choices(FAULT_KINDS, weights=[FAULT_WEIGHTS[k] for k in FAULT_KINDS])[0]
        up = [n for n in NODES if self.up(n)]
        node = self.rng.choice(up) if up else self.rng.choice(NODES)
        other = next(n for n in NODES if n != node)
        duration = self.rng.choice((10.0, 30.0, 60.0, 120.0, 600.0))
        if kind in ("transient", "permanent", "hang"):
            program = self.rng.choice(FAULT_PROGRAMS)
            if any(vm.live for vm in self.present()) and self.live_rng.random() < MIGRATION_FAULT_SHARE:
                program = self.live_rng.choice(MIGRATION_PROGRAMS)
            with self.cluster.transaction() as state:
                if kind == "transient" and self.rng.random() < 0.5:
                    fault = faults.add_fault(state, kind, node=node, prefix=program, count=self.rng.randint(1, 3))
                elif kind == "transient":
                    fault = faults.add_fault(state, kind, node=node, prefix=program, rate=0.3,
                                             seed=self.rng.randint(0, 1 << 30))
                else:
                    fault = faults.add_fault(state, kind, node=node, prefix=program)
            self.later(duration, "remove", str(fault["id"]))
            self.say(f"fault {kind} {' '.join(program)} on {node} for {duration:g}s")
        elif kind == "kill":
            daemon = self.daemons.get(node)
            if daemon is None:
                return
            daemon.host.arm(self.rng.randint(1, 60), after=self.rng.random() < 0.5, cut_short=self.rng.random() < 0.5)
            self.say(f"kill -9 armed on {node} (fuse {daemon.host.fuse})")
            self.figures.steps += 1
            return  # counted when it fires
        elif kind in ("crash", "reboot"):
            if not up:
                return
            with self.cluster.transaction() as state:
                faults.crash(state, node)
                if kind == "reboot":
                    faults.boot(state, node)
            self.daemons.pop(node, None)
            self.losses += 1
            if kind == "crash":
                self.later(duration, "boot", node)
            self.say(f"fault {kind} {node}" + (f", back after {duration:g}s" if kind == "crash" else ""))
        elif kind in ("partition", "partition-management"):
            with self.cluster.transaction() as state:
                faults.partition(state, node, other, management=kind == "partition-management")
            self.losses += 1
            self.later(duration, "heal", node, other)
            self.say(f"fault {kind} {node}-{other} for {duration:g}s")
        elif kind == "disk-fail":
            candidates = [vm for vm in self.present() if f"{node}/{vm.name}" not in self.failed_disks]
            if not candidates or not self.up(node) or self.failed_disks:
                return
            vm = self.rng.choice(candidates)
            device = f"{vm.vg}/root{vm.id}" if vm.layout == "linear" else f"{self.rng.choice(VGS)}/root{vm.id}"
            with self.cluster.transaction() as state:
                try:
                    faults.disk_fail(state, node, device)
                except faults.FaultError:
                    return
            self.failed_disks.add(f"{node}/{vm.name}")
            self.say(f"fault disk-fail {node} {device}")
        elif kind == "clock-jump":
            jump = self.rng.choice((-3600.0, -600.0, 600.0, 3600.0, 86400.0))
            self.node_clocks[node].offset += jump
            self.say(f"fault clock-jump {node} {jump:+g}s")
        self.figures.faults[kind] += 1
        self.figures.steps += 1
        self.wake("peer")

    def stop_faults(self) -> None:
        """The faults stop: command faults removed, links healed, nodes booted, fuses disarmed, the branch fixed."""
        self.run_recoveries(None)
        with self.cluster.transaction() as state:
            faults.clear(state)
            state.setdefault("xen", {})["migrate_undefined"] = []
            for node in NODES:
                faults.boot(state, node)
        for daemon in self.daemons.values():
            daemon.host.fuse = None
        self.wake("peer")
        if self.invalid_tip is not None or self.rewritten is not None:
            self.fix_branch()

    # -- the run ---------------------------------------------------------------------------------
    def total_faults(self) -> int:
        return sum(self.figures.faults.values())

    def budget_left(self) -> bool:
        if self.total_faults() >= self.fault_budget:
            return False
        if self.step_budget is not None and self.figures.steps >= self.step_budget:
            return False
        return self.wall_budget is None or time.monotonic() - self.started_wall < self.wall_budget

    def episode(self) -> None:
        self.figures.episodes += 1
        for _ in range(self.rng.randint(2, 8)):
            if self.live_rng.random() < LIVE_SWITCH_SHARE:
                self.live_switchover()
            roll = self.rng.random()
            if roll < 0.7:
                self.fault()
            elif roll < 0.9:
                self.commit()
                self.figures.steps += 1
            self.wait(self.rng.choice((5.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0)))
            self.figures.steps += 1
            if not self.budget_left():
                break
        self.stop_faults()
        self.figures.steps += 1
        self.settle()

    def settle(self) -> None:
        """Wait (bounded) for both nodes to converge, or to settle with a reason for every unhealthy resource."""
        start = self.clock.time()
        self.fresh_after = Counter(self.node_passes)
        since: float | None = None
        last: tuple[str, ...] | None = None
        mutations = self.mutations()
        while self.clock.time() - start <= self.bound:
            self.tick()
            if self.converged():
                self.figures.converge.append(self.clock.time() - start)
                return
            signature = self.settled()
            now_mutations = self.mutations()
            if signature is None or signature != last or now_mutations != mutations:
                since = self.clock.time() if signature is not None else None
                last, mutations = signature, now_mutations
            elif since is not None and self.clock.time() - since >= STABLE_S:
                self.figures.settled.append(since - start)
                for line in signature:
                    self.figures.reasons[_reason_class(line)] += 1
                return
        self.violate(f"not converged within {self.bound:g}s after the faults stopped: {self.describe()}")

    def mutations(self) -> int:
        return self.mutating

    def run(self) -> Figures:
        started = time.monotonic()
        _log_to(self.dir / "daemons.log")
        try:
            self.setup()
            while self.budget_left():
                self.episode()
                if self.figures.violations:
                    break
        except KeyboardInterrupt:
            self.figures.interrupted = True  # the figures so far; the seed replays past this point
        except SoakError as exc:  # the soak's own trouble (git, its cluster), not a finding about the product
            self.figures.harness_errors.append(str(exc))
        self.figures.simulated_s = self.clock.time() - EPOCH
        self.figures.wall_s = time.monotonic() - started
        return self.figures


def _reason_class(line: str) -> str:
    """``node key phase: reason`` without the node and the VM's numbers, to count reasons by kind."""
    _node, _key, rest = line.split(" ", 2)
    return "".join("N" if c.isdigit() else c for c in rest)[:90]


def report(figures: Figures, seed: int, failover: str, argv: Sequence[str]) -> str:
    f = figures
    faults_line = ", ".join(f"{k} {f.faults[k]}" for k in (*FAULT_KINDS, "migrate-undefined") if f.faults[k])
    commits_line = ", ".join(f"{k} {n}" for k, n in sorted(f.commits.items()))
    after = f.converge + f.settled
    lines = [
        f"soak seed {seed} (failover: {failover})" + (" INTERRUPTED: the figures so far" if f.interrupted else ""),
        f"steps {f.steps}, episodes {f.episodes}, passes {f.passes}, simulated {f.simulated_s / 3600:.1f} h,"
        f" wall {f.wall_s:.0f} s",
        f"commits {sum(f.commits.values())}: {commits_line}",
        f"faults {sum(f.faults.values())}: {faults_line}",
        f"after the faults stopped: converged {len(f.converge)}, settled with a reason {len(f.settled)}",
        f"time to converge or settle after the last fault: p50 {_percentile(after, 0.5):.0f} s, "
        f"p95 {_percentile(after, 0.95):.0f} s, max {max(after, default=0.0):.0f} s",
        "destructive commands: " + (", ".join(f"{k} {n}" for k, n in sorted(f.destructive.items())) or "none"),
        f"live migrations {f.migrations['live']}, migrations aborted {f.migrations['aborted']}, "
        f"held {f.migrations['held']}",
    ]
    for reason, count in f.reasons.most_common(5):
        lines.append(f"  settled with: {reason} ({count})")
    lines += [f"SOAK ERROR (not a finding about the reconciler): {e}" for e in f.harness_errors]
    lines.append(f"violations {len(f.violations)}")
    lines += [f"  {v}" for v in f.violations]
    lines.append("replay: scripts/soak " + " ".join(argv))
    return "\n".join(lines)


def _log_to(path: Path) -> None:
    """The daemons' log events go to a file in the run's directory, not to the terminal."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(LOGGER_NAME)
    for old in logger.handlers:
        old.close()
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING)
    logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--seed", type=int, default=1, help="the first seed (default 1)")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds, from --seed on (default 1)")
    parser.add_argument("--faults", type=int, default=50, help="fault budget per seed (default 50)")
    parser.add_argument("--steps", type=int, default=None, help="step budget per seed (default: none)")
    parser.add_argument("--time", type=float, default=3600.0,
                        help="simulated seconds within which everything must converge or give a reason after the "
                             "faults stop (default 3600)")
    parser.add_argument("--wall", type=float, default=None, help="stop starting episodes after this many real seconds")
    parser.add_argument("--failover", choices=("automatic", "manual", "random"), default="random")
    parser.add_argument("--dir", type=Path, default=None, help="keep the run's cluster, repository and state here")
    parser.add_argument("--verbose", action="store_true", help="print each commit, fault and recovery")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    failed = 0
    total = Figures()
    for seed in range(args.seed, args.seed + args.seeds):
        base = args.dir / f"seed-{seed}" if args.dir else Path(tempfile.mkdtemp(prefix=f"soak-{seed}-"))
        if args.dir and base.exists():
            shutil.rmtree(base)
        base.mkdir(parents=True, exist_ok=True)
        soak = Soak(base, seed, failover=args.failover, fault_budget=args.faults, step_budget=args.steps,
                    converge_bound=args.time, wall_budget=args.wall, log=sys.stdout if args.verbose else None)
        figures = soak.run()
        replay = [f"--seed {seed}", f"--faults {args.faults}", f"--time {args.time:g}",
                  f"--failover {soak.failover}"] + ([f"--steps {args.steps}"] if args.steps else [])
        print(report(figures, seed, soak.failover, replay), flush=True)
        failed += bool(figures.violations or figures.harness_errors)
        total.add(figures)
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
        if figures.interrupted:
            break
    if args.seeds > 1:
        seeds = f"{args.seed} to {args.seed + args.seeds - 1}"
        print("\n" + report(total, 0, args.failover, [f"--seed {args.seed}", f"--seeds {args.seeds}",
                                                     f"--faults {args.faults}", f"--time {args.time:g}"])
              .replace("soak seed 0", f"all seeds ({seeds})", 1), flush=True)
    return 1 if failed else 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())

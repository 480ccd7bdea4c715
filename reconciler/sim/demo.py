"""A simulated two-node cluster with one real daemon process per node, following a local git repository.

Used by ``reconciler demo``, the end-to-end tests and the latency benchmark: the daemons are the real
``reconciler run`` processes; only the node underneath them is simulated.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.daemon.records import status_store
from reconciler.host.real import RealHost
from reconciler.model.status import NodeStatus
from reconciler.sim.clock import SimClockDriver
from reconciler.sim.state import SimCluster

DEFAULT_NODES = ("erdbeere", "himbeere")
EXAMPLE_VGS = {"vg-sda": 400 << 30, "vg-sdb": 400 << 30, "vg-sdc": 400 << 30}


def example_desired_state() -> Path | None:
    """The example repository content shipped beside the package (``desired-state/``)."""
    candidate = Path(__file__).resolve().parents[2] / "desired-state"
    return candidate if (candidate / "cluster.yaml").is_file() else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DemoError(Exception):
    pass


@dataclass
class NodeProcess:
    node: str
    state_dir: Path
    log: Path
    peer_port: int
    metrics_port: int
    process: subprocess.Popen[bytes] | None = None


@dataclass
class DemoCluster:
    root: Path
    nodes: tuple[str, ...] = DEFAULT_NODES
    fetch_interval: float = 30.0
    drift_interval: float = 300.0
    sim_rate: float = 60.0
    extra_args: tuple[str, ...] = ()
    procs: dict[str, NodeProcess] = field(default_factory=dict)
    clock: SimClockDriver | None = None

    @property
    def sim(self) -> Path:
        return self.root / "sim"

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def key_file(self) -> Path:
        return self.root / "peer.key"

    # -- setup -----------------------------------------------------------------------------------
    def create(self, seed: Path, *, vgs: Mapping[str, int] = EXAMPLE_VGS) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        SimCluster.init(self.sim, list(self.nodes), dict(vgs))
        self.key_file.write_text(secrets.token_hex(32) + "\n")
        self.key_file.chmod(0o600)
        shutil.copytree(seed, self.repo, ignore=shutil.ignore_patterns(".git"))
        self.git("init", "-q", "-b", "main")
        for node in self.nodes:
            self.procs[node] = NodeProcess(node, self.root / f"state-{node}", self.root / f"{node}.log",
                                           free_port(), free_port())
        return self.commit("Initial desired state")

    def git(self, *args: str) -> str:
        result = RealHost().run(("git", "-C", str(self.repo), *args), timeout=60)
        if not result.ok:
            raise DemoError(f"git {' '.join(args)}: {result.describe()}")
        return result.stdout.strip()

    def commit(self, message: str, files: Mapping[str, str | None] | None = None) -> str:
        """Write (or with None delete) files relative to the repository, commit everything, return the sha."""
        for relpath, content in (files or {}).items():
            path = self.repo / relpath
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
        self.git("add", "-A")
        self.git("-c", "user.name=Demo Operator", "-c", "user.email=ops@example.org", "commit", "-q",
                 "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    # -- daemons ---------------------------------------------------------------------------------
    def argv(self, node: str) -> list[str]:
        me = self.procs[node]
        argv = [sys.executable, "-m", "reconciler", "run", "--repo", str(self.repo), "--sim", str(self.sim),
                "--node", node, "--state-dir", str(me.state_dir), "--interval", str(self.fetch_interval),
                "--drift-interval", str(self.drift_interval), "--peer-token-file", str(self.key_file),
                "--peer-listen", f"127.0.0.1:{me.peer_port}", "--metrics-address", f"127.0.0.1:{me.metrics_port}",
                "--boot-fetch-timeout", "30"]
        for other in self.nodes:
            if other != node:
                argv += ["--peer", f"{other}=127.0.0.1:{self.procs[other].peer_port}"]
        return argv + list(self.extra_args)

    def start_clock(self) -> None:
        if self.clock is None:
            self.clock = SimClockDriver(self.sim, rate=self.sim_rate)
            self.clock.start()

    def start_node(self, node: str) -> None:
        me = self.procs[node]
        if me.process is not None and me.process.poll() is None:
            return
        me.process = _spawn(self.argv(node), log_path=str(me.log), env={"PYTHONUNBUFFERED": "1"})

    def start(self) -> None:
        self.start_clock()
        for node in self.nodes:
            self.start_node(node)

    def stop_node(self, node: str, timeout: float = 30.0) -> int | None:
        """SIGTERM (the daemon finishes its running action), then wait; SIGKILL only past ``timeout``."""
        me = self.procs[node]
        proc, me.process = me.process, None
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc is not None else None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(5)

    def kill_node(self, node: str) -> None:
        me = self.procs[node]
        if me.process is not None:
            me.process.kill()
            me.process.wait(5)
            me.process = None

    def stop(self) -> None:
        for node in self.nodes:
            self.stop_node(node)
        if self.clock is not None:
            self.clock.stop()
            self.clock = None

    def alive(self, node: str) -> bool:
        proc = self.procs[node].process
        return proc is not None and proc.poll() is None

    # -- observing ---------------------------------------------------------------------------------
    def status(self, node: str) -> NodeStatus | None:
        return status_store.load(self.procs[node].state_dir)

    def converged(self, node: str, sha: str, *, since: float = 0.0) -> bool:
        """The node's last pass (finished after ``since``, epoch seconds) converged at ``sha``."""
        status = self.status(node)
        return (status is not None and status.last_applied is not None and status.last_applied.sha == sha
                and status.last_pass is not None and status.last_pass.outcome == "converged"
                and status.last_pass.revision == sha and status.last_pass.finished_at >= since)

    def wait_for(self, predicate: Callable[[], bool], timeout: float, *, interval: float = 0.2,
                 on_tick: Callable[[], None] | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            for node in self.nodes:
                proc = self.procs[node].process
                if proc is not None and proc.poll() is not None:
                    raise DemoError(f"the daemon of {node} exited with {proc.returncode}; see {self.procs[node].log}")
            if on_tick is not None:
                on_tick()
            time.sleep(interval)
        return predicate()

    def wait_converged(self, sha: str, timeout: float, on_tick: Callable[[], None] | None = None, *,
                       since: float = 0.0, interval: float = 0.2) -> bool:
        return self.wait_for(lambda: all(self.converged(n, sha, since=since) for n in self.nodes), timeout,
                             on_tick=on_tick, interval=interval)

    def metrics_url(self, node: str) -> str:
        return f"http://127.0.0.1:{self.procs[node].metrics_port}/metrics"

    def log_tail(self, node: str, lines: int = 20) -> str:
        try:
            return "\n".join(self.procs[node].log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _spawn(argv: Sequence[str], *, log_path: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start one node's daemon with its output appended to ``log_path``; the cluster stops it itself."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(tuple(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, start_new_session=True)


def environment_ok() -> str | None:
    """Why the demo cannot run here, or None."""
    if shutil.which("git") is None:
        return "git is not installed"
    if os.name != "posix":
        return "the demo needs a POSIX system"
    return None

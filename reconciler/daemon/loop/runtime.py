"""The running daemon: threads, signals, sd_notify, the watchdog, and the one loop that runs passes.

Threads: the loop (passes, never overlapping), the fetcher, the local-repository watcher, the DRBD
watcher, the peer monitor and the peer/metrics/control servers. All of them only *signal* the loop; the
loop alone acts on the node. The main thread only handles signals and waits for the loop to end.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from reconciler.backends.registry import backends_named
from reconciler.core.seams import Backends
from reconciler.daemon.loop.config import DaemonConfig
from reconciler.daemon.loop.engine import Engine
from reconciler.daemon.loop.fence_records import peer_keeps
from reconciler.daemon.loop.gating import BootGate
from reconciler.daemon.loop.metrics_sink import MetricsSink, NullMetrics
from reconciler.daemon.loop.notify import Notifier, watchdog_interval
from reconciler.daemon.loop.reconcile import PassContext, Reconciler
from reconciler.daemon.loop.seams import (
    PeerListener,
    PeerListenerFactory,
    PeerWatch,
    PeerWatchFactory,
    ServiceNotifier,
)
from reconciler.daemon.loop.verify import VerifyScheduler
from reconciler.daemon.node import control as control_mod
from reconciler.daemon.node.control import ControlServer, ControlStore
from reconciler.daemon.peers.fence import OutdateAnswer, outdate_local, resource_hosts, resource_vms
from reconciler.daemon.peers.peer import (
    DEFAULT_PEER_PORT,
    PeerAnswer,
    PeerServer,
    migrations_json,
    parse_endpoint,
    takeovers_json,
)
from reconciler.daemon.peers.peer_monitor import PeerEndpoint, PeerMonitor
from reconciler.daemon.records.backend_choice import NodeChoice, node_choice, write_choice
from reconciler.daemon.records.logs import event
from reconciler.daemon.schedule.clock import Clock, RealClock
from reconciler.daemon.schedule.domain_watch import DomainWatcher
from reconciler.daemon.schedule.drbd_watch import DrbdWatcher, Follow
from reconciler.daemon.schedule.fetcher import Fetcher
from reconciler.daemon.schedule.liveness import Liveness
from reconciler.daemon.schedule.next_pass import Schedule
from reconciler.daemon.schedule.wakeup import Wakeup
from reconciler.host.base import Host
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import DrbdState, ObservedNode
from reconciler.model.status import NodeStatus, PassResult, PeerStatus
from reconciler.source.gitsource import GitSource, Loader, default_loader
from reconciler.source.mirror import Mirror
from reconciler.source.statefile import ensure_private_dir
from reconciler.source.watch import RefWatcher, local_git_dir

if TYPE_CHECKING:
    from reconciler.desired.load import Cluster
    from reconciler.metrics.server import MetricsServer

# A pass that runs mkfs on a large device or waits for a guest's shutdown can take this long.
STATUS_GRACE_S = 1800.0


class DaemonStartError(RuntimeError):
    """The daemon cannot start (the message says why and what to do)."""


class Daemon:
    """The daemon of one node. The peer monitor and the peer server are made by the factories it is given
    (default: the product's, from ``config``), the peer server once the address to listen on is known."""

    def __init__(self, config: DaemonConfig, host: Host, engine: Engine, *, clock: Clock | None = None,
                 metrics: MetricsSink | None = None, notifier: ServiceNotifier | None = None,
                 loader: Loader = default_loader, peer_monitor: PeerWatchFactory | None = None,
                 peer_server: PeerListenerFactory | None = None) -> None:
        self.config = config
        self.host = host
        self.clock = clock or RealClock()
        self.notifier: ServiceNotifier = notifier or Notifier()
        self.wakeup = Wakeup()
        self.stop_requested = threading.Event()
        self.liveness = Liveness(self.clock.monotonic, idle_budget=120.0)
        self.metrics: MetricsSink = metrics if metrics is not None else NullMetrics()
        self.control = ControlStore(config.state_dir)
        ensure_private_dir(config.state_dir)
        mirror = Mirror(config.state_dir, config.repo, config.branch)
        mirror.ensure()
        self.source = GitSource(mirror, config.state_dir, subdir=config.subdir, policy=config.signatures,
                                loader=loader)
        self.reconciler = Reconciler(node=config.node, state_dir=config.state_dir, source=self.source, engine=engine,
                                     clock=self.clock, liveness=self.liveness, metrics=self.metrics,
                                     should_stop=self.stop_requested.is_set,
                                     migrate_transport=config.migrate_transport,
                                     verifier=VerifyScheduler(host, config.state_dir, self.clock.time))
        self.fetcher = Fetcher(mirror, interval=config.fetch_interval, jitter=config.fetch_jitter,
                               on_new_tip=lambda sha: self.wakeup.signal("revision"),
                               on_error=self._fetch_error, monotonic=self.clock.monotonic)
        git_dir = local_git_dir(config.repo) if config.watch_local else None
        self.watcher = RefWatcher(git_dir, self.fetcher.poke) if git_dir is not None else None
        self.peer_monitor: PeerWatch = (peer_monitor or peer_monitor_factory(config))(self._peer_changed)
        self._peer_server_factory = peer_server or peer_server_factory(config)
        self.peer_server: PeerListener | None = None
        # The node's pair as the last revision applied here chose it (BackendChoiceError, a ValueError naming the
        # file, when that record names a backend this program does not have): the watchers, the peer's outdate
        # requests and the observation before a revision is read use it.
        self.choice: NodeChoice = node_choice(config.state_dir)
        if not self.choice.recorded:
            event("backends.default", reason="no choice recorded yet", hypervisor=self.choice.names.hypervisor,
                  replicator=self.choice.names.replicator)
        engine.use_backends(self.choice.backends)
        self._watching = False
        self.drbd_watch: DrbdWatcher | None = None
        self.domain_watch: DomainWatcher | None = None
        self._make_watchers(self.choice.backends)
        self.control_server = ControlServer(config.state_dir, self._control_command)
        self.schedule = Schedule()
        self.started = self.clock.monotonic()
        self.ready_sent = False
        self.last_observed: ObservedNode | None = None
        self._loop_thread: threading.Thread | None = None
        self._watchdog_thread: threading.Thread | None = None
        self._metrics_server: MetricsServer | None = None
        self.passes = 0
        self.exit_code = 0
        # Set when the daemon cannot do its job and must stop (e.g. its peer listener cannot bind).
        self.fatal_error: str | None = None

    # -- callbacks from other threads ---------------------------------------------------------
    def _peer_changed(self, status: PeerStatus) -> None:
        self.metrics.record_peer(status)
        event("peer.changed", peer=status.node, reachable=status.reachable,
              revision=status.applied_revision[:12] if status.applied_revision else None,
              error=status.error or None)
        self.wakeup.signal("peer")

    def _drbd_changed(self, drbd: DrbdState | None) -> None:
        if drbd is not None and self.last_observed is not None:
            kernel = self.last_observed.drbd.kernel_version
            fresh = self.last_observed.model_copy(update={"drbd": drbd.model_copy(update={"kernel_version": kernel})})
            self.metrics.update_observed(fresh)
        self.wakeup.signal("drbd")

    def _fetch_error(self, message: str) -> None:
        self.reconciler.error(message)
        self.reconciler.republish_errors()

    def _control_command(self, command: str) -> None:
        if command == "ping":  # `reconciler status` asking whether a daemon listens; nothing to do
            return
        event("control", command=command)
        if command == "reconcile-now":
            self.fetcher.poke()
        self.wakeup.signal(command)

    def request_stop(self) -> None:
        self.stop_requested.set()
        self.wakeup.signal("stop")

    def _answer(self) -> PeerAnswer:
        rec = self.reconciler
        in_force = self.source.in_force
        return PeerAnswer(node=self.config.node,
                          applied_revision=rec.last_applied.sha if rec.last_applied else None,
                          in_force_revision=in_force.info.sha if in_force else None,
                          ready=rec.status is not None and rec.status.last_pass is not None
                          and rec.status.last_pass.outcome == "converged",
                          backing_bytes=dict(rec.backing_sizes), split_brain=dict(rec.split_brain_records),
                          takeovers=takeovers_json(rec.taken_over()),
                          migrations=migrations_json(rec.migrations.peer_report()))

    def _managed_resources(self) -> frozenset[str]:
        in_force = self.source.in_force
        return frozenset(resource_hosts(in_force.cluster, self.config.node)) if in_force is not None else frozenset()

    def _peer_keeps(self, resource: str) -> tuple[bool, str]:
        in_force = self.source.in_force
        vms = resource_vms(in_force.cluster, self.config.node) if in_force is not None else {}
        return peer_keeps(self.reconciler.migrations.state_dir, self.config.node, resource, vms,
                          self.peer_monitor.statuses())

    def _outdate(self, resource: str) -> OutdateAnswer:
        answer = outdate_local(self.host, resource, self._managed_resources, self.choice.backends.replicator,
                               peer_keeps=self._peer_keeps)
        event("fence.outdate_request", level=logging.WARNING, resource=answer.resource, outcome=answer.outcome,
              detail=answer.detail)
        self.wakeup.signal("drbd")
        return answer

    # -- the node's backends ---------------------------------------------------------------------
    def _make_watchers(self, backends: Backends) -> None:
        config = self.config
        self.drbd_watch = DrbdWatcher(self.host, interval=config.drbd_poll, on_change=self._drbd_changed,
                                      follow=_stream_follower(self.host),
                                      replicator=backends.replicator) if config.drbd_events else None
        self.domain_watch = (DomainWatcher(self.host, interval=config.drbd_poll,
                                           on_change=lambda: self.wakeup.signal("domain"),
                                           hypervisor=backends.hypervisor)
                             if config.drbd_events else None)

    def _follow_backends(self, desired: DesiredNode | None) -> None:
        """Record the pair the applied revision names and, when it changed, watch with the new pair."""
        if desired is None or (self.choice.recorded and desired.backends == self.choice.names):
            return
        names = desired.backends
        try:
            write_choice(self.config.state_dir, names)
        except (OSError, ValueError) as exc:
            self.reconciler.error(f"cannot record the node's backends: {exc}")
            event("backends.record_error", level=logging.ERROR, error=str(exc))
            return
        choice = NodeChoice(backends_named(names), names, recorded=True)
        changed = names != self.choice.names
        event("backends.recorded", hypervisor=names.hypervisor, replicator=names.replicator, changed=changed)
        if changed:
            self.reconciler.engine.use_backends(choice.backends)
            for watcher in (self.drbd_watch, self.domain_watch):
                if watcher is not None:
                    watcher.stop()
            self._make_watchers(choice.backends)
            if self._watching:
                self._start_watchers()
        self.choice = choice

    def _start_watchers(self) -> None:
        self._watching = True
        if self.drbd_watch is not None:
            self.drbd_watch.start()
        if self.domain_watch is not None:
            self.domain_watch.start()

    # -- peers from the desired state -----------------------------------------------------------
    def _ensure_peer_wiring(self) -> None:
        in_force = self.source.in_force
        nodes = _cluster_nodes(in_force.cluster) if in_force is not None else {}
        if self.peer_server is None and (self.config.peer_listen or self.config.node in nodes):
            listen = self.config.peer_listen or f"{nodes[self.config.node]}:{DEFAULT_PEER_PORT}"
            try:
                address, port = parse_endpoint(listen)
                self.peer_server = self._peer_server_factory(address, port, self._answer, self._outdate)
                self.peer_server.start()
                event("peer.serving", address=address, port=self.peer_server.port)
            except (OSError, ValueError) as exc:
                # Fatal: without its listener the peer cannot see this node, fence through it or gate its boot.
                self.fatal_error = (f"cannot serve peer status on {listen}: {exc} (another daemon of this node, or "
                                    "another program, holds that port? choose another with --peer-listen)")
                self.reconciler.error(self.fatal_error)
                event("peer.serve_error", level=logging.ERROR, address=listen, error=str(exc))
        # A simulated node's replication addresses exist only in the simulator: its peers are the loopback
        # endpoints `reconciler run --sim` configured, never addresses taken from the desired state.
        if not self.peer_monitor.endpoints and nodes and self.config.sim is None:
            endpoints = tuple(PeerEndpoint(node, address, DEFAULT_PEER_PORT)
                              for node, address in sorted(nodes.items()) if node != self.config.node)
            if endpoints:
                self.peer_monitor.endpoints = endpoints
                self.peer_monitor.start()

    # -- the loop -------------------------------------------------------------------------------
    def _gate(self) -> BootGate:
        return BootGate(
            fetched=self.fetcher.fetched_ok.is_set(),
            fetch_deadline_passed=self.clock.monotonic() - self.started >= self.config.boot_fetch_timeout,
            peers_seen=self.peer_monitor.seen())

    def run_one_pass(self, reasons: frozenset[str]) -> PassResult:
        control = self.control.read()
        allowed = control.allowed_revisions | self.config.allow_non_descendant
        control = control_mod.ControlState(control.suspensions, allowed)
        ctx = PassContext(peers=self.peer_monitor.statuses(), peer_backing=self.peer_monitor.backing(),
                          peer_split_brain=self.peer_monitor.split_brain(), gate=self._gate())
        event("pass.start", reasons=",".join(sorted(reasons)) or "schedule")
        result = self.reconciler.run_pass(control, ctx, reasons)
        self.passes += 1
        self._follow_backends(self.reconciler.planned)
        self._ensure_peer_wiring()
        observed = self._observed_for_metrics(result)
        desired = self._desired_for_metrics()
        # The longest wait between passes, the longest error backoff, and the longest a pass's actions may take.
        fresh_for = max(self.config.drift_interval, self.schedule.backoff.cap) + STATUS_GRACE_S
        status = self.reconciler.publish(control, self.peer_monitor.statuses(), observed, desired, result,
                                         fresh_for=fresh_for)
        if self.reconciler.observed_once and not self.ready_sent:
            self.ready_sent = True
            self.notifier.ready(_status_line(status))
            event("ready")
        else:
            self.notifier.status(_status_line(status))
        return result

    def _observed_for_metrics(self, result: PassResult) -> ObservedNode | None:
        observed = self.reconciler.engine.last_observed
        if observed is not None:
            self.last_observed = observed
        return self.last_observed

    def _desired_for_metrics(self) -> DesiredNode | None:
        return self.reconciler.planned or self.reconciler.engine.last_desired

    def _loop(self) -> None:
        if self.source.mirror.tip() is None:
            # Nothing cached yet: give the first fetch a moment rather than report "no revision".
            self.fetcher.attempted.wait(timeout=min(10.0, self.config.boot_fetch_timeout))
        pending: set[str] = {"start"}
        while not self.stop_requested.is_set():
            now = self.clock.monotonic()
            if pending:
                self.schedule.woken(now)
            timeout = max(0.0, self.schedule.next_due - now)
            if timeout > 0:
                self.liveness.busy("waiting for the next pass", timeout)
                pending |= self.wakeup.wait(timeout)
                if self.stop_requested.is_set():
                    break
                now = self.clock.monotonic()
                if pending:
                    self.schedule.woken(now, pending)
                if now < self.schedule.next_due:
                    continue
            reasons = frozenset(pending | self.wakeup.wait(0))
            pending = set()
            try:
                result = self.run_one_pass(reasons)
            except Exception as exc:  # a bug in one pass must not end the service; it is throttled
                logging.getLogger("reconciler").exception("pass crashed")
                self.reconciler.error(f"pass crashed: {type(exc).__name__}: {exc}")
                self.reconciler.republish_errors(even_first=True)  # the reason reaches status now
                delay = self.schedule.backoff.failure()
                self.schedule.not_before = self.schedule.next_due = self.clock.monotonic() + delay
                continue
            status = self.reconciler.status
            self.schedule.after(result, self.clock.monotonic(), has_revision=self.source.in_force is not None,
                                waiting=bool(status and status.boot_gate),
                                progress_interval=self.config.progress_interval,
                                drift_interval=self.config.drift_interval)
            self.liveness.beat("idle")

    def _watchdog(self, interval: float) -> None:
        while not self.stop_requested.wait(interval):
            healthy, what = self.liveness.healthy()
            if healthy:
                self.notifier.watchdog()
            else:
                event("watchdog.starved", level=logging.ERROR, reason=what)

    # -- start and stop --------------------------------------------------------------------------
    def start(self) -> None:
        """Start every part; raises :class:`DaemonStartError` when the peer listener cannot bind."""
        if self.config.peer_listen:
            self._ensure_peer_wiring()
            if self.fatal_error is not None:
                raise DaemonStartError(self.fatal_error)
        self.control_server.start()
        if self.config.metrics_address:
            self._start_metrics()
        if self.config.peers:
            self.peer_monitor.start()
        if self.watcher is not None:
            self.watcher.start()
        self.fetcher.start()
        self._start_watchers()
        interval = watchdog_interval()
        if interval is not None:
            self._watchdog_thread = threading.Thread(target=self._watchdog, args=(interval,), name="watchdog",
                                                     daemon=True)
            self._watchdog_thread.start()
        self._loop_thread = threading.Thread(target=self._loop, name="loop", daemon=True)
        self._loop_thread.start()
        event("started", node=self.config.node, repo=self.config.repo, branch=self.config.branch,
              state_dir=str(self.config.state_dir), sim=str(self.config.sim) if self.config.sim else None)

    def _start_metrics(self) -> None:
        address = self.config.metrics_address or ""
        try:
            from reconciler.metrics.server import start_metrics_server  # noqa: PLC0415
            from reconciler.metrics.state import MetricsState  # noqa: PLC0415

            if not isinstance(self.metrics, MetricsState):
                # Only the real state has something to serve; a scrape of a null sink would fail each time.
                raise ValueError("this daemon keeps no metrics to serve (it was given no MetricsState)")
            host, port = parse_endpoint(address, 9793)
            self._metrics_server = start_metrics_server(
                self.metrics, host, port, tls_cert=self.config.metrics_tls_cert, tls_key=self.config.metrics_tls_key,
                basic_auth=self.config.metrics_basic_auth)
            event("metrics.serving", address=host, port=port)
        except (OSError, ValueError, ImportError) as exc:
            self.reconciler.error(f"cannot serve metrics on {address}: {exc}")
            event("metrics.error", level=logging.ERROR, address=address, error=str(exc))

    def stop(self) -> None:
        """Let the running action finish, then stop every thread and server."""
        self.request_stop()
        self.notifier.stopping("stopping: finishing the running action")
        if self._loop_thread is not None:
            self._loop_thread.join()
        for part in (self.fetcher, self.peer_monitor, self.drbd_watch, self.domain_watch, self.watcher):
            if part is not None:
                part.stop()
        for server in (self.peer_server, self._metrics_server):
            if server is not None:
                server.shutdown()
        self.control_server.stop()
        event("stopped", passes=self.passes)

    def run_until_signalled(self) -> int:
        """Install signal handlers, run, and return the exit code when SIGTERM/SIGINT arrive."""
        stop = threading.Event()

        def on_term(signum: int, frame: FrameType | None) -> None:
            event("signal", signal=signal.Signals(signum).name)
            stop.set()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self.fetcher.poke()
            self.wakeup.signal("sighup")

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        signal.signal(signal.SIGHUP, on_hup)
        self.start()
        while not stop.wait(1.0):
            if self.fatal_error is not None:
                event("stopping", level=logging.ERROR, reason=self.fatal_error)
                self.exit_code = 1
                break
            if self._loop_thread is not None and not self._loop_thread.is_alive():
                event("loop.died", level=logging.ERROR)
                self.exit_code = 1
                break
        self.stop()
        return self.exit_code


def peer_monitor_factory(config: DaemonConfig) -> PeerWatchFactory:
    """The product's peer monitor: the configured peers (``--peer``), signed as this node, every ``peer_poll``."""

    def make(on_change: Callable[[PeerStatus], None]) -> PeerWatch:
        return PeerMonitor(config.peers, config.peer_key, interval=config.peer_poll, on_change=on_change,
                           sender=config.node)

    return make


def peer_server_factory(config: DaemonConfig) -> PeerListenerFactory:
    """The product's peer server: signed requests for this node only, nonces kept in the state directory."""

    def make(address: str, port: int, answer: Callable[[], PeerAnswer],
             outdate: Callable[[str], OutdateAnswer]) -> PeerListener:
        return PeerServer(address, port, answer, config.peer_key, outdate=outdate, node=config.node,
                          replay_file=config.state_dir / "peer-nonces.json")

    return make


def _stream_follower(host: Host) -> Follow | None:
    """The event-stream starter for a real node; None (poll instead) for simulated or other hosts."""
    from reconciler.daemon.node.scope import ScopedHost  # noqa: PLC0415
    from reconciler.host.real import RealHost, follow  # noqa: PLC0415

    return follow if isinstance(host, RealHost | ScopedHost) else None


def _cluster_nodes(cluster: Cluster) -> dict[str, str]:
    """node name -> replication address, from a loaded cluster (empty when it has no such data: the loop's
    tests drive it with stand-in clusters)."""
    spec = getattr(cluster, "spec", None)
    nodes = getattr(spec, "nodes", None)
    if not isinstance(nodes, dict):
        return {}
    found = {str(name): str(getattr(node, "address", "")) for name, node in nodes.items()}
    return {name: address for name, address in found.items() if address}


def _status_line(status: NodeStatus) -> str:
    outcome = status.last_pass.outcome if status.last_pass is not None else "starting"
    applied = (status.last_applied.sha if status.last_applied is not None else "") or "none"
    ready = sum(1 for r in status.resources if r.phase == "ready")
    parts = [outcome, f"applied {applied[:12]}", f"{ready}/{len(status.resources)} ready"]
    if status.pending_refusal:
        parts.append("newest revision refused")
    if status.invalid_errors:
        parts.append("newest revision invalid")
    if status.boot_gate:
        parts.append("boot gate closed")
    if status.suspensions:
        parts.append(f"{len(status.suspensions)} suspension(s)")
    return "; ".join(parts)

"""`reconciler run`: the daemon. Follows a git repository and keeps this node converged.

Each option that takes one value can also come from the environment (``RECONCILER_<OPTION>``, e.g.
``RECONCILER_REPO``; ``--path`` is ``RECONCILER_PATH_IN_REPO``), which is how the systemd unit passes
``/etc/reconciler/reconciler.env``. The repeatable options and the ``--no-*`` switches are command-line only.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.daemon.loop.config import (
    DEFAULT_BOOT_FETCH_TIMEOUT,
    DEFAULT_DRIFT_INTERVAL,
    DEFAULT_FETCH_INTERVAL,
    DaemonConfig,
)
from reconciler.daemon.peers.keyfile import SecretFileError, read_secret
from reconciler.daemon.peers.peer import DEFAULT_PEER_PORT, parse_endpoint, parse_peer_item
from reconciler.daemon.peers.peer_monitor import PeerEndpoint
from reconciler.host.base import Host
from reconciler.host.factory import NodeAccess, known_nodes, make_host, peer_ports
from reconciler.loopback import LOOPBACK, is_loopback
from reconciler.names import UnsafeNameError, check_name
from reconciler.source.errors import SourceError
from reconciler.source.mirror import check_branch, check_sha, check_subdir
from reconciler.source.signatures import SignaturePolicy
from reconciler.statedir import DEFAULT_STATE_DIR

if TYPE_CHECKING:
    from reconciler.cli.common import Subparsers

DEFAULT_PEER_KEY = "/etc/reconciler/peer.key"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"RECONCILER_{name}", default)


def _env_float(name: str, default: float) -> float:
    value = _env(name)
    return float(value) if value else default


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run the daemon: follow a git repository and keep this node converged",
        description="Clone REPO into the state directory, fetch it on an interval (at once on a local repository's "
                    "new commits), and reconcile this node to the last valid revision.")
    src = parser.add_argument_group("desired state")
    src.add_argument("--repo", default=_env("REPO"), help="repository URL or local path (env RECONCILER_REPO)")
    src.add_argument("--branch", default=_env("BRANCH", "main"), help="branch to follow (default: main)")
    src.add_argument("--path", default=_env("PATH_IN_REPO", ""), metavar="SUBDIR",
                     help="desired-state directory inside the repository (default: its root)")
    src.add_argument("--interval", type=float, default=_env_float("INTERVAL", DEFAULT_FETCH_INTERVAL), metavar="S",
                     help=f"fetch interval in seconds, with 10%% jitter (default: {DEFAULT_FETCH_INTERVAL:g})")
    src.add_argument("--drift-interval", type=float, default=_env_float("DRIFT_INTERVAL", DEFAULT_DRIFT_INTERVAL),
                     metavar="S",
                     help=f"seconds between passes when nothing happens (default: {DEFAULT_DRIFT_INTERVAL:g})")
    src.add_argument("--no-watch", action="store_true",
                     help="do not watch a local repository for new commits; only fetch on the interval")
    src.add_argument("--verify-signatures", choices=("none", "ssh", "gpg"), default=_env("VERIFY_SIGNATURES", "none"),
                     help="apply only revisions whose commit is signed by a trusted key")
    src.add_argument("--allowed-signers", default=_env("ALLOWED_SIGNERS"), metavar="FILE",
                     help="SSH allowed-signers file (with --verify-signatures ssh)")
    src.add_argument("--gpg-home", default=_env("GPG_HOME"), metavar="DIR",
                     help="GnuPG home holding only the trusted keys (with --verify-signatures gpg)")
    src.add_argument("--allow-non-descendant", action="append", default=[], metavar="SHA",
                     help="allow this exact commit although it does not descend from the applied one (repeatable)")
    node = parser.add_argument_group("node")
    node.add_argument("--node", default=_env("NODE"), help="this node's name; must equal `uname -n` (default: it)")
    node.add_argument("--sim", default=_env("SIM"), metavar="DIR", help="act on a simulated node (cluster in DIR)")
    node.add_argument("--state-dir", default=_env("STATE_DIR", str(DEFAULT_STATE_DIR)), metavar="DIR",
                      help=f"where the clone, status and control files live (default: {DEFAULT_STATE_DIR})")
    node.add_argument("--boot-fetch-timeout", type=float, metavar="S",
                      default=_env_float("BOOT_FETCH_TIMEOUT", DEFAULT_BOOT_FETCH_TIMEOUT),
                      help="after start, hold promotions and domain starts at most this long waiting for a fetch")
    node.add_argument("--no-drbd-events", action="store_true", help="do not watch DRBD state between passes")
    peer = parser.add_argument_group("peer status")
    peer.add_argument("--peer-listen", default=_env("PEER_LISTEN"), metavar="HOST:PORT",
                      help="serve this node's status here "
                           f"(default: its replication address, port {DEFAULT_PEER_PORT})")
    peer.add_argument("--peer", action="append", default=[], metavar="NODE=HOST:PORT",
                      help="a peer's status endpoint (env RECONCILER_PEERS: NODE=HOST:PORT items separated by "
                           "spaces; default: the other nodes' replication addresses)")
    peer.add_argument("--peer-token-file", default=_env("PEER_TOKEN_FILE", DEFAULT_PEER_KEY), metavar="FILE",
                      help=f"shared secret of the cluster's daemons (default: {DEFAULT_PEER_KEY})")
    peer.add_argument("--peer-auth", choices=("hmac", "none"), default=_env("PEER_AUTH", "hmac"),
                      help="authenticate peer status with the shared secret (default) or not at all")
    obs = parser.add_argument_group("metrics")
    obs.add_argument("--metrics-address", default=_env("METRICS_ADDRESS", "127.0.0.1:9793"), metavar="HOST:PORT",
                     help="serve Prometheus metrics here; 'none' to disable (default: 127.0.0.1:9793)")
    obs.add_argument("--metrics-tls-cert", default=_env("METRICS_TLS_CERT"), metavar="FILE")
    obs.add_argument("--metrics-tls-key", default=_env("METRICS_TLS_KEY"), metavar="FILE")
    obs.add_argument("--metrics-basic-auth-file", default=_env("METRICS_BASIC_AUTH_FILE"), metavar="FILE",
                     help="a file with one line USER:PASSWORD_HASH")
    node.add_argument("--migrate-transport", default=_env("MIGRATE_TRANSPORT", ""), metavar="COMMAND",
                      help="what `xl migrate -s` reaches the peer's receiver with, e.g. 'ssh -o BatchMode=yes' "
                           "(env RECONCILER_MIGRATE_TRANSPORT; none: VMs that allow live migration wait to move)")
    parser.add_argument("--log-format", choices=("kv", "json"), default=_env("LOG_FORMAT", "kv"))
    parser.set_defaults(func=_run)


class ConfigError(Exception):
    pass


def _transport(text: str | None) -> str:
    from reconciler.backends.xen.migrate import TransportError, check_transport  # noqa: PLC0415

    if not text:
        return ""
    try:
        return check_transport(text, "--migrate-transport (RECONCILER_MIGRATE_TRANSPORT)")
    except TransportError as exc:
        raise ConfigError(str(exc)) from exc


def build_config(args: argparse.Namespace) -> DaemonConfig:
    if not args.repo:
        raise ConfigError("no repository: give --repo URL_OR_PATH (or RECONCILER_REPO)")
    node = check_name(args.node or os.uname().nodename, "node")
    try:
        branch = check_branch(args.branch)
        subdir = check_subdir(args.path or "")
        allowed = frozenset(check_sha(s) for s in args.allow_non_descendant)
    except SourceError as exc:
        raise ConfigError(str(exc)) from exc
    policy = SignaturePolicy(args.verify_signatures,
                             allowed_signers=Path(args.allowed_signers) if args.allowed_signers else None,
                             gpg_home=Path(args.gpg_home) if args.gpg_home else None)
    peers = []
    # An option repeated on the command line wins over the environment as a whole, never merged with it:
    # a unit's drop-in with --peer replaces the list in reconciler.env instead of adding to it.
    items = list(args.peer) or (_env("PEERS") or "").split()
    source = "--peer" if args.peer else "RECONCILER_PEERS"
    for item in items:
        try:
            name, host, port = parse_peer_item(item, source)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        peers.append(PeerEndpoint(check_name(name, "peer node"), host, port))
    peer_listen = args.peer_listen
    access = NodeAccess.of(sim=args.sim)
    local_ports = peer_ports(access)
    if local_ports is not None:
        peer_listen, peers = _local_peers(local_ports, access.location or "", node, peer_listen, peers)
    key: bytes | None = None
    if args.peer_auth == "hmac":
        try:
            key = read_secret(args.peer_token_file, "peer token file").strip()
        except SecretFileError as exc:
            raise ConfigError(
                f"{exc}. Create one shared secret "
                "for the cluster (e.g. `head -c 32 /dev/urandom | base64 > /etc/reconciler/peer.key`, mode 0600, "
                "the same on every node) or pass --peer-auth none on a trusted replication link") from exc
        if len(key) < 16:
            raise ConfigError(f"the peer token in {args.peer_token_file} is too short (at least 16 bytes)")
    basic_auth = None
    if args.metrics_basic_auth_file:
        try:
            text = read_secret(args.metrics_basic_auth_file, "metrics basic-auth file").decode("utf-8", "replace")
        except SecretFileError as exc:
            raise ConfigError(f"{exc}; it holds one line USER:PASSWORD_HASH") from exc
        user, _, hashed = text.strip().partition(":")
        basic_auth = (user, hashed)
    metrics = None if (args.metrics_address or "").lower() in ("", "none", "off") else args.metrics_address
    return DaemonConfig(
        node=node, repo=args.repo if "://" in args.repo or ":" in args.repo.split("/")[0]
        else os.path.abspath(args.repo),
        state_dir=Path(args.state_dir).absolute(), branch=branch, subdir=subdir,
        sim=Path(args.sim).absolute() if args.sim else None, fetch_interval=args.interval,
        drift_interval=args.drift_interval, watch_local=not args.no_watch,
        boot_fetch_timeout=args.boot_fetch_timeout, signatures=policy,
        allow_non_descendant=allowed, metrics_address=metrics, metrics_tls_cert=args.metrics_tls_cert,
        metrics_tls_key=args.metrics_tls_key, metrics_basic_auth=basic_auth, peer_listen=peer_listen,
        peers=tuple(peers), peer_key=key, peer_auth=args.peer_auth, drbd_events=not args.no_drbd_events,
        log_format=args.log_format, migrate_transport=_transport(args.migrate_transport))


def _run(args: argparse.Namespace) -> int:
    from reconciler.daemon.node.identity import IdentityError, boot_time, check_node_name  # noqa: PLC0415
    from reconciler.daemon.records.logs import setup_logging  # noqa: PLC0415

    try:
        config = build_config(args)
    except (ConfigError, UnsafeNameError, ValueError) as exc:
        print(f"reconciler run: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_format)
    try:
        access = NodeAccess.of(sim=config.sim)
        check_node_name(config.node, sim_nodes=known_nodes(access))
        host = _host(access, config.node)
        _check_local_repo(config.repo)
    except (IdentityError, OSError, ValueError) as exc:
        print(f"reconciler run: refusing to start: {exc}", file=sys.stderr)
        return 2
    from reconciler.daemon.loop.real_engine import RealEngine  # noqa: PLC0415
    from reconciler.daemon.loop.runtime import Daemon  # noqa: PLC0415
    from reconciler.daemon.node.statelock import AlreadyRunning, StateLock  # noqa: PLC0415
    from reconciler.daemon.records.backend_choice import BackendChoiceError  # noqa: PLC0415
    from reconciler.metrics.state import MetricsState  # noqa: PLC0415

    lock = StateLock(config.state_dir)
    try:
        lock.acquire()
        daemon = Daemon(config, host, RealEngine(host), metrics=MetricsState(config.node))
    except AlreadyRunning as exc:
        print(f"reconciler run: refusing to start: {exc}", file=sys.stderr)
        return 2
    except (SourceError, OSError, BackendChoiceError) as exc:
        lock.release()
        print(f"reconciler run: cannot start: {exc}", file=sys.stderr)
        return 1
    from reconciler.daemon.loop.runtime import DaemonStartError  # noqa: PLC0415

    daemon.reconciler.booted_at = boot_time() if access.this_machine else None
    try:
        return daemon.run_until_signalled()
    except DaemonStartError as exc:  # raised before any other part started: nothing to stop
        print(f"reconciler run: cannot start: {exc}", file=sys.stderr)
        return 1
    finally:
        lock.release()


def _local_peers(ports: Mapping[str, int], where: str, node: str, listen: str | None,
                 peers: list[PeerEndpoint]) -> tuple[str, list[PeerEndpoint]]:
    """A node without a real replication network (a simulated one) talks to its peers on loopback only:
    its replication addresses exist nowhere else. Defaults come from the ports its provider recorded
    (``sim init``); an endpoint outside loopback is refused."""
    if listen is None:
        if node not in ports:
            raise ConfigError(f"no peer port recorded for node {node} in {where} (a cluster made before ports were "
                              f"recorded): give --peer-listen 127.0.0.1:PORT and --peer NODE=127.0.0.1:PORT")
        listen = f"{LOOPBACK}:{ports[node]}"
    listen_host, _ = parse_endpoint(listen)
    if not is_loopback(listen_host):
        raise ConfigError(f"--peer-listen {listen}: a simulated node listens on loopback only (127.0.0.1)")
    for peer in peers:
        if not is_loopback(peer.host):
            raise ConfigError(f"--peer {peer.node}={peer.host}:{peer.port}: a simulated node reaches its peers "
                              "on loopback only; its replication addresses exist only in the simulator")
    if not peers:
        peers = [PeerEndpoint(other, LOOPBACK, port) for other, port in sorted(ports.items()) if other != node]
    return listen, peers


def _check_local_repo(repo: str) -> None:
    """A local repository path that is not there is a typo, not an outage: say so instead of retrying forever."""
    if not os.path.isabs(repo):
        return  # a URL: an unreachable remote is retried with backoff while the last good revision stays
    if not os.path.isdir(repo):
        raise ValueError(f"--repo {repo}: no such directory (give the path of a git repository or its URL)")
    if not (os.path.exists(os.path.join(repo, ".git")) or os.path.isfile(os.path.join(repo, "HEAD"))):
        raise ValueError(f"--repo {repo}: not a git repository (run `git init` there and commit the desired "
                         "state, or give the repository's URL)")


def _host(access: NodeAccess, node: str) -> Host:
    host = make_host(access, node)
    if not access.this_machine:
        return host
    from reconciler.daemon.node.scope import ScopedHost, under_systemd  # noqa: PLC0415

    return ScopedHost(host) if under_systemd() else host

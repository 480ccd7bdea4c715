"""`reconciler fence-peer`: DRBD's fence-peer handler for clusters without Pacemaker.

DRBD runs it (``handlers { fence-peer "/usr/bin/reconciler fence-peer"; }``) with the resource in
``DRBD_RESOURCE`` and the peer in ``DRBD_PEER_NODE_ID``/``DRBD_PEER_ADDRESS`` (9) or ``DRBD_PEERS`` (8.4).
It is started by the kernel, not by systemd, so it reads the daemon's environment file itself. DRBD's
environment and exit codes are read and answered by DRBD's adapter
(:mod:`reconciler.backends.drbd.fence_handler`); the fencing itself is :mod:`reconciler.daemon.peers.fence`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.backends.drbd.fence_handler import EXIT_ERROR, exit_code, request_from_env
from reconciler.daemon.peers.fence import (
    DEFAULT_HANDLER_TIMEOUT,
    FenceResult,
    PeerChoiceError,
    ask_outdate,
    pick_peer,
    resource_hosts,
    stonith_peer,
)
from reconciler.daemon.peers.keyfile import SecretFileError, read_secret
from reconciler.daemon.peers.peer import DEFAULT_PEER_PORT, parse_peer_item
from reconciler.host.real import RealHost
from reconciler.names import UnsafeNameError, check_name
from reconciler.statedir import DEFAULT_ENV_FILE, DEFAULT_STATE_DIR

if TYPE_CHECKING:
    from reconciler.cli.common import Subparsers
    from reconciler.source.gitsource import LoadedRevision

DEFAULT_PEER_KEY = "/etc/reconciler/peer.key"
PROG = "reconciler fence-peer"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "fence-peer", help="DRBD fence-peer handler: ask the peer's daemon to outdate the resource",
        description="Run by DRBD (not by hand) when a resource loses its peer. Asks the peer's daemon over the "
                    "authenticated peer channel to outdate DRBD_RESOURCE there and exits with DRBD's code: 3 peer "
                    "already Outdated or worse, 4 peer outdated, 6 peer is Primary, 7 peer unreachable and "
                    "powered off by its power_fence (resource-and-stonith only), 1 anything else (unreachable "
                    "without a power fence, refused, unknown resource, outdate failed). Never 5.")
    parser.add_argument("--env-file", default=DEFAULT_ENV_FILE, metavar="FILE",
                        help=f"the daemon's environment file, read for RECONCILER_* settings "
                             f"(default: {DEFAULT_ENV_FILE}; a missing file is fine)")
    parser.add_argument("--state-dir", default=None, metavar="DIR",
                        help=f"the daemon's state directory, for the revision in force (default: {DEFAULT_STATE_DIR})")
    parser.add_argument("--node", default=None, help="this node's name (default: RECONCILER_NODE, else `uname -n`)")
    parser.add_argument("--peer", action="append", default=[], metavar="NODE=HOST:PORT",
                        help="the peer daemon's endpoint (default: RECONCILER_PEERS, as the daemon uses it; "
                             f"without it the peer's replication address, port {DEFAULT_PEER_PORT})")
    parser.add_argument("--peer-token-file", default=None, metavar="FILE",
                        help=f"shared secret of the cluster's daemons (default: {DEFAULT_PEER_KEY})")
    parser.add_argument("--peer-auth", choices=("hmac", "none"), default=None)
    parser.add_argument("--timeout", type=float, default=DEFAULT_HANDLER_TIMEOUT, metavar="S",
                        help="give up waiting for a peer that still calls itself connected after this long "
                             f"(default: {DEFAULT_HANDLER_TIMEOUT:g})")
    parser.set_defaults(func=_fence_peer)


def read_env_file(path: str) -> dict[str, str]:
    """``KEY=VALUE`` lines of a systemd EnvironmentFile (comments and blank lines skipped)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return {}
    found: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[key.strip()] = value
    return found


class HandlerError(Exception):
    pass


def _log(resource: str, message: str) -> None:
    print(f"{PROG}: {resource}: {message}", file=sys.stderr)


def _setting(args_value: str | None, name: str, env: Mapping[str, str], file_env: Mapping[str, str],
             default: str) -> str:
    if args_value is not None:
        return args_value
    key = f"RECONCILER_{name}"
    return env.get(key) or file_env.get(key) or default


def _in_force(state_dir: Path) -> LoadedRevision | None:
    from reconciler.source.gitsource import GitSource  # noqa: PLC0415
    from reconciler.source.mirror import Mirror  # noqa: PLC0415

    return GitSource(Mirror(state_dir, "unused", "main"), state_dir).load_in_force()


def _endpoint(args: argparse.Namespace, resource: str, node: str, state_dir: Path, *,
              env: Mapping[str, str], file_env: Mapping[str, str]) -> tuple[str, str, int]:
    # The daemon's own list of peer endpoints (RECONCILER_PEERS, a management address where one is set):
    # asked over the replication link, the peer is unreachable exactly when that link is what failed.
    items = list(args.peer) or (env.get("RECONCILER_PEERS") or file_env.get("RECONCILER_PEERS") or "").split()
    source = "--peer" if args.peer else "RECONCILER_PEERS"
    explicit: dict[str, tuple[str, int]] = {}
    for item in items:
        try:
            name, host, port = parse_peer_item(item, source)
        except ValueError as exc:
            raise HandlerError(str(exc)) from exc
        explicit[check_name(name, "peer node")] = (host, port)
    if args.peer and len(explicit) == 1:
        # One --peer, written for this resource's handler: that is the peer. RECONCILER_PEERS is the node's
        # list for every resource, so which of its entries DRBD means always comes from the revision below.
        ((name, (host, port)),) = explicit.items()
        return name, host, port
    in_force = _in_force(state_dir)
    if in_force is None:
        raise HandlerError(f"no revision in force in {state_dir}: the peers are unknown")
    hosts = resource_hosts(in_force.cluster, node).get(resource)
    if hosts is None:
        raise HandlerError(f"not a resource of node {node} in revision {in_force.info.sha[:12]}")
    try:
        peer = pick_peer(hosts, node, request_from_env(env))
    except PeerChoiceError as exc:
        raise HandlerError(str(exc)) from exc
    host, port = explicit.get(peer.name, (peer.address, DEFAULT_PEER_PORT))
    return peer.name, host, port


def fence_peer(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    raw = request_from_env(env).resource
    try:
        resource = check_name(raw, "DRBD resource")
    except UnsafeNameError as exc:
        _log(raw or "?", f"refusing: DRBD_RESOURCE: {exc} (this handler is run by DRBD); exit {EXIT_ERROR}")
        return EXIT_ERROR
    file_env = read_env_file(args.env_file)
    try:
        node = check_name(_setting(args.node, "NODE", env, file_env, os.uname().nodename), "node")
        state_dir = Path(_setting(args.state_dir, "STATE_DIR", env, file_env, str(DEFAULT_STATE_DIR)))
        auth = _setting(args.peer_auth, "PEER_AUTH", env, file_env, "hmac")
        key: bytes | None = None
        if auth != "none":
            token_file = _setting(args.peer_token_file, "PEER_TOKEN_FILE", env, file_env, DEFAULT_PEER_KEY)
            try:
                key = read_secret(token_file, "peer token file").strip()
            except SecretFileError as exc:
                raise HandlerError(str(exc)) from exc
        peer, host, port = _endpoint(args, resource, node, state_dir, env=env, file_env=file_env)
    except (HandlerError, UnsafeNameError, ValueError) as exc:
        _log(resource, f"{exc}; exit {EXIT_ERROR}")
        return EXIT_ERROR
    result = ask_outdate(peer, host, port, key, resource, sender=node, timeout=args.timeout)
    if result.unreachable:
        _log(resource, result.message)
        result = _stonith(resource, node, peer, state_dir, env)
    code = exit_code(result.verdict)
    _log(resource, f"{result.message}; exit {code}")
    return code


def _stonith(resource: str, node: str, peer: str, state_dir: Path, env: Mapping[str, str]) -> FenceResult:
    """An unreachable peer proves nothing: only its power fence, run and verified now, may (exit 7)."""
    try:
        in_force = _in_force(state_dir)
    except (OSError, ValueError) as exc:
        return FenceResult("not-fenced", f"the revision in force could not be read ({exc}): no power fence known")
    if in_force is None:
        return FenceResult("not-fenced", f"no revision in force in {state_dir}: no power fence known")
    return stonith_peer(RealHost(node), in_force.cluster, resource, peer, state_dir, request=request_from_env(env))


class Terminated(BaseException):
    """SIGTERM or SIGHUP while the handler runs (a BaseException, as KeyboardInterrupt: nothing may swallow it)."""


def _terminate(signum: int, frame: object) -> None:
    # A second signal while this one unwinds would interrupt the kill of the agent's session.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signal.Signals(signum).name)


def _fence_peer(args: argparse.Namespace) -> int:
    # Killed by a signal, the handler would leave a fence agent it started (in a session of its own) running on:
    # a power-off nobody waits for. Raised here, the signal unwinds through the command runner, which kills the
    # command's whole session; a handler stopped midway proved nothing, so it answers 1.
    previous = {sig: signal.signal(sig, _terminate) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return fence_peer(args, os.environ)
    except Terminated as stopped:
        raw = request_from_env(os.environ).resource
        try:
            resource = check_name(raw, "DRBD resource")
        except UnsafeNameError:
            resource = "?"
        _log(resource, f"stopped by {stopped}: the command it ran was killed with everything it started; "
                       f"exit {EXIT_ERROR}")
        return EXIT_ERROR
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

"""`reconciler fence-peer`: DRBD's fence-peer handler for clusters without Pacemaker.

DRBD runs it (``handlers { fence-peer "/usr/bin/reconciler fence-peer"; }``) with the resource in
``DRBD_RESOURCE`` and the peer in ``DRBD_PEER_NODE_ID``/``DRBD_PEER_ADDRESS`` (9) or ``DRBD_PEERS`` (8.4).
It is started by the kernel, not by systemd, so it reads the daemon's environment file itself. The environment
and the exit codes are read and answered by the node's replicator (the pair the last revision applied here chose,
recorded in the state directory: :mod:`reconciler.daemon.records.backend_choice`; DRBD's adapter is
:mod:`reconciler.backends.drbd.fence_handler`); the fencing itself is :mod:`reconciler.daemon.peers.fence`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.backends.registry import DEFAULT_BACKENDS
from reconciler.core.seams import FenceRequest, Replicator
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
from reconciler.daemon.records.backend_choice import BackendChoiceError, node_choice
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


def _endpoint(args: argparse.Namespace, resource: str, node: str, state_dir: Path, request: FenceRequest, *,
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
        peer = pick_peer(hosts, node, request)
    except PeerChoiceError as exc:
        raise HandlerError(str(exc)) from exc
    host, port = explicit.get(peer.name, (peer.address, DEFAULT_PEER_PORT))
    return peer.name, host, port


def _state_dir(args: argparse.Namespace, env: Mapping[str, str], file_env: Mapping[str, str]) -> Path:
    return Path(_setting(args.state_dir, "STATE_DIR", env, file_env, str(DEFAULT_STATE_DIR)))


def _replicator(state_dir: Path) -> Replicator:
    """The node's replicator, as recorded by its daemon; the default one until a revision was applied (said in the
    log). Raises BackendChoiceError when the record cannot be used."""
    choice = node_choice(state_dir)
    if not choice.recorded:
        print(f"{PROG}: no backends recorded in {state_dir} yet: answering as the default replicator "
              f"({choice.names.replicator})", file=sys.stderr)
    return choice.backends.replicator


def _resource_or_unknown(raw: str) -> str:
    try:
        return check_name(raw, "DRBD resource")
    except UnsafeNameError:
        return "?"


def fence_peer(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    file_env = read_env_file(args.env_file)
    try:
        replicator = _replicator(_state_dir(args, env, file_env))
    except BackendChoiceError as exc:
        # Which replication runs this handler is unknown: its request cannot be read, nothing is fenced.
        fallback = DEFAULT_BACKENDS.replicator
        code = fallback.fence_exit_code("not-fenced")
        _log(_resource_or_unknown(fallback.fence_request(env).resource), f"{exc}; exit {code}")
        return code
    error_code = replicator.fence_exit_code("not-fenced")
    request = replicator.fence_request(env)
    raw = request.resource
    try:
        resource = check_name(raw, "DRBD resource")
    except UnsafeNameError as exc:
        _log(raw or "?", f"refusing: DRBD_RESOURCE: {exc} (this handler is run by DRBD); exit {error_code}")
        return error_code
    try:
        node = check_name(_setting(args.node, "NODE", env, file_env, os.uname().nodename), "node")
        state_dir = _state_dir(args, env, file_env)
        auth = _setting(args.peer_auth, "PEER_AUTH", env, file_env, "hmac")
        key: bytes | None = None
        if auth != "none":
            token_file = _setting(args.peer_token_file, "PEER_TOKEN_FILE", env, file_env, DEFAULT_PEER_KEY)
            try:
                key = read_secret(token_file, "peer token file").strip()
            except SecretFileError as exc:
                raise HandlerError(str(exc)) from exc
        peer, host, port = _endpoint(args, resource, node, state_dir, request, env=env, file_env=file_env)
    except (HandlerError, UnsafeNameError, ValueError) as exc:
        _log(resource, f"{exc}; exit {error_code}")
        return error_code
    result = ask_outdate(peer, host, port, key, resource, sender=node, timeout=args.timeout)
    if result.unreachable:
        _log(resource, result.message)
        result = _stonith(resource, node, peer, state_dir, request=request, replicator=replicator)
    code = replicator.fence_exit_code(result.verdict)
    _log(resource, f"{result.message}; exit {code}")
    return code


def _stonith(resource: str, node: str, peer: str, state_dir: Path, *, request: FenceRequest,
             replicator: Replicator) -> FenceResult:
    """An unreachable peer proves nothing: only its power fence, run and verified now, may (exit 7)."""
    try:
        in_force = _in_force(state_dir)
    except (OSError, ValueError) as exc:
        return FenceResult("not-fenced", f"the revision in force could not be read ({exc}): no power fence known")
    if in_force is None:
        return FenceResult("not-fenced", f"no revision in force in {state_dir}: no power fence known")
    return stonith_peer(RealHost(node), in_force.cluster, resource, peer, state_dir, request=request,
                        replicator=replicator)


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
        try:
            replicator = node_choice(_state_dir(args, os.environ, read_env_file(args.env_file))).backends.replicator
        except BackendChoiceError:
            replicator = DEFAULT_BACKENDS.replicator
        code = replicator.fence_exit_code("not-fenced")
        resource = _resource_or_unknown(replicator.fence_request(os.environ).resource)
        _log(resource, f"stopped by {stopped}: the command it ran was killed with everything it started; "
                       f"exit {code}")
        return code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

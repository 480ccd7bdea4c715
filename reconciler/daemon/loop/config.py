"""Everything ``reconciler run`` is told, as one value (from the command line and /etc/reconciler/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reconciler.daemon.peers.peer_monitor import PeerEndpoint
from reconciler.source.signatures import SignaturePolicy
from reconciler.statedir import DEFAULT_STATE_DIR

DEFAULT_FETCH_INTERVAL = 60.0
DEFAULT_DRIFT_INTERVAL = 300.0
DEFAULT_PROGRESS_INTERVAL = 5.0
DEFAULT_BOOT_FETCH_TIMEOUT = 120.0
DEFAULT_DRBD_POLL = 2.0
DEFAULT_PEER_POLL = 3.0


@dataclass(frozen=True)
class DaemonConfig:
    node: str
    repo: str
    state_dir: Path = DEFAULT_STATE_DIR
    branch: str = "main"
    subdir: str = ""
    sim: Path | None = None
    fetch_interval: float = DEFAULT_FETCH_INTERVAL
    fetch_jitter: float = 0.1
    watch_local: bool = True  # inotify on a repository on this machine (off: poll only)
    drift_interval: float = DEFAULT_DRIFT_INTERVAL
    progress_interval: float = DEFAULT_PROGRESS_INTERVAL
    boot_fetch_timeout: float = DEFAULT_BOOT_FETCH_TIMEOUT
    signatures: SignaturePolicy = field(default_factory=SignaturePolicy)
    allow_non_descendant: frozenset[str] = frozenset()
    metrics_address: str | None = "127.0.0.1:9793"
    metrics_tls_cert: str | None = None
    metrics_tls_key: str | None = None
    metrics_basic_auth: tuple[str, str] | None = None
    peer_listen: str | None = None  # HOST:PORT; default: this node's replication address
    peers: tuple[PeerEndpoint, ...] = ()  # default: the other nodes' replication addresses
    peer_key: bytes | None = None  # None with peer_auth "none"
    peer_auth: str = "hmac"
    peer_poll: float = DEFAULT_PEER_POLL
    drbd_poll: float = DEFAULT_DRBD_POLL
    drbd_events: bool = True
    log_format: str = "kv"
    max_pass_seconds: float = 3600.0
    migrate_transport: str = ""  # `xl migrate -s` (checked: reconciler.backends.xen.migrate.check_transport)

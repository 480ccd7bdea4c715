"""The protocols the pass and the daemon call through, besides the engine and the metrics sink (which have
modules of their own): where the revisions come from, online verification, systemd's notifications, the
peer monitor and the peer server.

The loop names only these, so a test (or the soak) hands it a stand-in without subclassing the real
class, and the real one (:class:`reconciler.source.gitsource.GitSource`,
:class:`reconciler.daemon.loop.verify.VerifyScheduler`, :class:`reconciler.daemon.loop.notify.Notifier`)
can change inside without the loop noticing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from reconciler.daemon.peers.fence import OutdateAnswer
from reconciler.daemon.peers.peer import PeerAnswer
from reconciler.daemon.peers.peer_monitor import PeerEndpoint
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode
from reconciler.model.status import PeerStatus, VerifyStatus
from reconciler.source.gitsource import LoadedRevision, SourceView


class RevisionSource(Protocol):
    """The revision in force and what happened to the newest one (git, in the product)."""

    @property
    def in_force(self) -> LoadedRevision | None:
        """The revision the node converges to, None before one was accepted."""
        ...

    def evaluate(self, now: float, allowed: frozenset[str] = frozenset()) -> SourceView:
        """Judge the newest revision against the one in force; raises SourceError on the source's trouble.
        ``allowed``: commits accepted although they do not descend from the revision in force."""
        ...


class Verifier(Protocol):
    """Scheduled online verification of the VMs this node is primary for; one step per pass."""

    def step(self, desired: DesiredNode, observed: ObservedNode, *, busy: frozenset[str] = frozenset(),
             held: frozenset[str] = frozenset()) -> tuple[VerifyStatus, ...]:
        """One look at every scheduled VM; ``busy`` VMs have actions in this pass, ``held`` ones are suspended."""
        ...


class ServiceNotifier(Protocol):
    """What the daemon tells its service manager (systemd's sd_notify; nothing outside systemd)."""

    def ready(self, status: str) -> bool: ...

    def status(self, status: str) -> bool: ...

    def watchdog(self) -> bool: ...

    def stopping(self, status: str = "stopping") -> bool: ...


class PeerWatch(Protocol):
    """Asks the peers' status servers in a thread of its own and keeps what they said last (the product's:
    :class:`reconciler.daemon.peers.peer_monitor.PeerMonitor`). Its ``on_change`` wakes the loop."""

    # Where the peers listen; the daemon sets it once from the desired state when none were configured.
    endpoints: tuple[PeerEndpoint, ...]

    def statuses(self) -> tuple[PeerStatus, ...]:
        """Each peer's last status, in the order of :attr:`endpoints` (peers not asked yet left out)."""
        ...

    def backing(self) -> dict[str, dict[str, int]]:
        """Peer -> VM -> its backing device's size there, as last reported."""
        ...

    def split_brain(self) -> dict[str, dict[str, str]]:
        """Peer -> resource -> the peer's record of its last split brain there, as last reported."""
        ...

    def seen(self) -> frozenset[str]:
        """The peers that answered at least once since the start (the boot gate waits for them)."""
        ...

    def start(self) -> None:
        """Start asking (nothing without endpoints)."""
        ...

    def stop(self) -> None:
        ...


class PeerWatchFactory(Protocol):
    """Makes the daemon's :class:`PeerWatch`, given what to call when a peer's status changes."""

    def __call__(self, on_change: Callable[[PeerStatus], None]) -> PeerWatch: ...


class PeerListener(Protocol):
    """Serves this node's status (and the outdate request of a peer's fence handler) to its peers (the
    product's: :class:`reconciler.daemon.peers.peer.PeerServer`)."""

    @property
    def port(self) -> int:
        """The port it listens on (the one asked for, or the one the system chose for port 0)."""
        ...

    def start(self) -> None:
        ...

    def shutdown(self) -> None:
        ...


class PeerListenerFactory(Protocol):
    """Makes and binds the daemon's :class:`PeerListener` on ``address``:``port`` (raises ``OSError`` when it
    cannot bind), answering with ``answer`` and outdating through ``outdate``."""

    def __call__(self, address: str, port: int, answer: Callable[[], PeerAnswer],
                 outdate: Callable[[str], OutdateAnswer]) -> PeerListener: ...

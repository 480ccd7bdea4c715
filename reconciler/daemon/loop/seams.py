"""The protocols the pass and the daemon call through, besides the engine and the metrics sink (which have
modules of their own): where the revisions come from, online verification, and systemd's notifications.

The loop names only these, so a test (or the soak) hands it a stand-in without subclassing the real
class, and the real one (:class:`reconciler.source.gitsource.GitSource`,
:class:`reconciler.daemon.loop.verify.VerifyScheduler`, :class:`reconciler.daemon.loop.notify.Notifier`)
can change inside without the loop noticing.
"""

from __future__ import annotations

from typing import Protocol

from reconciler.model.desired import DesiredNode
from reconciler.model.observed import ObservedNode
from reconciler.model.status import VerifyStatus
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

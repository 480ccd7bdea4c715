"""The :class:`Hypervisor` and :class:`Replicator` protocols, from what the planner and the loop use today.

Each method that acts returns an argv (the planner wraps it in an action; the daemon's shutdown runs it
with its own timeout). Names are checked by the implementation, as every argv builder does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from reconciler.model.desired import DesiredVm
from reconciler.model.observed import DrbdResourceState, DrbdState, OwnedFile

Argv = tuple[str, ...]


@dataclass(frozen=True)
class StateEvent:
    """One event of the replicator's followed stream, folded into the state so far."""

    state: DrbdState  # the state with this event applied
    live: bool  # after the initial dump: a change as it happens, not one of the states that already were
    resource: str | None
    what: str  # what the event is about (the resource, a device, a connection, ...)


class EventFolder(Protocol):
    """Folds the lines of a followed event stream, one at a time, into the replicated resources' state."""

    def feed(self, line: str) -> StateEvent | None:
        """The event ``line`` is (None: nothing to report); raises ``ParseError`` for a line it cannot read."""
        ...


class ConfigOwner(Protocol):
    """The backend whose configuration file a write action puts in place: it alone knows what the file means.

    The hypervisor and the replicator are both one (their argument names differ, hence positional-only here).
    """

    def hand_written(self, text: str, name: str, /) -> bool:
        """The config text was written by hand for ``name`` (no header of ours, and it defines ``name``)."""
        ...

    def config_differences(self, current: str, desired: str, source: str, /) -> list[str]:
        """What putting ``desired`` in place of ``current`` would change (empty: nothing)."""
        ...

    def defined_elsewhere(self, files: Iterable[OwnedFile], key: str, path: str, /) -> str:
        """Why ``path`` must not be written for ``key``: another file the tool reads defines it already (empty:
        nothing else does)."""
        ...


class Hypervisor(Protocol):
    """Runs the VMs' domains: start, stop, live changes, and a cheap listing to notice changes by."""

    @property
    def name(self) -> str:
        """The backend's name (``xen``)."""
        ...

    @property
    def tool(self) -> str:
        """The tool status (``ObservedNode.tools``) its facts report; its actions need it ``available``."""
        ...

    def config_path(self, domain: str) -> str:
        """Where the domain's configuration file lives (the reconciler owns it)."""
        ...

    def start_argv(self, domain: str) -> Argv:
        """Start the domain from its configuration file."""
        ...

    def shutdown_argv(self, domain: str) -> Argv:
        """Shut the domain down cleanly and wait for it (never destroy it)."""
        ...

    def destroy_argv(self, domain: str) -> Argv:
        """Destroy the domain at once; used only on what an interrupted start left, which never ran."""
        ...

    def set_memory_argv(self, domain: str, mib: int) -> Argv:
        """Change a running domain's memory, within its maximum."""
        ...

    def set_vcpus_argv(self, domain: str, vcpus: int) -> Argv:
        """Change a running domain's vcpus, within its maximum."""
        ...

    def migrate_argv(self, domain: str, target: str, transport: str) -> Argv:
        """Move the running domain to node ``target`` live, over ``transport`` (the node's configured command
        that reaches the target's receiver)."""
        ...

    def migration_names(self, domain: str) -> tuple[str, str]:
        """The names the domain has while a live migration is under way: (at the target, at the source)."""
        ...

    def migration_undefined(self, output: str) -> bool:
        """What a failed migration printed says the domain's state is undefined at both ends (an operator must
        decide which instance lives; nothing is undone automatically)."""
        ...

    def watch_argv(self) -> Argv:
        """A cheap read-only listing the daemon polls between passes."""
        ...

    def state_signature(self, listing: str) -> str:
        """What of the listing means a domain changed state (counters left out): equal means no change."""
        ...

    def hand_written(self, text: str, domain: str) -> bool:
        """The config text was written by hand for this domain (no header of ours, and it defines the domain):
        a takeover's starting point, where an edited file of ours is drift."""
        ...

    def config_differences(self, current: str, desired: str, source: str) -> list[str]:
        """What starting the domain from ``desired`` instead of ``current`` would change (empty: nothing)."""
        ...

    def defined_elsewhere(self, files: Iterable[OwnedFile], key: str, path: str) -> str:
        """Why ``path`` must not be written for domain ``key``: another file defines it already (empty: none)."""
        ...


class Replicator(Protocol):
    """Replicates a VM's backing device to its peer: metadata, up/down, adjust, resize, roles."""

    @property
    def name(self) -> str:
        """The backend's name (``drbd``)."""
        ...

    @property
    def tool(self) -> str:
        """The tool status its facts report; its actions need it ``available``."""
        ...

    def config_path(self, resource: str) -> str:
        """Where the resource's configuration file lives (the reconciler owns it)."""
        ...

    def create_metadata_argv(self, resource: str) -> Argv:
        """Write the replication metadata on the backing device (the gate probes it first)."""
        ...

    def up_argv(self, resource: str) -> Argv:
        ...

    def down_argv(self, resource: str) -> Argv:
        ...

    def adjust_argv(self, resource: str) -> Argv:
        """Bring the running resource in line with its configuration file."""
        ...

    def resize_argv(self, resource: str) -> Argv:
        """Grow the replicated device to its grown backing device (both nodes connected)."""
        ...

    def promote_argv(self, resource: str, *, force: bool = False) -> Argv:
        """Make this node the writer; ``force`` only for a brand-new pair (the gate decides)."""
        ...

    def demote_argv(self, resource: str) -> Argv:
        ...

    def allow_two_primaries_argv(self, resource: str, *, allow: bool) -> Argv:
        """Open (``allow``) or close a live migration's window: the runtime allowance of two primaries, never the
        configuration file's."""
        ...

    def force_demote_argv(self, resource: str) -> Argv:
        """Demote although the device is still open: its openers get I/O errors (after a plain demotion failed
        on a node that lost quorum, before the node is rebooted)."""
        ...

    def connect_argv(self, resource: str, *, discard_my_data: bool = False) -> Argv:
        """Connect to the peer; ``discard_my_data`` only to resolve a split brain the desired state decided."""
        ...

    def disconnect_argv(self, resource: str) -> Argv:
        """Drop the connection to the peer (reconnecting resyncs what an online verify found out of sync)."""
        ...

    def verify_argv(self, resource: str) -> Argv:
        """Start an online verify: compare every block with the peer's, mark those that differ out of sync."""
        ...

    def generation_ids_argv(self, resource: str) -> Argv:
        """Read the resource's data generation identifiers (read-only; the last look before a forced promotion
        and the split-brain handler's record of an incident)."""
        ...

    def dry_run_adjust_argv(self, resource: str) -> Argv:
        """What adjusting the running resource to its configuration file would run, without running it."""
        ...

    def watch_argv(self) -> Argv:
        """A read-only dump of the current state the daemon polls between passes when it cannot follow."""
        ...

    def follow_argv(self) -> Argv:
        """A command that prints the current state, then every change as it happens, until it is stopped."""
        ...

    def state_signature(self, dump: str) -> str:
        """What of a :meth:`watch_argv` dump means a state change (counters left out): equal means no change."""
        ...

    def read_state(self, dump: str) -> DrbdState | None:
        """The state a :meth:`watch_argv` dump describes (None: it cannot be read)."""
        ...

    def event_folder(self) -> EventFolder:
        """A fresh folder for the lines of one :meth:`follow_argv` stream."""
        ...

    def verify_progress(self, state: DrbdResourceState) -> tuple[bool, float | None]:
        """Whether an online verify runs on the resource, and the least done of its volumes (percent) if known."""
        ...

    def primary_without_quorum(self, vm: DesiredVm, state: DrbdResourceState | None) -> bool:
        """This node's replica is the writer and has lost quorum: the escalation that ends in a reboot is about
        such a resource."""
        ...

    def peer_can_take_over(self, state: DrbdResourceState) -> bool:
        """The peer is connected with up-to-date data: a domain may move there now."""
        ...

    def hand_written(self, text: str, resource: str) -> bool:
        """The config text was written by hand for this resource (no header of ours, and it defines the
        resource): a takeover's starting point, where an edited file of ours is drift."""
        ...

    def defined_elsewhere(self, files: Iterable[OwnedFile], key: str, path: str) -> str:
        """Why ``path`` must not be written for resource ``key``: another file the tool reads defines it already.
        Empty when nothing else does."""
        ...

    def config_differences(self, current: str, desired: str, source: str) -> list[str]:
        """What applying ``desired`` instead of ``current`` would change in the running resource (empty: nothing)."""
        ...


@dataclass(frozen=True)
class Backends:
    """The hypervisor and the replicator one node's plan and shutdown use."""

    hypervisor: Hypervisor
    replicator: Replicator

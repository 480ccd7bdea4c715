"""The :class:`Hypervisor` and :class:`Replicator` protocols, from what the planner and the loop use today.

Each method that acts returns an argv (the planner wraps it in an action; the daemon's shutdown runs it
with its own timeout). Names are checked by the implementation, as every argv builder does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from reconciler.core.actions import Action, ActionKind, Change, Command
from reconciler.core.observed_index import ObservedIndex
from reconciler.core.peer_view import PeerView
from reconciler.core.plan_model import Note, NoteKind
from reconciler.core.render_settings import DomainFileSettings, ResourceFileSettings
from reconciler.host.base import Host
from reconciler.model.desired import DesiredDomain, DesiredDrbd, DesiredVm, DrbdHost, DrbdVersion
from reconciler.model.observed import DomainRunState, OwnedFile, ReplicaState, ReplicationState
from reconciler.model.status import Condition

Argv = tuple[str, ...]


@dataclass(frozen=True)
class StateEvent:
    """One event of the replicator's followed stream, folded into the state so far."""

    state: ReplicationState  # the state with this event applied
    live: bool  # after the initial dump: a change as it happens, not one of the states that already were
    resource: str | None
    what: str  # what the event is about (the resource, a device, a connection, ...)


class EventFolder(Protocol):
    """Folds the lines of a followed event stream, one at a time, into the replicated resources' state."""

    def feed(self, line: str) -> StateEvent | None:
        """The event ``line`` is (None: nothing to report); raises ``ParseError`` for a line it cannot read."""
        ...


class ListedDomain(Protocol):
    """One domain of the hypervisor's listing (:meth:`Hypervisor.watch_argv`)."""

    @property
    def name(self) -> str:
        ...

    @property
    def domid(self) -> int:
        ...

    @property
    def state(self) -> DomainRunState:
        ...

    @property
    def time_s(self) -> float:
        """The CPU time it has had (0.0: it never ran)."""
        ...


class ReplicaIdentity(Protocol):
    """What the replicator's config files on this node say a resource is here (None: they do not say)."""

    @property
    def source(self) -> str:
        """The file that says it."""
        ...

    @property
    def minor(self) -> int | None:
        ...

    @property
    def disk(self) -> str | None:
        """The backing device its metadata lives on."""
        ...

    @property
    def port(self) -> int | None:
        ...


# What a fence-peer handler concluded, in the shared fence logic's words; the replicator's handler adapter turns
# it into what its tool understands (DRBD's: an exit code, backends/drbd/fence_handler.py).
FenceVerdict = Literal["not-fenced", "already", "outdated", "peer-primary", "stonithed"]


@dataclass(frozen=True)
class FenceRequest:
    """What the replication told its fence-peer handler, read by the replicator's adapter from however its tool
    passes it (DRBD: the ``DRBD_*`` environment). ``resource`` is not checked yet."""

    resource: str
    peer_node_id: int | None = None  # the lost peer's node id, when the tool names it so
    peer_address: str = ""  # its replication address, when given
    peer_names: tuple[str, ...] = ()  # the peers' names, when given
    minors: tuple[int, ...] = ()  # the devices the handler runs for, when given


@dataclass(frozen=True)
class ReplicaFencing:
    """How a replica's lost peer is fenced, as the replica's desired config says: whether the product's
    fence-peer handler runs for it (it asks the peer's daemon to outdate), and whether under a policy that lets
    the handler power an unreachable peer off (stonith)."""

    handler: bool
    stonith: bool


# What asking this node to outdate its replica (a peer's fence-peer handler) found and did.
OutdateOutcome = Literal["outdated", "already", "primary", "connected", "failed"]


class SplitBrainRecord(Protocol):
    """What the replicator's split-brain handler recorded (DRBD's: a marker file the observer reads)."""

    @property
    def resource(self) -> str:
        ...

    @property
    def peer(self) -> str:
        """The peer the split brain is with (empty: the handler was not told)."""
        ...


@dataclass(frozen=True)
class SplitBrainIncident:
    """A split-brain resolution step (its action's identity) against the replica's state right before it runs."""

    wanted: str  # the incident the desired state's split_brain_recovery names
    incident: str | None  # the incident the replica is in now (None: not in one, or it cannot be named)
    redetected: bool  # this node's record of the split brain changed since the plan: a new incident


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


class PlanBuilder(Protocol):
    """What a backend's planner adds one VM's steps through (:class:`reconciler.core.vm_builder.VmBuilder`).

    Declared here, beside the protocols whose planning methods take it, so that the seams never import the
    builder, which imports them.
    """

    vm: DesiredVm
    observed: ObservedIndex
    peer: PeerView | None
    drbd_changes: Mapping[str, str]
    actions: list[Action]
    notes: list[Note]

    @property
    def hypervisor(self) -> Hypervisor:
        ...

    @property
    def replicator(self) -> Replicator:
        ...

    def add(self, kind: ActionKind, key: str, change: Change, description: str, *,
            commands: tuple[Command, ...] = (), depends_on: tuple[str | None, ...] = (), timeout: float | None = None,
            **fields: Any) -> str:
        """Add an action; its id (its kind's timeout unless ``timeout`` is given)."""
        ...

    @staticmethod
    def command(argv: Argv) -> Command:
        """A backend's argv as an action's command."""
        ...

    def note(self, kind: NoteKind, key: str, message: str) -> None:
        ...

    def find(self, kind: ActionKind, key: str) -> str | None:
        """The id of the action of ``kind`` on ``key`` if one is planned."""
        ...

    def ids_for(self, *keys: str) -> tuple[str, ...]:
        ...

    def owned_file(self, kind: ActionKind, key: str, path: str, content: str, owner: ConfigOwner) -> str | None:
        """Write, or report the drift of, a file the reconciler owns; the id of the write (None: none)."""
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

    def render_config(self, settings: DomainFileSettings, disks: Sequence[str]) -> str:
        """The text of the domain's configuration file (at :meth:`config_path`), with ``disks`` in order, the
        first the root; the desired state's expansion calls it."""
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

    def listed_domains(self, listing: str) -> Sequence[ListedDomain]:
        """The domains a :meth:`watch_argv` listing shows (the undo of a failed start looks for its remnant);
        raises ``ParseError`` for a listing it cannot read."""
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

    def plan_config(self, b: PlanBuilder, domain: DesiredDomain) -> str | None:
        """Plan the step that puts the domain's configuration file in place; the id of that action (None:
        nothing to write). The planner's composer calls it for every VM to run here."""
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

    def render_config(self, settings: ResourceFileSettings, version: DrbdVersion, hosts: Sequence[DrbdHost],
                      minor: int, backing_device: str, *, allow_two_primaries: bool) -> str:
        """The text of the resource's configuration file (at :meth:`config_path`) for nodes running ``version``;
        the desired state's expansion calls it."""
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

    def read_state(self, dump: str) -> ReplicationState | None:
        """The state a :meth:`watch_argv` dump describes (None: it cannot be read)."""
        ...

    def event_folder(self) -> EventFolder:
        """A fresh folder for the lines of one :meth:`follow_argv` stream."""
        ...

    def verify_progress(self, state: ReplicaState) -> tuple[bool, float | None]:
        """Whether an online verify runs on the resource, and the least done of its volumes (percent) if known."""
        ...

    def primary_without_quorum(self, vm: DesiredVm, state: ReplicaState | None) -> bool:
        """This node's replica is the writer and has lost quorum: the escalation that ends in a reboot is about
        such a resource."""
        ...

    def peer_can_take_over(self, state: ReplicaState) -> bool:
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

    def config_identities(self, files: Iterable[OwnedFile], node: str) -> tuple[Mapping[str, ReplicaIdentity], str]:
        """Per resource, what the replicator's config files among ``files`` say it is on ``node`` (the identity
        check before a plan: a minor, port or backing device never changes in place), and what could not be
        read (empty: every file was read)."""
        ...

    def outdate(self, host: Host, resource: str,
                peer_keeps: tuple[bool, str] = (False, "")) -> tuple[OutdateOutcome, str]:
        """Mark this node's replica as out of date, because a peer that lost us asks (its fence-peer handler),
        unless this node is the writer; never promote. Inside a live migration's window a writer may give way
        (demote) only when ``peer_keeps`` says the migration's records show the peer keeps the data (with why
        not otherwise). The outcome and what it found, for the log."""
        ...

    def migration_window_open(self, host: Host, resource: str) -> tuple[bool, str]:
        """Whether a live migration's window (two writers allowed) is in force here for ``resource`` right now,
        read fresh; unreadable counts as closed, and the second value says why it is not open."""
        ...

    def local_view(self, host: Host, minor: int) -> tuple[str, str]:
        """This node's role and disk state of the replica on ``minor``, read without waiting on the replication's
        own locks (the fence handler runs inside a promotion); ``("Unknown", "Unknown")`` when it cannot tell."""
        ...

    @property
    def fence_handler(self) -> str:
        """The product's fence-peer handler as the replication's config names it (for messages)."""
        ...

    def fencing(self, desired: DesiredDrbd) -> ReplicaFencing:
        """Whether the replica ``desired`` uses the product's fence-peer handler, and a stonith policy (the
        doctor's fence-path and power-fence checks)."""
        ...

    def fence_request(self, env: Mapping[str, str]) -> FenceRequest:
        """What the replication tells its fence-peer handler (``reconciler fence-peer``), read from the handler's
        environment ``env``."""
        ...

    def fence_exit_code(self, verdict: FenceVerdict) -> int:
        """The fence-peer handler's exit code for ``verdict``, in the replication's terms (``not-fenced`` is
        also the answer to a handler that could not do its work)."""
        ...

    def record_split_brain(self, host: Host, env: Mapping[str, str], now: Callable[[], float]) -> SplitBrainRecord:
        """Record the split brain the replication's handler reports in its environment ``env``, where the
        observer finds it (raises ``UnsafeNameError`` for a bad resource name)."""
        ...

    def plan_split_brain(self, b: PlanBuilder, running: bool) -> bool:
        """Plan the resolution of a split brain the desired state decided, or note why there is none; True when
        this node discards its changes in this pass (the composer then plans nothing else for the VM).
        ``running``: the VM's domain exists here."""
        ...

    def plan_quorum_loss(self, b: PlanBuilder, state: ReplicaState) -> bool:
        """Plan giving the VM up on a writer that lost quorum; True when the VM gets nothing else in this pass."""
        ...

    def plan_resource(self, b: PlanBuilder, desired: DesiredDrbd) -> None:
        """Plan the resource itself: its configuration file, metadata, up, adjust, resize."""
        ...

    def plan_role(self, b: PlanBuilder, desired: DesiredDrbd, *, want_primary: bool,
                  domain_running: bool) -> str | None:
        """Plan the promotion or demotion; the id of the promote action (None: none planned)."""
        ...

    def health_conditions(self, vm: DesiredVm, state: ReplicaState, peer: PeerView | None,
                          hostname: str) -> list[Condition]:
        """What is wrong with the replica that the reconciler must not repair by itself (split brain, lost
        quorum, data not known to be good here or on the peer): it keeps the resource Degraded."""
        ...

    def split_brain_incident(self, state: ReplicaState, identity: str) -> SplitBrainIncident:
        """What a split-brain resolution step (``identity``, as the backend's planner wrote it) names, and which
        incident the replica (``state``, read right before the step) is in now."""
        ...


@dataclass(frozen=True)
class Backends:
    """The hypervisor and the replicator one node's plan and shutdown use."""

    hypervisor: Hypervisor
    replicator: Replicator

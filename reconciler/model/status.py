"""Outcomes of a pass and the status a node publishes. Produced by apply and the loop; read by
the status command, the peer protocol and the metrics collector."""

from __future__ import annotations

from typing import Literal

from reconciler.model.base import Frozen

ResourcePhase = Literal["ready", "degraded", "progressing", "waiting", "failed", "refused", "suspended"]
# unchanged: nothing ran, what the action would make is already there (e.g. a swap signature that blkid finds).
ActionResult = Literal["ok", "unchanged", "failed", "refused", "waiting", "skipped"]
PassOutcome = Literal["converged", "degraded", "progressing", "failed", "invalid", "suspended", "error"]
"""``converged``: nothing left to do and everything healthy. ``degraded``: nothing left that the reconciler may
do by itself, but something is not healthy (split brain, a disk that is not UpToDate, ...)."""

ConditionKind = Literal["split-brain", "disk", "peer-disk", "domain-away", "domain-on-both", "domain-not-running",
                        "restart-needed", "growth-pending", "failed-over", "failed-over-away", "quorum-lost",
                        "tiebreaker-lost", "live-migration"]
FailoverState = Literal["decided", "running", "failed", "abandoned", "ended"]
EscalationState = Literal["started", "requested", "failed"]


class Condition(Frozen):
    """Something unhealthy about one resource that the reconciler will not (or must not) repair by itself."""

    key: str
    vm: str
    kind: ConditionKind
    message: str


class ResourceStatus(Frozen):
    key: str
    vm: str
    kind: str
    phase: ResourcePhase
    reason: str = ""
    conditions: tuple[ConditionKind, ...] = ()


class ActionRecord(Frozen):
    kind: str
    key: str
    vm: str
    result: ActionResult
    attempts: int = 1
    duration_s: float = 0.0
    message: str = ""
    argv: tuple[tuple[str, ...], ...] = ()
    # Whether a command of the action ran (a step held by its plan or by the last look ran none).
    ran: bool = False


class PassResult(Frozen):
    started_at: float
    finished_at: float
    revision: str | None
    outcome: PassOutcome
    resources: tuple[ResourceStatus, ...] = ()
    actions: tuple[ActionRecord, ...] = ()
    drift: int = 0
    retries: int = 0
    errors: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        return self.finished_at - self.started_at


class RevisionInfo(Frozen):
    sha: str
    seen_at: float
    committed_at: float | None = None
    summary: str = ""


class PeerTakeover(Frozen):
    """A VM that a peer runs after an automatic failover it decided (its record in force), as the peer reports it:
    ``id`` names the failover, ``from_node`` the node the VM was taken from."""

    vm: str
    id: str
    from_node: str


MigrationPhase = Literal["waiting", "window-open", "target-promoted", "migrating", "migrated", "source-demoted",
                         "done", "aborting", "aborted", "held"]


class PeerMigration(Frozen):
    """A live migration of one VM as the peer reports it: the revision it is for and the peer's phase."""

    vm: str
    revision: str
    phase: MigrationPhase
    reason: str = ""


class MigrationStatus(Frozen):
    """A live migration of one VM as this node sees it (reconciler.daemon.loop.migrations): where it is, since when,
    and, once it ended otherwise than done, why (``aborted``) or what xl said (``held``)."""

    vm: str
    revision: str
    source: str
    target: str
    phase: MigrationPhase
    since: float
    started_at: float
    reason: str = ""


class PeerStatus(Frozen):
    node: str
    reachable: bool
    applied_revision: str | None = None
    ready: bool = False
    checked_at: float = 0.0
    error: str = ""
    # Empty also when the peer runs a version that does not report them: nothing known, not "none".
    takeovers: tuple[PeerTakeover, ...] = ()
    # The live migrations the peer takes part in (empty: none, or a peer of an older version).
    migrations: tuple[PeerMigration, ...] = ()


class Suspension(Frozen):
    scope: str  # "node" or a VM name
    reason: str
    by: str
    at: float


class VerifyStatus(Frozen):
    """Online verification of one resource whose designated primary is this node (reconciler.daemon.loop.verify)."""

    vm: str
    resource: str
    schedule: str
    interval_seconds: int
    next_due_at: float | None = None
    running: bool = False
    run_id: str = ""  # the run going on, or the last one started
    started_at: float | None = None
    progress_percent: float | None = None
    last_run_id: str = ""  # the last run that compared every block
    last_run_at: float | None = None  # when it ended
    found_out_of_sync_bytes: int | None = None  # what it found (blocks DRBD marked out of sync)
    resynced_run_id: str = ""  # the run whose found blocks a resync_found statement had resynced
    waiting: str = ""  # why a due run does not start (or a statement is not carried out)
    error: str = ""

    @property
    def unresolved_out_of_sync_bytes(self) -> int | None:
        """Found by the last run and not resynced since by a statement naming it."""
        if self.found_out_of_sync_bytes is None:
            return None
        return 0 if self.resynced_run_id and self.resynced_run_id == self.last_run_id else self.found_out_of_sync_bytes


class FailoverStatus(Frozen):
    """Automatic failover of one VM as this node sees it (reconciler.daemon.peers.failover): the latest record, and
    ``watching``, why the VM is not (yet) taken over while its designated primary looks lost."""

    vm: str
    id: str = ""
    state: FailoverState | None = None
    from_node: str = ""
    to_node: str = ""
    decided_at: float | None = None
    updated_at: float | None = None
    reason: str = ""
    detail: str = ""
    watching: str = ""
    designated: str = ""  # the node the desired state named when it was decided (this node: a VM taken back)


class EscalationStatus(Frozen):
    """The latest reboot this node made because a Primary without quorum could not be stopped
    (reconciler.daemon.loop.escalation): ``started`` (the reboot command ran and did not return, as a reboot does
    not), ``requested`` (systemd took the reboot job) or ``failed`` (the command failed). ``action`` is the
    command; ``decided_at`` when it started."""

    vm: str
    resource: str
    action: str
    state: EscalationState
    decided_at: float
    updated_at: float
    failures: int
    reason: str = ""
    message: str = ""


class NodeStatus(Frozen):
    node: str
    cluster: str = ""
    last_attempted: RevisionInfo | None = None
    last_applied: RevisionInfo | None = None
    pending_refusal: str = ""
    invalid_errors: tuple[str, ...] = ()
    last_pass: PassResult | None = None
    last_success_at: float | None = None
    peers: tuple[PeerStatus, ...] = ()
    suspensions: tuple[Suspension, ...] = ()
    recent_errors: tuple[str, ...] = ()
    booted_at: float | None = None
    # The latest known phase of every resource (kept across passes that could not observe the node).
    resources: tuple[ResourceStatus, ...] = ()
    # Why promotion and domain starts are held back after a boot ("" once the gate is open).
    boot_gate: str = ""
    updated_at: float | None = None
    # The daemon's promise: a newer status by this time (its longest wait between passes plus the longest an
    # action may take). Past it, the status is stale: the daemon is stopped, hung or cannot write.
    fresh_until: float | None = None
    verify: tuple[VerifyStatus, ...] = ()
    failovers: tuple[FailoverStatus, ...] = ()
    escalations: tuple[EscalationStatus, ...] = ()
    migrations: tuple[MigrationStatus, ...] = ()

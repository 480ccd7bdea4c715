"""Scheduled DRBD online verification, run by the daemon on each VM's designated primary.

At the end of a pass, for every VM with a verify schedule whose primary this node is: a run that is due
starts (``drbdadm verify RES``) only when the resource is quiet and whole (every connection Connected and
Established, both disks UpToDate, no split brain, nothing planned for the VM in this pass) and no run or
resync is going on; and one at a time per node, since each reads its whole backing device on both nodes.
Later passes follow it through DRBD's own state (VerifyS/VerifyT, ``verified:`` or ``done:``) and, when the
replication state is back to Established, read what it found: the out-of-sync amount DRBD marked (``oos:``
in /proc/drbd, ``out-of-sync`` of drbdsetup). A verify starts from a connected, in-sync pair, so everything
out of sync at its end was found by it.

Found blocks stay out of sync: a verify never copies data. Only a ``resync_found: RUN`` statement naming the
last run makes the daemon resync them, once, by ``drbdadm disconnect`` + ``drbdadm connect`` on the primary
(DRBD resyncs every block marked out of sync when the connection is established again; the primary is the
source). The statement is recorded as carried out before the disconnect, so a crash in between leaves a
StandAlone connection, which the next pass's ``drbdadm adjust`` reconnects, never a second disconnect.

Runs are remembered in ``<state dir>/verify.json``: a restart neither re-runs a verify nor forgets one that
is going on.
"""

from __future__ import annotations

import functools
import logging
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.backends.registry import DEFAULT_BACKENDS, node_backends
from reconciler.core.seams import Replicator
from reconciler.daemon.records.logs import event
from reconciler.host.base import Host
from reconciler.model.base import Decoder, ModelDataError, decoder_for
from reconciler.model.desired import DesiredNode, DesiredVm
from reconciler.model.observed import DrbdResourceState, ObservedNode
from reconciler.model.status import VerifyStatus
from reconciler.source.statefile import read_json, write_json

STATE_FILE = "verify.json"
COMMAND_TIMEOUT = 60.0
# After a refused start (e.g. the peer's DRBD refuses the request), wait this long before the next attempt.
RETRY_AFTER = 900.0


def run_id(at: float) -> str:
    """The id of a run: its start in UTC, second precision (what resync_found names)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(at))


@dataclass
class _Record:
    """What is remembered of one resource between passes and restarts."""

    first_seen_at: float
    run_id: str = ""
    started_at: float | None = None
    running: bool = False
    progress: float | None = None
    last_run_id: str = ""
    last_run_at: float | None = None
    found_bytes: int | None = None
    resynced_run_id: str = ""
    retry_after: float = 0.0
    error: str = ""

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: object) -> _Record | None:
        """The record as written by ``to_json``; None for anything else (a record of the wrong shape or types
        is forgotten, and the resource is seen afresh)."""
        if not isinstance(data, dict):
            return None
        decoders = _record_decoders()
        try:
            return cls(**{k: decoders[k](v, f"verify record.{k}") for k, v in data.items() if k in decoders})
        except (TypeError, ModelDataError):
            return None


@functools.cache
def _record_decoders() -> dict[str, Decoder]:
    return {name: decoder_for(hint) for name, hint in typing.get_type_hints(_Record).items()}


def _why_not_quiet(res: DrbdResourceState | None) -> str:
    """Why a verify must not start now ("" when it may): DRBD verifies only a connected pair in sync."""
    if res is None:
        return "the resource is not up"
    if res.split_brain:
        return "split brain"
    if not res.devices or any(d.disk_state != "UpToDate" for d in res.devices):
        return "the local disk is not UpToDate"
    if not res.connections:
        return "no peer is connected"
    for conn in res.connections:
        if conn.connection_state != "Connected":
            return f"the connection to {conn.peer_name} is {conn.connection_state}"
        for pd in conn.peer_devices:
            if pd.replication_state != "Established":
                return f"{conn.peer_name} is {pd.replication_state} (a resync or another verify runs)"
            if pd.peer_disk_state != "UpToDate":
                return f"the peer's disk is {pd.peer_disk_state}"
        if not conn.peer_devices:
            return f"no volume of {conn.peer_name} is known"
    return ""


def _out_of_sync(res: DrbdResourceState) -> int | None:
    amounts = [pd.out_of_sync_bytes for c in res.connections for pd in c.peer_devices]
    known = [a for a in amounts if a is not None]
    return max(known) if known else None


@dataclass
class VerifyScheduler:
    host: Host
    state_dir: Path
    now: Callable[[], float]
    replicator: Replicator | None = None  # None: the replicator of the node each step is for
    _records: dict[str, _Record] = field(default_factory=dict)
    _statuses: tuple[VerifyStatus, ...] = ()
    _loaded: bool = False
    _replicator: Replicator = DEFAULT_BACKENDS.replicator  # the one of the node the current step is for

    @property
    def path(self) -> Path:
        return self.state_dir / STATE_FILE

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        data = read_json(self.path)
        if isinstance(data, dict):
            for name, raw in data.items():
                record = _Record.from_json(raw)
                if record is not None:
                    self._records[str(name)] = record

    def _save(self) -> None:
        write_json(self.path, {name: r.to_json() for name, r in sorted(self._records.items())})

    def statuses(self) -> tuple[VerifyStatus, ...]:
        return self._statuses

    def step(
        self,
        desired: DesiredNode,
        observed: ObservedNode,
        *,
        busy: frozenset[str] = frozenset(),
        held: frozenset[str] = frozenset(),
    ) -> tuple[VerifyStatus, ...]:
        """One look at every scheduled VM. ``busy``: VMs with actions in this pass (nothing starts beside
        them); ``held``: suspended VMs (followed, never started)."""
        self._load()
        self._replicator = self.replicator if self.replicator is not None else node_backends(desired).replicator
        before = {name: r.to_json() for name, r in self._records.items()}
        statuses = []
        scheduled = [
            vm
            for vm in desired.vms
            if vm.drbd is not None and vm.drbd.verify is not None and vm.is_primary_here and vm.lifecycle == "present"
        ]
        names = {vm.drbd.name for vm in scheduled if vm.drbd is not None}
        for vm in scheduled:
            assert vm.drbd is not None  # noqa: S101  (filtered above)
            record = self._records.setdefault(vm.drbd.name, _Record(first_seen_at=self.now()))
            # One scheduled verify at a time per node: each reads its whole backing device.
            others = sorted(n for n in names if n != vm.drbd.name and self._records.get(n, record).running)
            waiting = self._step_vm(
                vm,
                record,
                observed.drbd.resource(vm.drbd.name),
                busy=vm.name in busy,
                held=vm.name in held or vm.suspended,
                others=others,
            )
            statuses.append(self._status(vm, record, waiting))
        if {name: r.to_json() for name, r in self._records.items()} != before:
            self._save()
        self._statuses = tuple(statuses)
        return self._statuses

    def _step_vm(
        self,
        vm: DesiredVm,
        record: _Record,
        res: DrbdResourceState | None,
        *,
        busy: bool,
        held: bool,
        others: list[str],
    ) -> str:
        assert vm.drbd is not None  # noqa: S101  (the caller checked)
        assert vm.drbd.verify is not None  # noqa: S101
        name, interval = vm.drbd.name, vm.drbd.verify.interval_seconds
        now = self.now()
        verifying, percent = self._replicator.verify_progress(res) if res is not None else (False, None)
        if record.running:
            if verifying:
                record.progress = percent
                return ""
            self._ended(vm, record, res, now)
        elif verifying:
            # Started by hand (or before the state file was lost): followed, not counted as a scheduled run.
            return "a verify started outside the schedule runs"
        statement = self._resync_statement(vm, record, res, busy=busy, held=held)
        if statement:
            return statement
        due = self._due_at(record, interval)
        if now < due:
            return ""
        why = (
            "the VM is suspended"
            if held
            else "actions for the VM run in this pass"
            if busy
            else "a refused start is retried later"
            if now < record.retry_after
            else f"the verify of {others[0]} runs on this node"
            if others
            else _why_not_quiet(res)
        )
        if why:
            return f"due, waiting: {why}"
        result = self.host.run(self._replicator.verify_argv(name), timeout=COMMAND_TIMEOUT)
        if not result.ok:
            record.error = f"drbdadm verify {name} failed: {result.describe()}"
            record.retry_after = now + RETRY_AFTER
            event("verify.failed", level=logging.WARNING, vm=vm.name, resource=name, error=record.error)
            return ""
        record.run_id, record.started_at, record.running, record.progress = run_id(now), now, True, 0.0
        record.error, record.retry_after = "", 0.0
        event("verify.started", vm=vm.name, resource=name, run=record.run_id)
        return ""

    def _ended(self, vm: DesiredVm, record: _Record, res: DrbdResourceState | None, now: float) -> None:
        record.running, record.progress = False, None
        name = vm.drbd.name if vm.drbd is not None else vm.name
        whole = res is not None and all(c.connection_state == "Connected" for c in res.connections)
        whole = (
            whole
            and res is not None
            and all(pd.replication_state == "Established" for c in res.connections for pd in c.peer_devices)
        )
        if not whole or res is None:
            # The connection broke (or the resource went down) before every block was compared.
            record.error = f"run {record.run_id} was interrupted ({_why_not_quiet(res) or 'stopped'}); it runs again"
            event("verify.interrupted", level=logging.WARNING, vm=vm.name, resource=name, run=record.run_id)
            return
        found = _out_of_sync(res) or 0
        record.last_run_id, record.last_run_at, record.found_bytes, record.error = record.run_id, now, found, ""
        event(
            "verify.done",
            level=logging.WARNING if found else logging.INFO,
            vm=vm.name,
            resource=name,
            run=record.run_id,
            out_of_sync_bytes=found,
        )

    def _due_at(self, record: _Record, interval: int) -> float:
        if record.last_run_at is None:
            return record.first_seen_at
        return record.last_run_at + interval

    def _resync_statement(
        self, vm: DesiredVm, record: _Record, res: DrbdResourceState | None, *, busy: bool, held: bool
    ) -> str:
        """Carry out ``resync_found: RUN`` once; why it waits, or ""."""
        assert vm.drbd is not None and vm.drbd.verify is not None  # noqa: S101,PT018
        wanted, name = vm.drbd.verify.resync_found, vm.drbd.name
        if wanted is None or wanted == record.resynced_run_id:
            return ""
        if wanted != record.last_run_id:
            return (
                f"resync_found names run {wanted}, but the last complete run is "
                f"{record.last_run_id or 'none yet'}: nothing is resynced"
            )
        if not record.found_bytes:
            record.resynced_run_id = wanted
            return ""
        why = "the VM is suspended" if held else "actions for the VM run in this pass" if busy else _why_not_quiet(res)
        if not why and res is not None and res.role != "Primary":
            # Only a Primary starts a new data generation when it disconnects; between two Secondaries the
            # generations stay equal and the reconnect resyncs nothing ("No resync, but N bits in bitmap").
            why = "the resource is not Primary here (a reconnect resyncs found blocks only from a Primary)"
        if why:
            return f"resync of the blocks run {wanted} found waits: {why}"
        # Recorded first: the statement is carried out at most once, even across a crash (see the module doc).
        record.resynced_run_id = wanted
        self._save()
        for argv in (self._replicator.disconnect_argv(name), self._replicator.connect_argv(name)):
            result = self.host.run(argv, timeout=COMMAND_TIMEOUT)
            if not result.ok:
                record.error = f"{' '.join(argv)} failed: {result.describe()}"
                event("verify.resync-failed", level=logging.WARNING, vm=vm.name, resource=name, error=record.error)
                return ""
        event("verify.resync", vm=vm.name, resource=name, run=wanted, out_of_sync_bytes=record.found_bytes)
        return ""

    def _status(self, vm: DesiredVm, record: _Record, waiting: str) -> VerifyStatus:
        assert vm.drbd is not None and vm.drbd.verify is not None  # noqa: S101,PT018
        verify = vm.drbd.verify
        return VerifyStatus(
            vm=vm.name,
            resource=vm.drbd.name,
            schedule=verify.schedule,
            interval_seconds=verify.interval_seconds,
            next_due_at=None if record.running else self._due_at(record, verify.interval_seconds),
            running=record.running,
            run_id=record.run_id,
            started_at=record.started_at,
            progress_percent=record.progress if record.running else None,
            last_run_id=record.last_run_id,
            last_run_at=record.last_run_at,
            found_out_of_sync_bytes=record.found_bytes,
            resynced_run_id=record.resynced_run_id,
            waiting=waiting,
            error=record.error,
        )

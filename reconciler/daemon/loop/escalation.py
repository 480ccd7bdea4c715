"""Escalation when a Primary that lost DRBD 9 quorum cannot be stopped (backends.drbd.quorum plans each step).

The daemon counts the failed attempts to destroy the domain or demote the resource while DRBD still shows the
resource Primary without quorum; the planner turns the count into a forced demotion, and the reboot becomes due
once a forced demotion failed too and at least :data:`REBOOT_AFTER_SECONDS` passed since the first failure (a
device briefly held open while a destroyed domain's backend lets go is no reason to reboot a node).

A reboot is recorded in ``state/escalations/<vm>.json`` right before its command runs (after its last look),
since the command may never return; the record outlives the reboot. While any record of this node is younger
than :data:`REBOOT_HOLD_SECONDS`, no further reboot runs (the action is refused, the forced demotion goes on):
a node that comes back and fails again waits for an operator rather than rebooting in a loop, and several stuck
VMs reboot it once, not once each. The count lives in memory only: after a restart (a reboot included) the plain
demotion is tried first again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from reconciler.backends.registry import node_backends
from reconciler.core.actions import REBOOT_ARGV, Action
from reconciler.core.seams import Replicator
from reconciler.daemon.records.logs import event
from reconciler.daemon.records.named_records import read_named, write_named
from reconciler.model.desired import DemoteEscalation, DesiredNode, DesiredVm
from reconciler.model.observed import ObservedNode
from reconciler.model.status import ActionRecord, EscalationState, EscalationStatus

RECORDS_DIR = "escalations"
REBOOT_HOLD_SECONDS = 3600.0
FAILED_REBOOT_HOLD_SECONDS = 300.0  # the command failed and the node still runs: try again, not every pass
REBOOT_AFTER_SECONDS = 30.0
STOP_KINDS = frozenset({"quorum-demote", "destroy-domain"})


def _build(data: Mapping[str, object]) -> EscalationStatus:
    return EscalationStatus.model_validate(data)


def read_records(state_dir: Path) -> dict[str, EscalationStatus]:
    return read_named(state_dir / RECORDS_DIR, "VM", _build)


class EscalationKeeper:
    def __init__(self, state_dir: Path, node: str, clock: Callable[[], float],
                 replicator: Replicator | None = None) -> None:
        # None: the replicator of the node each view is for (its backends in cluster.yaml).
        self.replicator = replicator
        self.directory = state_dir / RECORDS_DIR
        self.state_dir = state_dir
        self.node = node
        self.clock = clock
        self._failures: dict[str, int] = {}
        self._forced_failed: set[str] = set()  # VMs whose forced demotion failed since they lost quorum
        self._first_failure_at: dict[str, float] = {}
        self._stopping: frozenset[str] = frozenset()  # VMs Primary here without quorum, as the last view saw them
        self._running: dict[str, EscalationStatus] = {}  # reboots whose command started in this pass

    def view(self, desired: DesiredNode, observed: ObservedNode) -> DesiredNode:
        """The desired state with each VM's escalation, for the VMs whose resource is Primary here without quorum."""
        now = self.clock()
        replicator = self.replicator if self.replicator is not None else node_backends(desired).replicator
        stopping = frozenset(vm.name for vm in desired.vms if vm.drbd is not None
                             and replicator.primary_without_quorum(vm, observed.drbd.resource(vm.drbd.name)))
        for counts in (self._failures, self._first_failure_at):
            for vm_name in [v for v in counts if v not in stopping]:
                del counts[vm_name]
        self._forced_failed &= stopping
        self._stopping = stopping
        self._running = {}
        held = self._reboot_held(read_records(self.state_dir), now) if self._failures else ""
        vms: list[DesiredVm] = []
        for vm in desired.vms:
            failures = self._failures.get(vm.name, 0)
            if failures == 0 or vm.drbd is None:
                vms.append(vm)
                continue
            due = (vm.name in self._forced_failed
                   and now - self._first_failure_at[vm.name] >= REBOOT_AFTER_SECONDS
                   and vm.drbd.on_demote_failure in REBOOT_ARGV)
            escalation = DemoteEscalation(failures=failures, reboot_due=due, reboot_held=held if due else "")
            vms.append(vm.model_copy(update={"escalation": escalation}))
        return desired.model_copy(update={"vms": tuple(vms)})

    def reboot_starting(self, action: Action) -> str:
        """The reboot passed its last look and its command runs next: record it now, it may never return. A
        reboot that cannot be recorded is refused (the answer says why): unrecorded, it could repeat after every
        boot."""
        vm = action.vm
        resource = action.key.split(":", 1)[1]
        now = self.clock()
        failures = self._failures.get(vm, 0)
        record = EscalationStatus(
            vm=vm, resource=resource, action=" ".join(action.argvs[0]) if action.argvs else "", state="started",
            decided_at=now, updated_at=now, failures=failures,
            reason=f"{resource} was still Primary without quorum after {failures} failed attempts to stop it, "
                   "a forced demotion among them")
        try:
            self._write(record)
        except OSError as exc:
            return f"the reboot is not run: its record cannot be written to {self.directory} ({exc})"
        self._running[vm] = record
        event("escalation.reboot", level=logging.ERROR, vm=vm, resource=resource, command=record.action,
              failures=failures)
        return ""

    def after_apply(self, actions: Iterable[ActionRecord]) -> None:
        for action in actions:
            if action.vm not in self._stopping:
                continue
            # A demotion of a device still held open is "waiting" to the executor (DRBD's answer to a normal
            # demotion); here any attempt that ran and did not end the role counts.
            if action.kind in STOP_KINDS and action.ran and action.result not in ("ok", "unchanged"):
                self._failures[action.vm] = self._failures.get(action.vm, 0) + 1
                self._first_failure_at.setdefault(action.vm, self.clock())
                if any("--force" in argv for argv in action.argv) and action.kind == "quorum-demote":
                    self._forced_failed.add(action.vm)
            elif action.kind == "reboot-node" and action.vm in self._running:
                state: EscalationState = "requested" if action.result == "ok" else "failed"
                try:
                    self._write(self._running[action.vm].model_copy(update={
                        "state": state, "updated_at": self.clock(),
                        "message": "" if action.result == "ok" else action.message}))
                except OSError as exc:
                    # The record written when the command started stays: it holds the node's next reboot for
                    # the hour, the safe side for a command whose outcome is not recorded.
                    event("escalation.record_failed", level=logging.ERROR, vm=action.vm, state=state,
                          error=str(exc))

    def statuses(self) -> tuple[EscalationStatus, ...]:
        return tuple(record for _, record in sorted(read_records(self.state_dir).items()))

    # -- helpers ---------------------------------------------------------------------------------------
    @staticmethod
    def _reboot_held(records: Mapping[str, EscalationStatus], now: float) -> str:
        def hold(record: EscalationStatus) -> float:
            return FAILED_REBOOT_HOLD_SECONDS if record.state == "failed" else REBOOT_HOLD_SECONDS

        recent = [r for r in records.values() if now - r.decided_at < hold(r)]
        if not recent:
            return ""
        last = max(recent, key=lambda r: r.decided_at)
        if last.state == "failed":
            return (f"the reboot command failed {now - last.decided_at:.0f} s ago ({last.vm}: {last.message}); "
                    f"it is tried again {FAILED_REBOOT_HOLD_SECONDS / 60:.0f} min after that")
        return (f"this node already rebooted itself for lost quorum {now - last.decided_at:.0f} s ago ({last.vm}, "
                f"{last.state}); no second reboot within {REBOOT_HOLD_SECONDS / 60:.0f} min: demote "
                f"{last.resource} by hand (`drbdsetup secondary --force {last.resource}`) or power the node off")

    def _write(self, record: EscalationStatus) -> None:
        self.directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        write_named(self.directory, record.vm, "VM", json.dumps(record.model_dump(mode="json"), sort_keys=True))

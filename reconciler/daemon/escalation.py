"""Escalation when a Primary that lost DRBD 9 quorum cannot be stopped (reconciler.plan.quorum plans each step).

The daemon counts the failed attempts to destroy the domain or demote the resource while DRBD still shows the
resource Primary without quorum; the planner turns the count into a forced demotion, then a reboot. A reboot is
decided at most once an hour per VM (a record in ``state/escalations/<vm>.json``, kept across the reboot): a node
that comes back and fails again waits for an operator rather than rebooting in a loop. The count lives in memory
only: after a restart (a reboot included) the plain demotion is tried first again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from reconciler.daemon.logs import event
from reconciler.daemon.named_records import read_named, record_path, write_named
from reconciler.model.desired import DemoteEscalation, DesiredNode, DesiredVm
from reconciler.model.observed import ObservedNode
from reconciler.model.status import ActionRecord, EscalationState, EscalationStatus
from reconciler.plan.quorum import REBOOT_AFTER_FAILURES, REBOOT_ARGV, quorum_lost

RECORDS_DIR = "escalations"
REBOOT_HOLD_SECONDS = 3600.0
STOP_KINDS = frozenset({"demote", "destroy-domain"})


def _build(data: Mapping[str, Any]) -> EscalationStatus:
    return EscalationStatus.model_validate(data)


def read_records(state_dir: Path) -> dict[str, EscalationStatus]:
    return read_named(state_dir / RECORDS_DIR, "VM", _build)


class EscalationKeeper:
    def __init__(self, state_dir: Path, node: str, clock: Callable[[], float]) -> None:
        self.directory = state_dir / RECORDS_DIR
        self.state_dir = state_dir
        self.node = node
        self.clock = clock
        self._failures: dict[str, int] = {}
        self._stopping: frozenset[str] = frozenset()  # VMs Primary here without quorum, as the last view saw them
        self._decided: set[str] = set()  # reboots decided by the last view (a record written)

    def view(self, desired: DesiredNode, observed: ObservedNode) -> DesiredNode:
        """The desired state with each VM's escalation, for the VMs whose resource is Primary here without quorum."""
        now = self.clock()
        stopping = frozenset(vm.name for vm in desired.vms if self._primary_without_quorum(vm, observed))
        self._failures = {vm: n for vm, n in self._failures.items() if vm in stopping}
        self._stopping = stopping
        self._decided = set()
        records = read_records(self.state_dir) if self._failures else {}
        vms: list[DesiredVm] = []
        for vm in desired.vms:
            failures = self._failures.get(vm.name, 0)
            if failures == 0 or vm.drbd is None:
                vms.append(vm)
                continue
            held = ""
            if failures >= REBOOT_AFTER_FAILURES and vm.drbd.on_demote_failure in REBOOT_ARGV:
                held = self._reboot_held(records.get(vm.name), now)
                if not held:
                    self._write(EscalationStatus(
                        vm=vm.name, resource=vm.drbd.name, action=vm.drbd.on_demote_failure, state="decided",
                        decided_at=now, updated_at=now, failures=failures,
                        reason=f"{vm.drbd.name} is still Primary without quorum after {failures} failed attempts "
                               "to stop it"))
                    self._decided.add(vm.name)
                    event("escalation.reboot", level=logging.ERROR, vm=vm.name, resource=vm.drbd.name,
                          action=vm.drbd.on_demote_failure, failures=failures)
            vms.append(vm.model_copy(update={"escalation": DemoteEscalation(failures=failures, reboot_held=held)}))
        return desired.model_copy(update={"vms": tuple(vms)})

    def after_apply(self, actions: Iterable[ActionRecord]) -> None:
        for action in actions:
            if action.vm not in self._stopping:
                continue
            # A demotion of a device still held open is "waiting" to the executor (DRBD's answer to a normal
            # demotion); here any attempt that ran and did not end the role counts.
            if action.kind in STOP_KINDS and action.ran and action.result not in ("ok", "unchanged"):
                self._failures[action.vm] = self._failures.get(action.vm, 0) + 1
            elif action.kind == "reboot-node" and action.vm in self._decided:
                self._reboot_outcome(action)

    def statuses(self) -> tuple[EscalationStatus, ...]:
        return tuple(record for _, record in sorted(read_records(self.state_dir).items()))

    # -- helpers ---------------------------------------------------------------------------------------
    @staticmethod
    def _primary_without_quorum(vm: DesiredVm, observed: ObservedNode) -> bool:
        if vm.drbd is None:
            return False
        res = observed.drbd.resource(vm.drbd.name)
        return res is not None and res.role == "Primary" and quorum_lost(vm, res)

    @staticmethod
    def _reboot_held(record: EscalationStatus | None, now: float) -> str:
        if record is None or now - record.decided_at >= REBOOT_HOLD_SECONDS:
            return ""
        return (f"a reboot for {record.resource} was already decided {now - record.decided_at:.0f} s ago "
                f"({record.state}); it is not repeated within {REBOOT_HOLD_SECONDS / 60:.0f} min: demote "
                f"{record.resource} by hand (`drbdsetup secondary --force {record.resource}`) or power the node off")

    def _reboot_outcome(self, action: ActionRecord) -> None:
        record = read_records(self.state_dir).get(action.vm)
        if record is None:
            return
        if not action.ran:
            # The last look found quorum back or the resource demoted: no reboot was tried, none is held.
            record_path(self.directory, action.vm, "VM").unlink(missing_ok=True)
            return
        state: EscalationState = "requested" if action.result == "ok" else "failed"
        self._write(record.model_copy(update={"state": state, "updated_at": self.clock(),
                                              "message": "" if action.result == "ok" else action.message}))

    def _write(self, record: EscalationStatus) -> None:
        self.directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        write_named(self.directory, record.vm, "VM", json.dumps(record.model_dump(mode="json"), sort_keys=True))

"""Execute a plan through the host seam: dependency order, gate checks at the last moment, retries,
journal, and one typed outcome per action. Never raises for a failing command; a bug still raises."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from reconciler.apply.identity import resolve_identity
from reconciler.apply.journal import DEFAULT_JOURNAL_PATH, Journal, JournalEntry
from reconciler.apply.lastlook import LastLook
from reconciler.apply.progress import Progress, SilentProgress
from reconciler.apply.provision_record import ProvisionRecords
from reconciler.apply.result import ApplyResult, pass_outcome, resource_statuses
from reconciler.apply.retry import RetryPolicy, Sleep, run_with_retries
from reconciler.apply.undo import undo_failed
from reconciler.backends.registry import DEFAULT_BACKENDS
from reconciler.core import actions as A
from reconciler.core.plan_model import Plan
from reconciler.core.safety import beneath_verdict, provision_verdict, signature_verdict
from reconciler.core.seams import Backends
from reconciler.host.base import CommandResult, Host, HostFileError
from reconciler.model.desired import PROVISION_LABEL_NEW
from reconciler.model.observed import Signature
from reconciler.model.status import ActionRecord, ActionResult
from reconciler.observe.observer import Observer, ProbeError


@dataclass
class ApplyOptions:
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Sleep = time.sleep
    clock: Callable[[], float] = time.time
    journal_path: str = DEFAULT_JOURNAL_PATH
    # Asked between actions (the daemon's stop request): the rest of the pass is requeued as waiting.
    should_stop: Callable[[], bool] = lambda: False
    # Called once an action passed its last look, right before its first command runs (the daemon records a
    # reboot there: the command may never return). A non-empty answer refuses the action instead.
    before_run: Callable[[A.Action], str] = lambda action: ""


@dataclass
class _Outcome:
    result: ActionResult
    message: str = ""
    attempts: int = 0
    retries: int = 0
    argv: tuple[tuple[str, ...], ...] = ()
    inherited: bool = False  # the message names a dependency's root cause, not this action's own
    output: CommandResult | None = None  # the failing command's result, when a command failed


class Executor:
    def __init__(self, host: Host, *, options: ApplyOptions | None = None, progress: Progress | None = None,
                 observer: Observer | None = None, backends: Backends = DEFAULT_BACKENDS) -> None:
        """``backends``: the node's hypervisor (the undo of a failed start lists its domains) and replicator (the
        last look reads its generation identifiers and split-brain incidents)."""
        self.host = host
        self.options = options or ApplyOptions()
        self.progress = progress or SilentProgress()
        self.observer = observer or Observer(host)
        self.journal = Journal(host, self.options.journal_path)
        self.backends = backends
        self.last_look = LastLook(host, self.observer, backends.replicator, backends.hypervisor)
        self.provision_records = ProvisionRecords(host, self.options.journal_path)

    def apply(self, plan: Plan) -> ApplyResult:
        started = self.options.clock()
        outcomes: dict[str, _Outcome] = {}
        records: list[ActionRecord] = []
        retries = 0
        previous = self.journal.load() if plan.actions else ()
        for index, action in enumerate(plan.actions, start=1):
            self.progress.started(action, index, len(plan.actions))
            t0 = self.options.clock()
            if self.options.should_stop():
                outcome = _Outcome("waiting", "pass stopped before this action (shutdown requested)")
            else:
                outcome = self._blocked(action, outcomes) or self._gated(action) or self._run(action, previous)
            outcomes[action.id] = outcome
            retries += outcome.retries
            record = ActionRecord(kind=action.kind, key=action.key, vm=action.vm, result=outcome.result,
                                  attempts=outcome.attempts, duration_s=max(self.options.clock() - t0, 0.0),
                                  message=outcome.message,
                                  argv=() if outcome.result == "unchanged" else outcome.argv or action.argvs,
                                  ran=bool(outcome.argv))
            records.append(record)
            self.progress.finished(action, record)
        if previous:
            self.journal.forget_except({a.id for a in plan.actions
                                        if outcomes[a.id].result not in ("ok", "unchanged")})
        self.progress.close()
        done = tuple(records)
        errors = (*(f"{r.vm}: {r.reason}" for r in plan.refused_vms),
                  *(f"{r.key}: {r.message}" for r in done if r.result in ("failed", "refused")))
        resources = resource_statuses(plan, done)
        return ApplyResult(node=plan.node, started_at=started, finished_at=self.options.clock(),
                           outcome=pass_outcome(done, resources, refused_vms=len(plan.refused_vms)), actions=done,
                           resources=resources,
                           notes=plan.notes, retries=retries, errors=errors)

    @staticmethod
    def _blocked(action: A.Action, outcomes: dict[str, _Outcome]) -> _Outcome | None:
        for dep in action.depends_on:
            seen = outcomes.get(dep)
            if seen is not None and seen.result == "skipped":
                return _Outcome("skipped", seen.message)  # name the root cause, not the chain
            if seen is not None and seen.result in ("failed", "refused"):
                return _Outcome("skipped", f"skipped: {dep} {seen.result}" + (f": {seen.message}" if seen.message
                                                                                  else ""))
        for dep in action.depends_on:
            seen = outcomes.get(dep)
            if seen is not None and seen.result == "waiting":
                why = seen.message if seen.inherited else f"waits for {dep}: {seen.message}"
                return _Outcome("waiting", why, inherited=True)
        return None

    @staticmethod
    def _gated(action: A.Action) -> _Outcome | None:
        if action.refused:
            return _Outcome("refused", action.refused)
        if action.waiting:
            return _Outcome("waiting", action.waiting)
        return None

    def _probe(self, device: str) -> Signature | None:
        try:
            return self.observer.probe(device)
        except ProbeError:
            return None

    def _unfinished(self, device: str) -> bool | None:
        try:
            return self.observer.mkfs_unfinished(device)
        except ProbeError:
            return None

    def _run(self, action: A.Action, previous: tuple[JournalEntry, ...]) -> _Outcome:
        stop = self.last_look.check(action)
        if stop is not None:
            return _Outcome(stop.result, stop.reason, attempts=stop.attempts)
        commands = list(action.commands)
        identity = ""
        if action.kind == "provision-fs":
            held = self._provision_gate(action, previous)
            if held is not None:
                return held
        if action.probe_before:
            identity = resolve_identity(self.host, action.identity)
            for device in action.probe_before:
                ours = any(e.names(action.kind, device, identity) for e in previous)
                found = self._probe(device)
                unfinished = self._unfinished(device) if _may_be_unfinished(action.kind, found) else None
                verdict = signature_verdict(action.kind, device, found, journal_names_device=ours,
                                            unfinished=unfinished)
                if verdict.decision == "done":
                    return _Outcome("unchanged", verdict.reason, attempts=0)
                if verdict.decision == "refuse":
                    return _Outcome("refused", verdict.reason, attempts=0)
                for leg in action.probe_beneath:
                    below = beneath_verdict(action.kind, verdict.decision, leg, self._probe(leg), above=device)
                    if below is not None:
                        return _Outcome("refused", below.reason, attempts=0)
                if verdict.decision == "redo":
                    commands.insert(0, A.wipefs_all(device))
        refusal = self.options.before_run(action)
        if refusal:
            return _Outcome("refused", refusal, attempts=0)
        entry = self.journal.begin(JournalEntry(node=self.host.node, action_id=action.id, kind=action.kind,
                                                key=action.key, vm=action.vm, devices=action.probe_before,
                                                identity=identity, started_at=self.options.clock()))
        outcome = self._execute(action, commands, entry)
        if action.kind == "make-fs" and outcome.result == "ok" and action.vm and action.probe_before \
                and any(c.argv[:1] == ("mkfs.xfs",) and PROVISION_LABEL_NEW in c.argv for c in commands):
            self.provision_records.mark_made(action.vm, action.probe_before[0])
        if action.kind == "provision-fs":
            after = self._probe(action.devices[0])
            if after is None or after.label != PROVISION_LABEL_NEW:
                # An attempt was recorded (or finished) before the domain may start and the guest may relabel.
                self.provision_records.forget_made(action.vm)
        if action.kind == "provision-fs" and outcome.result != "ok":
            outcome = self._provision_failed(action, outcome)
        if outcome.result == "failed":
            undone = undo_failed(self.host, action, self.backends.hypervisor)
            outcome = dataclasses.replace(outcome, message=outcome.message + undone.message,
                                          argv=outcome.argv + undone.ran)
        self.journal.finish(action.id)
        return outcome

    def _execute(self, action: A.Action, commands: list[A.Command], entry: JournalEntry) -> _Outcome:
        attempts = 0
        retries = 0
        ran: list[tuple[str, ...]] = []
        for step, command in enumerate(commands):
            if step:
                entry = self.journal.step(entry, step)
            attempted = run_with_retries(self.host, command, self.options.policy, self.options.sleep)
            attempts += attempted.attempts
            retries += attempted.attempts - 1
            ran.append(command.argv)
            verdict = attempted.verdict
            if verdict.kind == "precondition":
                return _Outcome("waiting", verdict.reason, attempts, retries, tuple(ran))
            if not verdict.ok:
                suffix = f" after {attempted.attempts} attempts" if attempted.attempts > 1 else ""
                return _Outcome("failed", f"{verdict.kind}: {verdict.reason}{suffix}", attempts, retries, tuple(ran),
                                output=attempted.result)
        if action.file_path is not None:
            try:
                if action.file_content is not None:
                    self.host.write_file(action.file_path, action.file_content, 0o644)
                else:
                    self.host.remove_file(action.file_path)
            except (HostFileError, OSError) as exc:
                return _Outcome("failed", f"permanent: {action.file_path}: {exc}", attempts + 1, retries, tuple(ran))
            attempts += 1
        return _Outcome("ok", "", attempts, retries, tuple(ran))


    # -- provisioning (reconciler.core.provisioning) -------------------------------------------
    def _provision_gate(self, action: A.Action, previous: tuple[JournalEntry, ...]) -> _Outcome | None:
        """The label, read afresh, decides: fill it, done already, an earlier failure of this attempt, refused."""
        device = action.devices[0]
        interrupted = any(e.kind == action.kind and e.key == action.key for e in previous)
        found = self._probe(device)
        made_here = self.provision_records.made_here(action.vm, device)
        verdict = provision_verdict(device, found, int(action.identity or "1"),
                                    journal_names_device=interrupted, made_here=made_here)
        if made_here and (found is None or found.label != PROVISION_LABEL_NEW):
            # The label moved on: from now on only a raised attempt trusts rprov-new here.
            self.provision_records.forget_made(action.vm)
        if verdict.decision in ("done", "leave"):
            # "leave": the guest's filesystem; the note says why nothing is provisioned, and the start goes on.
            return _Outcome("unchanged", verdict.reason, attempts=0)
        if verdict.decision == "refuse":
            return _Outcome("refused", verdict.reason, attempts=0)
        if verdict.decision == "failed":
            said = self.provision_records.read(action.vm, verdict.tried) if verdict.tried is not None else ""
            return _Outcome("failed", verdict.reason + (f"; what it said: {said}" if said else ""), attempts=0)
        return None

    def _provision_failed(self, action: A.Action, outcome: _Outcome) -> _Outcome:
        """Keep what the failing command said, for every later pass that reports the attempt as failed."""
        said = f"{outcome.output.stdout.strip()}\n{outcome.output.stderr.strip()}".strip() if outcome.output else ""
        if outcome.result == "failed" and said:
            self.provision_records.write(action.vm, int(action.identity or "1"), outcome.message, said)
        return outcome


def _may_be_unfinished(kind: str, found: Signature | None) -> bool:
    """An XFS filesystem where the plan makes one: did its mkfs.xfs finish? (core/safety.py)"""
    return kind == "make-fs" and found is not None and found.type == "xfs"


def apply_plan(host: Host, plan: Plan, *, options: ApplyOptions | None = None, progress: Progress | None = None,
               observer: Observer | None = None, backends: Backends = DEFAULT_BACKENDS) -> ApplyResult:
    return Executor(host, options=options, progress=progress, observer=observer, backends=backends).apply(plan)

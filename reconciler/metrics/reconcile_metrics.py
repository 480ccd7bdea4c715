"""Reconciliation metrics: passes, revisions, resources, actions, suspension, peers."""

from __future__ import annotations

from prometheus_client.core import HistogramMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric

from reconciler import __version__
from reconciler.core.metric_families import add_enum, counter, flag, gauge, non_empty
from reconciler.metrics.state import PASS_OUTCOMES, Histogram, Snapshot, SuspendedScope
from reconciler.model.status import ResourcePhase

RESOURCE_PHASES: tuple[ResourcePhase, ...] = ("ready", "degraded", "progressing", "waiting", "failed", "refused",
                                              "suspended")


def histogram(name: str, documentation: str, data: Histogram) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation)
    family.add_metric([], data.cumulative(), data.total)
    return family


def _pass_metrics(s: Snapshot) -> list[Metric]:
    passes = counter("reconciler_passes", "Reconcile passes finished, by outcome", ["outcome"])
    for outcome in PASS_OUTCOMES:
        passes.add_metric([outcome], float(s.passes.get(outcome, 0)))
    duration = histogram("reconciler_pass_duration_seconds", "Duration of reconcile passes", s.pass_duration)
    last = gauge("reconciler_last_pass_timestamp_seconds", "When the last pass finished (epoch seconds)")
    last_outcome = gauge("reconciler_last_pass_outcome", "Outcome of the last pass (1 for the current one)",
                         ["outcome"])
    drift = gauge("reconciler_last_pass_drift_resources", "Resources found drifted from the desired state in the "
                  "last pass")
    if s.last_pass is not None:
        last.add_metric([], s.last_pass.finished_at)
        add_enum(last_outcome, [], PASS_OUTCOMES, s.last_pass.outcome)
        drift.add_metric([], float(s.last_pass.drift))
    success = gauge("reconciler_last_success_timestamp_seconds",
                    "When the last successful pass finished (epoch seconds); absent until one succeeds")
    if s.last_success_at is not None:
        success.add_metric([], s.last_success_at)
    drift_total = counter("reconciler_drift_resources", "Drifted resources found, summed over all passes")
    drift_total.add_metric([], float(s.drift_total))
    actions = counter("reconciler_actions", "Actions run, by kind and result", ["kind", "result"])
    for (kind, result), n in sorted(s.actions.items()):
        actions.add_metric([kind, result], float(n))
    retries = counter("reconciler_action_retries", "Retries of actions (attempts after the first)")
    retries.add_metric([], float(s.retries))
    return [passes, duration, last, last_outcome, drift, success, drift_total, actions, retries]


def _resource_metrics(s: Snapshot) -> list[Metric]:
    total = gauge("reconciler_resources", "Resources of this node by state after the last pass", ["state"])
    per_vm = gauge("reconciler_vm_resources", "Resources of each VM by state after the last pass", ["vm", "state"])
    counts = dict.fromkeys(RESOURCE_PHASES, 0)
    by_vm: dict[str, dict[ResourcePhase, int]] = {}
    # The status keeps each resource's latest known phase even across passes that could not observe;
    # older daemons only fill the pass result.
    resources = s.status.resources if s.status is not None and s.status.resources else ()
    if not resources and s.last_pass is not None:
        resources = s.last_pass.resources
    for r in resources:
        counts[r.phase] += 1
        by_vm.setdefault(r.vm, dict.fromkeys(RESOURCE_PHASES, 0))[r.phase] += 1
    for phase in RESOURCE_PHASES:
        total.add_metric([phase], float(counts[phase]))
    for vm, phases in sorted(by_vm.items()):
        for phase in RESOURCE_PHASES:
            per_vm.add_metric([vm, phase], float(phases[phase]))
    degraded = gauge("reconciler_resource_degraded",
                     "1 for each condition that keeps a resource from being Ready (split brain, a disk not "
                     "UpToDate, the peer's data unknown, a domain away from its node, a restart owed, growth "
                     "pending)", ["vm", "resource", "condition"])
    for r in resources:
        for condition in r.conditions:
            degraded.add_metric([r.vm, r.key, condition], 1.0)
    return [total, per_vm, degraded]


def _revision_metrics(s: Snapshot) -> list[Metric]:
    applied = InfoMetricFamily("reconciler_last_applied_revision", "Revision this node last converged to",
                               labels=["node"])
    attempted = InfoMetricFamily("reconciler_last_attempted_revision", "Revision this node last tried to apply",
                                 labels=["node"])
    committed = gauge("reconciler_last_applied_revision_commit_timestamp_seconds",
                      "Commit time of the last applied revision (the author's clock; informative only)")
    seen = gauge("reconciler_last_revision_seen_timestamp_seconds",
                 "When this node first saw the newest revision it knows (epoch seconds)")
    blocked = gauge("reconciler_revision_blocked",
                    "1 when a newer revision is pending and not applied: invalid (fails validation) or refused "
                    "(unsigned, unknown key, not a descendant of the last applied one)", ["reason"])
    latency = histogram("reconciler_revision_converged_latency_seconds",
                        "From when this node first saw a revision to the end of the pass that converged it",
                        s.converge_latency)
    lag = gauge("reconciler_last_converged_revision_commit_lag_seconds",
                "From the commit time of the last converged revision to its convergence (author's clock: "
                "skewed clocks make it wrong; prefer reconciler_revision_converged_latency_seconds)")
    status = s.status
    if status is not None:
        if status.last_applied is not None:
            applied.add_metric([status.node], {"revision": status.last_applied.sha})
            if status.last_applied.committed_at is not None:
                committed.add_metric([], status.last_applied.committed_at)
        if status.last_attempted is not None:
            attempted.add_metric([status.node], {"revision": status.last_attempted.sha})
        blocked.add_metric(["invalid"], flag(bool(status.invalid_errors)))
        blocked.add_metric(["refused"], flag(bool(status.pending_refusal)))
    else:
        blocked.add_metric(["invalid"], 0.0)
        blocked.add_metric(["refused"], 0.0)
    if s.last_revision_seen_at is not None:
        seen.add_metric([], s.last_revision_seen_at)
    if s.last_converged_commit_lag is not None:
        lag.add_metric([], s.last_converged_commit_lag)
    return [applied, attempted, committed, seen, blocked, latency, lag]


def _suspension_metrics(s: Snapshot) -> list[Metric]:
    suspended = gauge("reconciler_suspended", "1 while the reconciler does not act on the scope (node or a VM)",
                      ["scope"])
    since = gauge("reconciler_suspended_since_timestamp_seconds", "When the suspension of the scope began",
                  ["scope"])
    scopes = dict(s.suspended)
    if s.desired is not None:
        # A VM suspended in the repository itself is as suspended as one suspended by command.
        for vm in s.desired.vms:
            if vm.suspended and not (vm.name in scopes and scopes[vm.name].suspended):
                scopes[vm.name] = SuspendedScope(True, None)
    for scope, state in sorted(scopes.items()):
        suspended.add_metric([scope], flag(state.suspended))
        if state.suspended and state.since is not None:
            since.add_metric([scope], state.since)
    return [suspended, since]


def _peer_metrics(s: Snapshot) -> list[Metric]:
    reachable = gauge("reconciler_peer_reachable", "1 when the peer's status endpoint answered at the last check",
                      ["node", "peer"])
    ready = gauge("reconciler_peer_ready", "1 when the peer reported itself ready at the last check",
                  ["node", "peer"])
    checked = gauge("reconciler_peer_last_check_timestamp_seconds", "When the peer was last checked",
                    ["node", "peer"])
    revision = InfoMetricFamily("reconciler_peer_applied_revision", "Revision the peer reports as applied",
                                labels=["node", "peer"])
    for name, peer in sorted(s.peers.items()):
        labels = [s.node, name]
        reachable.add_metric(labels, flag(peer.reachable))
        ready.add_metric(labels, flag(peer.ready))
        checked.add_metric(labels, peer.checked_at)
        if peer.applied_revision is not None:
            revision.add_metric(labels, {"revision": peer.applied_revision})
    return [reachable, ready, checked, revision]


def reconcile_metrics(s: Snapshot) -> list[Metric]:
    build = InfoMetricFamily("reconciler_build", "Version of the reconciler serving these metrics")
    build.add_metric([], {"version": __version__})
    observed = gauge("reconciler_last_observation_timestamp_seconds",
                     "When the node was last observed (a pass or a DRBD event)")
    if s.observed_at is not None:
        observed.add_metric([], s.observed_at)
    families: list[Metric] = [build, observed]
    families += _pass_metrics(s)
    families += _resource_metrics(s)
    families += _revision_metrics(s)
    families += _suspension_metrics(s)
    families += _peer_metrics(s)
    return non_empty(families)

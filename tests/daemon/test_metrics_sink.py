"""The daemon talks to metrics through the MetricsSink protocol: a null sink by default, every call explicit."""

from __future__ import annotations

from pathlib import Path

from reconciler.daemon.loop.config import DaemonConfig
from reconciler.daemon.loop.metrics_sink import NullMetrics
from reconciler.daemon.loop.runtime import Daemon
from reconciler.model.observed import DrbdResourceState, DrbdState, ObservedNode
from reconciler.model.status import NodeStatus, PassResult, PeerStatus
from tests.daemon.fakes import FakeEngine, RecordingMetrics
from tests.source.gitrepo import WorkRepo


def _daemon(tmp_path: Path, **kwargs: object) -> Daemon:
    repo = WorkRepo(tmp_path / "repo", bare_server=False)
    repo.commit("one", {"vms.txt": "vm100\n"})
    config = DaemonConfig(node="erdbeere", repo=str(repo.work), state_dir=tmp_path / "state",
                          metrics_address=str(kwargs.pop("metrics_address", "")) or None, drbd_events=False)
    return Daemon(config, host=None, engine=FakeEngine(), **kwargs)  # type: ignore[arg-type]


def test_without_metrics_the_daemon_keeps_a_null_sink(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path)
    assert isinstance(daemon.metrics, NullMetrics)
    assert daemon.reconciler.metrics is daemon.metrics


def test_a_drbd_event_updates_the_sink_with_the_kernel_version_kept(tmp_path: Path) -> None:
    metrics = RecordingMetrics()
    daemon = _daemon(tmp_path, metrics=metrics)
    daemon._drbd_changed(DrbdState(resources=(DrbdResourceState(name="vm100", role="Primary"),)))
    assert metrics.observed == []  # nothing observed yet: nothing to refresh
    daemon.last_observed = ObservedNode(node="erdbeere", drbd=DrbdState(kernel_version="8.4.11"))
    daemon._drbd_changed(DrbdState(resources=(DrbdResourceState(name="vm100", role="Primary"),)))
    [fresh] = metrics.observed
    assert fresh.drbd.kernel_version == "8.4.11"
    assert [r.name for r in fresh.drbd.resources] == ["vm100"]


def test_a_null_sink_is_not_served(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, metrics_address="127.0.0.1:0")
    daemon._start_metrics()
    assert daemon._metrics_server is None
    [error] = daemon.reconciler.report.recent_errors
    assert "cannot serve metrics on 127.0.0.1:0: this daemon keeps no metrics to serve" in error


def test_the_null_sink_accepts_every_call() -> None:
    sink = NullMetrics()
    status = NodeStatus(node="erdbeere")
    sink.record_revision_seen("a" * 40, 1.0)
    result = PassResult(started_at=0.0, finished_at=1.0, revision=None, outcome="converged")
    sink.record_pass(result, None, None, status)
    sink.update_observed(ObservedNode(node="erdbeere"))
    sink.set_suspended("node", True)
    sink.record_peer(PeerStatus(node="himbeere", reachable=False))
    assert vars(sink) == {}  # it keeps nothing

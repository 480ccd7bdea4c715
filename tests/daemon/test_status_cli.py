"""`reconciler status` renders what the daemon published: phases, revisions, peers and skew, suspensions."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from reconciler.cli.cmd_status import render, skew, staleness
from reconciler.cli.main import main
from reconciler.daemon.node.control import ControlServer
from reconciler.daemon.records import status_store
from reconciler.model.status import NodeStatus, PassResult, PeerStatus, ResourceStatus, RevisionInfo, Suspension

A, B = "a" * 40, "b" * 40


def sample() -> NodeStatus:
    return NodeStatus(
        node="erdbeere", cluster="classic",
        last_applied=RevisionInfo(sha=A, seen_at=90.0, summary="grow vm100"),
        last_attempted=RevisionInfo(sha=B, seen_at=95.0, summary="rewrite"),
        pending_refusal=f"revision {B[:12]} does not descend from the revision in force {A[:12]}",
        last_pass=PassResult(started_at=99.0, finished_at=99.5, revision=A, outcome="progressing"),
        peers=(PeerStatus(node="himbeere", reachable=True, applied_revision=B, ready=True, checked_at=99.0),),
        suspensions=(Suspension(scope="vm101", reason="debugging", by="alice", at=50.0),),
        resources=(ResourceStatus(key="drbd:vm100", vm="vm100", kind="drbd", phase="waiting",
                                  reason="waiting for peer himbeere to apply revision aaaaaaaaaaaa"),
                   ResourceStatus(key="domain:vm101", vm="vm101", kind="domain", phase="suspended",
                                  reason="vm101 suspended by alice: debugging")),
        recent_errors=("98 fetch from /srv/repo failed",), updated_at=99.5)


def test_render_shows_everything_an_operator_needs() -> None:
    text = render(sample(), now=100.0)
    assert "applied revision:   aaaaaaaaaaaa 'grow vm100'" in text
    assert "attempted revision: bbbbbbbbbbbb 'rewrite'" in text
    assert "REFUSED: revision bbbbbbbbbbbb does not descend" in text
    assert "peer himbeere: applied bbbbbbbbbbbb, ready" in text
    assert "SKEW" in text
    assert "SUSPENDED vm101: 'debugging' by alice 50s ago" in text
    assert "vm100  drbd:vm100    Waiting      waiting for peer himbeere" in text
    assert "2s ago: fetch from /srv/repo failed" in text


def test_skew_lists_peers_at_another_revision() -> None:
    assert skew(sample()) == {"himbeere": B}
    same = sample().model_copy(update={"peers": (PeerStatus(node="himbeere", reachable=True, applied_revision=A),)})
    assert skew(same) == {}


def test_cli_reads_the_published_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--state-dir", str(tmp_path)]) == 1
    assert "no status" in capsys.readouterr().err
    status_store.publish(tmp_path, sample())
    server = ControlServer(tmp_path, lambda _command: None)  # a daemon listening on the state directory
    server.start()
    try:
        assert main(["status", "--json", "--state-dir", str(tmp_path)]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["node"] == "erdbeere"
        assert data["revision_skew"] == {"himbeere": B}
        assert main(["status", "--state-dir", str(tmp_path)]) == 0
        assert "node erdbeere (cluster classic)" in capsys.readouterr().out
    finally:
        server.stop()


def test_cli_tells_a_damaged_status_from_a_missing_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--state-dir", str(tmp_path)]) == 1
    assert "no status in" in capsys.readouterr().err
    (tmp_path / status_store.STATUS_FILE).write_text("{not json\n")
    assert main(["status", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "cannot be read as a status" in err
    assert "no status in" not in err


def test_a_status_without_a_daemon_is_flagged_stale_and_exits_3(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    status_store.publish(tmp_path, sample())
    assert main(["status", "--state-dir", str(tmp_path)]) == 3
    out = capsys.readouterr().out
    assert out.startswith("STALE: no daemon is running for this state directory")
    assert main(["status", "--json", "--state-dir", str(tmp_path)]) == 3
    assert "no daemon is running" in json.loads(capsys.readouterr().out)["stale"]


def test_a_listening_daemon_with_a_fresh_status_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commands: list[str] = []
    server = ControlServer(tmp_path, commands.append)
    server.start()
    try:
        status_store.publish(tmp_path, sample().model_copy(update={"fresh_until": time.time() + 600}))
        assert main(["status", "--state-dir", str(tmp_path)]) == 0
        assert "STALE" not in capsys.readouterr().out
        status_store.publish(tmp_path, sample().model_copy(update={"fresh_until": time.time() - 1}))
        assert main(["status", "--state-dir", str(tmp_path)]) == 3
        assert "later than it promised" in capsys.readouterr().out
    finally:
        server.stop()


def test_staleness_rules() -> None:
    fresh = sample().model_copy(update={"fresh_until": 200.0})
    assert staleness(fresh, now=150.0, running=True) == ""
    assert "promised" in staleness(fresh, now=250.0, running=True)
    assert "no daemon" in staleness(fresh, now=150.0, running=False)


def test_degraded_resources_are_shown_with_their_reason() -> None:
    status = sample().model_copy(update={"resources": (
        ResourceStatus(key="drbd:vm100", vm="vm100", kind="drbd", phase="degraded",
                       reason="vm100 is in split brain", conditions=("split-brain",)),)})
    assert "vm100  drbd:vm100  Degraded     vm100 is in split brain" in render(status, now=100.0)


def test_render_shows_online_verify() -> None:
    from reconciler.model.status import VerifyStatus

    now = 1_800_000_000.0
    status = NodeStatus(node="erdbeere", verify=(
        VerifyStatus(vm="vm100", resource="vm100", schedule="weekly", interval_seconds=604800,
                     next_due_at=now + 3 * 3600, last_run_id="20270115T080000Z", last_run_at=now - 600,
                     found_out_of_sync_bytes=4 << 20),
        VerifyStatus(vm="vm101", resource="vm101", schedule="daily", interval_seconds=86400, running=True,
                     run_id="20270115T090000Z", started_at=now - 300, progress_percent=12.5),
        VerifyStatus(vm="vm102", resource="vm102", schedule="daily", interval_seconds=86400, next_due_at=now - 5,
                     waiting="due, waiting: the connection to himbeere is StandAlone")))
    lines = render(status, now=now).splitlines()
    assert "  vm100 (weekly): next due in 3.0h" in lines
    assert ("    last run 20270115T080000Z ended 10m ago: found 4MiB out of sync (resync them with verify: "
            "{resync_found: 20270115T080000Z})") in lines
    assert "  vm101 (daily): run 20270115T090000Z running since 5m ago, 12.5% compared" in lines
    assert "    due, waiting: the connection to himbeere is StandAlone" in lines


def test_render_shows_live_migrations() -> None:
    from reconciler.model.status import MigrationStatus

    now = 1_800_000_000.0
    status = NodeStatus(node="erdbeere", migrations=(
        MigrationStatus(vm="vm100", revision="a" * 40, source="erdbeere", target="himbeere", phase="aborted",
                        since=now - 60, started_at=now - 600, reason="migrate-domain failed: resuming at sender"),))
    lines = render(status, now=now).splitlines()
    assert "live migrations:" in lines
    assert any(line.startswith("  vm100: erdbeere -> himbeere at aaaaaaaaaaaa: ABORTED") for line in lines), lines
    assert "    why: migrate-domain failed: resuming at sender" in lines

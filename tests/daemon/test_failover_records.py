"""Failover records: read back only what this project wrote; a one-shot command plans as the daemon does; status
shows each failover and why a lost peer's VM is not (yet) taken over."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from reconciler.cli.cmd_status import render
from reconciler.daemon.peers.failover import FailoverRecord, read_records, with_takeovers, write_record
from reconciler.model.status import FailoverStatus, NodeStatus
from tests.daemon.fakes import desired_node

RECORD = FailoverRecord(vm="vm100", id="fo-0123456789ab", from_node="himbeere", to_node="erdbeere", state="running",
                        decided_at=1000.0, updated_at=1010.0, reason="himbeere lost", detail="the domain runs",
                        designated="himbeere")


def test_a_record_reads_back_as_written(tmp_path: Path) -> None:
    write_record(tmp_path, RECORD)
    assert read_records(tmp_path) == {"vm100": RECORD}
    assert os.stat(tmp_path / "failover" / "vm100.json").st_mode & 0o777 == 0o640


def test_foreign_or_damaged_records_are_skipped(tmp_path: Path) -> None:
    directory = tmp_path / "failover"
    directory.mkdir()
    (directory / "vm101.json").write_text("{not json")
    (directory / "vm102.json").write_text(replace(RECORD, vm="vm102", state="running").to_json()
                                          .replace('"running"', '"taken"'))
    (directory / "vm103.json").write_text(replace(RECORD, vm="vm100").to_json())  # names another VM
    (directory / "vm104.json").write_text(" " * 20_000)
    (directory / "bad name.json").write_text(replace(RECORD, vm="bad name").to_json())
    os.symlink(directory / "vm103.json", directory / "vm105.json")
    assert read_records(tmp_path) == {}


def test_a_one_shot_view_applies_only_failovers_running_here() -> None:
    desired = desired_node("himbeere", "erdbeere", vms=("vm100", "vm101", "vm102", "vm103"))
    desired = desired.model_copy(update={"vms": tuple(vm.model_copy(update={"primary_node": "erdbeere"})
                                                      for vm in desired.vms)})
    mine = replace(RECORD, from_node="erdbeere", to_node="himbeere", designated="erdbeere")
    records = {
        "vm100": mine,
        "vm101": replace(mine, vm="vm101", state="failed"),
        "vm102": replace(mine, vm="vm102", designated="kiwi"),  # decided when the desired state named another
        "vm103": replace(mine, vm="vm103", state="decided"),  # the daemon's to carry out, never a one-shot's
    }
    view = {vm.name: vm for vm in with_takeovers(desired, records).vms}
    assert view["vm100"].primary_node == "himbeere"
    assert view["vm100"].takeover is not None
    assert view["vm100"].designated_primary == "erdbeere"
    for name in ("vm101", "vm102", "vm103"):
        assert (view[name].primary_node, view[name].takeover) == ("erdbeere", None), name


def test_status_shows_the_failover_and_what_is_watched() -> None:
    status = NodeStatus(node="erdbeere", failovers=(
        FailoverStatus(vm="vm100", id="fo-0123456789ab", state="running", from_node="himbeere", to_node="erdbeere",
                       decided_at=40.0, updated_at=50.0, reason="himbeere lost for 31 s", detail="the domain runs"),
        FailoverStatus(vm="vm101",
                       watching="himbeere lost: DRBD Connecting; failover after 30 s of that (12 s so far)"),
    ))
    text = render(status, now=100.0)
    assert "automatic failover:" in text
    assert "vm100: fo-0123456789ab from himbeere to erdbeere, decided 60s ago: RUNNING" in text
    assert "why: himbeere lost for 31 s" in text
    assert "vm101: himbeere lost: DRBD Connecting; failover after 30 s of that (12 s so far)" in text

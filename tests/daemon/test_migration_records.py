"""The live migrations' records in the state directory: kept across a restart, and a damaged or foreign file
counts as none (the window's state is then observed anew)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.daemon.loop.migrations import MIGRATIONS_FILE, MigrationKeeper, MigrationRecord, load_records
from reconciler.model.status import ActionRecord
from tests.daemon.fakes import SHA_A

pytestmark = pytest.mark.timeout(30)

RECORD = MigrationRecord(vm="vm100", revision=SHA_A, source="erdbeere", target="himbeere", phase="window-open",
                         since=10.0, started_at=5.0)


def test_a_failed_step_is_recorded_and_survives_a_restart(tmp_path: Path) -> None:
    keeper = MigrationKeeper(tmp_path, "erdbeere", lambda: 20.0)
    keeper.records["vm100"] = RECORD
    keeper.after_apply([ActionRecord(kind="migrate-domain", key="domain:vm100", vm="vm100", result="failed",
                                     message="permanent: `xl migrate ...` (exit 1): Migration failed, resuming at "
                                             "sender.")])
    again = load_records(tmp_path)["vm100"]
    assert (again.stop, again.phase) == ("aborted", "aborting")
    assert "resuming at sender" in again.reason
    keeper.records["vm100"] = RECORD
    keeper.after_apply([ActionRecord(kind="migrate-domain", key="domain:vm100", vm="vm100", result="failed",
                                     message="(exit 3): Domain state is now undefined ! [...] Sorry.")])
    assert load_records(tmp_path)["vm100"].stop == "held"


@pytest.mark.parametrize("text", [
    "not json", "[]", json.dumps({"vm100": {"vm": "vm100"}}),
    json.dumps({"vm100": {**RECORD.__dict__, "phase": "flying"}}),
    json.dumps({"vm100": {**RECORD.__dict__, "since": "10"}}),
    json.dumps({"vm100": {**RECORD.__dict__, "vm": "../x"}}),
])
def test_a_damaged_file_counts_as_none(tmp_path: Path, text: str) -> None:
    (tmp_path / MIGRATIONS_FILE).write_text(text)
    assert load_records(tmp_path) == {}


def test_a_good_file_is_read_back(tmp_path: Path) -> None:
    (tmp_path / MIGRATIONS_FILE).write_text(json.dumps({"vm100": RECORD.__dict__}))
    assert load_records(tmp_path) == {"vm100": RECORD}


def test_the_keeper_reads_migration_names_with_the_nodes_hypervisor(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.backends.registry import DEFAULT_BACKENDS
    from reconciler.model.observed import ObservedNode
    from tests.daemon import other_backends
    from tests.daemon.fakes import desired_node

    other = other_backends.register(monkeypatch)
    keeper = MigrationKeeper(tmp_path, "erdbeere", lambda: 20.0)
    assert keeper.hypervisor is DEFAULT_BACKENDS.hypervisor
    desired = desired_node().model_copy(update={"backends": other_backends.OTHER_NAMES})
    keeper.view(desired, ObservedNode(node="erdbeere"), (), SHA_A)
    assert keeper.hypervisor is other.hypervisor
    keeper.view(desired_node(), ObservedNode(node="erdbeere"), (), SHA_A)
    assert keeper.hypervisor is DEFAULT_BACKENDS.hypervisor

"""The `failover` settings: automatic only with a mechanism that keeps the standby fresh and the old primary from
writing on; every refusal names its file and line, and says what to write instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.desired.expand import expand_node
from reconciler.desired.load import collect, load_cluster
from tests.desired.repo import CLUSTER, VM100, with_drbd84, with_quorum, write_repo

FENCE = """    power_fence:
      off: [/usr/sbin/fence_ipmilan, --ip=10.0.1.{i}, --action=off]
      status: [/usr/sbin/fence_ipmilan, --ip=10.0.1.{i}, --action=status]
      timeout: 40
      delay: 10
"""


def _fenced(cluster: str) -> str:
    """Each node of the cluster with a power fence."""
    for i, node in enumerate(("erdbeere", "himbeere"), start=1):
        cluster = cluster.replace(f"  {node}:\n", f"  {node}:\n" + FENCE.format(i=i), 1)
    return cluster


def _issues(tmp_path: Path, cluster: str, vm: str = VM100) -> list[str]:
    root = write_repo(tmp_path / "repo", cluster, {"vm100.yaml": vm})
    result, issues = collect(str(root))
    assert (result is None) == bool(issues)
    assert all(i.hint for i in issues)
    return [f"{i.path}:{i.line}: {i.message}" for i in issues]


def _automatic(cluster: str, block: str = "  failover: automatic\n") -> str:
    return cluster.replace("guards:\n", block + "guards:\n", 1)


def test_automatic_under_stonith_with_power_fences_on_drbd_84_is_valid(tmp_path: Path) -> None:
    cluster = _automatic(_fenced(with_drbd84()))
    assert _issues(tmp_path, cluster) == []
    node = expand_node(load_cluster(str(tmp_path / "repo")), "himbeere")
    (vm,) = node.vms
    assert vm.failover.mode == "automatic"
    assert (vm.failover.grace_seconds, vm.failover.min_interval_seconds, vm.failover.failback) == (30, 3600, "manual")
    # The handler asks for up to 60 s, then a power fence: its wait (at most twice the delay), the off command
    # and the status polling.
    assert vm.failover.promote_timeout_seconds == 60 + 2 * 10 + 2 * 40 + 30


def test_a_vm_file_overrides_the_default_key_by_key(tmp_path: Path) -> None:
    cluster = _automatic(_fenced(with_drbd84()), "  failover:\n    mode: automatic\n    grace: 45\n")
    vm = VM100 + "failover:\n  failback: automatic\n"
    assert _issues(tmp_path, cluster, vm) == []
    (desired,) = expand_node(load_cluster(str(tmp_path / "repo")), "erdbeere").vms
    assert (desired.failover.mode, desired.failover.grace_seconds, desired.failover.failback) == (
        "automatic", 45, "automatic")


def test_manual_is_the_default(tmp_path: Path) -> None:
    assert _issues(tmp_path, CLUSTER) == []
    (vm,) = expand_node(load_cluster(str(tmp_path / "repo")), "erdbeere").vms
    assert vm.failover.mode == "manual"


@pytest.mark.parametrize(("cluster", "expected"), [
    (_automatic(_fenced(with_drbd84()).replace("resource-and-stonith", "resource-only")),
     "automatic failover under fencing_policy resource-only: after a link loss the primary writes on alone"),
    (_automatic(with_drbd84()), "automatic failover needs a power_fence for erdbeere, himbeere"),
    (_automatic(_fenced(CLUSTER)), "automatic failover by power fence needs DRBD 8.4; on DRBD 9 (erdbeere, himbeere)"),
    (_automatic(_fenced(with_drbd84()).replace("mechanism: fencing\n    fencing_policy: resource-and-stonith\n",
                                               "mechanism: none\n")),
     "automatic failover needs a safety mechanism"),
])
def test_automatic_without_a_mechanism_that_keeps_the_standby_fresh_is_refused_at_its_line(
        tmp_path: Path, cluster: str, expected: str) -> None:
    found = _issues(tmp_path, cluster)
    assert len(found) == 1, found
    line = cluster.splitlines().index("  failover: automatic") + 1
    assert found[0].startswith(f"cluster.yaml:{line}: {expected}"), found


def test_automatic_with_quorum_and_a_tiebreaker_is_valid(tmp_path: Path) -> None:
    assert _issues(tmp_path, _automatic(with_quorum())) == []


@pytest.mark.parametrize(("block", "expected"), [
    ("  failover:\n    grace: 5\n", "failover.grace: 5 is outside 20-3600: it must outlast DRBD's own timeouts"),
    ("  failover:\n    min_interval: 10\n", "failover.min_interval: 10 is outside 300-2592000"),
    ("  failover: sometimes\n", "'sometimes' is not a failover mode"),
    ("  failover:\n    hold: maybe\n", "failover.hold"),
])
def test_bad_failover_settings_name_the_key(tmp_path: Path, block: str, expected: str) -> None:
    found = _issues(tmp_path, _automatic(_fenced(with_drbd84()), block))
    assert len(found) == 1, found
    assert expected in found[0], found

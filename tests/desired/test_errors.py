"""The error type other layers catch: every issue, sorted, formatted as path:line:col: message (hint)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.desired.errors import Issue, ValidationFailed
from reconciler.desired.load import load_cluster
from tests.desired.repo import CLUSTER, VM100, VM101, write_repo


def test_load_cluster_raises_with_every_issue(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "repo", CLUSTER, {
        "vm100.yaml": VM100.replace("vcpus: 2", "vcpus: 0"),
        "vm101.yaml": VM101.replace("primary: himbeere", "primary: kiwi"),
    })
    with pytest.raises(ValidationFailed) as caught:
        load_cluster(str(repo))
    issues = caught.value.issues
    assert [(i.path, i.line, i.col) for i in issues] == [("vms/vm100.yaml", 13, 10), ("vms/vm101.yaml", 3, 10)]
    text = caught.value.format(str(repo)).splitlines()
    assert text[0] == (f"{repo}/vms/vm100.yaml:13:10: domain.vcpus: 0 is out of range (input should be greater than "
                       "or equal to 1) (hint: use a value within the range)")
    assert text[1] == (f"{repo}/vms/vm101.yaml:3:10: primary 'kiwi' is not one of the VM's nodes "
                       "(hint: choose one of: erdbeere, himbeere)")
    assert "2 problem(s)" in str(caught.value)


def test_issues_sort_by_file_then_line() -> None:
    failed = ValidationFailed([Issue("vms/b.yaml", 2, 1, "x"), Issue("cluster.yaml", 9, 3, "y"),
                               Issue("vms/b.yaml", 1, 5, "z")])
    assert [(i.path, i.line) for i in failed.issues] == [("cluster.yaml", 9), ("vms/b.yaml", 1), ("vms/b.yaml", 2)]
    assert failed.format() == "cluster.yaml:9:3: y\nvms/b.yaml:1:5: z\nvms/b.yaml:2:1: x"

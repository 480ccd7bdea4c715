"""Loading again after a change gives exactly what a first load of the new content gives."""

from __future__ import annotations

from pathlib import Path

from reconciler.desired.load import collect
from tests.desired.repo import CLUSTER, VM100, VM101, write_repo


def test_reload_sees_changed_added_and_removed_files(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", CLUSTER, {"vm100.yaml": VM100, "vm101.yaml": VM101})
    first, issues = collect(str(root))
    assert first is not None
    assert issues == []

    (root / "vms" / "vm101.yaml").write_text(VM101.replace("minor: 1", "minor: 0"))
    _, issues = collect(str(root))
    assert [(i.path, i.line) for i in issues] == [("vms/vm101.yaml", 9)]

    (root / "vms" / "vm101.yaml").unlink()
    (root / "vms" / "vm102.yaml").write_text(VM101.replace("id: 101", "id: 102").replace("size: 20G", "size: 1T"))
    again, issues = collect(str(root))
    assert issues == []
    assert again is not None
    assert [(vm.name, vm.data_size) for vm in again.vms] == [("vm100", 100 * 1024**3), ("vm102", 1024**4)]

    (root / "vms" / "vm102.yaml").write_text("id: [\n")
    _, issues = collect(str(root))
    assert [(i.path, i.line, i.message.split(":")[0]) for i in issues] == [("vms/vm102.yaml", 2, "YAML syntax error")]
    # the same broken text again: the problem is still reported (and still at its place)
    _, issues_again = collect(str(root))
    assert issues_again == issues


def test_same_relative_path_in_another_directory_is_judged_by_its_own_text(tmp_path: Path) -> None:
    good = write_repo(tmp_path / "a", CLUSTER, {"vm100.yaml": VM100})
    bad = write_repo(tmp_path / "b", CLUSTER, {"vm100.yaml": VM100.replace("port: 7788", "port: 0")})
    assert collect(str(good))[0] is not None
    assert collect(str(bad))[0] is None
    assert collect(str(good))[0] is not None

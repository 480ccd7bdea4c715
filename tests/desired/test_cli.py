"""`reconciler validate` and `reconciler render` as an operator runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli.main import main
from tests.conftest import EXAMPLE_DIR
from tests.desired.repo import CLUSTER, VM100, write_repo


def test_validate_example_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE_DIR)]) == 0
    assert "valid" in capsys.readouterr().out


def test_validate_defaults_to_the_current_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLE_DIR)
    assert main(["validate"]) == 0


def test_validate_prints_every_problem_with_file_line_and_hint(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    repo = write_repo(tmp_path / "repo", CLUSTER.replace("192.168.2.2", "192.168.2.x"),
                      {"vm100.yaml": VM100.replace("size: 100G", "size: lots")})
    assert main(["validate", str(repo)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{repo}/cluster.yaml:8:14: nodes.himbeere.address: '192.168.2.x' is not an IPv4")
    assert err[1].startswith(f"{repo}/vms/vm100.yaml:5:9: storage.size: 'lots' is not a size")
    assert all("(hint: " in line for line in err[:2])
    assert err[2] == "2 problem(s) found"


def test_render_lists_the_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--node", "erdbeere", str(EXAMPLE_DIR)]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert "etc/drbd.d/vm100.res" in listed
    assert "dm/root100.table" in listed
    assert "lvs.txt" in listed


def test_render_writes_the_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["render", "--node", "erdbeere", "--out", str(out), str(EXAMPLE_DIR)]) == 0
    assert (out / "dm" / "root100.table").read_text() == (
        "0 629145600 striped 3 64 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0 /dev/vg-sdc/root100 0\n"
    )
    assert "resource vm100 {" in (out / "etc" / "drbd.d" / "vm100.res").read_text()
    assert "phy:/dev/drbd0,xvda,w" in (out / "etc" / "xen" / "vm100.cfg").read_text()


def test_render_refuses_unknown_and_unsafe_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--node", "kiwi", str(EXAMPLE_DIR)]) == 2
    assert "not declared" in capsys.readouterr().err
    assert main(["render", "--node", "../x", str(EXAMPLE_DIR)]) == 2
    assert "not a safe name" in capsys.readouterr().err


def test_render_of_an_invalid_repository_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = write_repo(tmp_path / "repo", CLUSTER, {"vm100.yaml": VM100.replace("port: 7788", "port: -1")})
    assert main(["render", "--node", "erdbeere", str(repo)]) == 1
    assert "nothing rendered" in capsys.readouterr().err


def test_render_into_an_unwritable_place_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    assert main(["render", "--node", "erdbeere", "--out", str(blocker), str(EXAMPLE_DIR)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"render: cannot write {blocker}")
    assert "Traceback" not in err


def test_validate_a_missing_or_wrong_path_says_which(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "absent")]) == 1
    assert capsys.readouterr().err.startswith(f"{tmp_path / 'absent'}:1:1: no such directory (hint: ")
    (tmp_path / "file").write_text("x\n")
    assert main(["validate", str(tmp_path / "file")]) == 1
    assert capsys.readouterr().err.startswith(f"{tmp_path / 'file'}:1:1: not a directory (hint: ")

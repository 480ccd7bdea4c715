"""validate reports every independent problem of a file, also when one of its values has the wrong type."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.desired.load import collect

EXAMPLE = Path(__file__).resolve().parents[2] / "desired-state"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLE, tmp_path / "ds")
    return tmp_path / "ds"


def edit(path: Path, *pairs: tuple[str, str]) -> None:
    text = path.read_text()
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text)


def messages(repo: Path) -> list[str]:
    cluster, issues = collect(str(repo))
    assert cluster is None
    return [f"{i.path}:{i.line}: {i.message}" for i in issues]


def test_a_type_error_does_not_hide_the_files_other_problems(repo: Path) -> None:
    edit(repo / "vms" / "vm101.yaml", ("  memory: 1G", "  memory: [1]"), ("primary: himbeere", "primary: nobody"),
         ("minor: 1", "minor: 0"), ("port: 7789", "port: 99999"))
    found = messages(repo)
    assert any("domain.memory: [1] is not a size" in m for m in found)
    assert any("drbd.port: 99999 is outside 1-65535: a TCP port number" in m for m in found)
    # The independent problems of the same file: its own rule, and a clash with another file.
    assert any("primary 'nobody' is not one of the VM's nodes" in m for m in found)
    assert any("DRBD minor 0 is already used on node erdbeere by vms/vm100.yaml" in m for m in found)
    # Nothing about the stand-in values: memory and port are reported once each, as written.
    assert sum("memory" in m for m in found) == 1
    assert sum("port" in m for m in found) == 1
    assert len(found) == 4


def test_placeholders_of_two_files_do_not_clash(repo: Path) -> None:
    edit(repo / "vms" / "vm100.yaml", ("  port: 7788", "  port: seven"))
    edit(repo / "vms" / "vm101.yaml", ("  port: 7789", "  port: eight"))
    found = messages(repo)
    assert len(found) == 2, found
    assert all("drbd.port: expected an integer" in m for m in found)


def test_an_unknown_key_does_not_hide_the_other_problems(repo: Path) -> None:
    edit(repo / "vms" / "vm101.yaml", ("  maxmem: 2G", "  maxmem: 2G\n  memroy: 1G"),
         ("primary: himbeere", "primary: nobody"))
    found = messages(repo)
    assert any("unknown key 'memroy'" in m for m in found)
    assert any("primary 'nobody'" in m for m in found)


def test_a_missing_required_key_still_stops_at_the_schema(repo: Path) -> None:
    edit(repo / "vms" / "vm101.yaml", ("id: 101\n", ""))
    found = messages(repo)
    assert any("missing required key 'id'" in m for m in found)


@pytest.mark.parametrize(("setting", "message"), [("  stripes: 1\n", "stripes has no effect on a linear layout"),
                                                  ("  chunk_sectors: 64\n",
                                                   "chunk_sectors has no effect on a linear layout")])
def test_settings_a_linear_layout_ignores_are_errors(repo: Path, setting: str, message: str) -> None:
    edit(repo / "vms" / "vm101.yaml", ("  size: 20G\n", "  size: 20G\n" + setting))
    found = messages(repo)
    assert all(message in m for m in found), found
    assert len(found) == 1


def test_cluster_defaults_for_striped_vms_are_no_error_on_a_linear_one() -> None:
    # The example's defaults set chunk_sectors for every VM; vm101 is linear and inherits it silently.
    cluster, issues = collect(str(EXAMPLE))
    assert issues == []
    assert cluster is not None

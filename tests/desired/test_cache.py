"""The validated desired state kept between one-shot commands: used only for the very same files and code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.desired import cache
from reconciler.desired.errors import ValidationFailed
from reconciler.desired.expand import expand_node
from reconciler.desired.load import load_cluster
from reconciler.desired.safefs import DesiredFiles
from reconciler.model.desired import DesiredNode
from tests.conftest import EXAMPLE_DIR

ROOT = Path(__file__).resolve().parents[2]


class CountingLoad:
    """The full load, counting how often the cache had to fall back to it."""

    def __init__(self, directory: Path, node: str) -> None:
        self.directory = directory
        self.node = node
        self.calls = 0

    def __call__(self, files: DesiredFiles | None) -> DesiredNode:
        self.calls += 1
        return expand_node(load_cluster(str(self.directory), files), self.node)


@pytest.fixture
def desired(tmp_path: Path) -> Path:
    copy = tmp_path / "desired"
    shutil.copytree(EXAMPLE_DIR, copy)
    return copy


def node_of(directory: Path, node: str, state: Path, load: CountingLoad | None = None) -> DesiredNode:
    return cache.desired_node(str(directory), node, state, load or CountingLoad(directory, node))


@pytest.mark.parametrize("node", ["erdbeere", "himbeere"])
def test_a_kept_node_is_the_node_a_full_load_gives(desired: Path, tmp_path: Path, node: str) -> None:
    state = tmp_path / "state"
    load = CountingLoad(desired, node)
    fresh = node_of(desired, node, state, load)
    again = node_of(desired, node, state, load)
    assert load.calls == 1
    assert again == fresh == expand_node(load_cluster(str(desired)), node)
    assert again is not fresh  # read back from the file, validated again
    assert (state / cache.CACHE_FILE).stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o777 == 0o700


def test_a_changed_file_is_loaded_again(desired: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    load = CountingLoad(desired, "erdbeere")
    before = node_of(desired, "erdbeere", state, load)
    vm = desired / "vms" / "vm100.yaml"
    vm.write_text(vm.read_text().replace("size: 100G", "size: 120G", 1))
    after = node_of(desired, "erdbeere", state, load)
    assert load.calls == 2
    assert after != before
    assert after == expand_node(load_cluster(str(desired)), "erdbeere")


def test_an_added_or_removed_file_is_loaded_again(desired: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    load = CountingLoad(desired, "erdbeere")
    node_of(desired, "erdbeere", state, load)
    (desired / "vms" / "vm101.yaml").rename(desired / "vm101.yaml.off")
    fewer = node_of(desired, "erdbeere", state, load)
    assert load.calls == 2
    assert [vm.name for vm in fewer.vms] == ["vm100"]


def test_another_node_is_not_served_from_the_cache(desired: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    node_of(desired, "erdbeere", state)
    load = CountingLoad(desired, "himbeere")
    assert node_of(desired, "himbeere", state, load).node == "himbeere"
    assert load.calls == 1


def test_other_code_never_uses_a_kept_node(desired: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    load = CountingLoad(desired, "erdbeere")
    node_of(desired, "erdbeere", state, load)
    monkeypatch.setattr(cache, "_code_digest", "another version of the reconciler")
    node_of(desired, "erdbeere", state, load)
    assert load.calls == 2


def test_the_code_digest_covers_every_module_of_the_package(tmp_path: Path) -> None:
    """A module changed anywhere in the package (here: one added) changes the digest."""
    package = tmp_path / "reconciler"
    shutil.copytree(ROOT / "reconciler", package, ignore=shutil.ignore_patterns("__pycache__"))
    program = "import reconciler.desired.cache as c; print(c.code_digest())"

    def digest() -> str:
        proc = subprocess.run(
            [sys.executable, "-c", program],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={**os.environ, "PYTHONPATH": str(tmp_path)},
        )
        return proc.stdout.strip()

    before = digest()
    assert before == digest()
    (package / "plan" / "extra.py").write_text("X = 1\n")
    assert digest() != before


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong key", "empty"])
def test_a_damaged_file_is_a_miss_and_is_rewritten(desired: Path, tmp_path: Path, damage: str) -> None:
    state = tmp_path / "state"
    load = CountingLoad(desired, "erdbeere")
    good = node_of(desired, "erdbeere", state, load)
    path = state / cache.CACHE_FILE
    text = path.read_bytes()
    key, _, body = text.partition(b"\n")
    damaged = {
        "garbage": b"\xff\xfe not a cache",
        "truncated": text[: len(text) // 2],
        "wrong key": b"0" * len(key) + b"\n" + body,
        "empty": b"",
    }[damage]
    path.write_bytes(damaged)
    assert node_of(desired, "erdbeere", state, load) == good
    assert load.calls == 2
    assert path.read_bytes() == text


def test_a_valid_node_that_breaks_the_model_is_a_miss(desired: Path, tmp_path: Path) -> None:
    """The kept node is validated by its model when read back: a field the model forbids is a miss."""
    state = tmp_path / "state"
    load = CountingLoad(desired, "erdbeere")
    node_of(desired, "erdbeere", state, load)
    path = state / cache.CACHE_FILE
    path.write_bytes(path.read_bytes().replace(b'"cluster":', b'"unknown_field":1,"cluster":', 1))
    node_of(desired, "erdbeere", state, load)
    assert load.calls == 2


@pytest.mark.parametrize("why", ["readable by others", "a symlink"])
def test_a_file_others_could_have_written_is_never_read(desired: Path, tmp_path: Path, why: str) -> None:
    state = tmp_path / "state"
    load = CountingLoad(desired, "erdbeere")
    node_of(desired, "erdbeere", state, load)
    path = state / cache.CACHE_FILE
    if why == "readable by others":
        path.chmod(0o644)
    else:
        elsewhere = tmp_path / "elsewhere"
        path.rename(elsewhere)
        path.symlink_to(elsewhere)
    node_of(desired, "erdbeere", state, load)
    assert load.calls == 2


def test_an_invalid_state_is_never_kept_and_fails_every_time(desired: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    vm = desired / "vms" / "vm100.yaml"
    vm.write_text(vm.read_text() + "unknown_key: 1\n")
    for _ in range(2):
        with pytest.raises(ValidationFailed):
            node_of(desired, "erdbeere", state)
    assert not (state / cache.CACHE_FILE).exists()


def test_an_unwritable_state_dir_only_means_no_cache(desired: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    load = CountingLoad(desired, "erdbeere")
    assert node_of(desired, "erdbeere", blocker / "state", load).node == "erdbeere"
    node_of(desired, "erdbeere", blocker / "state", load)
    assert load.calls == 2


def test_without_a_state_dir_every_command_loads_in_full(desired: Path) -> None:
    load = CountingLoad(desired, "erdbeere")
    cache.desired_node(str(desired), "erdbeere", None, load)
    cache.desired_node(str(desired), "erdbeere", None, load)
    assert load.calls == 2

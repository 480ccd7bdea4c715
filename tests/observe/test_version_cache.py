"""Tool versions remembered between one-shot commands: reused only for the same boot and binaries."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler.core.facts import ToolVersions
from reconciler.model.observed import ToolStatus
from reconciler.observe import version_cache

DRBD_UTILS = ToolStatus(name="drbdadm", state="available", version="9.22.0")
DMSETUP = ToolStatus(name="dmsetup", state="available", version="1.02.185 (driver 4.48.0)")
KNOWN = ToolVersions(tools=(("lvm", ToolStatus(name="lvm", state="available", version="2.03.16")),
                            ("dmsetup", DMSETUP), ("drbd_utils", DRBD_UTILS)))


def test_versions_come_back_for_the_same_fingerprint(tmp_path: Path) -> None:
    version_cache.store(KNOWN, tmp_path)
    assert version_cache.load(tmp_path) == KNOWN
    assert (tmp_path / version_cache.CACHE_FILE).stat().st_mode & 0o777 == 0o600


def test_another_boot_or_binary_means_probing_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    version_cache.store(KNOWN, tmp_path)
    monkeypatch.setattr(version_cache, "fingerprint", lambda *_: "another boot")
    assert version_cache.load(tmp_path) is None


def test_a_binary_replaced_changes_the_fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "bin" / "lvm"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(binary.parent))
    before = version_cache.fingerprint()
    binary.write_text("#!/bin/sh\necho upgraded\n")
    assert version_cache.fingerprint() != before


def test_a_failed_probe_is_not_remembered(tmp_path: Path) -> None:
    failed = ToolVersions(tools=(("lvm", ToolStatus(name="lvm", state="failed")),
                                 ("dmsetup", ToolStatus(name="dmsetup", state="available", version="1.02.185")),
                                 ("drbd_utils", DRBD_UTILS)))
    version_cache.store(failed, tmp_path)
    assert not (tmp_path / version_cache.CACHE_FILE).exists()


@pytest.mark.parametrize("damage", ["not json", "[]", '{"fingerprint": 1}'])
def test_a_damaged_file_is_ignored(tmp_path: Path, damage: str) -> None:
    path = tmp_path / version_cache.CACHE_FILE
    path.write_text(damage)
    path.chmod(0o600)
    assert version_cache.load(tmp_path) is None


def test_a_file_others_can_write_is_ignored(tmp_path: Path) -> None:
    version_cache.store(KNOWN, tmp_path)
    path = tmp_path / version_cache.CACHE_FILE
    assert json.loads(path.read_text())["tools"]["lvm"]["version"] == "2.03.16"
    os.chmod(path, 0o666)  # noqa: S103  (the point of the test)
    assert version_cache.load(tmp_path) is None

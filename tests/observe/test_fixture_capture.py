"""Replaying a capture taken on a real machine (see fixtures/README.md): no root, no lvm2 needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.host.replay import ReplayHost
from reconciler.observe.observer import Observer

BUNDLE = Path(__file__).parent / "fixtures" / "capture-loop-lvm"
GIB = 1024**3


def test_real_capture_replays_to_the_volumes_that_were_created() -> None:
    observed = Observer(ReplayHost(BUNDLE)).observe()
    assert observed.node == "erdbeere"
    assert {(v.name, v.size_bytes, v.free_bytes) for v in observed.volume_groups} == {
        ("vg-sda", 8585740288, 8585740288 - 4 * GIB), ("vg-sdb", 8585740288, 8585740288 - 3 * GIB)}
    assert sorted((lv.vg, lv.name, lv.size_bytes) for lv in observed.logical_volumes) == [
        ("vg-sda", "root100", GIB), ("vg-sda", "root101", GIB), ("vg-sda", "swap100", 2 * GIB),
        ("vg-sdb", "root100", GIB), ("vg-sdb", "swap100", 2 * GIB)]
    assert observed.lv("vg-sda", "root101").tags == ("vm101",)  # type: ignore[union-attr]
    assert observed.lv("vg-sda", "swap100").devices == ("/dev/loop0(0)",)  # type: ignore[union-attr]
    assert {t.name: (t.state, t.version) for t in observed.tools} == {
        "lvm": ("available", "2.03.16"), "dmsetup": ("failed", "1.02.185"), "drbd": ("missing", None),
        "drbdadm": ("available", "9.22.0"), "xl": ("missing", None), "files": ("available", None)}
    assert "/dev/mapper/control: open failed" in (observed.tool("dmsetup").detail or "")  # type: ignore[union-attr]
    assert observed.commands_run == 4


def test_real_capture_through_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["observe", "--replay", str(BUNDLE)]) == 0
    out = capsys.readouterr().out
    assert "  vg-sda  root101  1GiB  -wi-XX----  linear  1" in out
    assert "device-mapper devices: unknown (dmsetup failed)" in out
    assert main(["observe", "--json", "--replay", str(BUNDLE), "--node", "himbeere"]) == 0
    assert json.loads(capsys.readouterr().out)["node"] == "himbeere"

"""device-mapper tables and info, merging, own-device uuids and table normalisation."""

from __future__ import annotations

import pytest

from reconciler.backends.dm import parse as dmsetup
from reconciler.core.parse_error import ParseError
from reconciler.model.observed import DmTarget
from reconciler.ownership import dm_uuid, is_our_dm_uuid

TABLE_ALL = """\
root100: 0 6291456 striped 3 128 253:0 2048 253:1 2048 253:2 2048
vg--sda-root100: 0 2097152 linear 7:0 4196352
joined: 0 1028160 linear 8:1 0
joined: 1028160 3903762 linear 8:17 0
blank: 0 100 zero
notable:
"""

INFO_ALL = """\
root100/253/3/L--w/1/RECONCILER-root100
vg--sda-root100/253/0/L--w/1/LVM-FinEeEomhBKVIqjj5kxVVKIgw2nCvFY8skpFw98flQ8Qcrw7wr9ZUGvSMvUrTheX
paused/253/5/L-sw/0/
pending/253/6/-I-r/0/other-tool-7
"""


def test_argv() -> None:
    assert dmsetup.TABLE_ARGV == ("dmsetup", "table")
    assert " ".join(dmsetup.INFO_ARGV) == (
        "dmsetup info -c --noheadings --separator / -o name,major,minor,attr,open,uuid"
    )


def test_table_with_name_prefix() -> None:
    tables = dmsetup.parse_table(TABLE_ALL)
    assert list(tables) == ["root100", "vg--sda-root100", "joined", "blank", "notable"]
    assert tables["root100"] == (
        DmTarget(start=0, length=6291456, target="striped", args="3 128 253:0 2048 253:1 2048 253:2 2048"),
    )
    assert [t.start for t in tables["joined"]] == [0, 1028160]
    assert tables["joined"][1].args == "8:17 0"
    assert tables["blank"] == (DmTarget(start=0, length=100, target="zero", args=""),)
    assert tables["notable"] == ()


def test_no_devices_found() -> None:
    assert dmsetup.parse_table("No devices found\n") == {}
    assert dmsetup.parse_info("No devices found\n") == ()
    assert dmsetup.parse_table("") == {}


def test_single_table_without_prefix() -> None:
    text = "0 2056320 striped 2 32 /dev/hda 0 /dev/hdb 0\n2056320 2875602 linear /dev/hdb 1028160\n"
    first, second = dmsetup.parse_single_table(text)
    assert (first.start, first.length, first.target) == (0, 2056320, "striped")
    assert second.args == "/dev/hdb 1028160"


@pytest.mark.parametrize(
    "line",
    [
        "root100: zero 10 linear 8:1 0",
        "root100: 0 0 linear 8:1 0",
        "just some words",
        "root100: 0 10 lin/ear 8:1 0",
    ],
)
def test_table_garbage_is_refused(line: str) -> None:
    with pytest.raises(ParseError) as caught:
        dmsetup.parse_table(f"ok: 0 8 zero\n{line}\n")
    assert caught.value.line_no == 2
    assert caught.value.tool == "dmsetup table"


def test_info_attributes() -> None:
    root, lvm_dev, paused, pending = dmsetup.parse_info(INFO_ALL)
    assert (root.name, root.major, root.minor, root.open_count) == ("root100", 253, 3, 1)
    assert root.uuid == "RECONCILER-root100"
    assert (root.live_table, root.inactive_table, root.suspended, root.read_only) == (True, False, False, False)
    assert is_our_dm_uuid(root.uuid)
    assert not is_our_dm_uuid(lvm_dev.uuid)
    assert lvm_dev.uuid.startswith("LVM-")
    assert paused.suspended
    assert paused.uuid == ""
    assert (pending.live_table, pending.inactive_table, pending.read_only) == (False, True, True)


@pytest.mark.parametrize(
    "line",
    [
        "root100/253/3/L--w/1",  # five fields
        "root100/253/x/L--w/1/u",  # minor not a number
        "root100/253/3/3/1/LVM",  # a different column set (segments instead of attr)
        "root100/253/3/L--w/-1/u",  # negative open count
        "/253/3/L--w/1/u",  # no name
    ],
)
def test_info_garbage_is_refused(line: str) -> None:
    with pytest.raises(ParseError, match="dmsetup info"):
        dmsetup.parse_info(line)


def test_merge_attaches_tables_and_keeps_devices_only_one_command_saw() -> None:
    info = dmsetup.parse_info("root100/253/3/L--w/1/RECONCILER-root100\nlonely/253/9/L--w/0/x\n")
    tables = dmsetup.parse_table("root100: 0 8 linear 7:0 0\nnewcomer: 0 8 zero\n")
    merged = dmsetup.merge(info, tables)
    assert [d.name for d in merged] == ["root100", "lonely", "newcomer"]
    assert merged[0].table == "0 8 linear 7:0 0"
    assert merged[0].uuid == "RECONCILER-root100"
    assert merged[1].targets == ()
    assert merged[2].uuid == ""
    assert merged[2].targets[0].target == "zero"


def test_normalise_maps_paths_to_numbers_and_back() -> None:
    rendered = "0 6291456 striped 3 128 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0  /dev/vg-sdc/root100 0\n\n"
    kernel = "0 6291456 striped 3 128 253:0 0 253:1 0 253:2 0"
    numbers = {"/dev/vg-sda/root100": "253:0", "/dev/vg-sdb/root100": "253:1", "/dev/vg-sdc/root100": "253:2"}
    assert dmsetup.normalise_table(rendered, numbers) == kernel
    reverse = {number: path for path, number in numbers.items()}
    assert dmsetup.normalise_table(kernel, reverse) == " ".join(rendered.split())
    assert dmsetup.normalise_table(rendered, {}) != dmsetup.normalise_table(kernel, {})


def test_own_uuid() -> None:
    assert dm_uuid("root100") == "RECONCILER-root100"

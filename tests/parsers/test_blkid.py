"""blkid -p -o export: signatures, blank devices (exit 2), ambiguous probes (exit 8)."""

from __future__ import annotations

import pytest

from reconciler.core.parse_error import ParseError
from reconciler.names import UnsafeNameError
from reconciler.observe import blkid


def test_argv_validates_the_device() -> None:
    assert blkid.blkid_argv("/dev/drbd0") == ("blkid", "-p", "-o", "export", "/dev/drbd0")
    for bad in ("/dev/../etc/passwd", "sda", "/dev/sda; rm -rf /", "-p"):
        with pytest.raises(UnsafeNameError):
            blkid.blkid_argv(bad)


def test_xfs() -> None:
    text = "DEVNAME=/dev/drbd0\nUUID=0ec9-47ef\nBLOCK_SIZE=512\nTYPE=xfs\nUSAGE=filesystem\n"
    sig = blkid.parse_blkid_export(text, "/dev/drbd0", 0)
    assert (sig.device, sig.type, sig.uuid, sig.usage, sig.label) == (
        "/dev/drbd0", "xfs", "0ec9-47ef", "filesystem", None,
    )


def test_drbd_metadata_and_swap_label() -> None:
    drbd = blkid.parse_blkid_export("TYPE=drbd\nUSAGE=raid\nUUID=4242\nVERSION=v09\n", "/dev/mapper/root100", 0)
    assert (drbd.type, drbd.usage) == ("drbd", "raid")
    swap = blkid.parse_blkid_export("DEVNAME=/dev/vg/swap1\nLABEL=my\\ swap\nTYPE=swap\n", "/dev/vg/swap1", 0)
    assert (swap.type, swap.label) == ("swap", "my swap")
    trailing = blkid.parse_blkid_export("LABEL=end\\ \nTYPE=ext4\n", "/dev/sdc", 0)
    assert trailing.label == "end "


def test_udev_style_keys_are_understood() -> None:
    sig = blkid.parse_blkid_export("ID_FS_TYPE=xfs\nID_FS_USAGE=filesystem\nID_FS_UUID=abc\n", "/dev/sdb", 0)
    assert (sig.type, sig.uuid, sig.usage) == ("xfs", "abc", "filesystem")


def test_partition_table_is_a_signature() -> None:
    sig = blkid.parse_blkid_export("DEVNAME=/dev/sdb\nPTUUID=1234\nPTTYPE=gpt\n", "/dev/sdb", 0)
    assert (sig.type, sig.usage, sig.uuid) == ("gpt", "partition_table", "1234")


def test_exit_2_means_blank() -> None:
    sig = blkid.parse_blkid_export("", "/dev/loop6", 2)
    assert sig.type is None
    assert sig.device == "/dev/loop6"


def test_exit_8_ambiguous_is_never_blank() -> None:
    sig = blkid.parse_blkid_export("", "/dev/loop6", 8)
    assert sig.type == blkid.AMBIGUOUS


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("TYPE=xfs\n", 4, "unexpected exit code 4"),
        ("TYPE=xfs\n", 2, "exit 2"),
        ("UUID=abc\n", 0, "no TYPE"),
        ("this is not export format\n", 0, "KEY=value"),
        ("DEVNAME=/dev/sdc\nTYPE=xfs\n", 0, "not /dev/sdb"),
    ],
)
def test_contradictions_and_garbage_raise(text: str, code: int, message: str) -> None:
    with pytest.raises(ParseError, match=message) as caught:
        blkid.parse_blkid_export(text, "/dev/sdb", code)
    assert caught.value.tool == "blkid"

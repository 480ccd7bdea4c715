"""Minor -> resource mapping from the owned DRBD configuration files (needed on DRBD 8.4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.backends.drbd.conf import drbd_layout
from reconciler.core.parse_error import ParseError

CLASSIC = """resource vm100 {
  protocol C;
  on erdbeere { device /dev/drbd0; disk /dev/mapper/root100; address 192.168.2.1:7788; meta-disk internal; }
  on himbeere { device /dev/drbd0; disk /dev/mapper/root100; address 192.168.2.2:7788; meta-disk internal; }
}
"""


def test_classic_layout_maps_minor_and_peer() -> None:
    layout = drbd_layout([("/etc/drbd.d/vm100.res", CLASSIC)], "erdbeere")
    assert layout.minor_to_resource == {0: "vm100"}
    assert layout.peer_names == {"vm100": ("himbeere",)}


def test_each_side_sees_the_other_as_peer() -> None:
    assert drbd_layout([("a.res", CLASSIC)], "himbeere").peer_names == {"vm100": ("erdbeere",)}


def test_resource_level_device_with_minor_keyword_comments_and_quotes() -> None:
    text = """# owned by the reconciler; do not edit
resource "vm7" {   # quoted name
  device /dev/drbd_vm7 minor 12;
  on "erdbeere" { address 10.0.0.1:7800; }  # comment
  on himbeere { address 10.0.0.2:7800; }
}
"""
    layout = drbd_layout([("vm7.res", text)], "erdbeere")
    assert layout.minor_to_resource == {12: "vm7"}
    assert layout.peer_names == {"vm7": ("himbeere",)}


def test_volumes_and_own_minors_win_over_the_peer_minors() -> None:
    text = """resource data {
  on erdbeere {
    volume 0 { device minor 4; disk /dev/mapper/a; meta-disk internal; }
    volume 1 { device /dev/drbd5; disk /dev/mapper/b; meta-disk internal; }
    address 10.0.0.1:7801;
  }
  on himbeere {
    volume 0 { device minor 8; disk /dev/mapper/a; meta-disk internal; }
    volume 1 { device minor 9; disk /dev/mapper/b; meta-disk internal; }
    address 10.0.0.2:7801;
  }
}
"""
    assert drbd_layout([("data.res", text)], "erdbeere").minor_to_resource == {4: "data", 5: "data"}
    assert drbd_layout([("data.res", text)], "himbeere").minor_to_resource == {8: "data", 9: "data"}
    with pytest.raises(ParseError, match="no 'on' section"):
        drbd_layout([("data.res", text)], "kirsche")


def test_several_files_and_files_without_resources() -> None:
    other = CLASSIC.replace("vm100", "vm101").replace("/dev/drbd0", "/dev/drbd1").replace("7788", "7789")
    layout = drbd_layout([("vm100.res", CLASSIC), ("vm101.res", other), ("global.res", "global { }\n")],
                         "erdbeere")
    assert layout.minor_to_resource == {0: "vm100", 1: "vm101"}


@pytest.mark.parametrize(("text", "message"), [
    ("resource vm1 {\n  device /dev/drbd1;\n", "ends inside"),
    ("resource vm1 {\n  device /dev/drbd1\n}\n", "lacks its ';'"),
    ("}\n", "without a matching"),
    ("resource vm1 {\n  device /dev/sdb;\n}\n", "cannot tell the minor"),
    ("resource bad/name {\n  device /dev/drbd1;\n}\n", "not safe"),
])
def test_unreadable_configs_raise_with_the_file_name(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message) as caught:
        drbd_layout([("/etc/drbd.d/vm1.res", text)], "erdbeere")
    assert "/etc/drbd.d/vm1.res" in str(caught.value)


def test_two_resources_claiming_one_minor_is_an_error() -> None:
    clash = CLASSIC.replace("vm100", "vm101")
    with pytest.raises(ParseError, match="minor 0 is used by both"):
        drbd_layout([("vm100.res", CLASSIC), ("vm101.res", clash)], "erdbeere")


def test_real_resource_file_from_the_corpus(real_outputs: Path) -> None:
    text = (real_outputs / "captured-here" / "drbd-vm100.res").read_text()
    layout = drbd_layout([("drbd-vm100.res", text)], "erdbeere")
    assert layout.minor_to_resource == {0: "vm100"}
    assert layout.peer_names == {"vm100": ("himbeere",)}


_PIECES = st.sampled_from(["resource", "vm1", "on", "erdbeere", "himbeere", "device", "/dev/drbd1", "minor", "7",
                           "volume", "0", "{", "}", ";", "#c\n", '"q q"', "\n", " ", "disk", "/dev/sdb"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(_PIECES, max_size=40).map(" ".join), st.text(max_size=200)))
def test_any_text_gives_a_layout_or_a_parse_error(text: str) -> None:
    try:
        layout = drbd_layout([("/etc/drbd.d/x.res", text)], "erdbeere")
    except ParseError as exc:
        failure: ParseError | None = exc
    else:
        failure = None
    if failure is not None:
        assert failure.tool == "drbd configuration"
        return
    assert all(isinstance(m, int) and m >= 0 for m in layout.minor_to_resource)
    assert set(layout.minor_to_resource.values()) <= set(layout.peer_names)

"""Reading DRBD resource files as the simulated drbdadm does."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.sim.drbd_config import DrbdConfigError, ResourceConfig, load_files, parse_kib, parse_text
from reconciler.sim.drbd_output import dump_text

RENDERED = """# vm100: written by the reconciler
resource vm100 {
    options {
        auto-promote no;
        quorum majority;
        on-no-quorum io-error;
    }
    net {
        protocol C;
        allow-two-primaries no;
        fencing resource-and-stonith;
    }
    disk {
        on-io-error detach;
        resync-rate 40M;
    }
    handlers {
        fence-peer "/usr/lib/drbd/crm-fence-peer.9.sh";
    }
    on erdbeere {
        node-id 3;
        device /dev/drbd4 minor 4;
        disk /dev/mapper/root100;
        meta-disk internal;
        address ipv4 192.168.2.1:7789;
    }
    on himbeere {
        node-id 1;
        device /dev/drbd4;
        disk /dev/mapper/root100;
        meta-disk internal;
        address ipv4 192.168.2.2:7789;
    }
    on kirsche {
        node-id 2;
        device /dev/drbd4;
        disk none;
        address 192.168.2.3:7789;
    }
}
"""


def test_the_captured_resource_file(real_outputs: Path) -> None:
    resources, _ = parse_text((real_outputs / "captured-here/drbd-vm100.res").read_text(), "vm100.res")
    vm100 = resources[0]
    assert vm100.name == "vm100"
    assert [(h.name, h.node_id, h.address, h.port) for h in vm100.hosts] == [
        ("erdbeere", 0, "192.168.2.1", 7788), ("himbeere", 1, "192.168.2.2", 7788)]
    volume = vm100.require_host("erdbeere").volumes[0]
    assert (volume.device, volume.minor, volume.disk, volume.meta_disk) == (
        "/dev/drbd0", 0, "/dev/mapper/root100", "internal")
    assert vm100.protocol == "C"
    assert vm100.on_io_error == "detach"
    assert vm100.fencing == "dont-care"
    assert not vm100.allow_two_primaries


def test_a_rendered_resource_with_every_interpreted_option() -> None:
    vm100 = parse_text(RENDERED, "vm100.res")[0][0]
    assert [h.node_id for h in vm100.hosts] == [3, 1, 2]
    assert vm100.require_host("erdbeere").volumes[0].minor == 4
    assert vm100.require_host("kirsche").diskless
    assert not vm100.require_host("himbeere").diskless
    assert vm100.fencing == "resource-and-stonith"
    assert vm100.quorum == "majority"
    assert vm100.on_no_quorum == "io-error"
    assert vm100.fence_peer_handler == "/usr/lib/drbd/crm-fence-peer.9.sh"
    assert vm100.resync_rate_kib == 40 * 1024
    assert not vm100.allow_two_primaries
    assert ResourceConfig.from_json(vm100.to_json()) == vm100


def test_common_sections_and_volumes() -> None:
    files = {
        "/etc/drbd.d/global_common.conf": "common { net { protocol B; } disk { on-io-error pass_on; } }\n",
        "/etc/drbd.d/r0.res": """
resource r0 {
  volume 0 { device /dev/drbd10; disk /dev/vg/a; meta-disk internal; }
  volume 1 { device minor 11; disk /dev/vg/b; meta-disk internal; }
  on a { address 10.0.0.1:7000; }
  on b { address 10.0.0.2:7000; }
}
""",
    }
    r0 = load_files(files)["r0"]
    assert r0.protocol == "B"
    assert r0.on_io_error == "pass_on"
    assert [(v.number, v.minor, v.disk) for v in r0.require_host("b").volumes] == [
        (0, 10, "/dev/vg/a"), (1, 11, "/dev/vg/b")]


def test_options_inherited_from_common_keep_their_file_order() -> None:
    files = {
        "/etc/drbd.d/global_common.conf": "common { disk { on-io-error detach; al-extents 6433; } }\n",
        "/etc/drbd.d/r0.res": """
resource r0 {
  device /dev/drbd10; disk /dev/vg/a; meta-disk internal;
  on a { address 10.0.0.1:7000; }
  on b { address 10.0.0.2:7000; }
}
""",
    }
    for _ in range(2):  # parsed, then from the cache
        r0 = load_files(files)["r0"]
        assert list(r0.sections["disk"]) == ["on-io-error", "al-extents"]
        dump = dump_text(r0, "a", "9.2.0")
        assert dump.index("on-io-error") < dump.index("al-extents")
    # Every caller gets the same parsed object: nobody may change it for the others.
    with pytest.raises(TypeError):
        r0.sections["disk"]["al-extents"] = "1"  # type: ignore[index]
    with pytest.raises(TypeError):
        r0.sections["net"] = {}  # type: ignore[index]


@pytest.mark.parametrize(("text", "message"), [
    ("resource r { protocol X; on a { device /dev/drbd0; disk /dev/x; address 1.2.3.4:1; } }",
     "Parse error: while parsing value ('X')\nfor protocol. Value is not valid.\nAllowed values are: A | B | C"),
    ("resource r { on a { disk /dev/x; address 1.2.3.4:1; } }", "Missing statement 'device'"),
    ("resource r { on a { device /dev/drbd0; address 1.2.3.4:1; } }", "Missing statement 'disk'"),
    ("resource r { on a { device /dev/drbd0; disk /dev/x; address 1.2.3.4:1; }", "'}' expected"),
    ("resource r { device /dev/drbd0; }", "Missing statement 'on <host>'"),
])
def test_mistakes_are_reported_with_the_file_name(text: str, message: str) -> None:
    with pytest.raises(DrbdConfigError) as caught:
        parse_text(text, "r.res")
    assert message in str(caught.value)
    assert str(caught.value).startswith("r.res")


def test_a_resource_defined_twice_is_refused() -> None:
    text = "resource r { on a { device /dev/drbd0; disk /dev/x; address 1.2.3.4:1; } }\n"
    with pytest.raises(DrbdConfigError, match="conflicting use of resource name 'r'"):
        load_files({"/etc/drbd.d/a.res": text, "/etc/drbd.d/b.res": text})


def test_sizes() -> None:
    assert parse_kib("100M") == 102400
    assert parse_kib("512") == 512
    assert parse_kib("1G") == 1024 * 1024
    with pytest.raises(DrbdConfigError):
        parse_kib("fast")

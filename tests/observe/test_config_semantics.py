"""Comparing configs by what they mean: what a takeover may replace without changing anything."""

from __future__ import annotations

from reconciler.backends.drbd.config_meaning import drbd_differences, hand_written_resource
from reconciler.backends.xen.config_meaning import hand_written_domain, parse_xl, xl_differences

HAND = """\
resource vm100 {
  protocol C;
  net { sndbuf-size 512k; }
  on erdbeere { device /dev/drbd0; disk /dev/mapper/root100; address 192.168.2.1:7788; meta-disk internal; }
  on himbeere { device /dev/drbd0; disk /dev/mapper/root100; address 192.168.2.2:7788; meta-disk internal; }
}
"""

RENDERED = """\
# vm100: written by the reconciler from vms/vm100.yaml; local changes are overwritten.
resource vm100 {
    net {
        protocol C;
        after-sb-0pri disconnect;
        allow-two-primaries no;
        sndbuf-size 512k;
    }
    handlers {
        split-brain "/usr/bin/reconciler split-brain";
    }
    on erdbeere {
        device /dev/drbd0 minor 0;
        disk /dev/mapper/root100;
        meta-disk internal;
        address ipv4 192.168.2.1:7788;
    }
    on himbeere {
        device /dev/drbd0;
        disk /dev/mapper/root100;
        meta-disk internal;
        address ipv4 192.168.2.2:7788;
    }
}
"""


def test_defaults_handlers_and_spelling_do_not_count() -> None:
    assert drbd_differences(HAND, RENDERED, "/etc/drbd.d/vm100.res") == []


def test_an_option_a_disk_or_an_address_that_differs_counts() -> None:
    changed = RENDERED.replace("512k", "1M").replace("192.168.2.2:7788", "192.168.2.2:7789")
    found = drbd_differences(HAND, changed.replace("disk /dev/mapper/root100;\n        meta-disk internal;\n"
                                                   "        address ipv4 192.168.2.1", "disk /dev/sdz;\n        "
                                                   "meta-disk internal;\n        address ipv4 192.168.2.1"), "x")
    assert "net sndbuf-size: 512k -> 1M" in found
    assert "on himbeere address: 192.168.2.2:7788 -> 192.168.2.2:7789" in found
    assert "on erdbeere disk: /dev/mapper/root100 -> /dev/sdz" in found


def test_an_unreadable_file_is_a_difference_not_an_error() -> None:
    assert drbd_differences("resource vm100 {", RENDERED, "/etc/drbd.d/vm100.res")[0].startswith(
        "/etc/drbd.d/vm100.res cannot be read")


def test_hand_written_means_no_header_and_the_resource_or_domain_defined() -> None:
    assert hand_written_resource(HAND, "vm100")
    assert not hand_written_resource(RENDERED, "vm100")
    assert not hand_written_resource("# edited\n", "vm100")
    assert not hand_written_resource(HAND, "vm101")
    assert hand_written_domain('name = "vm100"\n', "vm100")
    assert not hand_written_domain('name = "other"\n', "vm100")


def test_xl_defaults_and_vif_order_do_not_count() -> None:
    hand = ('name = "vm100"\nmemory = 4096\nvcpus = 2\nbootloader = "pygrub"\n'
            "disk = ['phy:/dev/drbd0,xvda,w']\nvif = ['bridge=xenbr0,mac=00:16:3e:00:01:00']\n")
    rendered = ('# vm100: written by the reconciler\nname = "vm100"\ntype = "pv"\nmemory = 4096\nmaxmem = 4096\n'
                'vcpus = 2\nmaxvcpus = 2\nbootloader = "pygrub"\ndisk = [\'phy:/dev/drbd0,xvda,w\']\n'
                "vif = ['mac=00:16:3e:00:01:00,bridge=xenbr0']\n"
                'on_poweroff = "destroy"\non_reboot = "restart"\non_crash = "destroy"\n')
    assert xl_differences(hand, rendered, "/etc/xen/vm100.cfg") == []
    assert xl_differences(hand.replace("4096", "2048"), rendered, "x") == ["maxmem: 2048 -> 4096",
                                                                            "memory: 2048 -> 4096"]


def test_no_vif_line_means_the_same_as_an_empty_list() -> None:
    hand = 'name = "vm101"\nmemory = 128\nkernel = "/boot/vmlinuz"\ndisk = [\'phy:/dev/drbd1,xvda,w\']\n'
    assert xl_differences(hand, hand + "vif = []\n", "x") == []
    assert xl_differences(hand, hand + "vif = ['bridge=xenbr0']\n", "x") == ["vif: () -> ('bridge=xenbr0',)"]


def test_xl_settings_keep_their_line_numbers() -> None:
    settings = parse_xl('# a domain\n\nname = "vm100"\nmemory = 512 # MiB\n', "f")
    assert (settings["name"].value, settings["name"].line) == ("vm100", 3)
    assert (settings["memory"].value, settings["memory"].line) == (512, 4)

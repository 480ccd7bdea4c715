"""xl list, xl list -l and xl info."""

from __future__ import annotations

import json

import pytest

from reconciler.backends.xen import xl
from reconciler.core.parse_error import ParseError

XL_LIST = """\
Name                                        ID   Mem VCPUs      State   Time(s)
Domain-0                                     0  2048     4     r-----    5123.4
vm100                                        3  4096     2     -b----     812.0
vm101                                        4  1024     1     ------       3.1
vm102                                        5  1024     1     --p---      10.0
vm103                                        6  1024     1     ---sc-       1.2
(null)                                       7   512     1     --ps-d       0.4
vm104                                        8  1024     1     ---s--       9.9
"""


def _entry(domid: int, name: str, disks: list[dict[str, object]] | None = None) -> dict[str, object]:
    return {
        "domid": domid,
        "config": {
            "c_info": {"type": "pv", "name": name, "uuid": f"uuid-{name}"},
            "b_info": {"max_vcpus": 2, "max_memkb": 4194304, "target_memkb": 4194304, "sched_params": {}},
            "disks": disks if disks is not None else [
                {"pdev_path": "/dev/drbd0", "vdev": "xvda", "backend": "phy", "readwrite": 1},
                {"pdev_path": "/dev/vg-sda/swap100", "vdev": "xvdb", "backend": "phy", "readwrite": 1},
            ],
            "nics": [{"devid": 0, "mac": "00:16:3e:00:01:00", "bridge": "br0"}],
            "on_reboot": "restart",
        },
    }


def test_argv() -> None:
    assert (xl.XL_LIST_ARGV, xl.XL_LIST_LONG_ARGV, xl.XL_INFO_ARGV) == (
        ("xl", "list"), ("xl", "list", "-l"), ("xl", "info"),
    )


def test_xl_list_states() -> None:
    rows = xl.parse_xl_list(XL_LIST)
    assert [(r.name, r.state) for r in rows] == [
        ("Domain-0", "running"),
        ("vm100", "blocked"),
        ("vm101", "running"),
        ("vm102", "paused"),
        ("vm103", "crashed"),
        ("(null)", "dying"),
        ("vm104", "shutdown"),
    ]
    dom0, vm100 = rows[0], rows[1]
    assert dom0.is_dom0
    assert (vm100.domid, vm100.mem_mib, vm100.vcpus, vm100.time_s, vm100.flags) == (3, 4096, 2, 812.0, "-b----")
    assert not vm100.is_dom0


def test_xl_list_name_with_spaces_is_kept_whole() -> None:
    text = "Name ID Mem VCPUs State Time(s)\nmy odd vm   9  256  1  -b----  1.0\n"
    (row,) = xl.parse_xl_list(text)
    assert row.name == "my odd vm"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty output"),
        ("vm1 1 2 3 r----- 1.0\n", "header"),
        ("Name ID Mem VCPUs State Time(s)\nvm1 1 2 r----- 1.0\n", "6 columns"),
        ("Name ID Mem VCPUs State Time(s)\nvm1 x 2 1 r----- 1.0\n", "whole numbers"),
        ("Name ID Mem VCPUs State Time(s)\nvm1 1 2 1 running 1.0\n", "state"),
        ("Name ID Mem VCPUs State Time(s)\nvm1 1 2 1 rx---- 1.0\n", "state"),
        ("Name ID Mem VCPUs State Time(s)\nvm1 1 2 1 r----- soon\n", "time"),
    ],
)
def test_xl_list_garbage(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        xl.parse_xl_list(text)


def test_xl_list_long() -> None:
    text = json.dumps([_entry(3, "vm100"), _entry(4, "vm101", disks=[])], indent=4)
    first, second = xl.parse_xl_list_long(text)
    assert (first.domid, first.name, first.uuid) == (3, "vm100", "uuid-vm100")
    assert (first.max_memkb, first.target_memkb, first.max_vcpus) == (4194304, 4194304, 2)
    assert first.disks == ("/dev/drbd0", "/dev/vg-sda/swap100")
    assert first.vdevs == ("xvda", "xvdb")
    assert first.nics == ("00:16:3e:00:01:00",)
    assert first.bridges == ("br0",)
    assert second.disks == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[{", "not JSON"),
        ("{}", "list of domains"),
        ('[{"domid": "3", "config": {}}]', "domid"),
        ('[{"domid": 3}]', "config"),
        ('[{"domid": 3, "config": {"c_info": {"name": ""}}}]', "c_info.name"),
        ('[{"domid": 3, "config": {"c_info": {"name": "a"}, "b_info": {"max_memkb": "lots"}}}]', "max_memkb"),
        ('[{"domid": 3, "config": {"c_info": {"name": "a"}, "disks": {}}}]', "disks"),
        ("(domain\n    (domid 0)\n)\n", "without \\(domid N\\) and \\(name NAME\\)"),
        ("(domain (domid 1) (name a)\n", "unbalanced '\\('"),
        ("(domain (domid 1) (name a))))\n", "unbalanced '\\)'"),
        ("(device (vbd (uname phy:/dev/a)))\n", "only \\(domain"),
        ("(domain (domid x) (name a))\n", "not a whole number"),
        ("(vm (domid 1) (name a))\n", "only \\(domain"),
        ("(domain (domid 1)\n (name 'a))\n", "quote that does not close"),
    ],
)
def test_xl_list_long_garbage(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        xl.parse_xl_list_long(text)


# The S-expression form xl prints with output_format="sxp" in xl.conf (abridged to the fields read). For a
# PV domain xl closes "(linux 0)" at once, so the image's ')' ends the domain and the last ')' is left over.
XL_LIST_LONG_SXP = """\
(domain
\t(domid 3)
\t(create_info)
\t(hvm 0)
\t(name vm100)
\t(uuid 8e3b425c-deb1-425a-ab5c-384c608fb1a4)
\t(xsdata (null))
\t(build_info)
\t(max_vcpus 2)
\t(max_memkb 4194304)
\t(target_memkb 2097152)
\t(image
\t\t(linux 0)
\t\t\t(kernel )
\t\t\t(cmdline root=/dev/xvda1 ro)
\t\t)
\t)
\t(device
\t\t(tap
\t\t\t(backend_domid 0)
\t\t\t(physpath /dev/drbd100)
\t\t\t(virtpath xvda)
\t\t)
\t)
\t(device
\t\t(vif
\t\t\t(mac 00163e000100)
\t\t)
\t)
)
"""


def test_xl_list_long_sxp() -> None:
    (config,) = xl.parse_xl_list_long(XL_LIST_LONG_SXP)
    assert (config.domid, config.name, config.uuid) == (3, "vm100", "8e3b425c-deb1-425a-ab5c-384c608fb1a4")
    assert (config.max_memkb, config.target_memkb, config.max_vcpus) == (4194304, 2097152, 2)
    assert (config.disks, config.vdevs, config.nics) == (("/dev/drbd100",), ("xvda",), ("00:16:3e:00:01:00",))


def test_merge_domains_excludes_dom0_and_joins_configs_by_domid() -> None:
    rows = xl.parse_xl_list(XL_LIST)
    configs = xl.parse_xl_list_long(json.dumps([_entry(3, "vm100"), _entry(4, "not-vm101")]))
    domains = xl.merge_domains(rows, configs)
    assert [d.name for d in domains] == ["vm100", "vm101", "vm102", "vm103", "(null)", "vm104"]
    vm100 = domains[0]
    assert (vm100.domid, vm100.state, vm100.memory_mib, vm100.maxmem_mib, vm100.vcpus) == (
        3, "blocked", 4096, 4096, 2,
    )
    assert vm100.uuid == "uuid-vm100"
    assert vm100.disks == ("/dev/drbd0", "/dev/vg-sda/swap100")
    assert vm100.is_running
    # Same domid, different name: the id was reused between the two commands, so no config is attached.
    assert domains[1].uuid is None
    assert domains[1].disks == ()
    assert not domains[4].is_running


XL_INFO = """\
host                   : node1
release                : 6.1.0-13-amd64
total_memory           : 65413
free_memory            : 30712
xen_major              : 4
xen_minor              : 17
xen_extra              : .3-pre
xen_version            : 4.17.3-pre
xen_commandline        : placeholder dom0_mem=4096M,max:4096M
virt_caps              : pv hvm hap shadow
cc_compile_date        : Tue Jan  1 00:00:00 UTC 2024
"""


def test_xl_info() -> None:
    info = xl.parse_xl_info(XL_INFO)
    assert (info.free_memory_mib, info.total_memory_mib, info.xen_version) == (30712, 65413, "4.17.3-pre")


def test_xl_info_tolerates_missing_keys() -> None:
    info = xl.parse_xl_info("host : n1\nfree_memory : 10\n")
    assert (info.free_memory_mib, info.total_memory_mib, info.xen_version) == (10, None, None)
    only_version = xl.parse_xl_info("xen_version : 4.19.1\nfree_memory : 10\n")
    assert only_version.xen_version == "4.19.1"


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("free_memory : lots\n", "free_memory"), ("no separator here\n", "key : value")],
)
def test_xl_info_garbage(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        xl.parse_xl_info(text)

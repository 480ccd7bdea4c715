"""Simulated lvm2: allocation, rounding, errors, reports and what freed extents still hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.sim.host import SimHost
from reconciler.sim.lvm import display_size, report_size
from reconciler.sim.state import (
    SimCluster,
    add_pv,
    add_vg,
    content,
    device_number,
    holders,
    open_count,
    open_counts_of,
    resolve_device,
)
from tests.sim.storage_helpers import GIB, cluster, ok

MIB = 1024**2


@pytest.fixture
def host(tmp_path: Path) -> SimHost:
    return SimHost(cluster(tmp_path, nodes=("erdbeere",), size=8 * GIB), "erdbeere")


def _lvs(host: SimHost, *extra: str) -> list[dict[str, str]]:
    result = ok(host, "lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                "lv_name,vg_name,lv_size,lv_attr,segtype,stripes,stripe_size,devices", *extra)
    rows: list[dict[str, str]] = json.loads(result.stdout)["report"][0]["lv"]
    return rows


def test_linear_lvs_are_allocated_one_after_another(host: SimHost) -> None:
    ok(host, "lvcreate", "-L", "2G", "-n", "swap100", "vg-sda")
    ok(host, "lvcreate", "--size", "1g", "--name", "root100", "vg-sda")
    rows = {r["lv_name"]: r for r in _lvs(host)}
    assert rows["swap100"]["devices"] == "/dev/sda(0)"
    assert rows["root100"]["devices"] == "/dev/sda(512)"
    assert rows["root100"]["lv_size"] == str(GIB)
    assert rows["root100"]["lv_attr"] == "-wi-a-----"


def test_extents_option_and_percent_free(host: SimHost) -> None:
    ok(host, "lvcreate", "-l", "10", "-n", "a", "vg-sda")
    ok(host, "lvcreate", "-l", "100%FREE", "-n", "b", "vg-sda")
    vgs = json.loads(ok(host, "vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                        "vg_name,vg_free", "vg-sda").stdout)
    assert vgs["report"][0]["vg"] == [{"vg_name": "vg-sda", "vg_free": "0"}]


def test_size_units_default_to_mebibytes_and_round_up_to_extents(host: SimHost) -> None:
    result = ok(host, "lvcreate", "-L", "5", "-n", "tiny", "vg-sda")
    assert result.stdout == ("  Rounding up size to full physical extent 8.00 MiB\n"
                             '  Logical volume "tiny" created.\n')
    assert _lvs(host)[0]["lv_size"] == str(8 * MIB)


def test_no_space_counts_free_extents(host: SimHost) -> None:
    result = host.run(["lvcreate", "-L", "9G", "-n", "big", "vg-sda"])
    assert result.returncode == 5
    assert result.stderr == '  Volume group "vg-sda" has insufficient free space (2047 extents): 2304 required.\n'


def test_missing_size_is_a_command_line_error(host: SimHost) -> None:
    result = host.run(["lvcreate", "-n", "x", "vg-sda"])
    assert result.returncode == 3
    assert result.stderr == ("  No command with matching syntax recognised.  Run 'lvcreate --help' for more "
                             "information.\n")
    both = host.run(["lvcreate", "-n", "x", "-L", "1G", "-l", "10", "vg-sda"])
    assert both.returncode == 3
    assert "Please specify either size or extents (not both)." in both.stderr


def test_unknown_option_is_a_command_line_error(host: SimHost) -> None:
    result = host.run(["lvcreate", "--bogus", "-L", "1G", "vg-sda"])
    assert result.returncode == 3
    assert result.stderr.endswith("  Error during parsing of command line.\n")


def test_striped_lv_spreads_over_pvs_and_rounds_to_the_stripe_count(tmp_path: Path) -> None:
    directory = cluster(tmp_path, nodes=("erdbeere",), size=8 * GIB, vgs=("vg-multi",))
    with SimCluster(directory).transaction() as state:
        add_pv(state["nodes"]["erdbeere"], "vg-multi", "/dev/sdy", 8 * GIB)
    host = SimHost(directory, "erdbeere")
    result = ok(host, "lvcreate", "-i", "2", "-I", "128", "-l", "5", "-n", "s", "vg-multi")
    assert "Rounding size 20.00 MiB (5 extents) up to stripe boundary size 24.00 MiB (6 extents)." in result.stdout
    row = _lvs(host)[0]
    assert (row["segtype"], row["stripes"], row["stripe_size"]) == ("striped", "2", str(128 * 1024))
    assert row["devices"] == "/dev/multi(0),/dev/sdy(0)"
    grown = ok(host, "lvextend", "-l", "+3", "vg-multi/s")
    assert grown.stdout.splitlines()[:2] == [
        "  Using stripesize of last segment 128.00 KiB",
        "  Rounding size (9 extents) up to stripe boundary size for segment (10 extents)."]
    three = host.run(["lvcreate", "-i", "3", "-L", "12M", "-n", "t", "vg-multi"])
    assert three.returncode == 5
    assert three.stderr == "  Number of stripes (3) must not exceed number of physical volumes (2)\n"


def test_lvextend_and_lvreduce_relative_sizes(host: SimHost) -> None:
    ok(host, "lvcreate", "-L", "1G", "-n", "root100", "vg-sda")
    result = ok(host, "lvextend", "-L+512M", "vg-sda/root100")
    assert "changed from 1.00 GiB (256 extents) to 1.50 GiB (384 extents)." in result.stdout
    smaller = host.run(["lvextend", "-L", "1G", "vg-sda/root100"])
    assert smaller.returncode == 5
    assert smaller.stderr == "  New size given (256 extents) not larger than existing size (384 extents)\n"
    ok(host, "lvreduce", "-f", "-L-256M", "/dev/vg-sda/root100")
    assert _lvs(host)[0]["lv_size"] == str(1280 * MIB)
    larger = host.run(["lvreduce", "-f", "-L", "2G", "vg-sda/root100"])
    assert larger.stderr == "  New size given (512 extents) not less than existing size (320 extents)\n"


def test_lvreduce_of_an_active_lv_asks_and_a_script_answers_no(host: SimHost) -> None:
    ok(host, "lvcreate", "-L", "1G", "-n", "root100", "vg-sda")
    result = host.run(["lvreduce", "-L", "512M", "vg-sda/root100"])
    assert result.returncode == 5
    assert result.stdout == "Do you really want to reduce vg-sda/root100? [y/n]: [n]\n"
    assert result.stderr.endswith("  Logical volume vg-sda/root100 NOT reduced.\n")
    assert _lvs(host)[0]["lv_size"] == str(GIB)


def test_lvextend_grows_into_free_space_after_a_neighbour(host: SimHost) -> None:
    ok(host, "lvcreate", "-L", "1G", "-n", "a", "vg-sda")
    ok(host, "lvcreate", "-L", "1G", "-n", "b", "vg-sda")
    ok(host, "lvextend", "-L", "2G", "vg-sda/a")
    assert [r["devices"] for r in _lvs(host) if r["lv_name"] == "a"] == ["/dev/sda(0)", "/dev/sda(512)"]
    segments = json.loads(ok(host, "lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                             "lv_name,seg_start,seg_size,devices", "vg-sda/a").stdout)["report"][0]["lv"]
    assert segments == [
        {"lv_name": "a", "seg_start": "0", "seg_size": str(GIB), "devices": "/dev/sda(0)"},
        {"lv_name": "a", "seg_start": str(GIB), "seg_size": str(GIB), "devices": "/dev/sda(512)"},
    ]


def test_lvremove_asks_without_yes_and_refuses_an_open_lv(host: SimHost) -> None:
    ok(host, "lvcreate", "-L", "1G", "-n", "root100", "vg-sda")
    asked = host.run(["lvremove", "vg-sda/root100"])
    assert asked.returncode == 5
    assert asked.stderr == "  Logical volume root100 not removed.\n"
    ok(host, "dmsetup", "create", "root100", stdin="0 2097152 linear /dev/vg-sda/root100 0\n")
    busy = host.run(["lvremove", "-y", "vg-sda/root100"])
    assert (busy.returncode, busy.stderr) == (5, "  Logical volume vg-sda/root100 in use.\n")
    assert _lvs(host)[0]["lv_attr"] == "-wi-ao----"
    ok(host, "dmsetup", "remove", "root100")
    ok(host, "lvremove", "-f", "vg-sda/root100")
    assert _lvs(host) == []


def test_a_new_lv_on_freed_extents_inherits_the_old_signature_unless_wiped(host: SimHost) -> None:
    ok(host, "lvcreate", "-L", "1G", "-n", "old", "vg-sda")
    ok(host, "mkfs.xfs", "-q", "/dev/vg-sda/old")
    ok(host, "lvremove", "-y", "vg-sda/old")
    ok(host, "lvcreate", "-Wn", "-Zn", "-L", "1G", "-n", "new", "vg-sda")
    probe = host.run(["blkid", "-p", "-o", "export", "/dev/vg-sda/new"])
    assert probe.returncode == 0
    assert "TYPE=xfs" in probe.stdout
    ok(host, "lvremove", "-y", "vg-sda/new")
    wiped = ok(host, "lvcreate", "-y", "-L", "1G", "-n", "clean", "vg-sda")
    assert "  Wiping xfs signature on /dev/vg-sda/clean.\n" in wiped.stdout
    assert host.run(["blkid", "-p", "-o", "export", "/dev/vg-sda/clean"]).returncode == 2


def test_wiping_without_yes_is_declined_but_zeroing_still_clears_the_start(host: SimHost) -> None:
    ok(host, "lvcreate", "-L", "1G", "-n", "old", "vg-sda")
    ok(host, "mkswap", "/dev/vg-sda/old")
    ok(host, "lvremove", "-y", "vg-sda/old")
    result = ok(host, "lvcreate", "-L", "1G", "-n", "new", "vg-sda")
    assert "swap signature detected on /dev/vg-sda/new at offset 0. Wipe it? [y/n]: [n]" in result.stdout
    assert "  Aborted wiping of swap.\n" in result.stderr
    assert host.run(["blkid", "-p", "-o", "export", "/dev/vg-sda/new"]).returncode == 2


def test_drbd_metadata_survives_only_on_exactly_the_same_extents(tmp_path: Path) -> None:
    directory = cluster(tmp_path, nodes=("erdbeere",), size=8 * GIB)
    host = SimHost(directory, "erdbeere")
    ok(host, "lvcreate", "-L", "1G", "-n", "old", "vg-sda")
    with SimCluster(directory).transaction() as state:
        key = resolve_device(state, "erdbeere", "/dev/vg-sda/old")
        assert key is not None
        content(state, key)["drbd_md"] = {"device_uuid": "AAAA"}
    ok(host, "lvremove", "-y", "vg-sda/old")
    ok(host, "lvcreate", "-Wn", "-Zn", "-L", "2G", "-n", "bigger", "vg-sda")
    state = SimCluster(directory).read()
    bigger = resolve_device(state, "erdbeere", "/dev/vg-sda/bigger")
    assert bigger is not None
    assert "drbd_md" not in content(state, bigger)


def test_reports_accept_short_field_names_and_plus_lists(host: SimHost) -> None:
    ok(host, "lvcreate", "-L", "1G", "-n", "root100", "vg-sda")
    rows = json.loads(ok(host, "lvs", "--reportformat", "json", "-o", "name,size").stdout)["report"][0]["lv"]
    assert rows == [{"lv_name": "root100", "lv_size": "1.00g"}]
    plus = json.loads(ok(host, "lvs", "--reportformat", "json", "-o", "+lv_uuid").stdout)["report"][0]["lv"]
    assert list(plus[0])[-1] == "lv_uuid"
    assert next(iter(plus[0])) == "lv_name"
    bad = host.run(["lvs", "-o", "lv_bogus"])
    assert bad.returncode == 5
    assert "Unrecognised field: lv_bogus" in bad.stderr


def test_basic_report_with_separator_and_no_headings(host: SimHost) -> None:
    ok(host, "lvcreate", "-L", "1G", "-n", "root100", "vg-sda")
    result = ok(host, "lvs", "--noheadings", "--separator", ":", "--units", "b", "--nosuffix", "-o",
                "vg_name,lv_name,lv_size")
    assert result.stdout == f"  vg-sda:root100:{GIB}\n"


def test_pvs_reports_free_space_per_pv(host: SimHost) -> None:
    ok(host, "lvcreate", "-L", "1G", "-n", "root100", "vg-sdb")
    rows = json.loads(ok(host, "pvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                         "pv_name,vg_name,pv_free").stdout)["report"][0]["pv"]
    free = {r["pv_name"]: int(r["pv_free"]) for r in rows}
    assert free["/dev/sda"] - free["/dev/sdb"] == GIB


@pytest.mark.parametrize(("num", "expected"), [(4 * MIB, "4.00 MiB"), (1536 * MIB, "1.50 GiB"),
                                                (64 * 1024, "64.00 KiB"), (300 * MIB, "300.00 MiB")])
def test_display_size(num: int, expected: str) -> None:
    assert display_size(num) == expected


@pytest.mark.parametrize(("num", "units", "suffix", "expected"), [
    (GIB, "h", True, "1.00g"), (8585740288, "h", True, "<8.00g"), (GIB, "b", False, str(GIB)),
    (GIB, "b", True, f"{GIB}B"), (GIB, "m", True, "1024.00m"), (0, "h", True, "0 ")])
def test_report_size(num: int, units: str, suffix: bool, expected: str) -> None:
    assert report_size(num, units, suffix) == expected


def test_lvremove_of_a_vg_name_removes_each_of_its_lvs(host: SimHost) -> None:
    ok(host, "lvcreate", "-L", "1G", "-n", "s", "vg-sda")
    ok(host, "lvcreate", "-L", "1G", "-n", "lin", "vg-sda")
    ok(host, "lvcreate", "-L", "1G", "-n", "c", "vg-sdb")
    result = ok(host, "lvremove", "-y", "vg-sda")
    assert result.stdout == '  Logical volume "s" successfully removed.\n  Logical volume "lin" successfully removed.\n'
    assert [r["lv_name"] for r in _lvs(host)] == ["c"]


@pytest.fixture
def loop_layout(tmp_path: Path) -> SimHost:
    """Two 8 GiB disks /dev/loop0 and /dev/loop1: swap100 and root100 on vg-sda, odd (1001k) on vg-sdb."""
    SimCluster.init(tmp_path, ["erdbeere"], {})
    with SimCluster(tmp_path).transaction() as state:
        add_vg(state["nodes"]["erdbeere"], "vg-sda", 8 * GIB, pv_name="/dev/loop0")
        add_vg(state["nodes"]["erdbeere"], "vg-sdb", 8 * GIB, pv_name="/dev/loop1")
    sim = SimHost(tmp_path, "erdbeere")
    ok(sim, "lvcreate", "-Wn", "-Zn", "-L", "2G", "-n", "swap100", "vg-sda")
    ok(sim, "lvcreate", "-Wn", "-Zn", "-L", "1G", "-n", "root100", "vg-sda")
    ok(sim, "lvcreate", "-Wn", "-Zn", "-L", "1001k", "-n", "odd", "vg-sdb")
    return sim


# Column reports as lvm2 2.03.16 prints them for this layout (every cell padded, lines never stripped).
COLUMN_REPORTS = [
    (("lvs",), [
        "  LV      VG     Attr       LSize Pool Origin Data%  Meta%  Move Log Cpy%Sync Convert",
        "  root100 vg-sda -wi-a----- 1.00g                                                    ",
        "  swap100 vg-sda -wi-a----- 2.00g                                                    ",
        "  odd     vg-sdb -wi-a----- 4.00m                                                    "]),
    (("vgs",), [
        "  VG     #PV #LV #SN Attr   VSize  VFree ",
        "  vg-sda   1   2   0 wz--n- <8.00g <5.00g",
        "  vg-sdb   1   1   0 wz--n- <8.00g  7.99g"]),
    (("pvs",), [
        "  PV         VG     Fmt  Attr PSize  PFree ",
        "  /dev/loop0 vg-sda lvm2 a--  <8.00g <5.00g",
        "  /dev/loop1 vg-sdb lvm2 a--  <8.00g  7.99g"]),
    (("lvs", "--units", "b", "--nosuffix", "-o", "lv_name,lv_size,stripes"), [
        "  LV      LSize      #Str",
        "  root100 1073741824    1",
        "  swap100 2147483648    1",
        "  odd        4194304    1"]),
    (("lvs", "-o", "lv_name,devices,seg_start,seg_size"), [
        "  LV      Devices         Start SSize",
        "  root100 /dev/loop0(512)    0  1.00g",
        "  swap100 /dev/loop0(0)      0  2.00g",
        "  odd     /dev/loop1(0)      0  4.00m"]),
    (("lvs", "-o", "lv_name,vg_name,lv_size,lv_attr,origin,data_percent"), [
        "  LV      VG     LSize Attr       Origin Data% ",
        "  root100 vg-sda 1.00g -wi-a-----              ",
        "  swap100 vg-sda 2.00g -wi-a-----              ",
        "  odd     vg-sdb 4.00m -wi-a-----              "]),
    (("vgs", "-o", "vg_name,vg_extent_size,vg_extent_count,vg_free_count"), [
        "  VG     Ext   #Ext Free",
        "  vg-sda 4.00m 2047 1279",
        "  vg-sdb 4.00m 2047 2046"]),
    (("lvs", "--noheadings", "-o", "vg_name,lv_name"), [
        "  vg-sda root100",
        "  vg-sda swap100",
        "  vg-sdb odd    "]),
    (("lvs", "--separator", ":", "-o", "lv_name,lv_size"), [
        "  LV:LSize", "  root100:1.00g", "  swap100:2.00g", "  odd:4.00m"]),
]


@pytest.mark.parametrize(("argv", "lines"), COLUMN_REPORTS, ids=[" ".join(a) for a, _ in COLUMN_REPORTS])
def test_column_reports_are_laid_out_like_lvm2(loop_layout: SimHost, argv: tuple[str, ...], lines: list[str]) -> None:
    assert ok(loop_layout, *argv).stdout.splitlines() == lines


def test_sign_errors_of_resizes(loop_layout: SimHost) -> None:
    negative = loop_layout.run(["lvextend", "-L", "-1G", "vg-sda/swap100"])
    assert (negative.returncode, negative.stderr) == (3, "  Size may not be negative.\n  Invalid argument for "
                                                         "--size: -1G\n  Error during parsing of command line.\n")
    positive = loop_layout.run(["lvreduce", "-L", "+1G", "vg-sda/swap100"])
    assert positive.stderr.startswith("  Size may not be positive.\n")


def test_default_stripesize_is_announced_even_when_creation_fails(loop_layout: SimHost) -> None:
    result = loop_layout.run(["lvcreate", "-i", "2", "-L", "1G", "-n", "s", "vg-sda"])
    assert result.returncode == 5
    assert result.stdout == "  Using default stripesize 64.00 KiB.\n"
    assert result.stderr == "  Number of stripes (2) must not exceed number of physical volumes (1)\n"


@pytest.mark.parametrize(("name", "message"), [
    ("bad;name", 'Logical volume name "bad;name" is invalid.'),
    ("snapshotx", 'Names starting "snapshot" are reserved. Please choose a different LV name.'),
    ("x_mlog", 'Names including "_mlog" are reserved. Please choose a different LV name.'),
])
def test_reserved_and_invalid_names(host: SimHost, name: str, message: str) -> None:
    result = host.run(["lvcreate", "-l", "5", "-n", name, "vg-sda"])
    assert result.returncode == 3
    assert result.stderr == f"  {message}\n  Run `lvcreate --help' for more information.\n"


def test_short_names_keep_lvm_minimum_column_widths(tmp_path: Path) -> None:
    SimCluster.init(tmp_path, ["erdbeere"], {})
    with SimCluster(tmp_path).transaction() as state:
        add_vg(state["nodes"]["erdbeere"], "v", 1024**3, pv_name="/dev/loop0")
    sim = SimHost(tmp_path, "erdbeere")
    ok(sim, "lvcreate", "-Wn", "-Zn", "-l", "1", "-n", "a", "v")
    assert ok(sim, "lvs").stdout.splitlines() == [
        "  LV   VG Attr       LSize Pool Origin Data%  Meta%  Move Log Cpy%Sync Convert",
        "  a    v  -wi-a----- 4.00m                                                    "]
    assert ok(sim, "vgs").stdout.splitlines() == [
        "  VG #PV #LV #SN Attr   VSize    VFree   ",
        "  v    1   1   0 wz--n- 1020.00m 1016.00m"]
    assert ok(sim, "lvs", "--noheadings", "-o", "lv_name,vg_name,lv_size,stripes").stdout == "  a    v  4.00m    1\n"
    assert ok(sim, "vgs", "--noheadings", "-o", "vg_name,pv_count").stdout == "  v    1\n"


def test_a_report_of_named_lvs_shows_exactly_their_rows_of_the_full_report(host: SimHost) -> None:
    """``lvs VG/LV ...`` looks at the named LVs only (its cost does not grow with the others); their rows,
    the open flag of one a dm device holds included, are those of the full report."""
    for name in ("root100", "swap100", "root101"):
        ok(host, "lvcreate", "-L", "64M", "-n", name, "vg-sda")
    ok(host, "lvcreate", "-L", "64M", "-n", "root100", "vg-sdb")
    ok(host, "dmsetup", "create", "held", stdin="0 131072 linear /dev/vg-sda/root101 0\n")
    full = {(r["vg_name"], r["lv_name"]): r for r in _lvs(host)}
    named = _lvs(host, "vg-sdb/root100", "vg-sda/root101", "/dev/vg-sda/swap100")
    assert [(r["vg_name"], r["lv_name"]) for r in named] == [
        ("vg-sda", "root101"), ("vg-sda", "swap100"), ("vg-sdb", "root100")]
    assert all(r == full[(r["vg_name"], r["lv_name"])] for r in named)
    assert [r["lv_attr"] for r in named] == ["-wi-ao----", "-wi-a-----", "-wi-a-----"]


def test_open_counts_by_alias_equal_resolving_every_holder(host: SimHost) -> None:
    """open_count finds a dm device's holders by the names that resolve to it (path, /dev/mapper name,
    number, /dev/dm-N) instead of resolving every holder: the counts are those of resolving each one."""
    for name in ("a", "b", "c", "d", "e"):
        ok(host, "lvcreate", "-L", "64M", "-n", name, "vg-sda")
    ok(host, "dmsetup", "create", "by-path", stdin="0 131072 linear /dev/vg-sda/a 0\n")
    ok(host, "dmsetup", "create", "by-mapper", stdin="0 131072 linear /dev/mapper/vg--sda-b 0\n")
    with host.cluster.transaction() as state:
        minor_c = state["nodes"]["erdbeere"]["vgs"]["vg-sda"]["lvs"]["c"]["minor"]
        minor_top = state["nodes"]["erdbeere"]["dm"]["by-path"]["minor"]
    ok(host, "dmsetup", "create", "by-number", stdin=f"0 131072 linear 253:{minor_c} 0\n")
    ok(host, "dmsetup", "create", "by-dm", stdin=f"0 131072 linear /dev/dm-{minor_top} 0\n")
    paths = ["/dev/vg-sda/a", "/dev/vg-sda/b", "/dev/vg-sda/c", "/dev/vg-sda/d", "/dev/mapper/by-path",
             "/dev/mapper/by-dm", "/dev/vg-sda/missing"]
    with host.cluster.transaction() as state:
        held = holders(state, "erdbeere")

        def resolving(path: str) -> int:
            number = device_number(state, "erdbeere", path)
            return 0 if number is None else sum(1 for h in held if device_number(state, "erdbeere", h) == number)

        expected = {p: resolving(p) for p in paths}
        assert expected["/dev/vg-sda/a"] == expected["/dev/vg-sda/b"] == expected["/dev/vg-sda/c"] == 1
        assert expected["/dev/mapper/by-path"] == 1
        assert {p: open_count(state, "erdbeere", p) for p in paths} == expected
        assert open_counts_of(state, "erdbeere", paths) == expected

"""The simulated storage and Xen tools print what the real ones printed (the real-outputs corpus).

The lvm2 captures were taken where the kernel has no device-mapper, so lvm2 added an "Activation
disabled" warning and showed LVs as ``-wi-XX----``; a real node (and the simulator) has activation, so
those two differences are normalised before comparing. Everything else must match byte for byte, except
generated ids (uuids), which are masked.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.backends.dm import parse as dm_parser
from reconciler.backends.lvm import parse as lvm_parser
from reconciler.backends.xen import xl as xl_parser
from reconciler.observe import blkid as blkid_parser
from reconciler.ownership import is_our_dm_uuid
from reconciler.sim.host import SimHost
from tests.conftest import read_capture
from tests.sim.storage_helpers import ACTIVATION_WARNING, capture_layout, cluster, mask_ids, ok

CAPTURED = "captured-here"

Setup = Callable[[SimHost], None]


def _nothing(host: SimHost) -> None:
    return None


def _root101(host: SimHost) -> None:
    ok(host, "lvcreate", "-Wn", "-Zn", "-L", "1G", "-n", "root101", "vg-sda")


def _root101_extended(host: SimHost) -> None:
    _root101(host)
    ok(host, "lvextend", "-L", "1536M", "vg-sda/root101")


def _striped(host: SimHost) -> None:
    ok(host, "lvcreate", "-Wn", "-Zn", "-i", "3", "-I", "64k", "-L", "300M", "-n", "root102", "vg-multi")


def _odd(host: SimHost) -> None:
    ok(host, "lvcreate", "-Wn", "-Zn", "-L", "1001k", "-n", "odd103", "vg-sda")


LVM_CASES: list[tuple[str, Setup]] = [
    ("lvs-json-bytes.txt", _nothing),
    ("lvs-json-default.txt", _nothing),
    ("vgs-json-bytes.txt", _nothing),
    ("pvs-json-bytes.txt", _nothing),
    ("lvcreate-ok.txt", _nothing),
    ("lvcreate-exists.txt", _nothing),
    ("lvcreate-no-space.txt", _nothing),
    ("lvcreate-no-vg.txt", _nothing),
    ("lvcreate-bad-name.txt", _nothing),
    ("lvcreate-odd-size.txt", _nothing),
    ("lvs-odd-size.txt", _odd),
    ("lvcreate-striped.txt", _nothing),
    ("lvs-json-segments.txt", _striped),
    ("lvextend-striped.txt", _striped),
    ("lvextend-ok.txt", _root101),
    ("lvextend-same.txt", _root101_extended),
    ("lvremove-ok.txt", _root101),
    ("lvremove-missing.txt", _nothing),
    ("lvs-nonexistent-vg.txt", _nothing),
    ("lvs-striped-one-pv.txt", _nothing),
    ("lvs-json-std.txt", _nothing),
]


def _real_node_view(text: str) -> str:
    """What the capture would have shown with device-mapper activation (as on every real node)."""
    return text.replace(ACTIVATION_WARNING, "").replace("-wi-XX----", "-wi-a-----")


@pytest.mark.parametrize(("capture", "setup"), LVM_CASES, ids=[c for c, _ in LVM_CASES])
def test_lvm_matches_capture(real_outputs: Path, tmp_path: Path, capture: str, setup: Setup) -> None:
    command, code, stdout, stderr = read_capture(real_outputs / CAPTURED / capture)
    host = capture_layout(tmp_path)
    setup(host)
    result = host.run(shlex.split(command))
    assert result.returncode == code, result.describe()
    assert mask_ids(result.stdout) == mask_ids(_real_node_view(stdout))
    assert mask_ids(result.stderr) == mask_ids(_real_node_view(stderr))


def test_lvreduce_with_force_prints_the_captured_resize(real_outputs: Path, tmp_path: Path) -> None:
    """The capture shrank an inactive LV without asking; an active LV needs -f, then says the same."""
    command, code, stdout, _ = read_capture(real_outputs / CAPTURED / "lvreduce-inactive-no-prompt.txt")
    host = capture_layout(tmp_path)
    _root101_extended(host)
    result = host.run([*shlex.split(command), "-f"])
    assert (result.returncode, result.stdout) == (code, stdout)
    assert "WARNING: Reducing active logical volume to 512.00 MiB." in result.stderr


def _device_case(host: SimHost, path: str, capture: Path) -> tuple[str, int, str, str]:
    command, code, stdout, stderr = read_capture(capture)
    argv = [path if word == "/dev/loop6" else word for word in shlex.split(command)]
    result = host.run(argv)
    assert result.returncode == code, result.describe()
    return (mask_ids(result.stdout), mask_ids(result.stderr),
            mask_ids(stdout.replace("/dev/loop6", path)), mask_ids(stderr.replace("/dev/loop6", path)))


def test_blockdev_tools_follow_the_captured_sequence(real_outputs: Path, tmp_path: Path) -> None:
    """blkid on an empty device, mkfs.xfs twice, blkid, mkswap over xfs, blkid, wipefs: as captured."""
    host = SimHost(cluster(tmp_path, nodes=("erdbeere",)), "erdbeere")
    ok(host, "lvcreate", "-L", "300M", "-n", "scratch", "vg-sda")
    path = "/dev/vg-sda/scratch"
    for name in ("blkid-empty.txt", "mkfs-xfs.txt", "mkfs-xfs-again.txt", "blkid-xfs.txt",
                 "mkswap-over-xfs.txt", "blkid-swap.txt", "wipefs-parsable.txt"):
        out, err, want_out, want_err = _device_case(host, path, real_outputs / CAPTURED / name)
        assert (out, err) == (want_out, want_err), name


def test_mkswap_keeps_the_captured_uuid_line_shape(real_outputs: Path, tmp_path: Path) -> None:
    _, _, stdout, _ = read_capture(real_outputs / CAPTURED / "mkswap-over-xfs.txt")
    host = SimHost(cluster(tmp_path, nodes=("erdbeere",)), "erdbeere")
    ok(host, "lvcreate", "-L", "300M", "-n", "scratch", "vg-sda")
    result = ok(host, "mkswap", "/dev/vg-sda/scratch")
    swap_uuid = result.stdout.split("UUID=")[1].strip()
    assert ok(host, "wipefs", "--parsable", "/dev/vg-sda/scratch").stdout == f"0xff6,{swap_uuid},,swap\n"
    assert stdout.splitlines()[0] == result.stdout.splitlines()[0]


# --- device-mapper and Xen against the public formats -------------------------------------------

def _stripe_host(tmp_path: Path) -> SimHost:
    host = SimHost(cluster(tmp_path, nodes=("erdbeere",)), "erdbeere")
    for vg in ("vg-sda", "vg-sdb"):
        ok(host, "lvcreate", "-L", "1G", "-n", "root100", vg)
    ok(host, "dmsetup", "create", "root100", "--uuid", "RECONCILER-root100",
       stdin="0 4194304 striped 2 128 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0\n")
    return host


def test_dmsetup_table_lines_have_the_public_shape(real_outputs: Path, tmp_path: Path) -> None:
    sample = (real_outputs / "public-formats" / "dmsetup_table_and_info__libstorage-ng_testsuite.txt").read_text()
    striped = next(line for line in sample.splitlines() if " striped " in line)
    shape = re.compile(r"[\w.-]+: \d+ \d+ striped 2 \d+ \d+:\d+ \d+ \d+:\d+ \d+")
    assert shape.fullmatch(striped)
    table = ok(_stripe_host(tmp_path), "dmsetup", "table").stdout
    mine = next(line for line in table.splitlines() if line.startswith("root100:"))
    assert mine == "root100: 0 4194304 striped 2 128 253:0 0 253:1 0"
    assert shape.fullmatch(mine)
    assert "No devices found" in sample
    empty = SimHost(cluster(tmp_path / "empty", nodes=("x",), vgs=("vg-sda",)), "x")
    assert ok(empty, "dmsetup", "table").stdout == "No devices found\n"


def test_dmsetup_info_columns_have_the_public_shape(real_outputs: Path, tmp_path: Path) -> None:
    sample = (real_outputs / "public-formats" / "dmsetup_table_and_info__libstorage-ng_testsuite.txt").read_text()
    lvm_line = next(line for line in sample.splitlines() if line.startswith("system-root/"))
    assert re.fullmatch(r"system-root/253/\d+/1/LVM/LVM-[A-Za-z0-9]{64}", lvm_line)
    info = ok(_stripe_host(tmp_path), "dmsetup", "info", "-c", "--noheadings", "--separator", "/",
              "-o", "name,major,minor,segments,subsystem,uuid").stdout
    lines = info.splitlines()
    assert "root100/253/2/1/RECONCILER/RECONCILER-root100" in lines
    lv_line = next(line for line in lines if line.startswith("vg--sda-root100/"))
    assert re.fullmatch(r"vg--sda-root100/253/0/1/LVM/LVM-[A-Za-z0-9]{64}", lv_line)


OLD_LIST_ROW = re.compile(r"(.{40}) ([ \d]{5}) ([ \d]{5}) ([ \d]{5})     ([-rbpscd]{6}) ([ \d.]{8})")
# xl 4.17 (tools/xl/xl_list.c): "%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f"
LIST_ROW = re.compile(r"(.{40}) ([ \d]{5}) ([ \d]{5}) ([ \d]{5})     ([-rbpscwSd]{6})  ([ \d.]{8})")


def _xen_host(tmp_path: Path) -> SimHost:
    host = SimHost(cluster(tmp_path), "erdbeere")
    ok(host, "lvcreate", "-L", "2G", "-n", "swap100", "vg-sda")
    host.write_file("/etc/xen/vm100.cfg", 'name = "vm100"\nmemory = 2048\nvcpus = 2\n'
                                          "disk = [ 'phy:/dev/vg-sda/swap100,xvda2,w' ]\nvif = [ 'bridge=xenbr0' ]\n")
    ok(host, "xl", "create", "/etc/xen/vm100.cfg")
    return host


def test_xl_list_has_the_columns_of_the_real_table(real_outputs: Path, tmp_path: Path) -> None:
    sample = (real_outputs / "ganeti-test-data" / "xen-xl-list-4.4-crashed-instances.txt").read_text().splitlines()
    assert all(OLD_LIST_ROW.fullmatch(line) for line in sample[1:])
    mine = ok(_xen_host(tmp_path), "xl", "list").stdout.splitlines()
    assert mine[0].expandtabs() == sample[0]
    assert [LIST_ROW.fullmatch(line) is not None for line in mine[1:]] == [True, True]
    assert [len(line) for line in mine[1:]] == [len(sample[1]) + 1] * 2
    assert mine[2].startswith("vm100 ")
    assert " 2048 " in mine[2]


def test_xl_info_lines_align_like_the_real_one(real_outputs: Path, tmp_path: Path) -> None:
    sample = (real_outputs / "ganeti-test-data" / "xen-xl-info-4.0.1.txt").read_text().splitlines()
    mine = ok(_xen_host(tmp_path), "xl", "info").stdout.splitlines()
    assert all(line[23:25] == ": " for line in sample if line.strip())
    assert all(line[23:25] == ": " for line in mine)
    keys = {line.split(":")[0].strip() for line in mine}
    for key in ("host", "total_memory", "free_memory", "nr_cpus", "xen_major", "xen_minor", "xen_extra"):
        assert key in keys


def test_xl_list_long_uses_the_libxl_config_keys(real_outputs: Path, tmp_path: Path) -> None:
    sample = json.loads((real_outputs / "public-formats" /
                         "xen_xl_list_long_config_json__libvirt_tests_libxlxml2domconfigdata_basic-pv.json").read_text())
    entries = json.loads(ok(_xen_host(tmp_path), "xl", "list", "-l").stdout)
    config = next(e["config"] for e in entries if e["config"]["c_info"]["name"] == "vm100")
    assert set(sample["c_info"]) <= set(config["c_info"])
    assert {"max_vcpus", "avail_vcpus", "max_memkb", "target_memkb"} <= set(sample["b_info"]) & set(config["b_info"])
    assert {"pdev_path", "vdev", "format", "readwrite"} <= set(sample["disks"][0]) & set(config["disks"][0])
    assert {"devid", "mac", "bridge", "nictype"} <= set(sample["nics"][0]) & set(config["nics"][0])
    assert config["disks"][0]["pdev_path"] == "/dev/vg-sda/swap100"
    assert config["b_info"]["target_memkb"] == 2048 * 1024


# --- the project's parsers read the simulated outputs ------------------------------------------

def test_the_observe_parsers_read_simulated_lvm_reports(tmp_path: Path) -> None:
    host = capture_layout(tmp_path)
    _striped(host)
    lvs = lvm_parser.parse_lvs(ok(host, "lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                                  "lv_name,vg_name,lv_size,lv_attr,lv_uuid,segtype,stripes,stripe_size,devices,"
                                  "lv_tags").stdout)
    found = {(lv.vg, lv.name): lv for lv in lvs}
    assert found["vg-multi", "root102"].stripes == 3
    assert found["vg-multi", "root102"].stripe_size_bytes == 65536
    assert found["vg-sda", "root100"].size_bytes == 1024**3
    vgs = lvm_parser.parse_vgs(ok(host, "vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                                  "vg_name,vg_size,vg_free,vg_extent_size,pv_count").stdout)
    assert {vg.name: vg.pv_count for vg in vgs} == {"vg-multi": 3, "vg-sda": 1, "vg-sdb": 1, "vg-sdc": 1}


def test_the_observe_parsers_read_simulated_dmsetup_blkid_and_xl(tmp_path: Path) -> None:
    host = _stripe_host(tmp_path)
    tables = dm_parser.parse_table(ok(host, "dmsetup", "table").stdout)
    assert tables["root100"][0].target == "striped"
    devices = dm_parser.parse_info(ok(host, "dmsetup", "info", "-c", "--noheadings", "--separator", "/", "-o",
                                      "name,major,minor,attr,open,uuid").stdout)
    assert [d.name for d in devices if is_our_dm_uuid(d.uuid)] == ["root100"]
    empty = host.run(["blkid", "-p", "-o", "export", "/dev/mapper/root100"])
    assert blkid_parser.parse_blkid_export(empty.stdout, "/dev/mapper/root100", empty.returncode).type is None
    ok(host, "mkfs.xfs", "-q", "/dev/mapper/root100")
    probed = host.run(["blkid", "-p", "-o", "export", "/dev/mapper/root100"])
    assert blkid_parser.parse_blkid_export(probed.stdout, "/dev/mapper/root100", probed.returncode).type == "xfs"
    xen = _xen_host(tmp_path / "xen")
    rows = xl_parser.parse_xl_list(ok(xen, "xl", "list").stdout)
    assert {row.name for row in rows} == {"Domain-0", "vm100"}
    configs = xl_parser.parse_xl_list_long(ok(xen, "xl", "list", "-l").stdout)
    assert "vm100" in {c.name for c in configs}
    info = xl_parser.parse_xl_info(ok(xen, "xl", "info").stdout)
    assert info is not None


def test_version_probes_read_like_a_real_node(real_outputs: Path, tmp_path: Path) -> None:
    from reconciler.backends.dm import parse as dm_parser

    real = (real_outputs / CAPTURED / "lvm-version.txt").read_text()
    host = SimHost(cluster(tmp_path, nodes=("erdbeere",)), "erdbeere")
    mine = ok(host, *lvm_parser.VERSION_ARGV).stdout
    real_lines = [line for line in real.splitlines() if line.startswith("  ")]
    assert [line.split(":")[0] for line in real_lines] == [
        line.split(":")[0] for line in mine.splitlines() if not line.startswith("  Driver")]
    assert mine.splitlines()[0] == real_lines[0]
    assert lvm_parser.parse_lvm_version(mine) == "2.03.16"
    assert dm_parser.parse_dmsetup_version(ok(host, *dm_parser.VERSION_ARGV).stdout) is not None


# --- differential tests: the same commands against the real tools on this machine ------------------

BLOCKDEV_SEQUENCE = [
    ["blkid", "-p", "-o", "export", "DEV"],
    ["mkfs.xfs", "-q", "DEV"],
    ["mkfs.xfs", "-q", "DEV"],
    ["blkid", "-p", "-o", "export", "DEV"],
    ["blkid", "-o", "export", "DEV"],
    ["wipefs", "DEV"],
    ["wipefs", "--parsable", "DEV"],
    ["wipefs", "-n", "-a", "DEV"],
    ["mkswap", "-L", "swap-a", "DEV"],
    ["blkid", "-p", "-o", "export", "DEV"],
    ["blkid", "-p", "DEV"],
    ["wipefs", "DEV"],
    ["wipefs", "-a", "DEV"],
    ["blkid", "-p", "-o", "export", "DEV"],
    ["mkfs.xfs", "-q", "-L", "data", "DEV"],
    ["blkid", "-p", "DEV"],
    ["mkswap", "DEV"],
    ["blkid", "-p", "-s", "TYPE", "-o", "value", "DEV"],
]
# mkswap warns about sparse files; the simulated device is a block device, where that cannot happen.
_SPARSE_WARNING = re.compile(r"\nmkswap: \S+ contains holes or other unsupported extents\.\n.*?\n\n", re.S)


def test_blockdev_tools_answer_like_the_real_ones_on_an_image_file(tmp_path: Path) -> None:
    import shutil

    for program in ("blkid", "mkfs.xfs", "mkswap", "wipefs"):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed here, nothing to compare with")
    image = tmp_path / "real" / "root100"
    image.parent.mkdir()
    with image.open("wb") as handle:
        handle.truncate(1024**3)
    image.chmod(0o600)  # mkswap warns about readable swap files; a block device is not one
    host = SimHost(cluster(tmp_path / "sim", nodes=("erdbeere",)), "erdbeere")
    ok(host, "lvcreate", "-L", "1G", "-n", "root100", "vg-sda")
    device = "/dev/vg-sda/root100"
    env = {**os.environ, "LC_ALL": "C"}
    for argv in BLOCKDEV_SEQUENCE:
        real = subprocess.run([str(image) if a == "DEV" else a for a in argv], capture_output=True, text=True,
                              timeout=60, check=False, env=env)
        sim = host.run([device if a == "DEV" else a for a in argv])

        def norm(text: str, path: str) -> str:
            return mask_ids(_SPARSE_WARNING.sub("\n", text).replace(path, "DEV")).lstrip("\n")

        assert (sim.returncode, norm(sim.stdout, device), norm(sim.stderr, device)) == (
            real.returncode, norm(real.stdout, str(image)), norm(real.stderr, str(image))), argv


LVM_SEQUENCE = [
    "lvcreate -Wn -Zn -L 2G -n swap100 A",
    "lvcreate -Wn -Zn -L 1G -n root100 A",
    "lvcreate -Wn -Zn -L 1G -n root100 A",
    "lvcreate -Wn -Zn -L 100G -n big A",
    "lvcreate -Wn -Zn -L 1001k -n odd B",
    "lvcreate -Wn -Zn -l 50%FREE -n half B",
    "lvcreate -Wn -Zn -i 2 -L 1G -n s A",
    "lvcreate -Wn -Zn -l 5 -n snapshotx A",
    "lvcreate -Wn -Zn -n nosize A",
    "lvcreate -Wn -Zn -L 1G -n x vg-nope",
    "lvs",
    "vgs",
    "pvs",
    "lvs --reportformat json --units b --nosuffix -o lv_name,vg_name,lv_size,lv_attr,lv_uuid,segtype,stripes,"
    "stripe_size,devices,lv_tags",
    "vgs --reportformat json --units b --nosuffix -o vg_name,vg_size,vg_free,vg_extent_size,pv_count",
    "lvs -o lv_name,devices,seg_start,seg_size",
    "lvs --units b --nosuffix -o lv_name,lv_size,stripes,stripe_size,segtype",
    "lvextend -L 1536M A/root100",
    "lvextend -L 1536M A/root100",
    "lvextend -L 1G A/root100",
    "lvextend -L -1G A/root100",
    "lvextend -L+64G A/root100",
    "lvreduce -L 3G A/root100",
    "lvs -o lv_name,devices,seg_start_pe,seg_size_pe A",
    "lvremove -y A/nope",
    "lvremove -y A/root100",
    "lvs --reportformat json vg-nonexistent",
    "lvs --reportformat json_std",
]
_LAB_NOISE = (
    "  WARNING: Activation disabled. No device-mapper interaction will be attempted.\n",
    "  WARNING: This metadata update is NOT backed up.\n",
    "  WARNING: Skipping zeroing and wipping, compiled without activation support.\n",
)


@pytest.mark.root
def test_simulated_lvm2_answers_like_real_lvm2_on_loop_devices(tmp_path: Path) -> None:
    """Real lvm2 on loop devices (activation disabled there) and the simulator, command for command."""
    from tests.lvm_real.loopvg import loop_vgs, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"real lvm2 on loop devices: {reason}")
    from reconciler.sim.state import SimCluster, add_vg

    with loop_vgs(["vg-sda", "vg-sdb"], disk_bytes=4 * 1024**3) as lab:
        names = {"A": lab.vg("vg-sda"), "B": lab.vg("vg-sdb")}
        SimCluster.init(tmp_path, ["erdbeere"], {})
        with SimCluster(tmp_path).transaction() as state:
            for key, name in (("A", "vg-sda"), ("B", "vg-sdb")):
                add_vg(state["nodes"]["erdbeere"], names[key], 4 * 1024**3, pv_name=lab.loops[name])
        host = SimHost(tmp_path, "erdbeere")
        for line in LVM_SEQUENCE:
            argv = [names.get(word, word) for word in shlex.split(line)]
            argv = [f"{names[w[0]]}/{w[2:]}" if w[:2] in ("A/", "B/") else w for w in argv]
            real = lab.lvm(*argv, check=False)
            sim = host.run(argv)
            expected_err = real.stderr
            for noise in _LAB_NOISE:
                expected_err = expected_err.replace(noise, "")
            assert sim.returncode == real.returncode, (line, sim.stderr, real.stderr)
            assert mask_ids(sim.stdout) == mask_ids(_real_node_view(real.stdout)), line
            assert mask_ids(sim.stderr) == mask_ids(expected_err), line

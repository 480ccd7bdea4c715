"""Every output in the shared real-outputs corpus that one of the parsers reads parses, with concrete values
checked for several; outputs of other versions or other column sets are refused with a clear ParseError.

The corpus lives beside the project; the ``real_outputs`` fixture skips these tests where it is absent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.backends.dm import parse as dmsetup
from reconciler.backends.drbd import drbd9, events2, procdrbd
from reconciler.backends.lvm import parse as lvm
from reconciler.backends.xen import xl
from reconciler.core.parse_error import ParseError
from reconciler.observe import blkid
from tests.conftest import read_capture

# Files no parser of this package reads, with the reason. Anything else in the corpus must be covered below.
NOT_PARSER_INPUT = {
    "README.md": "documentation",
    "alert-rules/piraeus-operator-alerts.yaml": "alert rules, compared by the metrics tests",
    "drbd-test-data/ha_cluster_exporter/drbd.metrics": "exporter output, not tool output",
    "drbd-test-data/drbd-utils-tests-v9/*.msgs": "netlink message scripts fed to drbdsetup, not its output",
    "drbd-test-data/drbd-utils-tests-v9/show-*.test": "drbdsetup show --json, read by no parser here",
    "drbd-test-data/drbd-utils-tests-v9/drbdsetup_show_*.txt": "drbdsetup show, read by no parser here",
    "ganeti-test-data/bdev-drbd-*.txt": "drbdsetup show (8.x), read by no parser here",
    "ganeti-test-data/instance-*.txt": "Ganeti internals",
    "ganeti-test-data/mond-data.txt": "Ganeti internals",
    "ganeti-test-data/proc_diskstats.txt": "/proc/diskstats, not read",
    "ganeti-test-data/sys_drbd_usermode_helper.txt": "sysfs value, not read",
    "ganeti-test-data/vgreduce-*.txt": "vgreduce is never run",
    "ganeti-test-data/xen-xl-uptime-4.0.1.txt": "xl uptime is never run",
    "captured-here/drbd-vm100.res": "a DRBD config file (desired-state side)",
    "captured-here/drbdadm-*.txt": "drbdadm outputs (apply side)",
    "captured-here/drbdadm84-*.txt": "drbdadm-84 outputs (apply side)",
    "captured-here/lvcreate-*.txt": "lvcreate outputs (apply side)",
    "captured-here/lvextend-*.txt": "lvextend outputs (apply side)",
    "captured-here/lvreduce-*.txt": "lvreduce outputs (apply side)",
    "captured-here/lvremove-*.txt": "lvremove outputs (apply side)",
    "captured-here/lvs-striped-one-pv.txt": "an lvcreate error despite its name",
    "captured-here/mkfs-*.txt": "mkfs outputs (apply side)",
    "captured-here/mkswap-*.txt": "mkswap outputs (apply side)",
    "captured-here/wipefs-*.txt": "wipefs outputs (apply side)",
    "public-formats/drbd9_status_human__*.txt": "human drbdadm status, never parsed (the JSON form is)",
    "public-formats/lvm2_error_messages__*.txt": "error strings, used by the command classifier",
    "public-formats/lvm2_report-format_test_*.txt": "a shell test script quoting report fragments",
    "public-formats/mkfs_mkswap_overwrite_messages__*.txt": "source strings",
    "public-formats/wipefs_parsable_expected__*.txt": "wipefs output (apply side)",
    "public-formats/xen_xl_cfg__*.cfg": "a domain config file (desired-state side)",
    "public-formats/xl_exit_messages__*.txt": "source strings",
}

COVERED: set[str] = set()


def covers(*patterns: str) -> None:
    COVERED.update(patterns)


def _matches(rel: str, patterns: set[str] | dict[str, str]) -> bool:
    return any(Path(rel).match(pattern) and rel.count("/") == pattern.count("/") for pattern in patterns)


# --------------------------------------------------------------------------------------------------- lvm2
covers(
    "captured-here/lvs-json-*.txt", "captured-here/vgs-json-bytes.txt", "captured-here/pvs-json-bytes.txt",
    "captured-here/lvs-odd-size.txt", "captured-here/lvs-nonexistent-vg.txt", "captured-here/lvm-version.txt",
)


def _lvm_parser(command: str) -> Callable[[str], tuple[object, ...]]:
    parsers: dict[str, Callable[[str], tuple[object, ...]]] = {
        "lvs": lvm.parse_lvs, "vgs": lvm.parse_vgs, "pvs": lvm.parse_pvs,
    }
    return parsers[command.split(maxsplit=1)[0]]



# Captured files whose command differs from the fixed command lines; the parser must say why it refuses.
LVM_REFUSED = {
    "lvs-json-default.txt": "--units b --nosuffix",  # human units ("1.00g")
    "lvs-json-std.txt": "empty output",  # lvm2 2.03.16 has no json_std: exit 3, nothing on stdout
    "lvs-odd-size.txt": "lacks 'vg_name'",
}


def test_every_captured_lvm_report(real_outputs: Path) -> None:
    seen = 0
    for path in sorted((real_outputs / "captured-here").glob("[lvp][vg]s-*.txt")):
        command, _code, stdout, _stderr = read_capture(path)
        if "--reportformat" not in command:
            continue
        parse = _lvm_parser(command)
        seen += 1
        if path.name in LVM_REFUSED:
            with pytest.raises(ParseError, match=re.escape(LVM_REFUSED[path.name])):
                parse(stdout)
        else:
            parse(stdout)
    assert seen >= 8


def test_lvs_json_bytes_values(real_outputs: Path) -> None:
    command, code, stdout, _ = read_capture(real_outputs / "captured-here/lvs-json-bytes.txt")
    assert tuple(command.split()) == lvm.LVS_ARGV
    assert code == 0
    volumes = lvm.parse_lvs(stdout)
    assert [(lv.vg, lv.name, lv.size_bytes) for lv in volumes] == [
        ("vg-sda", "root100", 1073741824),
        ("vg-sda", "swap100", 2147483648),
        ("vg-sdb", "root100", 1073741824),
        ("vg-sdb", "swap100", 2147483648),
        ("vg-sdc", "root100", 1073741824),
        ("vg-sdc", "swap100", 2147483648),
    ]
    first = volumes[0]
    assert (first.attributes, first.uuid, first.segtype, first.stripes, first.stripe_size_bytes) == (
        "-wi-XX----", "skpFw9-8flQ-8Qcr-w7wr-9ZUG-vSMv-UrTheX", "linear", 1, 0,
    )
    assert first.devices == ("/dev/loop0(512)",)
    assert first.tags == ()


def test_lvs_striped_segments(real_outputs: Path) -> None:
    _, _, stdout, _ = read_capture(real_outputs / "captured-here/lvs-json-segments.txt")
    (lv,) = lvm.parse_lvs(stdout)
    assert (lv.name, lv.size_bytes, lv.segtype, lv.stripes, lv.stripe_size_bytes) == (
        "root102", 314572800, "striped", 3, 65536,
    )
    assert lv.devices == ("/dev/loop3(0)", "/dev/loop4(0)", "/dev/loop5(0)")


def test_lvs_nonexistent_vg_is_empty(real_outputs: Path) -> None:
    _, code, stdout, _ = read_capture(real_outputs / "captured-here/lvs-nonexistent-vg.txt")
    assert code == 5
    assert lvm.parse_lvs(stdout) == ()


def test_vgs_and_pvs_values(real_outputs: Path) -> None:
    _, _, vgs_out, _ = read_capture(real_outputs / "captured-here/vgs-json-bytes.txt")
    groups = {vg.name: vg for vg in lvm.parse_vgs(vgs_out)}
    assert (groups["vg-multi"].size_bytes, groups["vg-multi"].pv_count) == (25757220864, 3)
    assert (groups["vg-sda"].free_bytes, groups["vg-sda"].extent_size_bytes) == (5364514816, 4194304)
    _, _, pvs_out, _ = read_capture(real_outputs / "captured-here/pvs-json-bytes.txt")
    pvs = lvm.parse_pvs(pvs_out)
    assert [(pv.name, pv.vg) for pv in pvs][:2] == [("/dev/loop0", "vg-sda"), ("/dev/loop1", "vg-sdb")]
    assert sum(pv.vg == "vg-multi" for pv in pvs) == 3


def test_lvm_version(real_outputs: Path) -> None:
    assert lvm.parse_lvm_version((real_outputs / "captured-here/lvm-version.txt").read_text()) == "2.03.16"


covers("public-formats/lvm2_lvs_json_units_b_nosuffix__*.txt")


def _sections(text: str, marker: str) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(marker):
            current = found.setdefault(line[len(marker):].strip(), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in found.items()}


def test_libstorage_lvs_cases(real_outputs: Path) -> None:
    (path,) = (real_outputs / "public-formats").glob("lvm2_lvs_json_units_b_nosuffix__*.txt")
    cases = _sections(path.read_text(), "# ---- test case")
    assert set(cases) == {"parse1 input ----", "parse3 input ----", "parse4 input ----"}
    root, swap = lvm.parse_lvs(cases["parse1 input ----"])
    assert (root.name, root.size_bytes, swap.size_bytes) == ("root", 34359738368, 2147483648)
    thin = {lv.name: lv for lv in lvm.parse_lvs(cases["parse3 input ----"])}
    assert thin["thin2"].size_bytes == 3221225472
    assert thin["[lvol0_pmspare]"].attributes == "ewi-------"
    # Three segment rows of one LV (with a trailing comma after the last) merge into one.
    (normal,) = lvm.parse_lvs(cases["parse4 input ----"])
    assert (normal.name, normal.size_bytes, normal.stripes, normal.stripe_size_bytes) == (
        "normal", 25769803776, None, None,
    )


covers("public-formats/lvm2_vgs_pvs_json__*.txt", "public-formats/lvm2_lvmreport7_json_examples__*.txt")


def test_reports_with_other_columns_name_what_is_missing(real_outputs: Path) -> None:
    (path,) = (real_outputs / "public-formats").glob("lvm2_vgs_pvs_json__*.txt")
    text = path.read_text()
    vgs_case = text[text.index("  {"): text.index("# libstorage-ng testsuite/dependencies")]
    with pytest.raises(ParseError, match="lacks 'vg_size'"):
        lvm.parse_vgs(vgs_case)
    marker = "      <!-- stdout fake -->"
    pvs_case = text[text.index(marker) + len(marker): text.index("</Command>")]
    with pytest.raises(ParseError, match="lacks 'pv_size'"):
        lvm.parse_pvs(pvs_case)


def test_lvmreport_man_example_with_log_section(real_outputs: Path) -> None:
    (path,) = (real_outputs / "public-formats").glob("lvm2_lvmreport7_json_examples__*.txt")
    lines = path.read_text().splitlines()
    start = lines.index("--- fullreport with log (man/lvmreport.7_main lines 1955-2007) ---")
    first_json = lines.index("\\  {", start)
    text = "\n".join(line[1:] for line in lines[first_json:] if line.startswith("\\ "))
    # The JSON with its trailing "log" section (and a trailing comma) is read; the values are in human units.
    with pytest.raises(ParseError, match=r"'vg_size' is '200\.00m'"):
        lvm.parse_vgs(text)


covers("ganeti-test-data/lvs_lv.txt", "ganeti-test-data/vgs-missing-pvs-*.txt",
       "public-formats/ganeti__lvs_lv.txt", "public-formats/ganeti__vgs-missing-pvs-*.txt")


def test_column_reports_are_refused(real_outputs: Path) -> None:
    paths = [
        *real_outputs.glob("ganeti-test-data/lvs_lv.txt"),
        *real_outputs.glob("ganeti-test-data/vgs-missing-pvs-*.txt"),
        *real_outputs.glob("public-formats/ganeti__lvs_lv.txt"),
        *real_outputs.glob("public-formats/ganeti__vgs-missing-pvs-*.txt"),
    ]
    assert len(paths) >= 4
    for path in paths:
        with pytest.raises(ParseError, match="not a JSON report"):
            lvm.parse_vgs(path.read_text())


# --------------------------------------------------------------------------------------------- blkid
covers("captured-here/blkid-*.txt", "public-formats/blkid_expected_outputs__*.txt")


def test_captured_blkid(real_outputs: Path) -> None:
    found = {}
    for path in sorted((real_outputs / "captured-here").glob("blkid-*.txt")):
        command, code, stdout, _ = read_capture(path)
        device = command.split()[-1]
        found[path.name] = blkid.parse_blkid_export(stdout, device, code)
    assert found["blkid-empty.txt"].type is None
    assert (found["blkid-swap.txt"].type, found["blkid-swap.txt"].uuid) == (
        "swap", "29974790-045b-49ed-bd53-fe6c0b0b784f",
    )
    assert found["blkid-xfs.txt"].type == "xfs"
    assert found["blkid-xfs.txt"].device == "/dev/loop6"


def test_util_linux_expected_blkid_outputs(real_outputs: Path) -> None:
    (path,) = (real_outputs / "public-formats").glob("blkid_expected_outputs__*.txt")
    cases = _sections(path.read_text(), "### tests/expected/blkid/")
    assert len(cases) == 6
    results = {}
    for name, text in cases.items():
        device = "blkid-output.img" if name.startswith("output-export") else "/dev/sdx"
        results[name] = blkid.parse_blkid_export(text, device, 0)
    assert results["output-export-probe"].type == "cramfs"
    assert results["output-export-probe"].label is not None
    assert results["output-export-probe"].label.startswith("tM-CM-)s\"'")
    assert (results["low-probe-xfs-v5"].type, results["low-probe-xfs-v5"].label) == ("xfs", "test-xfs-v5")
    assert (results["low-probe-swap1"].type, results["low-probe-swap1"].usage) == ("swap", "other")
    for version in ("v09", "v08"):
        drbd = results[f"low-probe-drbd-{version}"]
        assert (drbd.type, drbd.usage, drbd.uuid) == ("drbd", "raid", "4242424242424242")


# ------------------------------------------------------------------------------------------ dmsetup
covers("public-formats/dmsetup_*.txt")


def test_dmsetup_libstorage_cases(real_outputs: Path) -> None:
    (path,) = (real_outputs / "public-formats").glob("dmsetup_table_and_info__*.txt")
    text = path.read_text()
    table_part, info_part = text.split("# libstorage-ng testsuite/SystemInfo/dmsetup-info.cc")
    cases = _sections(table_part, "# ---- test case")
    tables = dmsetup.parse_table(cases["parse1 input ----"])
    assert list(tables) == ["system-luks", "cr_luks", "system-root"]
    assert [t.start for t in tables["system-root"]] == [0, 33554432]
    assert tables["cr_luks"][0].target == "crypt"
    (striped,) = dmsetup.parse_table(cases["parse2 input ----"])["test-fast"]
    assert (striped.target, striped.args) == ("striped", "2 128 8:17 2048 8:18 2048")
    assert dmsetup.parse_table(cases["parse_no_devices input ----"]) == {}
    # That info output has segments/subsystem columns instead of attr/open: refused, not misread.
    info_case = _sections(info_part, "# ---- test case")["parse1 input ----"]
    with pytest.raises(ParseError, match="attr"):
        dmsetup.parse_info(info_case)


def test_dmsetup_man_page_tables(real_outputs: Path) -> None:
    (path,) = (real_outputs / "public-formats").glob("dmsetup_man_table_examples__*.txt")
    lines = [line for line in path.read_text().splitlines() if re.match(r"\d+ \d+ \w+ ", line)]
    targets = dmsetup.parse_single_table("\n".join(lines))
    assert [(t.start, t.length, t.target) for t in targets] == [
        (0, 1028160, "linear"),
        (1028160, 3903762, "linear"),
        (0, 2056320, "striped"),
        (2056320, 2875602, "linear"),
    ]


# ------------------------------------------------------------------------------------------- DRBD 9
covers(
    "drbd-test-data/ha_cluster_exporter/drbdsetup-status-json.json",
    "public-formats/drbd9_status_json__*.json",
    "captured-here/drbdsetup-status-json-no-module.txt",
)


def test_status_json_samples(real_outputs: Path) -> None:
    exporter = drbd9.parse_status_json(
        (real_outputs / "drbd-test-data/ha_cluster_exporter/drbdsetup-status-json.json").read_text()
    )
    assert [(r.name, r.role, r.node_id) for r in exporter] == [
        ("1-single-0", "Secondary", 2), ("1-single-1", "Secondary", 2),
    ]
    assert [r.devices[0].quorum for r in exporter] == [True, False]
    assert exporter[1].devices[0].size_kib == 10200
    conn = exporter[0].connections[0]
    assert (conn.peer_name, conn.peer_node_id, conn.peer_role) == ("SLE15-sp1-gm-drbd1145296-node1", 1, "Primary")
    assert conn.peer_devices[0].out_of_sync_bytes == 0
    (path,) = (real_outputs / "public-formats").glob("drbd9_status_json__*.json")
    (beijing,) = drbd9.parse_status_json(path.read_text())
    assert (beijing.name, beijing.role, beijing.devices[0].minor) == ("beijing", "Primary", 5)
    assert beijing.connections[0].peer_devices[0].replication_state == "Established"


def test_status_without_module(real_outputs: Path) -> None:
    _, code, stdout, _ = read_capture(real_outputs / "captured-here/drbdsetup-status-json-no-module.txt")
    assert code == 20
    assert drbd9.parse_status_json(stdout) == ()


# ------------------------------------------------------------------------------------------ events2
covers(
    "drbd-test-data/drbd-utils-tests-v9/events2-*.test",
    "public-formats/drbd9_events2_*.txt",
    "drbd-test-data/drbd-reactor/events2-lines-from-src-events.rs-unit-tests.txt",
)

_TIMESTAMP_PLACEHOLDER = "TIME "


def _events2_runs(text: str) -> list[tuple[str, str]]:
    """(command, output) of each '$ ...' run of a drbd-utils test file, exit-code lines dropped."""
    runs: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            runs.append((line, []))
        elif runs and not re.fullmatch(r"\d+", line.strip()):
            runs[-1][1].append(line)
    return [(command, "\n".join(lines)) for command, lines in runs]


def test_every_drbd_utils_events2_run(real_outputs: Path) -> None:
    paths = [
        *sorted((real_outputs / "drbd-test-data/drbd-utils-tests-v9").glob("events2-*.test")),
        *sorted((real_outputs / "public-formats").glob("drbd9_events2_expected__*.txt")),
    ]
    runs = 0
    for path in paths:
        for command, output in _events2_runs(path.read_text()):
            if "--diff" in command or "--color" in command:
                continue  # display variants the reconciler never requests
            text = output
            if "--timestamps" in command:
                # The test masks the timestamps; put a real one back.
                text = output.replace(_TIMESTAMP_PLACEHOLDER, "2026-01-02T03:04:05.123456+01:00 ")
            events2.state_from_events(text)
            runs += 1
    assert runs >= 25


def test_events2_sync_values(real_outputs: Path) -> None:
    text = (real_outputs / "drbd-test-data/drbd-utils-tests-v9/events2-sync.test").read_text()
    runs = dict(_events2_runs(text))
    (statistics,) = [output for command, output in runs.items() if "--statistics" in command]
    (res,) = events2.state_from_events(statistics).resources
    peer = res.connections[0].peer_devices[0]
    assert (peer.replication_state, peer.peer_disk_state, peer.resync_percent) == ("SyncSource", "Inconsistent", 37.5)
    assert (peer.out_of_sync_bytes, peer.resync_eta_seconds) == (2500 * 1024, 10.0)
    assert res.devices[0].minor == 1000


def test_events2_now_statistics_sample(real_outputs: Path) -> None:
    (path,) = (real_outputs / "public-formats").glob("drbd9_events2_now_statistics__*.txt")
    events = events2.parse_events(path.read_text())
    assert events[-1].is_end_of_initial_state
    (res,) = events2.fold_events(events).resources
    assert [(c.peer_name, c.peer_node_id, c.peer_role) for c in res.connections] == [
        ("central-2004", 0, "Primary"), ("poller-2004-1", 1, "Secondary"),
    ]
    assert res.devices[0].size_kib == 765868


def test_drbd_reactor_lines(real_outputs: Path) -> None:
    path = real_outputs / "drbd-test-data/drbd-reactor/events2-lines-from-src-events.rs-unit-tests.txt"
    rejected = []
    accepted = []
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        source_line, event_line = line.split("\t", 1)
        try:
            events2.parse_event_line(event_line)
        except ParseError:
            rejected.append(int(source_line))
        else:
            accepted.append(int(source_line))
    # drbd-reactor's own tests reject exactly its lines 423-431 and accept the others (unknown keys included).
    assert rejected == [423, 425, 426, 431]
    assert len(accepted) == 10


# ------------------------------------------------------------------------------------------ /proc/drbd
covers(
    "ganeti-test-data/proc_drbd*.txt",
    "public-formats/ganeti__proc_drbd*.txt",
    "public-formats/drbd84_proc_drbd__*.txt",
    "public-formats/drbd83_proc_drbd_sync__*.txt",
)


def test_every_proc_drbd_file(real_outputs: Path) -> None:
    paths = [
        *real_outputs.glob("ganeti-test-data/proc_drbd*.txt"),
        *real_outputs.glob("public-formats/ganeti__proc_drbd*.txt"),
        *real_outputs.glob("public-formats/drbd84_proc_drbd__*.txt"),
    ]
    assert len(paths) >= 14
    for path in paths:
        proc = procdrbd.parse_proc_drbd(path.read_text())
        assert proc.minors, path.name
        state = procdrbd.to_drbd_state(proc, {m.minor: f"r{m.minor}" for m in proc.minors})
        assert len(state.resources) == sum(m.configured for m in proc.minors)


def test_proc_drbd84_sync_values(real_outputs: Path) -> None:
    proc = procdrbd.parse_proc_drbd((real_outputs / "ganeti-test-data/proc_drbd84_sync.txt").read_text())
    assert proc.version == "8.4.2"
    by_minor = {m.minor: m for m in proc.minors}
    assert not by_minor[3].configured
    syncing = by_minor[5]
    assert (syncing.connection_state, syncing.role, syncing.peer_role) == ("SyncSource", "Secondary", "Secondary")
    assert (syncing.resync_percent, syncing.resync_eta_seconds, syncing.out_of_sync_kib) == (68.5, 5, 335744)
    state = procdrbd.to_drbd_state(proc, {0: "vm100", 5: "vm105"}, {"vm105": "peer"})
    vm105 = state.resource("vm105")
    assert vm105 is not None
    peer = vm105.connections[0].peer_devices[0]
    assert (peer.replication_state, peer.resync_percent, peer.out_of_sync_bytes) == ("SyncSource", 68.5, 335744 * 1024)
    vm100 = state.resource("vm100")
    assert vm100 is not None
    assert vm100.connections[0].connection_state == "StandAlone"


def test_proc_drbd_older_formats(real_outputs: Path) -> None:
    v80 = procdrbd.parse_proc_drbd((real_outputs / "ganeti-test-data/proc_drbd8.txt").read_text())
    assert v80.version == "8.0.12"
    assert [m.minor for m in v80.minors] == [0, 1, 2, 4, 5, 6, 7, 8]
    assert (v80.minors[0].role, v80.minors[0].out_of_sync_kib) == ("Primary", None)
    no_version = procdrbd.parse_proc_drbd((real_outputs / "ganeti-test-data/proc_drbd80-emptyversion.txt").read_text())
    assert no_version.version is None
    v83 = procdrbd.parse_proc_drbd((real_outputs / "ganeti-test-data/proc_drbd83_sync_krnl2.6.39.txt").read_text())
    syncing = next(m for m in v83.minors if m.minor == 3)
    assert (syncing.resync_percent, syncing.resync_eta_seconds) == (2.4, 248)
    exporter = procdrbd.parse_proc_drbd(next(real_outputs.glob("public-formats/drbd84_proc_drbd__*.txt")).read_text())
    assert (exporter.version, exporter.minors[0].role, exporter.minors[0].peer_role) == ("8.4.3", "Primary", "Primary")


def test_checkmk_83_samples(real_outputs: Path) -> None:
    (path,) = (real_outputs / "public-formats").glob("drbd83_proc_drbd_sync__*.txt")
    samples = _sections(path.read_text(), "# ")
    assert set(samples) == {"While syncing:", "Sync stalled:", "Synced:"}
    syncing = procdrbd.parse_proc_drbd(samples["While syncing:"]).minors[0]
    assert (syncing.resync_percent, syncing.resync_eta_seconds) == (42.4, 5008)
    stalled = procdrbd.parse_proc_drbd(samples["Sync stalled:"]).minors[0]
    assert (stalled.resync_percent, stalled.resync_eta_seconds) == (0.1, None)
    synced = procdrbd.parse_proc_drbd(samples["Synced:"]).minors[0]
    assert (synced.connection_state, synced.out_of_sync_kib) == ("Connected", 0)


# ------------------------------------------------------------------------------------------------ Xen
covers(
    "ganeti-test-data/xen-xl-list-4*.txt", "public-formats/ganeti__xen-xl-list-*.txt",
    "public-formats/xen_xl_list_table__*.txt", "ganeti-test-data/xen-xl-info-*.txt",
    "public-formats/ganeti__xen-xl-info-*.txt", "ganeti-test-data/xen-xl-list-long-*.txt",
    "public-formats/xen_xl_list_long_config_json__*.json",
)


def test_every_xl_list(real_outputs: Path) -> None:
    paths = [*real_outputs.glob("ganeti-test-data/xen-xl-list-4*.txt"),
             *real_outputs.glob("public-formats/ganeti__xen-xl-list-*.txt")]
    assert len(paths) == 6
    for path in paths:
        rows = xl.parse_xl_list(path.read_text())
        assert rows[0].name == "Domain-0"
        assert rows[0].is_dom0
    crashed = xl.parse_xl_list((real_outputs / "ganeti-test-data/xen-xl-list-4.4-crashed-instances.txt").read_text())
    assert [(r.name, r.domid, r.state) for r in crashed] == [
        ("Domain-0", 0, "running"),
        ("server01.example.com", 1, "blocked"),
        ("(null)", 28441, "dying"),
        ("alsodying.example.com", 28448, "crashed"),
    ]
    domains = xl.merge_domains(crashed, ())
    assert [d.name for d in domains] == ["server01.example.com", "(null)", "alsodying.example.com"]


def test_xl_man_page_example(real_outputs: Path) -> None:
    (path,) = (real_outputs / "public-formats").glob("xen_xl_list_table__*.txt")
    table = "\n".join(line.strip() for line in path.read_text().splitlines() if line.startswith("    "))
    rows = xl.parse_xl_list(table)
    assert [(r.name, r.mem_mib, r.vcpus, r.time_s) for r in rows] == [
        ("Domain-0", 750, 4, 11794.3), ("win", 1019, 1, 0.3), ("linux", 2048, 2, 5624.2),
    ]


def test_xl_info_samples(real_outputs: Path) -> None:
    for path in [*real_outputs.glob("ganeti-test-data/xen-xl-info-*.txt"),
                 *real_outputs.glob("public-formats/ganeti__xen-xl-info-*.txt")]:
        info = xl.parse_xl_info(path.read_text())
        assert (info.free_memory_mib, info.total_memory_mib, info.xen_version) == (8004, 16378, "4.0.1")


def test_xl_list_long_config_json(real_outputs: Path) -> None:
    (path,) = (real_outputs / "public-formats").glob("xen_xl_list_long_config_json__*.json")
    # The file is the "config" member of one `xl list -l` element; wrap it the way xl prints it.
    wrapped = json.dumps([{"domid": 7, "config": json.loads(path.read_text())}])
    (config,) = xl.parse_xl_list_long(wrapped)
    assert (config.domid, config.name, config.uuid) == (7, "test-pv", "039e9ee6-4a84-3055-4c81-8ba426ae2656")
    assert (config.max_memkb, config.max_vcpus) == (524288, 4)
    assert config.disks == ("/var/lib/xen/images/test-pv.img",)
    assert config.nics == ("00:16:3e:3e:86:60",)


def test_xend_era_sexp(real_outputs: Path) -> None:
    dom0, instance = xl.parse_xl_list_long(
        (real_outputs / "ganeti-test-data/xen-xl-list-long-4.0.1.txt").read_text()
    )
    assert (dom0.domid, dom0.name, dom0.max_vcpus) == (0, "Domain-0", 24)
    assert (instance.domid, instance.name, instance.uuid) == (119, "instance1.example.com",
                                                              "e430b4b8-dc91-9390-dfe0-b83c138ea0aa")
    # xend printed MiB; the model holds KiB like the JSON form.
    assert (instance.max_memkb, instance.target_memkb, instance.max_vcpus) == (128 * 1024, 128 * 1024, 1)
    assert instance.disks == ("/var/run/ganeti/instance-disks/instance1.example.com:0",)
    assert (instance.vdevs, instance.nics, instance.bridges) == (("sda",), ("aa:00:00:30:8d:9d",), ("xen-br0",))


# ------------------------------------------------------------------------------------------ coverage
def test_every_corpus_file_is_either_parsed_or_listed_as_not_parser_input(real_outputs: Path) -> None:
    unknown = []
    for path in sorted(real_outputs.rglob("*")):
        if not path.is_file() or path.name == "PROVENANCE.txt":
            continue
        rel = path.relative_to(real_outputs).as_posix()
        if not (_matches(rel, COVERED) or _matches(rel, NOT_PARSER_INPUT)):
            unknown.append(rel)
    assert unknown == [], f"corpus files neither parsed nor listed in NOT_PARSER_INPUT: {unknown}"

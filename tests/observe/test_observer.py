"""The Observer against scripted nodes: what it reports, which commands it runs, how tools degrade."""

from __future__ import annotations

import pytest

from reconciler.backends.dm import parse as dmsetup
from reconciler.backends.drbd import drbd9
from reconciler.backends.drbd.show import SHOW_ARGV
from reconciler.backends.lvm import parse as lvm
from reconciler.backends.providers import VERSION_PROBES as PROBES
from reconciler.backends.xen import xl
from reconciler.host.base import EXIT_TIMEOUT, CommandResult
from reconciler.model.observed import Signature
from reconciler.names import UnsafeNameError
from reconciler.observe import blkid
from reconciler.observe.observer import MAX_COMMANDS_PER_PASS, Observer, ProbeError
from tests.observe.scripted import GIB, Answer, ScriptedHost, full_node, storage_answers

VERSION_PROBES = [probe.argv for probe in PROBES]


def test_full_node_with_drbd9_and_xen() -> None:
    host = full_node()
    observed = Observer(host).observe()

    assert observed.node == "erdbeere"
    assert [(t.name, t.state) for t in observed.tools] == [
        ("lvm", "available"), ("dmsetup", "available"), ("drbd", "available"), ("drbdadm", "available"),
        ("xl", "available"), ("files", "available"),
    ]
    assert observed.tool("lvm").version == "2.03.16"  # type: ignore[union-attr]
    assert observed.tool("dmsetup").version == "1.02.185 (driver 4.48.0)"  # type: ignore[union-attr]
    assert observed.tool("drbd").version == "9.2.12"  # type: ignore[union-attr]
    assert observed.tool("drbdadm").version == "9.22.0"  # type: ignore[union-attr]
    assert observed.tool("xl").version == "4.17.5"  # type: ignore[union-attr]

    assert [(v.name, v.size_bytes, v.free_bytes) for v in observed.volume_groups] == [
        ("vg-sda", 100 * GIB, 50 * GIB), ("vg-sdb", 100 * GIB, 50 * GIB)]
    assert observed.lv("vg-sda", "swap100").size_bytes == 2 * GIB  # type: ignore[union-attr]
    assert len(observed.logical_volumes) == 3

    stripe = observed.dm("root100")
    assert stripe is not None
    assert stripe.uuid == "RECONCILER-root100"
    assert stripe.table == "0 4194304 striped 2 128 254:0 0 254:1 0"

    resource = observed.drbd.resource("vm100")
    assert resource is not None
    assert resource.role == "Primary"
    assert resource.devices[0].minor == 0
    assert resource.devices[0].disk_state == "UpToDate"
    peer = resource.connections[0]
    assert (peer.peer_name, peer.connection_state, peer.peer_role) == ("himbeere", "Connected", "Secondary")
    assert peer.peer_devices[0].replication_state == "SyncSource"
    assert peer.peer_devices[0].out_of_sync_bytes == 4096 * 1024

    domain = observed.domain("vm100")
    assert domain is not None
    assert (domain.domid, domain.state, domain.memory_mib) == (3, "blocked", 4096)
    assert domain.cpu_time_s == 567.8
    assert not domain.never_ran
    assert domain.disks == ("/dev/drbd0",)
    assert observed.host.free_memory_mib == 40960

    assert [f.path for f in observed.files] == ["/etc/drbd.d/vm100.res", "/etc/xen/vm100.cfg"]
    assert observed.file("/etc/xen/vm100.cfg") == 'name = "vm100"\nmemory = 4096\n'


def test_pass_runs_the_fixed_command_set_and_counts_it() -> None:
    host = full_node()
    observer = Observer(host)
    observer.observe()
    start = len(host.calls)
    observed = observer.observe()
    ran = host.commands_since(start)
    assert set(ran) == {lvm.VGS_ARGV, lvm.LVS_ARGV, dmsetup.INFO_ARGV, dmsetup.TABLE_ARGV, drbd9.STATUS_ARGV,
                        SHOW_ARGV, xl.XL_LIST_ARGV, xl.XL_LIST_LONG_ARGV, xl.XL_INFO_ARGV}
    assert observed.commands_run == len(ran) == MAX_COMMANDS_PER_PASS
    assert not any(argv[0] == "blkid" for argv in host.calls), "signature probes run only when asked"


def test_versions_are_probed_once_per_observer() -> None:
    host = full_node()
    observer = Observer(host)
    for _ in range(3):
        observer.observe()
    assert [c for c in host.calls if c in VERSION_PROBES] == list(VERSION_PROBES)
    assert observer.version_commands_run == len(VERSION_PROBES)
    # A second observer (a restarted daemon) asks again.
    Observer(host).observe()
    assert sum(1 for c in host.calls if c in VERSION_PROBES) == 2 * len(VERSION_PROBES)


@pytest.mark.parametrize("count", [1, 10, 100, 500])
def test_commands_per_pass_do_not_grow_with_the_node(count: int) -> None:
    volumes = [(f"vg-sd{'abc'[i % 3]}", f"lv{i}", GIB) for i in range(count)]
    host = full_node(volumes)
    observer = Observer(host)
    first = observer.observe()
    start = len(host.calls)
    second = observer.observe()
    assert len(second.logical_volumes) == count
    assert second.commands_run == len(host.commands_since(start)) <= MAX_COMMANDS_PER_PASS
    assert first.commands_run + observer.version_commands_run == start <= MAX_COMMANDS_PER_PASS + len(VERSION_PROBES)


def test_drbd84_minors_are_named_from_the_owned_res_files() -> None:
    host = full_node(drbd="8.4")
    observed = Observer(host).observe()

    assert observed.tool("drbd").state == "available"  # type: ignore[union-attr]
    assert observed.drbd.kernel_version == "8.4.11"
    assert observed.drbd.major == "8.4"
    assert drbd9.STATUS_ARGV not in host.calls, "DRBD 8.4 has no status --json; /proc/drbd is the source"
    assert [r.name for r in observed.drbd.resources] == ["vm100", "vm103"]

    syncing = observed.drbd.resource("vm100")
    assert syncing is not None
    assert syncing.role == "Primary"
    assert syncing.devices[0].minor == 0
    peer = syncing.connections[0]
    assert peer.peer_name == "himbeere"
    assert peer.peer_role == "Secondary"
    assert peer.peer_devices[0].replication_state == "SyncSource"
    assert peer.peer_devices[0].peer_disk_state == "Inconsistent"
    assert peer.peer_devices[0].resync_percent == pytest.approx(68.5)
    assert peer.peer_devices[0].out_of_sync_bytes == 335744 * 1024

    waiting = observed.drbd.resource("vm103")
    assert waiting is not None
    assert waiting.devices[0].minor == 3
    assert waiting.connections[0].connection_state == "Connecting"
    assert waiting.connections[0].peer_name == "himbeere"


def test_drbd84_minor_without_a_config_keeps_its_number() -> None:
    host = full_node(drbd="8.4")
    del host.files["/etc/drbd.d/vm103.res"]
    observed = Observer(host).observe()
    assert [r.name for r in observed.drbd.resources] == ["vm100", "minor-3"]


def test_drbd84_with_a_broken_res_file_fails_visibly() -> None:
    host = full_node(drbd="8.4")
    host.files["/etc/drbd.d/vm103.res"] = "resource vm103 {\n  device /dev/drbd3;\n"
    observed = Observer(host).observe()
    drbd = observed.tool("drbd")
    assert drbd is not None
    assert drbd.state == "failed"
    assert "vm103.res" in (drbd.detail or "")
    assert observed.drbd.resources == ()
    assert observed.drbd.kernel_version == "8.4.11"


def test_storage_only_node_without_xen_or_drbd() -> None:
    host = full_node(drbd=None, xen=False)
    observed = Observer(host).observe()
    states = {t.name: (t.state, t.detail) for t in observed.tools}
    assert states["xl"] == ("missing", "xl is not installed")
    assert states["drbd"][0] == "missing"
    assert "/proc/drbd" in (states["drbd"][1] or "")
    assert states["lvm"][0] == "available"
    assert observed.domains == ()
    assert observed.drbd.resources == ()
    # One not-found xl is enough: its other two commands are not tried in the same pass.
    assert [c for c in host.calls if c[0] == "xl"] == [xl.XL_LIST_ARGV]
    assert observed.commands_run == 5


def test_a_failing_tool_is_failed_with_the_command_message() -> None:
    host = full_node()
    host.answers[dmsetup.INFO_ARGV] = Answer(
        "", "/dev/mapper/control: open failed: No such device\nFailure to communicate with kernel device-mapper "
        "driver.\nCommand failed.\n", 1)
    observed = Observer(host).observe()
    dm = observed.tool("dmsetup")
    assert dm is not None
    assert dm.state == "failed"
    assert dm.detail is not None
    assert dm.detail.startswith("`dmsetup info -c")
    assert "(exit 1)" in dm.detail
    assert "/dev/mapper/control: open failed" in dm.detail
    assert observed.dm_devices == ()
    assert observed.tool("lvm").state == "available"  # type: ignore[union-attr]


def test_timeouts_and_unparseable_output_are_failures_not_empty_lists() -> None:
    host = full_node()
    host.answers[lvm.LVS_ARGV] = Answer('  {"report": [ {"lv": [ {"lv_name":"x"} ] } ] }\n')
    host.answers[xl.XL_INFO_ARGV] = Answer("", "timed out after 30s", EXIT_TIMEOUT)
    observed = Observer(host).observe()
    lvm_status = observed.tool("lvm")
    assert lvm_status is not None
    assert lvm_status.state == "failed"
    assert "cannot parse lvs" in (lvm_status.detail or "")
    assert observed.volume_groups == ()
    assert observed.logical_volumes == ()
    xl_status = observed.tool("xl")
    assert xl_status is not None
    assert xl_status.state == "failed"
    assert "`xl info` (exit 124)" in (xl_status.detail or "")
    assert observed.domains == ()


def test_unreadable_owned_file_is_reported_and_others_are_read() -> None:
    host = full_node()
    host.unreadable.add("/etc/drbd.d/vm100.res")
    observed = Observer(host).observe()
    files = observed.tool("files")
    assert files is not None
    assert files.state == "failed"
    assert "/etc/drbd.d/vm100.res" in (files.detail or "")
    assert [f.path for f in observed.files] == ["/etc/xen/vm100.cfg"]


def test_only_owned_names_are_read() -> None:
    host = full_node()
    host.files["/etc/drbd.d/global_common.conf"] = "global {}\n"
    host.files["/etc/xen/xl.conf"] = "autoballoon=0\n"
    host.files["/etc/xen/-rf.cfg"] = "bad name\n"
    host.files["/etc/xen/vm101.cfg"] = "name = 'vm101'\n"
    observed = Observer(host, owned_dirs=("/etc/drbd.d", "/etc/xen")).observe()
    assert [f.path for f in observed.files] == ["/etc/drbd.d/vm100.res", "/etc/xen/vm100.cfg", "/etc/xen/vm101.cfg"]
    assert "/etc/xen/-rf.cfg" not in host.reads
    assert "/etc/xen/xl.conf" not in host.reads


def test_probe_runs_blkid_only_for_the_device_asked() -> None:
    host = ScriptedHost(answers=storage_answers([]))
    host.answers[blkid.blkid_argv("/dev/drbd0")] = Answer(
        "DEVNAME=/dev/drbd0\nUUID=0ec924e0-47ef-4a48-8500-ccf661799381\nBLOCK_SIZE=512\nTYPE=xfs\nUSAGE=filesystem\n")
    host.answers[blkid.blkid_argv("/dev/vg-sda/swap100")] = Answer("", "", 2)
    observer = Observer(host)
    assert observer.probe("/dev/drbd0") == Signature(
        device="/dev/drbd0", type="xfs", uuid="0ec924e0-47ef-4a48-8500-ccf661799381", usage="filesystem")
    assert observer.probe("/dev/vg-sda/swap100").type is None
    assert host.calls == [("blkid", "-p", "-o", "export", "/dev/drbd0"),
                          ("blkid", "-p", "-o", "export", "/dev/vg-sda/swap100")]


def test_probe_refuses_unsafe_paths_and_raises_when_blkid_cannot_answer() -> None:
    host = ScriptedHost()
    observer = Observer(host)
    with pytest.raises(UnsafeNameError):
        observer.probe("/dev/../etc/passwd")
    assert host.calls == []
    host.missing_programs.add("blkid")
    with pytest.raises(ProbeError, match="cannot probe /dev/drbd0"):
        observer.probe("/dev/drbd0")
    host.missing_programs.clear()
    host.answers[blkid.blkid_argv("/dev/drbd1")] = Answer("", "blkid: error: /dev/drbd1: Permission denied", 4)
    with pytest.raises(ProbeError, match="Permission denied"):
        observer.probe("/dev/drbd1")


def test_commands_have_timeouts() -> None:
    seen: list[float] = []

    class TimedHost(ScriptedHost):
        def run(self, argv: object, *, timeout: float = 60.0, stdin: str | None = None) -> CommandResult:
            seen.append(timeout)
            return super().run(argv, timeout=timeout, stdin=stdin)  # type: ignore[arg-type]

    host = TimedHost(answers=full_node().answers, files=full_node().files)
    Observer(host, timeout=7.5).observe()
    assert seen
    assert set(seen) == {7.5}


def test_an_empty_node_is_available_with_nothing_on_it() -> None:
    host = full_node([])
    host.answers[lvm.LVS_ARGV] = Answer('  {\n      "report": [\n          {\n              "lv": [\n'
                                        '              ]\n          }\n      ]\n  }\n')
    host.answers[dmsetup.INFO_ARGV] = Answer("No devices found\n")
    host.answers[dmsetup.TABLE_ARGV] = Answer("No devices found\n")
    host.answers[drbd9.STATUS_ARGV] = Answer("[\n]\n")
    host.answers[xl.XL_LIST_ARGV] = Answer(
        "Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
        "Domain-0                                     0  2048     2     r-----    1234.5\n")
    host.answers[xl.XL_LIST_LONG_ARGV] = Answer("[\n]\n")
    observed = Observer(host).observe()
    assert {t.name: t.state for t in observed.tools} == dict.fromkeys(
        ("lvm", "dmsetup", "drbd", "drbdadm", "xl", "files"), "available")
    assert observed.logical_volumes == ()
    assert observed.dm_devices == ()
    assert observed.drbd.resources == ()
    assert observed.domains == ()
    assert len(observed.volume_groups) == 1


def test_drbd84_sizes_come_from_sysfs_without_a_command() -> None:
    host = full_node(drbd="8.4")
    host.files["/sys/devices/virtual/block/drbd0/size"] = "786336\n"
    calls_before = len(host.calls)
    observed = Observer(host).observe()
    vm100 = observed.drbd.resource("vm100")
    assert vm100 is not None
    assert vm100.devices[0].size_kib == 393168
    vm103 = observed.drbd.resource("vm103")
    assert vm103 is not None
    assert vm103.devices[0].size_kib is None  # no such file: unknown, not zero
    assert "/sys/devices/virtual/block/drbd3/size" in host.reads
    drbd_commands = [c for c in host.calls[calls_before:] if c[0] in ("drbdsetup", "drbdadm", "cat")]
    # The one-time version probe, and the runtime options (allow-two-primaries); nothing for sizes.
    assert drbd_commands == [("drbdadm", "--version"), SHOW_ARGV]
    assert observed.tool("drbd").detail is None  # type: ignore[union-attr]


def test_drbd84_unreadable_size_is_unknown_and_said() -> None:
    host = full_node(drbd="8.4")
    host.files["/sys/devices/virtual/block/drbd0/size"] = "lots\n"
    host.unreadable.add("/sys/devices/virtual/block/drbd3/size")
    observed = Observer(host).observe()
    drbd = observed.tool("drbd")
    assert drbd is not None
    assert drbd.state == "available"
    assert "expected a number of 512-byte sectors" in (drbd.detail or "")
    assert "drbd3/size" in (drbd.detail or "")
    assert all(d.size_kib is None for r in observed.drbd.resources for d in r.devices)


def test_the_owned_config_files_are_the_registered_backends() -> None:
    from reconciler.backends.providers import OWNED_CONFIG
    from reconciler.observe.observer import DEFAULT_OWNED_DIRS, OWNED_SUFFIXES

    assert [(o.directory, o.suffix, o.also) for o in OWNED_CONFIG] == [
        ("/etc/drbd.d", ".res", ("/etc/drbd.conf",)), ("/etc/xen", ".cfg", ())]
    assert DEFAULT_OWNED_DIRS == ("/etc/drbd.d", "/etc/xen")
    assert OWNED_SUFFIXES == (".res", ".cfg")


def test_a_registered_backends_own_top_file_is_read_with_its_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.core.facts import OwnedConfigFiles
    from reconciler.observe import observer as observer_mod

    other = OwnedConfigFiles("/etc/other", ".cfg", also=("/etc/other.conf",))
    monkeypatch.setattr(observer_mod, "OWNED_CONFIG", (*observer_mod.OWNED_CONFIG, other))
    host = full_node()
    host.files["/etc/other/vm7.cfg"] = "vm7\n"
    host.files["/etc/other.conf"] = "top\n"
    observed = Observer(host, owned_dirs=("/etc/drbd.d", "/etc/xen", "/etc/other")).observe()
    assert [f.path for f in observed.files][-2:] == ["/etc/other/vm7.cfg", "/etc/other.conf"]
    # Not asked for its directory: neither its files nor its top file are read.
    unasked = Observer(host, owned_dirs=("/etc/drbd.d", "/etc/xen")).observe()
    assert "/etc/other.conf" not in [f.path for f in unasked.files]

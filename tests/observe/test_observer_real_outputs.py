"""The Observer end to end over outputs real tools printed (the shared corpus; skipped where absent)."""

from __future__ import annotations

from pathlib import Path

from reconciler.backends.drbd import drbd9
from reconciler.backends.lvm import parse as lvm
from reconciler.backends.lvm.parse import VERSION_ARGV as LVM_VERSION_ARGV
from reconciler.backends.xen import xl
from reconciler.observe.observer import Observer
from tests.conftest import read_capture
from tests.observe.scripted import Answer, full_node

RES_TEMPLATE = """resource {name} {{
  on erdbeere {{ device /dev/drbd{minor}; disk /dev/mapper/root{minor}; address 10.0.0.1:{port}; meta-disk internal; }}
  on himbeere {{ device /dev/drbd{minor}; disk /dev/mapper/root{minor}; address 10.0.0.2:{port}; meta-disk internal; }}
}}
"""


def _stdout(path: Path) -> str:
    return read_capture(path)[2]


def test_captured_lvm_reports_observe_as_expected(real_outputs: Path) -> None:
    here = real_outputs / "captured-here"
    command, _, _, stderr = read_capture(here / "lvs-json-bytes.txt")
    assert command == " ".join(lvm.LVS_ARGV), "the corpus shows the exact command the observer runs"
    host = full_node(drbd=None, xen=False)
    host.answers[lvm.VGS_ARGV] = Answer(_stdout(here / "vgs-json-bytes.txt"), stderr)
    host.answers[lvm.LVS_ARGV] = Answer(_stdout(here / "lvs-json-bytes.txt"), stderr)
    host.answers[LVM_VERSION_ARGV] = Answer((here / "lvm-version.txt").read_text())

    observed = Observer(host).observe()

    assert observed.tool("lvm").state == "available"  # type: ignore[union-attr]
    assert observed.tool("lvm").version == "2.03.16"  # type: ignore[union-attr]
    assert [vg.name for vg in observed.volume_groups] == ["vg-multi", "vg-sda", "vg-sdb", "vg-sdc"]
    assert observed.vg("vg-sda").free_bytes == 5364514816  # type: ignore[union-attr]
    assert len(observed.logical_volumes) == 6
    assert {lv.size_bytes for lv in observed.logical_volumes if lv.name == "swap100"} == {2 * 1024**3}


def test_drbd84_proc_with_owned_configs(real_outputs: Path) -> None:
    host = full_node(drbd="8.4")
    host.files["/proc/drbd"] = (real_outputs / "ganeti-test-data" / "proc_drbd84.txt").read_text()
    for name in list(host.files):
        if name.endswith(".res"):
            del host.files[name]
    for minor in (0, 1, 4, 6, 8):
        host.files[f"/etc/drbd.d/vm{minor}.res"] = RES_TEMPLATE.format(name=f"vm{minor}", minor=minor,
                                                                       port=7788 + minor)
    observed = Observer(host).observe()
    assert observed.drbd.kernel_version == "8.4.2"
    by_name = {r.name: r for r in observed.drbd.resources}
    assert sorted(by_name) == ["vm0", "vm1", "vm4", "vm6", "vm8"], "minor 2 is unconfigured"
    assert (by_name["vm0"].role, by_name["vm1"].role) == ("Primary", "Secondary")
    assert by_name["vm6"].devices[0].disk_state == "Diskless"
    assert by_name["vm4"].connections[0].peer_devices[0].out_of_sync_bytes == 1048320 * 1024
    assert all(r.connections[0].peer_name == "himbeere" for r in observed.drbd.resources)


def test_drbd9_utils_failing_to_load_the_module_is_a_failure(real_outputs: Path) -> None:
    _, code, out, err = read_capture(real_outputs / "captured-here" / "drbdsetup-status-json-no-module.txt")
    host = full_node(drbd="9")
    host.answers[drbd9.STATUS_ARGV] = Answer(out, err, code)
    observed = Observer(host).observe()
    drbd = observed.tool("drbd")
    assert drbd is not None
    assert drbd.state == "failed"
    assert "(exit 20)" in (drbd.detail or "")
    assert "modprobe" in (drbd.detail or "")


def test_xen_tables_and_an_sxp_long_listing(real_outputs: Path) -> None:
    ganeti = real_outputs / "ganeti-test-data"
    host = full_node()
    host.answers[xl.XL_LIST_ARGV] = Answer((ganeti / "xen-xl-list-4.0.1-four-instances.txt").read_text())
    host.answers[xl.XL_INFO_ARGV] = Answer((ganeti / "xen-xl-info-4.0.1.txt").read_text())
    observed = Observer(host).observe()
    assert observed.tool("xl").state == "available"  # type: ignore[union-attr]
    assert sorted(d.name for d in observed.domains) == [
        "server01.example.com", "testinstance.example.com", "web3106215069.example.com"]
    assert observed.host.free_memory_mib == 8004

    # Old xl prints `xl list -l` as S-expressions; read as well, matched to `xl list` rows by domid.
    host.answers[xl.XL_LIST_LONG_ARGV] = Answer((ganeti / "xen-xl-list-long-4.0.1.txt").read_text())
    observed = Observer(host).observe()
    assert observed.tool("xl").state == "available"  # type: ignore[union-attr]
    assert len(observed.domains) == 3
    assert all(d.uuid is None for d in observed.domains), "no domid of this listing is in the long listing"

    # Output cut short is a failure that names the tool, never a half-read list.
    host.answers[xl.XL_LIST_LONG_ARGV] = Answer(host.answers[xl.XL_LIST_LONG_ARGV].stdout[:200])
    observed = Observer(host).observe()
    status = observed.tool("xl")
    assert status is not None
    assert status.state == "failed"
    assert "xl list -l" in (status.detail or "")
    assert observed.domains == ()

"""Doctor checks against a host with canned answers: each verdict, and the LVM filter rule."""

from __future__ import annotations

import argparse
import ast
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from reconciler.backends.doctors import DOCTORS
from reconciler.backends.drbd.doctor import USERMODE_HELPER_PATH, check_drbd_module, check_usermode_helper
from reconciler.backends.drbd.replicator import DrbdReplicator
from reconciler.backends.lvm.doctor import check_lvm_filter, lvm_filter_accepts
from reconciler.backends.registry import REPLICATORS
from reconciler.backends.xen.doctor import check_ballooning, check_migration_transport
from reconciler.cli.main import main
from reconciler.core.doctor import BackendDoctor, Check, ToolCheck, check_service
from reconciler.core.seams import ReplicaFencing
from reconciler.daemon.node.doctor import (
    check_addresses,
    check_fence_path,
    check_hostname,
    check_power_fences,
    check_tools,
    run_checks,
)
from reconciler.desired.schema import PowerFenceSection
from reconciler.host.base import CommandResult
from reconciler.model.desired import DesiredDomain, DesiredDrbd, DesiredNode, NodeBackends
from tests.daemon.fakes import desired_node


class CannedHost:
    def __init__(self, answers: dict[str, tuple[int, str]], files: dict[str, str] | None = None) -> None:
        self.answers = answers
        self.files = files or {}

    @property
    def node(self) -> str:
        return "erdbeere"

    def run(self, argv: Sequence[str], *, timeout: float = 60, stdin: str | None = None) -> CommandResult:
        key = " ".join(argv)
        for prefix, (code, out) in self.answers.items():
            if key.startswith(prefix):
                return CommandResult(tuple(argv), code, out, "")
        return CommandResult(tuple(argv), 127, "", f"{argv[0]}: not found", not_found=True)

    def read_file(self, path: str) -> str | None:
        return self.files.get(path)

    def list_dir(self, path: str) -> tuple[str, ...]:
        return ()

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        return None

    def remove_file(self, path: str) -> None:
        return None


@pytest.mark.parametrize(("patterns", "device", "accepted"), [
    (['a|.*|'], "/dev/drbd0", True),
    (['r|^/dev/drbd|', 'a|.*|'], "/dev/drbd0", False),
    (['r|^/dev/drbd|', 'a|.*|'], "/dev/sda", True),
    (['a|^/dev/sd|', 'r|.*|'], "/dev/mapper/root100", False),
    ([], "/dev/drbd0", True),
])
def test_lvm_filter_first_match_decides(patterns: list[str], device: str, accepted: bool) -> None:
    assert lvm_filter_accepts(patterns, device) is accepted


def test_lvm_filter_verdicts() -> None:
    permissive = CannedHost({"lvmconfig": (0, 'global_filter=["a|.*|"]\nfilter=["a|.*|"]\nuse_devicesfile=0\n')})
    check = check_lvm_filter(permissive, desired_node())
    assert check.verdict == "fail"
    assert "/dev/drbd0" in check.detail
    strict = CannedHost({"lvmconfig": (0, 'global_filter=["r|^/dev/drbd|","r|^/dev/mapper/root|","a|.*|"]\n'
                                          'use_devicesfile=0\n')})
    assert check_lvm_filter(strict, desired_node()).verdict == "ok"
    devices_file = CannedHost({"lvmconfig": (0, 'global_filter=["a|.*|"]\nuse_devicesfile=1\n')})
    assert check_lvm_filter(devices_file, None).verdict == "ok"


def test_host_name_must_match_the_cluster_file() -> None:
    host = CannedHost({"uname -n": (0, "erdbeere\n")})
    assert check_hostname(host, "erdbeere", desired_node()).verdict == "ok"
    assert check_hostname(CannedHost({"uname -n": (0, "localhost\n")}), "erdbeere", desired_node()).verdict == "fail"


def test_conflicting_services() -> None:
    host = CannedHost({"systemctl is-enabled drbd": (0, "enabled\n"),
                       "systemctl is-enabled xendomains": (1, "disabled\n")})
    checks = [check_service(host, "drbd.service"), check_service(host, "xendomains.service")]
    assert [c.verdict for c in checks] == ["fail", "ok"]
    assert "systemctl disable drbd.service" in checks[0].detail
    # Each backend registers its own service, and the doctor runs them in registration order.
    services = [c for c in run_checks(host, "erdbeere", None) if c.name.startswith("service ")]
    assert services == checks


def test_a_registered_backend_doctor_runs_at_its_slot() -> None:
    def other(host: object, desired: object, settings: object) -> list[Check]:
        return [Check("other backend", "ok", "checked")]

    doctors = (*DOCTORS, BackendDoctor(tools=(ToolCheck("other-tool", ("other-tool", "--version"), r"v(\S+)"),),
                                       checks={"settings": (other,)}))
    names = [c.name for c in run_checks(CannedHost({}), "erdbeere", None, doctors=doctors)]
    assert names.index("tool xl") < names.index("tool other-tool") < names.index("tool blkid")
    assert names.index("Xen ballooning") + 1 == names.index("other backend")
    without = [c.name for c in run_checks(CannedHost({}), "erdbeere", None, doctors=DOCTORS[:2])]
    assert "DRBD kernel module" not in without
    assert "tool drbd-utils" not in without
    assert "LVM filter" in without


def test_ballooning() -> None:
    info = "xen_version : 4.17.3\nxen_commandline : placeholder dom0_mem=4096M,max:4096M\n"
    good = CannedHost({"xl info": (0, info)},
                      {"/etc/xen/xl.conf": 'autoballoon="off"\n'})
    assert check_ballooning(good).verdict == "ok"
    bad = CannedHost({"xl info": (0, "xen_commandline : placeholder\n")}, {"/etc/xen/xl.conf": 'autoballoon="auto"\n'})
    check = check_ballooning(bad)
    assert check.verdict == "fail"
    assert "dom0_mem" in check.detail
    assert "autoballoon" in check.detail
    assert check_ballooning(CannedHost({})).verdict == "skip"


def test_replication_addresses_must_be_local() -> None:
    addrs = json.dumps([{"ifname": "eth1", "addr_info": [{"local": "10.0.0.1"}]}])
    assert check_addresses(CannedHost({"ip -j addr": (0, addrs)}), desired_node()).verdict == "ok"
    other = json.dumps([{"ifname": "eth1", "addr_info": [{"local": "10.9.9.9"}]}])
    check = check_addresses(CannedHost({"ip -j addr": (0, other)}), desired_node())
    assert check.verdict == "fail"
    assert "10.0.0.1" in check.detail


def test_missing_tools_fail() -> None:
    checks = {c.name: c for c in check_tools(CannedHost({"lvm version": (0, "  LVM version:     2.03.16(2)\n")}))}
    assert checks["tool lvm2"].verdict == "ok"
    assert checks["tool lvm2"].detail == "version 2.03.16(2)"
    assert checks["tool xl"].verdict == "fail"


def test_run_checks_covers_every_area() -> None:
    names = {c.name for c in run_checks(CannedHost({}), "erdbeere", desired_node())}
    assert {"host name", "LVM filter", "Xen ballooning", "replication addresses", "migration transport",
            "DRBD kernel module", "service drbd.service", "service xendomains.service"} <= names


def test_cli_exits_non_zero_on_failures(capsys: pytest.CaptureFixture[str]) -> None:
    # This machine has no Xen, so `xl` is missing and the verdict must be a failure.
    import shutil

    if shutil.which("xl"):
        pytest.skip("xl is installed here; this test relies on a node without Xen")
    assert main(["doctor", "--state-dir", "/nonexistent"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] tool xl" in out


def test_cli_bad_sim_node_and_desired_state_are_clear_errors(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from reconciler.sim.state import SimCluster

    sim = tmp_path / "sim"
    SimCluster.init(sim, ["erdbeere", "himbeere"], {"vg-sda": 400 << 30})
    assert main(["doctor", "--sim", str(tmp_path / "nope"), "--node", "erdbeere"]) == 2
    assert "no simulated cluster" in capsys.readouterr().err
    assert main(["doctor", "--sim", str(sim), "--node", "kiwi"]) == 2
    assert "'kiwi' is not part of the simulated cluster" in capsys.readouterr().err
    assert main(["doctor", "--sim", str(sim), "--node", "a;b"]) == 2
    assert "not a safe name" in capsys.readouterr().err
    broken = tmp_path / "desired"
    broken.mkdir()
    (broken / "cluster.yaml").write_text("nodes: [\n")
    assert main(["doctor", "--sim", str(sim), "--node", "erdbeere", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] desired state:" in out
    assert "cluster.yaml:" in out


@pytest.mark.parametrize(("proc_drbd", "verdict"), [
    ("version: 9.2.12 (api:2/proto:86-122)\n", "ok"),
    ("version: 8.4.11 (api:1/proto:86-101)\n", "fail"),
])
def test_drbd_module_must_match_the_declared_version(proc_drbd: str, verdict: str) -> None:
    check = check_drbd_module(CannedHost({}, {"/proc/drbd": proc_drbd}), desired_node())  # declares "9"
    assert check.verdict == verdict
    if verdict == "fail":
        assert "declares drbd_version '9'" in check.detail
    assert check_drbd_module(CannedHost({}, {"/proc/drbd": proc_drbd})).verdict == "ok"  # nothing declared


def test_drbd_handler_programs_must_be_executable_here() -> None:
    from reconciler.backends.drbd.doctor import check_drbd_handlers
    from reconciler.desired.expand import expand_node
    from reconciler.desired.load import load_cluster

    desired = expand_node(load_cluster(str(Path(__file__).resolve().parents[2] / "desired-state")), "erdbeere")
    assert "/usr/bin/reconciler split-brain" in desired.vms[0].drbd.config_text  # type: ignore[union-attr]
    present = check_drbd_handlers(CannedHost({"test -x /usr/bin/reconciler": (0, "")}), desired)
    assert present.verdict == "ok", present
    assert present.detail == "/usr/bin/reconciler"
    # Without it the kernel's split-brain helper fails silently: no record, nothing to report.
    missing = check_drbd_handlers(CannedHost({"test -x /usr/bin/reconciler": (1, "")}), desired)
    assert missing.verdict == "fail"
    assert "/usr/bin/reconciler (" in missing.detail
    assert "split brain" in missing.detail
    assert check_drbd_handlers(CannedHost({}), None).verdict == "skip"


@pytest.mark.parametrize(("value", "verdict", "says"), [
    ("/sbin/drbdadm\n", "ok", "/sbin/drbdadm"),
    ("/usr/sbin/drbdadm\n", "ok", "runs the handlers"),
    ("\n", "fail", "is empty"),
    ("/bin/true\n", "fail", "'/bin/true'"),
    ("disabled\n", "fail", "'disabled'"),
    ("/usr/local/bin/my-helper\n", "warn", "not drbdadm"),
])
def test_usermode_helper_must_run_the_handlers(value: str, verdict: str, says: str) -> None:
    check = check_usermode_helper(CannedHost({}, {USERMODE_HELPER_PATH: value}))
    assert (check.verdict, check.name) == (verdict, "DRBD usermode helper")
    assert says in check.detail
    if verdict == "fail":
        assert "fence-peer" in check.detail
        assert "echo /sbin/drbdadm" in check.detail


def test_usermode_helper_skipped_without_the_module() -> None:
    assert check_usermode_helper(CannedHost({})).verdict == "skip"


def test_usermode_helper_on_a_simulated_node(tmp_path: Path) -> None:
    from reconciler.sim.host import SimHost
    from reconciler.sim.state import SimCluster

    cluster = SimCluster.init(tmp_path / "sim", ["erdbeere", "himbeere"], {"vg-sda": 400 << 30})
    host = SimHost(cluster.directory, "erdbeere")
    checks = {c.name: c for c in run_checks(host, "erdbeere", None)}
    assert checks["DRBD usermode helper"].verdict == "ok"
    with cluster.transaction() as state:
        state["nodes"]["erdbeere"]["drbd_usermode_helper"] = "/bin/true"
    assert check_usermode_helper(host).verdict == "fail"


def test_fencing_over_the_replication_link_is_a_warning_with_the_fix() -> None:
    from reconciler.daemon.node.doctor import check_fence_path
    from reconciler.desired.expand import expand_node
    from reconciler.desired.load import load_cluster

    desired = expand_node(load_cluster(str(Path(__file__).resolve().parents[2] / "desired-state")), "erdbeere")
    # The example's resources run `reconciler fence-peer`; without RECONCILER_PEERS it asks the peer at
    # its replication address, the very link whose loss it must tell from the peer's death.
    shared = check_fence_path(desired, {})
    assert shared.verdict == "warn"
    assert "reaches himbeere over the replication link (192.168.2.2)" in shared.detail
    assert "RECONCILER_PEERS" in shared.detail
    assert check_fence_path(desired, {"himbeere": "192.168.2.2"}).verdict == "warn"
    apart = check_fence_path(desired, {"himbeere": "10.0.0.2"})
    assert (apart.verdict, apart.detail) == ("ok", "himbeere at 10.0.0.2")
    assert check_fence_path(None, {}).verdict == "skip"
    assert check_fence_path(desired_node(), {}).verdict == "skip", "a resource without the handler needs no path"
    # A name is compared by what it resolves to: one that stands for the replication address is that link.
    names = {"himbeere-mgmt": frozenset({"10.0.0.2"}), "himbeere-rep": frozenset({"192.168.2.2", "10.9.9.9"})}
    assert check_fence_path(desired, {"himbeere": "himbeere-rep"}, resolve=names.get).verdict == "warn"
    assert check_fence_path(desired, {"himbeere": "himbeere-mgmt"}, resolve=names.get).verdict == "ok"
    unknown = check_fence_path(desired, {"himbeere": "nowhere"}, resolve=names.get)
    assert unknown.verdict == "warn"
    assert "does not resolve" in unknown.detail
    assert "fence-peer path" in {c.name for c in run_checks(CannedHost({}), "erdbeere", desired)}


def test_the_cli_reads_the_fence_path_from_the_daemons_environment_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    example = str(Path(__file__).resolve().parents[2] / "desired-state")
    env_file = tmp_path / "reconciler.env"
    env_file.write_text("# management addresses\nRECONCILER_PEERS=himbeere=10.0.0.2:9791\n")
    monkeypatch.delenv("RECONCILER_PEERS", raising=False)
    main(["doctor", "--node", "erdbeere", "--env-file", str(env_file), example])
    assert "[ok  ] fence-peer path: himbeere at 10.0.0.2" in capsys.readouterr().out
    main(["doctor", "--node", "erdbeere", "--env-file", str(tmp_path / "missing.env"), example])
    assert "[WARN] fence-peer path: the fence-peer handler reaches himbeere over the replication link" in (
        capsys.readouterr().out)


# --- power fences under resource-and-stonith -------------------------------------------------------------


def _stonith_node() -> DesiredNode:
    node = desired_node()
    vms = tuple(vm.model_copy(update={"drbd": vm.drbd.model_copy(update={
        "config_text": "resource vm100 {\n  net {\n    fencing resource-and-stonith;\n  }\n}\n"})})
        for vm in node.vms if vm.drbd is not None)
    return node.model_copy(update={"vms": vms})


FENCE = PowerFenceSection(off=("/usr/sbin/fence_ipmilan", "--ip=10.0.1.2", "--action=off"),
                          status=("/usr/sbin/fence_ipmilan", "--ip=10.0.1.2", "--action=status"))


@pytest.mark.parametrize(("answer", "verdict", "said"), [
    ((0, "Status: ON"), "ok", "answers on"),
    ((2, "Status: OFF"), "warn", "powered off?"),
    ((1, "Failed: Unable to connect"), "fail", "could never be verified"),
])
def test_each_peer_under_resource_and_stonith_has_a_power_fence_whose_status_works(
        answer: tuple[int, str], verdict: str, said: str) -> None:
    host = CannedHost({"/usr/sbin/fence_ipmilan --ip=10.0.1.2 --action=status": answer})
    (check,) = check_power_fences(host, _stonith_node(), {"himbeere": FENCE})
    assert (check.name, check.verdict) == ("power fence himbeere", verdict)
    assert said in check.detail


def test_resource_and_stonith_without_a_power_fence_fails_and_resource_only_skips() -> None:
    host = CannedHost({})
    (check,) = check_power_fences(host, _stonith_node(), {})
    assert check.verdict == "fail"
    assert "nodes.himbeere.power_fence" in check.detail
    (skipped,) = check_power_fences(host, desired_node(), {"himbeere": FENCE})
    assert skipped.verdict == "skip"


def _allowing_live_migration() -> DesiredNode:
    desired = desired_node()
    vm = desired.vms[0]
    domain = DesiredDomain(vm=vm.name, name=vm.name, memory_mib=512, maxmem_mib=512, vcpus=1, maxvcpus=1, disks=(),
                           config_path=f"/etc/xen/{vm.name}.cfg", config_text="", live_migration=True)
    allowing = vm.model_copy(update={"domain": domain})
    return desired.model_copy(update={"vms": (allowing, *desired.vms[1:])})


def test_no_transport_is_needed_without_a_vm_that_allows_live_migration() -> None:
    assert check_migration_transport(CannedHost({}), desired_node(), None).verdict == "ok"


def test_a_vm_that_allows_live_migration_needs_a_configured_transport() -> None:
    desired = _allowing_live_migration()
    missing = check_migration_transport(CannedHost({}), desired, "")
    assert missing.verdict == "fail"
    assert "RECONCILER_MIGRATE_TRANSPORT" in missing.detail
    assert desired.vms[0].name in missing.detail
    shell = check_migration_transport(CannedHost({}), desired, "ssh; rm -rf /")
    assert shell.verdict == "fail"
    assert "shell" in shell.detail


def test_the_transport_must_exist_and_reach_the_peer() -> None:
    desired = _allowing_live_migration()
    peer = desired.vms[0].peers[0]
    absent = check_migration_transport(CannedHost({}), desired, "ssh -o BatchMode=yes")
    assert absent.verdict == "fail"
    assert "not installed" in absent.detail
    refused = check_migration_transport(CannedHost({"ssh -o BatchMode=yes": (255, "")}), desired,
                                        "ssh -o BatchMode=yes")
    assert refused.verdict == "fail"
    assert f"cannot reach {peer}" in refused.detail
    good = check_migration_transport(CannedHost({f"ssh -o BatchMode=yes {peer} true": (0, "")}), desired,
                                     "ssh -o BatchMode=yes")
    assert good.verdict == "ok"
    assert peer in good.detail


# --- the fencing and migration checks ask the node's backends ----------------------------------------------


class _FencingReplicator(DrbdReplicator):
    """Another replicator whose resources all run the product's handler under a stonith policy, whatever their
    text says."""

    name = "other"

    @property
    def fence_handler(self) -> str:
        return "other-fence-handler"

    def fencing(self, desired: DesiredDrbd) -> ReplicaFencing:
        return ReplicaFencing(handler=True, stonith=True)


def test_the_fence_checks_ask_the_nodes_replicator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REPLICATORS, "other", _FencingReplicator())
    plain = desired_node()  # its DRBD text names neither the handler nor resource-and-stonith
    assert check_fence_path(plain, {}).detail == "no resource here uses `/usr/bin/reconciler fence-peer`"
    other = plain.model_copy(update={"backends": NodeBackends(replicator="other")})
    path = check_fence_path(other, {"himbeere": "10.9.0.2"})
    assert (path.verdict, path.detail) == ("ok", "himbeere at 10.9.0.2")
    (fence,) = check_power_fences(CannedHost({}), other, {})
    assert (fence.name, fence.verdict) == ("power fence himbeere", "fail")
    without = other.model_copy(update={"vms": ()})
    assert check_fence_path(without, {}).detail == "no resource here uses `other-fence-handler`"


def test_the_drbd_replicator_reads_its_rendered_text() -> None:
    drbd = DrbdReplicator()
    (stonith,) = (vm.drbd for vm in _stonith_node().vms if vm.drbd is not None)
    assert drbd.fencing(stonith) == ReplicaFencing(handler=False, stonith=True)
    (plain,) = (vm.drbd for vm in desired_node().vms if vm.drbd is not None)
    text = 'handlers {\n    fence-peer "/usr/bin/reconciler fence-peer";\n}'
    handled = plain.model_copy(update={"config_text": text})
    assert drbd.fencing(handled) == ReplicaFencing(handler=True, stonith=False)
    assert drbd.fencing(plain) == ReplicaFencing(handler=False, stonith=False)


def test_the_shared_doctor_imports_no_backend_package() -> None:
    tree = ast.parse((Path(__file__).resolve().parents[2] / "reconciler/daemon/node/doctor.py").read_text())
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not [m for m in imported if m.startswith(("reconciler.backends.drbd", "reconciler.backends.xen"))]


def test_the_migration_transport_is_xens_check_at_its_place_with_the_daemons_setting() -> None:
    desired = _allowing_live_migration()
    peer = desired.vms[0].peers[0]
    host = CannedHost({f"ssh -o BatchMode=yes {peer} true": (0, "")})
    checks = run_checks(host, "erdbeere", desired, settings={"RECONCILER_MIGRATE_TRANSPORT": "ssh -o BatchMode=yes"})
    names = [c.name for c in checks]
    assert names.index("Xen ballooning") + 1 == names.index("migration transport")
    assert names.index("migration transport") + 1 == names.index("replication addresses")
    found = next(c for c in checks if c.name == "migration transport")
    assert (found.verdict, found.detail) == ("ok", f"`ssh -o BatchMode=yes` reaches {peer} (vm100)")
    unset = next(c for c in run_checks(host, "erdbeere", desired) if c.name == "migration transport")
    assert unset.verdict == "fail"
    assert "set RECONCILER_MIGRATE_TRANSPORT" in unset.detail
    # A node without Xen's doctor has no such check.
    others = [c.name for c in run_checks(host, "erdbeere", desired, doctors=DOCTORS[:3])]
    assert "migration transport" not in others


def test_the_cli_gives_the_checks_the_daemons_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.cli.cmd_doctor import _daemon_settings

    env_file = tmp_path / "reconciler.env"
    env_file.write_text("RECONCILER_MIGRATE_TRANSPORT='ssh -p 2222'\nRECONCILER_PEERS=himbeere=10.0.0.2:9791\n"
                        "OTHER=1\n")
    monkeypatch.setenv("RECONCILER_PEERS", "")  # empty in the environment: the file's
    monkeypatch.setenv("RECONCILER_MIGRATE_TRANSPORT", "ssh -o BatchMode=yes")
    settings = _daemon_settings(argparse.Namespace(env_file=str(env_file)))
    assert settings["RECONCILER_MIGRATE_TRANSPORT"] == "ssh -o BatchMode=yes"
    assert settings["RECONCILER_PEERS"] == "himbeere=10.0.0.2:9791"
    assert "OTHER" not in settings

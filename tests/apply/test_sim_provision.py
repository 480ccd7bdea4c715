"""One-time provisioning on the simulated cluster: once, on the primary, recorded in the label; failure, retry by
statement, crash, failover."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply.lastlook import LastLook
from reconciler.core.actions import Action
from reconciler.host.base import CommandResult, Host, HostWrapper
from reconciler.observe.observer import Observer
from reconciler.sim import faults, oracle
from reconciler.sim.host import SimHost
from reconciler.sim.state import content, resolve_device
from tests.apply.simlab import NODES, SimLab, edit_vm, init_cluster
from tests.conftest import EXAMPLE_DIR

CONFIG = "/etc/reconciler/provisioning.toml"
NODE_CONFIG = """image_roots = ["/srv/images"]

[provisioners.sim-debootstrap]
command = ["/usr/sbin/debootstrap", "--variant=minbase", "bookworm", "{target}"]
"""
IMAGE = "/srv/images/busybox.tar"


@pytest.fixture
def lab(tmp_path: Path) -> SimLab:
    init_cluster(tmp_path / "sim")
    desired = tmp_path / "desired"
    shutil.copytree(EXAMPLE_DIR, desired)
    lab = SimLab(tmp_path / "sim", desired_dir=desired)
    for node in NODES:
        host = SimHost(lab.directory, node)
        host.write_file(CONFIG, NODE_CONFIG, 0o644)
        host.write_file(IMAGE, "busybox root filesystem archive\n", 0o644)
        host.write_file("/usr/sbin/debootstrap", "I: Base system installed successfully.\n", 0o755)
    return lab


def provision(lab: SimLab, setting: str) -> None:
    """vm101 (primary himbeere) gets ``provision: {setting}``."""
    path = lab.desired_dir / "vms" / "vm101.yaml"
    path.write_text(path.read_text() + f"\nprovision: {setting}\n")


def signature(lab: SimLab, node: str, device: str = "/dev/drbd1") -> dict[str, Any]:
    state = lab.cluster.read()
    key = resolve_device(state, node, device)
    assert key is not None
    found = content(state, key)["signature"]
    assert isinstance(found, dict)
    return found


def ran(lab: SimLab, word: str, node: str | None = None) -> list[list[str]]:
    return [e["argv"] for e in lab.log() if word in e["argv"] and (node is None or e["node"] == node)]


def action(step: Any, kind: str) -> Any:
    assert step.result is not None
    return next(a for a in step.result.actions if a.kind == kind)


def test_an_image_is_copied_once_on_the_primary_and_recorded_in_the_label(lab: SimLab) -> None:
    # The start proves every disk unused, a swap LV too: vm101 gets one here (so it cannot move live).
    edit_vm(lab, "vm101", r"live_migration: true", "live_migration: false")
    edit_vm(lab, "vm101", r"^swap:\n  volume_groups: \[\]$", "swap:\n  size: 1G\n  volume_groups: [vg-sda]")
    provision(lab, f"{{image: {IMAGE}}}")
    last = lab.converge()
    assert all(s.plan.is_empty for s in last.values()), {n: [a.id for a in s.plan.actions] for n, s in last.items()}
    state = lab.cluster.read()
    assert set(state["nodes"]["himbeere"]["domains"]) == {"vm101"}
    found = signature(lab, "himbeere")
    assert found["label"] == "rprov-done"
    assert found["tree"]["source"] == f"image {IMAGE}"
    # The peer's replica carries the same record (DRBD replicated it).
    assert signature(lab, "erdbeere")["label"] == "rprov-done"
    runs = ran(lab, "provision-run")
    assert len(runs) == 1
    assert runs[0][:8] == ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                                               "--kill-child", "--"]
    labels = list(ran(lab, "xfs_admin"))
    assert labels == [["xfs_admin", "-L", "rprov-try1", "/dev/drbd1"], ["xfs_admin", "-L", "rprov-done", "/dev/drbd1"]]
    mkfs = ran(lab, "mkfs.xfs", "himbeere")
    assert ["mkfs.xfs", "-L", "rprov-new", "/dev/drbd1"] in mkfs
    # The helper's mount never reached dom0's mount table, and the domain started only after it.
    assert not any("/dev/drbd1" in m["device"] for n in NODES for m in state["nodes"][n].get("mounts", []))
    log = [e["argv"] for e in lab.log() if e["node"] == "himbeere"]
    filled = log.index(runs[0])
    started = log.index(["xl", "create", "/etc/xen/vm101.cfg"])
    assert filled < log.index(["xfs_admin", "-L", "rprov-done", "/dev/drbd1"]) < started
    assert log.index(["/usr/bin/reconciler", "helper", "unused", "/dev/drbd1", "/dev/vg-sda/swap101"]) < started
    assert oracle.check(state) == []


def test_a_failover_and_a_restart_never_provision_again(lab: SimLab) -> None:
    provision(lab, "{provisioner: sim-debootstrap}")
    lab.converge()
    assert len(ran(lab, "provision-run")) == 1
    # A move by shutdown and start (a live migration needs two daemons and their peer channel, not this lab).
    edit_vm(lab, "vm101", r"live_migration: true", "live_migration: false")
    edit_vm(lab, "vm101", r"^primary: himbeere", "primary: erdbeere")
    last = lab.converge(passes=8)
    assert all(s.plan.is_empty for s in last.values()), {n: [a.id for a in s.plan.actions] for n, s in last.items()}
    state = lab.cluster.read()
    assert "vm101" in state["nodes"]["erdbeere"]["domains"]
    assert len(ran(lab, "provision-run")) == 1, "provisioned again after the move"
    moved = [a for s in (lab.apply("erdbeere"),) for a in s.plan.actions]
    assert moved == []
    assert oracle.check(state) == []


def test_a_failed_provisioner_leaves_the_vm_failed_until_a_new_attempt(lab: SimLab) -> None:
    SimHost(lab.directory, "himbeere").write_file(
        "/usr/sbin/debootstrap", "#!sim fail 3\nE: Failed getting release file http://deb.example/dists/Release\n",
        0o755)
    provision(lab, "{provisioner: sim-debootstrap}")
    lab.converge(passes=3)
    step = lab.apply("himbeere")
    failed = action(step, "provision-fs")
    assert failed.result == "failed"
    assert "attempt 1" in failed.message
    assert "provision: attempt: 2" in failed.message
    assert "Failed getting release file" in failed.message  # the command's output, repeated from the node's record
    assert action(step, "start-domain").result == "skipped"
    assert "vm101" not in lab.cluster.read()["nodes"]["himbeere"]["domains"]
    assert len(ran(lab, "provision-run")) == 1, "retried without a new statement"
    assert signature(lab, "himbeere")["label"] == "rprov-try1"
    # A new statement retries: the failed attempt left files, so it refuses to fill a non-empty filesystem.
    SimHost(lab.directory, "himbeere").write_file("/usr/sbin/debootstrap", "I: done\n", 0o755)
    provision_attempt(lab, 2)
    step = lab.apply("himbeere")
    again = action(step, "provision-fs")
    assert again.result == "failed"
    assert "not empty" in again.message
    assert len(ran(lab, "provision-run")) == 2


def provision_attempt(lab: SimLab, attempt: int) -> None:
    path = lab.desired_dir / "vms" / "vm101.yaml"
    text = path.read_text()
    head, _, setting = text.rpartition("\nprovision: ")
    setting = setting.strip().rstrip("}")
    setting = setting.split(", attempt:")[0]
    path.write_text(f"{head}\nprovision: {setting}, attempt: {attempt}}}\n")


def test_a_failure_before_anything_was_written_is_retried_by_a_new_attempt(lab: SimLab) -> None:
    provision(lab, f"{{image: {IMAGE}}}")
    with lab.cluster.transaction() as state:
        faults.add_fault(state, "permanent", node="himbeere", prefix=["unshare"],
                                 message="unshare: unshare failed: Operation not permitted\n")
    lab.converge(passes=3)
    step = lab.apply("himbeere")
    assert action(step, "provision-fs").result == "failed"
    assert "Operation not permitted" in action(step, "provision-fs").message
    with lab.cluster.transaction() as state:
        faults.clear(state)
    assert action(lab.apply("himbeere"), "provision-fs").result == "failed"  # still: no new statement
    provision_attempt(lab, 2)
    last = lab.converge()
    assert all(s.plan.is_empty for s in last.values())
    assert signature(lab, "himbeere")["label"] == "rprov-done"
    assert "vm101" in lab.cluster.read()["nodes"]["himbeere"]["domains"]


def test_a_timeout_is_a_failure_with_its_words(lab: SimLab) -> None:
    SimHost(lab.directory, "himbeere").write_file("/usr/sbin/debootstrap", "#!sim hang\n", 0o755)
    provision(lab, "{provisioner: sim-debootstrap, timeout: 600}")
    lab.converge(passes=3)
    failed = action(lab.apply("himbeere"), "provision-fs")
    assert failed.result == "failed"
    assert "timed out" in failed.message


def test_a_provisioner_missing_on_the_node_fails_before_the_attempt_is_recorded(lab: SimLab) -> None:
    SimHost(lab.directory, "himbeere").remove_file(CONFIG)
    provision(lab, "{provisioner: sim-debootstrap}")
    lab.converge(passes=3)
    failed = action(lab.apply("himbeere"), "provision-fs")
    assert failed.result == "failed"
    assert f"{CONFIG} does not exist" in failed.message
    assert signature(lab, "himbeere")["label"] == "rprov-new"  # no attempt recorded: the node's fault, not the VM's
    SimHost(lab.directory, "himbeere").write_file(CONFIG, NODE_CONFIG, 0o644)
    last = lab.converge()
    assert all(s.plan.is_empty for s in last.values())
    assert signature(lab, "himbeere")["label"] == "rprov-done"


class Crash(BaseException):
    """The daemon dies in the middle of the step (nothing after it runs, not even the journal's cleanup)."""


class CrashingHost(HostWrapper):
    def run(self, argv: Any, *, timeout: float = 60.0, stdin: str | None = None) -> CommandResult:
        if argv and argv[0] == "unshare":
            raise Crash
        return self._inner.run(argv, timeout=timeout, stdin=stdin)


def test_a_crash_in_the_middle_is_failed_with_the_journal_and_redone_only_by_a_new_attempt(lab: SimLab) -> None:
    provision(lab, f"{{image: {IMAGE}}}")

    def bring_up() -> None:
        """Until the pass that reaches vm101's provisioning dies in it."""
        for _ in range(6):
            lab.apply("himbeere", wrap=CrashingHost)
            lab.apply("erdbeere")
            lab.cluster.advance(3600)

    with pytest.raises(Crash):
        bring_up()
    assert signature(lab, "himbeere")["label"] == "rprov-try1"
    journal = SimHost(lab.directory, "himbeere").read_file("/var/lib/reconciler/journal.json") or ""
    assert "provision-fs" in journal
    failed = action(lab.apply("himbeere"), "provision-fs")
    assert failed.result == "failed"
    assert "interrupted (the crash journal names it)" in failed.message
    assert ran(lab, "provision-run") == []
    provision_attempt(lab, 2)
    last = lab.converge()
    assert all(s.plan.is_empty for s in last.values())
    assert signature(lab, "himbeere")["label"] == "rprov-done"
    assert len(ran(lab, "provision-run")) == 1
    assert oracle.check(lab.cluster.read()) == []


def test_an_existing_filesystem_is_never_provisioned_and_the_domain_starts(lab: SimLab) -> None:
    last = lab.converge()
    assert all(s.plan.is_empty for s in last.values())
    provision(lab, f"{{image: {IMAGE}}}")
    assert lab.apply("himbeere").plan.is_empty  # the domain runs: nothing to do
    run = SimHost(lab.directory, "himbeere").run(["xl", "shutdown", "-w", "vm101"], timeout=60)
    assert run.ok, run.describe()
    step = lab.apply("himbeere")
    left = action(step, "provision-fs")
    assert left.result == "unchanged"
    assert "not made for provisioning" in left.message
    assert "left alone" in left.message
    assert action(step, "start-domain").result == "ok"
    assert ran(lab, "provision-run") == []


# XFS labels hold 12 characters (cloud images' "cloudimg-rootfs" is an ext4 label): a label a guest may choose.
@pytest.mark.parametrize("label", ["rootfs", "rprov-tryX"])
def test_a_guest_relabelling_its_filesystem_does_not_keep_the_vm_down(lab: SimLab, label: str) -> None:
    # The guest owns the block device: cloud images expect LABEL=cloudimg-rootfs, an admin may run xfs_admin -L.
    provision(lab, f"{{image: {IMAGE}}}")
    lab.converge()
    assert signature(lab, "himbeere")["label"] == "rprov-done"
    host = SimHost(lab.directory, "himbeere")
    assert host.run(["xl", "shutdown", "-w", "vm101"], timeout=60).ok
    # What the guest did to its own disk while it ran (here done from dom0 while it is stopped).
    relabel = host.run(["xfs_admin", "-L", label, "/dev/drbd1"], timeout=60)
    assert relabel.ok, relabel.describe()
    step = lab.apply("himbeere")
    left = action(step, "provision-fs")
    assert left.result == "unchanged"
    assert f"label {label}" in left.message
    assert action(step, "start-domain").result == "ok"
    assert signature(lab, "himbeere")["label"] == label  # nothing rewrote the guest's label
    assert len(ran(lab, "provision-run")) == 1  # the first provisioning only


def test_a_start_is_refused_while_the_device_is_mounted_where_proc_mounts_does_not_show_it(lab: SimLab) -> None:
    provision(lab, "{provisioner: sim-debootstrap}")  # only a VM that names provisioning is checked so
    last = lab.converge()
    assert all(s.plan.is_empty for s in last.values())
    host: Host = SimHost(lab.directory, "himbeere")
    assert host.run(["xl", "shutdown", "-w", "vm101"], timeout=60).ok
    assert host.run(["mount", "/dev/drbd1", "/mnt"], timeout=60).ok

    class HiddenMounts(HostWrapper):
        """dom0's mount table as a process in another mount namespace reads it."""

        def read_file(self, path: str) -> str | None:
            text = self._inner.read_file(path)
            if path.endswith("/mounts") and text is not None:
                return "".join(line + "\n" for line in text.splitlines() if "/dev/drbd1" not in line)
            return text

    step = lab.apply("himbeere", wrap=HiddenMounts)
    # provision-fs (done already, so nothing to fill) runs the same check first; the start never runs.
    refused = action(step, "provision-fs")
    assert refused.result == "refused"
    assert "exclusive open" in refused.message
    assert "/dev/drbd1" in refused.message
    assert action(step, "start-domain").result == "skipped"
    assert "vm101" not in lab.cluster.read()["nodes"]["himbeere"]["domains"]


def test_a_stopped_domain_starts_again_without_a_second_provisioning(lab: SimLab) -> None:
    provision(lab, f"{{image: {IMAGE}}}")
    lab.converge()
    assert SimHost(lab.directory, "himbeere").run(["xl", "shutdown", "-w", "vm101"], timeout=60).ok
    step = lab.apply("himbeere")
    done = action(step, "provision-fs")
    assert (done.result, done.message) == ("unchanged", "/dev/drbd1 is provisioned already (label rprov-done)")
    assert action(step, "start-domain").result == "ok"
    assert len(ran(lab, "provision-run")) == 1


def provision_action(vm: str, device: str) -> Action:
    return Action(id=f"provision-fs@provision:{device}", kind="provision-fs", key=f"provision:{device}", vm=vm,
                  change="create", description="", devices=(device,), identity="1")


def test_the_last_look_refuses_a_secondary_and_a_running_domain(lab: SimLab) -> None:
    last = lab.converge()
    assert all(s.plan.is_empty for s in last.values())
    secondary = SimHost(lab.directory, "erdbeere")
    stop = LastLook(secondary, Observer(secondary)).check(provision_action("vm101", "/dev/drbd1"))
    assert stop is not None
    assert stop.result == "refused"
    assert "this node is Secondary, not Primary" in stop.reason
    primary = SimHost(lab.directory, "himbeere")
    stop = LastLook(primary, Observer(primary)).check(provision_action("vm101", "/dev/drbd1"))
    assert stop is not None
    assert stop.result == "refused"
    assert "the domain vm101 exists on this node" in stop.reason
    assert primary.run(["xl", "shutdown", "-w", "vm101"], timeout=60).ok
    assert LastLook(primary, Observer(primary)).check(provision_action("vm101", "/dev/drbd1")) is None
    assert primary.run(["mount", "/dev/drbd1", "/mnt"], timeout=60).ok
    stop = LastLook(primary, Observer(primary)).check(provision_action("vm101", "/dev/drbd1"))
    assert stop is not None
    assert "cannot prove /dev/drbd1 unused by an exclusive open" in stop.reason


def test_a_guest_setting_rprov_new_on_its_filesystem_is_not_provisioned_again(lab: SimLab) -> None:
    # The label is within the guest's reach; this node's record of making the filesystem went with the first
    # attempt, so dom0 does not mount what the guest left until the desired state names a new attempt.
    provision(lab, f"{{image: {IMAGE}}}")
    lab.converge()
    host = SimHost(lab.directory, "himbeere")
    assert host.run(["xl", "shutdown", "-w", "vm101"], timeout=60).ok
    assert host.run(["xfs_admin", "-L", "rprov-new", "/dev/drbd1"], timeout=60).ok
    step = lab.apply("himbeere")
    failed = action(step, "provision-fs")
    assert failed.result == "failed"
    assert "no record of making it for provisioning" in failed.message
    assert "what it said" not in failed.message
    assert len(ran(lab, "provision-run")) == 1  # the first provisioning only
    assert signature(lab, "himbeere")["label"] == "rprov-new"


def test_a_failover_before_provisioning_waits_for_a_new_attempt_and_then_provisions_on_the_new_primary(
        lab: SimLab) -> None:
    SimHost(lab.directory, "himbeere").remove_file(CONFIG)
    provision(lab, "{provisioner: sim-debootstrap}")
    lab.converge(passes=3)
    assert signature(lab, "himbeere")["label"] == "rprov-new"  # made on himbeere, never filled
    edit_vm(lab, "vm101", r"live_migration: true", "live_migration: false")
    edit_vm(lab, "vm101", r"^primary: himbeere", "primary: erdbeere")
    lab.converge(passes=6)
    failed = action(lab.apply("erdbeere"), "provision-fs")
    assert failed.result == "failed"
    assert "no record of making it for provisioning" in failed.message
    assert ran(lab, "provision-run") == []
    provision_attempt(lab, 2)
    last = lab.converge(passes=8)
    assert all(s.plan.is_empty for s in last.values()), {n: [a.id for a in s.plan.actions] for n, s in last.items()}
    assert signature(lab, "erdbeere")["label"] == "rprov-done"
    assert len(ran(lab, "provision-run", "erdbeere")) == 1
    assert "vm101" in lab.cluster.read()["nodes"]["erdbeere"]["domains"]


def test_a_vm_without_provisioning_starts_without_the_exclusive_open_helper(lab: SimLab) -> None:
    # The helper is a Python start (over 30 s on an emulated CPU): only a VM that names provisioning pays it.
    provision(lab, "{provisioner: sim-debootstrap}")
    lab.converge()
    state = lab.cluster.read()
    assert "vm100" in state["nodes"]["erdbeere"]["domains"]
    assert "vm101" in state["nodes"]["himbeere"]["domains"]
    checks = ran(lab, "unused")
    assert checks, "vm101 names provisioning: its start proves its disks unused"
    assert all("/dev/drbd1" in argv for argv in checks), checks  # vm100 (/dev/drbd0) never asked

"""Domains start in their own scope under systemd; node shutdown order (domains, demote, down)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from reconciler.daemon.node.scope import ScopedHost, domain_unit, scoped_argv
from reconciler.daemon.node.shutdown import shutdown_node
from reconciler.host.base import CommandResult
from reconciler.model.desired import DesiredDomain
from reconciler.model.observed import DomainState, DrbdResourceState, DrbdState, ObservedNode
from reconciler.names import UnsafeNameError
from tests.daemon.fakes import desired_node


class ScriptedHost:
    def __init__(self, failing: Sequence[str] = ()) -> None:
        self.ran: list[tuple[str, ...]] = []
        self.failing = tuple(failing)

    @property
    def node(self) -> str:
        return "erdbeere"

    def run(self, argv: Sequence[str], *, timeout: float = 60, stdin: str | None = None) -> CommandResult:
        args = tuple(argv)
        self.ran.append(args)
        code = 1 if " ".join(args) in self.failing else 0
        return CommandResult(args, code, "", "guest did not answer" if code else "")

    def read_file(self, path: str) -> str | None:
        return None

    def list_dir(self, path: str) -> tuple[str, ...]:
        return ()

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        return None

    def remove_file(self, path: str) -> None:
        return None


def test_only_domain_starts_become_transient_services() -> None:
    argv = scoped_argv(("xl", "create", "/etc/xen/vm100.cfg"))
    # A service PID 1 starts, not a scope: a scope's processes would keep the daemon's sandbox.
    assert argv[:5] == ("systemd-run", "--unit=reconciler-domain-vm100.service", "--slice=machine.slice",
                        "--service-type=forking", "--collect")
    assert "--scope" not in argv
    assert argv[-4:] == ("--", "xl", "create", "/etc/xen/vm100.cfg")
    # Stopped after the shutdown unit's ExecStop, so the xl monitor can still destroy the shut-down domain.
    assert "--property=Before=reconciler-shutdown.service" in argv
    assert scoped_argv(("xl", "shutdown", "-w", "vm100")) == ("xl", "shutdown", "-w", "vm100")
    assert domain_unit("db+1") == "reconciler-domain-db\\x2b1.service"  # '+' is not allowed in unit names
    with pytest.raises(UnsafeNameError):
        scoped_argv(("xl", "create", "/etc/xen/-rf.cfg"))
    inner = ScriptedHost()
    ScopedHost(inner).run(("xl", "create", "/etc/xen/vm100.cfg"))
    assert inner.ran[0][0] == "systemd-run"


def test_a_failed_start_carries_what_xl_said_from_the_unit_journal() -> None:
    class FailingStart(ScriptedHost):
        def run(self, argv: Sequence[str], *, timeout: float = 60, stdin: str | None = None) -> CommandResult:
            args = tuple(argv)
            self.ran.append(args)
            if args[0] == "journalctl":
                return CommandResult(args, 0, "libxl: error: cannot find /dev/drbd0\n", "")
            return CommandResult(args, 1, "", "Job for reconciler-domain-vm100.service failed.")

    inner = FailingStart()
    result = ScopedHost(inner).run(("xl", "create", "/etc/xen/vm100.cfg"))
    assert not result.ok
    assert result.stderr == "Job for reconciler-domain-vm100.service failed.\nlibxl: error: cannot find /dev/drbd0"
    assert inner.ran[1][-1] == "--unit=reconciler-domain-vm100.service"


def with_domains(*names: str) -> object:
    node = desired_node(vms=names)
    vms = tuple(vm.model_copy(update={"domain": DesiredDomain(
        vm=vm.name, name=vm.name, memory_mib=512, maxmem_mib=512, vcpus=1, maxvcpus=1, disks=(),
        config_path=f"/etc/xen/{vm.name}.cfg", config_text="")}) for vm in node.vms)
    return node.model_copy(update={"vms": vms})


def observed(*running: str) -> ObservedNode:
    return ObservedNode(
        node="erdbeere",
        domains=tuple(DomainState(name=n, domid=i + 1, state="running", memory_mib=512) for i, n in enumerate(running)),
        drbd=DrbdState(kernel_version="9.2.12", resources=(
            DrbdResourceState(name="vm100", role="Primary"), DrbdResourceState(name="vm101", role="Secondary"))))


def test_shutdown_stops_domains_then_demotes_then_downs() -> None:
    host = ScriptedHost()
    report = shutdown_node(host, with_domains("vm100", "vm101"), observed("vm100"))  # type: ignore[arg-type]
    assert report.ok
    assert host.ran == [("xl", "shutdown", "-w", "vm100"), ("drbdadm", "secondary", "vm100"),
                        ("drbdadm", "down", "vm100"), ("drbdadm", "down", "vm101")]


def test_a_domain_that_does_not_stop_keeps_its_drbd_primary() -> None:
    host = ScriptedHost(failing=["xl shutdown -w vm100"])
    report = shutdown_node(host, with_domains("vm100", "vm101"), observed("vm100"))  # type: ignore[arg-type]
    assert not report.ok
    assert ("drbdadm", "secondary", "vm100") not in host.ran
    assert ("xl", "destroy", "vm100") not in host.ran
    assert ("drbdadm", "down", "vm101") in host.ran
    assert any("vm100 did not shut down" in f for f in report.failures)


def test_a_provisioning_runs_as_a_transient_service_waited_for_with_its_output() -> None:
    from reconciler.core.provisioning import run_argv

    planned = run_argv("vm100", "/dev/drbd0", None, "/srv/images/busybox.tar", 600)
    argv = scoped_argv(planned)
    # The daemon's own sandbox may neither mount nor make namespaces: PID 1 runs it with systemd's defaults.
    assert argv[:2] == ("systemd-run", "--unit=reconciler-provision-vm100.service")
    assert {"--wait", "--pipe", "--collect", "--property=RuntimeMaxSec=660"} <= set(argv)
    assert argv[argv.index("--") + 1:] == planned
    assert scoped_argv(("unshare", "--mount", "--", "true")) == ("unshare", "--mount", "--", "true")
    with pytest.raises(UnsafeNameError):
        scoped_argv(("unshare", "--", "reconciler", "helper", "provision-run", "--vm", "a;b", "--timeout", "60"))

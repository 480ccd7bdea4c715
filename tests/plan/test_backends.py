"""Xen and DRBD behind the Hypervisor and Replicator protocols: the same argv as ever, and a plan built
with another backend runs that backend's commands, through the same gate and order."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reconciler.apply.deepcheck import drbd_dry_run
from reconciler.backends.drbd.replicator import DrbdReplicator
from reconciler.backends.registry import DEFAULT_BACKENDS, HYPERVISORS, REPLICATORS
from reconciler.backends.xen.hypervisor import XenHypervisor
from reconciler.core.seams import Argv, Backends
from reconciler.daemon.node.shutdown import shutdown_node
from reconciler.model.desired import NodeBackends
from reconciler.names import UnsafeNameError
from reconciler.plan.diff import plan_node
from tests.apply.fakes import FakeHost
from tests.plan.factories import converged, drbd_state, empty_observed, make_node, make_vm

XEN = XenHypervisor()
DRBD = DrbdReplicator()


def test_the_registry_holds_xen_and_drbd_as_the_default() -> None:
    assert list(HYPERVISORS) == ["xen"]
    assert list(REPLICATORS) == ["drbd"]
    assert Backends(HYPERVISORS["xen"], REPLICATORS["drbd"]) == DEFAULT_BACKENDS
    assert (DEFAULT_BACKENDS.hypervisor.tool, DEFAULT_BACKENDS.replicator.tool) == ("xl", "drbd")


def test_xen_commands_are_the_xl_command_lines() -> None:
    assert XEN.config_path("vm100") == "/etc/xen/vm100.cfg"
    assert XEN.start_argv("vm100") == ("xl", "create", "/etc/xen/vm100.cfg")
    assert XEN.shutdown_argv("vm100") == ("xl", "shutdown", "-w", "vm100")
    assert XEN.set_memory_argv("vm100", 2048) == ("xl", "mem-set", "vm100", "2048m")
    assert XEN.set_vcpus_argv("vm100", 3) == ("xl", "vcpu-set", "vm100", "3")
    assert XEN.watch_argv() == ("xl", "list")


def test_drbd_commands_are_the_drbdadm_command_lines() -> None:
    assert DRBD.config_path("vm100") == "/etc/drbd.d/vm100.res"
    assert DRBD.create_metadata_argv("vm100") == ("drbdadm", "create-md", "--force", "vm100")
    assert [DRBD.up_argv("vm100"), DRBD.down_argv("vm100"), DRBD.adjust_argv("vm100"), DRBD.resize_argv("vm100")] \
        == [("drbdadm", verb, "vm100") for verb in ("up", "down", "adjust", "resize")]
    assert DRBD.promote_argv("vm100") == ("drbdadm", "primary", "vm100")
    assert DRBD.promote_argv("vm100", force=True) == ("drbdadm", "primary", "--force", "vm100")
    assert DRBD.demote_argv("vm100") == ("drbdadm", "secondary", "vm100")
    # What the daemon's online verify, the last look and the split-brain handler, and the deep check run.
    assert [DRBD.disconnect_argv("vm100"), DRBD.connect_argv("vm100"), DRBD.verify_argv("vm100"),
            DRBD.generation_ids_argv("vm100")] \
        == [("drbdadm", verb, "vm100") for verb in ("disconnect", "connect", "verify", "show-gi")]
    assert DRBD.dry_run_adjust_argv("vm100") == ("drbdadm", "-d", "adjust", "vm100")


@pytest.mark.parametrize(("build", "what"), [
    (XEN.config_path, "domain"), (XEN.start_argv, "domain"), (XEN.shutdown_argv, "domain"),
    (lambda name: XEN.set_memory_argv(name, 2048), "domain"), (lambda name: XEN.set_vcpus_argv(name, 2), "domain"),
    (DRBD.config_path, "DRBD resource"), (DRBD.create_metadata_argv, "DRBD resource"), (DRBD.up_argv, "DRBD resource"),
    (DRBD.down_argv, "DRBD resource"), (DRBD.promote_argv, "DRBD resource"), (DRBD.demote_argv, "DRBD resource"),
    (DRBD.verify_argv, "DRBD resource"), (DRBD.generation_ids_argv, "DRBD resource"),
    (DRBD.dry_run_adjust_argv, "DRBD resource"),
])
def test_unsafe_names_never_reach_an_argv_and_the_refusal_says_what_the_name_was_for(
        build: Callable[[str], object], what: str) -> None:
    with pytest.raises(UnsafeNameError) as raised:
        build("-rf /")
    assert str(raised.value) == (f"{what} '-rf /' is not a safe name: it starts with '-', which a command would "
                                 "read as an option")


def test_the_peer_can_take_over_only_connected_with_up_to_date_data() -> None:
    assert DRBD.peer_can_take_over(drbd_state("vm100", 0))
    assert not DRBD.peer_can_take_over(drbd_state("vm100", 0, peer_disk="Inconsistent"))
    assert not DRBD.peer_can_take_over(drbd_state("vm100", 0, conn="Connecting"))


class OtherHypervisor(XenHypervisor):
    """Stands in for another hypervisor: its own command lines, Xen's config paths."""

    def start_argv(self, domain: str) -> Argv:
        return ("other", "start", domain)

    def shutdown_argv(self, domain: str) -> Argv:
        return ("other", "shutdown", domain)

    def destroy_argv(self, domain: str) -> Argv:
        return ("other", "destroy", domain)


OTHER = Backends(hypervisor=OtherHypervisor(), replicator=DRBD)


def test_a_plan_runs_the_given_hypervisors_commands_in_the_same_order() -> None:
    desired = make_node(make_vm(100))
    xen_plan = plan_node(desired, empty_observed())
    other_plan = plan_node(desired, empty_observed(), backends=OTHER)
    assert [a.id for a in other_plan.actions] == [a.id for a in xen_plan.actions]
    start = next(a for a in other_plan.actions if a.kind == "start-domain")
    assert start.argvs == (("other", "start", "vm100"),)
    assert all(argv[0] != "xl" for a in other_plan.actions for argv in a.argvs)


def test_a_moved_domain_is_shut_down_with_the_given_hypervisor() -> None:
    before = make_node(make_vm(100))
    after = make_node(make_vm(100, primary="himbeere"))
    plan = plan_node(after, converged(before), moved_away={"vm100"}, backends=OTHER)
    stop = next(a for a in plan.actions if a.kind == "shutdown-domain")
    assert stop.argvs == (("other", "shutdown", "vm100"),)


def test_shutdown_of_the_node_uses_the_given_backends() -> None:
    desired = make_node(make_vm(100))
    host = FakeHost()
    report = shutdown_node(host, desired, converged(desired), backends=OTHER)  # type: ignore[arg-type]
    assert report.ok, report.failures
    assert [c for c in host.calls if c[0] in ("other", "drbdadm")] == [
        ("other", "shutdown", "vm100"), ("drbdadm", "secondary", "vm100"), ("drbdadm", "down", "vm100")]


class OtherReplicator(DrbdReplicator):
    """Stands in for another replicator: its own dry-run command line, DRBD's everything else."""

    @property
    def name(self) -> str:
        return "other"

    def dry_run_adjust_argv(self, resource: str) -> Argv:
        return ("other-repl", "would-adjust", resource)


def _registered(monkeypatch: pytest.MonkeyPatch) -> NodeBackends:
    monkeypatch.setitem(HYPERVISORS, "other", OtherHypervisor())  # type: ignore[index]
    monkeypatch.setitem(REPLICATORS, "other", OtherReplicator())  # type: ignore[index]
    return NodeBackends(hypervisor="other", replicator="other")


def test_the_planner_and_shutdown_take_the_pair_the_node_names(monkeypatch: pytest.MonkeyPatch) -> None:
    desired = make_node(make_vm(100)).model_copy(update={"backends": _registered(monkeypatch)})
    start = next(a for a in plan_node(desired, empty_observed()).actions if a.kind == "start-domain")
    assert start.argvs == (("other", "start", "vm100"),)
    host = FakeHost()
    assert shutdown_node(host, desired, converged(desired)).ok  # type: ignore[arg-type]
    assert ("other", "shutdown", "vm100") in host.calls


def test_the_deep_check_asks_the_nodes_replicator(monkeypatch: pytest.MonkeyPatch) -> None:
    desired = make_node(make_vm(100)).model_copy(update={"backends": _registered(monkeypatch)})
    host = FakeHost()
    drbd_dry_run(host, desired, converged(desired))  # type: ignore[arg-type]
    assert [c for c in host.calls if c[0] in ("other-repl", "drbdadm")] == [("other-repl", "would-adjust", "vm100")]


class _Identity:
    source, minor, disk, port = "/etc/other/vm100.conf", 5, None, None


class IdentityReplicator(DrbdReplicator):
    """Another replicator's config files, which say vm100 is minor 5 here."""

    def config_identities(self, files: object, node: str) -> tuple[dict[str, _Identity], str]:  # type: ignore[override]
        return {"vm100": _Identity()}, ""


def test_the_identity_check_reads_the_replicators_config_files() -> None:
    desired = make_node(make_vm(100))
    plan = plan_node(desired, empty_observed(), backends=Backends(hypervisor=XEN, replicator=IdentityReplicator()))
    assert [r.vm for r in plan.refused_vms] == ["vm100"]
    assert "minor would change from 5 to 0 (/etc/other/vm100.conf)" in plan.refused_vms[0].reason
    assert plan_node(desired, empty_observed()).refused_vms == ()

"""The observer runs the registered fact providers in order; a backend is one registration."""

from __future__ import annotations

from reconciler.backends.dm import parse as dmsetup
from reconciler.backends.drbd import drbd9
from reconciler.backends.drbd.show import SHOW_ARGV
from reconciler.backends.lvm import parse as lvm
from reconciler.backends.providers import FACT_PROVIDERS, FRESH_READS
from reconciler.backends.xen import xl
from reconciler.core.facts import FactProvider, FreshContext, NodeFacts, PassContext
from reconciler.model.observed import ToolStatus
from reconciler.observe.observer import Observer
from tests.observe.scripted import Answer, full_node

PASS_ARGVS = [lvm.VGS_ARGV, lvm.LVS_ARGV, dmsetup.INFO_ARGV, dmsetup.TABLE_ARGV, drbd9.STATUS_ARGV, SHOW_ARGV,
              xl.XL_LIST_ARGV, xl.XL_LIST_LONG_ARGV, xl.XL_INFO_ARGV]


def test_the_registry_holds_the_four_backends_in_pass_order() -> None:
    assert [provider.name for provider in FACT_PROVIDERS] == ["lvm", "dm", "drbd", "xen"]


def test_a_pass_runs_its_commands_and_reads_its_files_in_the_same_order_as_ever() -> None:
    host = full_node()
    observer = Observer(host)
    observer.observe()
    calls, reads = len(host.calls), len(host.reads)
    observed = observer.observe()
    assert host.calls[calls:] == PASS_ARGVS
    assert list(observer.last_pass_argvs) == PASS_ARGVS
    assert host.reads[reads:] == ["/etc/drbd.d/vm100.res", "/etc/xen/vm100.cfg", "/etc/drbd.conf", "/proc/drbd"]
    assert [t.name for t in observed.tools] == ["lvm", "dmsetup", "drbd", "drbdadm", "xl", "files"]


class _Hypervisor:
    """A stand-in for another backend: one command, one tool status."""

    name = "other"
    ARGV = ("other-tool", "list")

    def read(self, context: PassContext, facts: NodeFacts) -> None:
        result = context.run(self.ARGV)
        facts.tools.append(ToolStatus(name="other", state="available" if result.ok else "failed"))


def test_a_registered_provider_runs_in_its_place_and_is_counted() -> None:
    host = full_node()
    host.answers[_Hypervisor.ARGV] = Answer("")
    providers: tuple[FactProvider, ...] = (*FACT_PROVIDERS[:3], _Hypervisor())
    observer = Observer(host, providers=providers)
    observer.observe()
    calls = len(host.calls)
    observed = observer.observe()
    assert host.calls[calls:] == [*PASS_ARGVS[:6], _Hypervisor.ARGV]
    assert observed.commands_run == 7
    assert [t.name for t in observed.tools] == ["lvm", "dmsetup", "drbd", "drbdadm", "other", "files"]
    assert observed.domains == ()  # no Xen provider: nothing said about domains


def test_without_providers_a_pass_reads_only_the_owned_files() -> None:
    host = full_node()
    observer = Observer(host, providers=())
    observer.observe()
    calls = len(host.calls)
    observed = observer.observe()
    assert host.calls[calls:] == []
    assert [t.name for t in observed.tools] == ["files"]
    assert [f.path for f in observed.files] == ["/etc/drbd.d/vm100.res", "/etc/xen/vm100.cfg"]


def test_the_fresh_reads_run_the_same_commands_as_ever() -> None:
    host = full_node()
    observer = Observer(host)
    _ = observer.versions
    calls, reads = len(host.calls), len(host.reads)
    status, state = observer.observe_drbd()
    assert status.state == "available"
    assert state.resources
    assert host.calls[calls:] == [drbd9.STATUS_ARGV]
    assert host.reads[reads:][:3] == ["/etc/drbd.d/vm100.res", "/etc/xen/vm100.cfg", "/etc/drbd.conf"]
    calls = len(host.calls)
    assert observer.observe_dm()[0].state == "available"
    assert observer.observe_lvs()[0].state == "available"
    assert host.calls[calls:] == [dmsetup.INFO_ARGV, dmsetup.TABLE_ARGV, lvm.LVS_ARGV]


class _Volumes:
    """A stand-in for another volume backend's fresh read of its volumes."""

    ARGV = ("other-volumes", "list")

    def read_fresh(self, context: FreshContext, facts: NodeFacts) -> ToolStatus:
        context.run(self.ARGV)
        facts.logical_volumes = ()
        return ToolStatus(name="other-volumes", state="available")


def test_a_registered_fresh_read_answers_the_last_look() -> None:
    host = full_node()
    host.answers[_Volumes.ARGV] = Answer("")
    observer = Observer(host, fresh_reads={**FRESH_READS, "volumes": _Volumes()})
    calls = len(host.calls)
    status, volumes = observer.observe_lvs()
    assert (status.name, volumes) == ("other-volumes", ())
    assert host.calls[calls:] == [_Volumes.ARGV]  # no version asked: the reader did not need one
    assert set(FRESH_READS) == {"replication", "devices", "volumes"}

"""After a failed start, only a domain that never ran is destroyed; anything else is left as it is."""

from __future__ import annotations

import pytest

from reconciler.apply.undo import undo_failed
from reconciler.backends.xen.hypervisor import XenHypervisor
from reconciler.core.actions import Action, Command
from tests.apply.fakes import FakeHost, fail, ok

XEN = XenHypervisor()

pytestmark = pytest.mark.timeout(30)

PAUSED_NEVER_RAN = "vm100                                        7   512     2     --p---       0.0\n"
HEADER = "Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
DOM0 = "Domain-0                                     0  2048     2     r-----      50.2\n"


def _start() -> Action:
    return Action(id="start-domain@domain:vm100", kind="start-domain", key="domain:vm100", vm="vm100",
                  change="create", description="start domain vm100",
                  commands=(Command(argv=("xl", "create", "/etc/xen/vm100.cfg")),),
                  undo=(Command(argv=("xl", "destroy", "vm100")),))


def _host(row: str, *, destroy_fails: bool = False) -> FakeHost:
    def answer(argv: tuple[str, ...]) -> object:
        if argv == ("xl", "list"):
            return ok(argv, HEADER + DOM0 + row)
        if argv[:2] == ("xl", "destroy") and destroy_fails:
            return fail(argv, 1, "libxl: error: libxl_domain.c:1133:devices_destroy_cb: destroy failed (rc=-3)\n")
        return None

    return FakeHost(responders=[answer])  # type: ignore[list-item]


@pytest.mark.parametrize("row", [
    "",  # nothing was made
    "vm100                                        7  1024     2     -b----       0.4\n",  # it ran: not ours to end
    "vm100                                        7  1024     2     --p---       3.1\n",  # paused after running
    "vm100                                        7  1024     2     ----c-       0.0\n",  # crashed: kept
    "vm101                                        7  1024     2     --p---       0.0\n",  # another domain
])
def test_nothing_is_destroyed_unless_the_domain_is_paused_and_never_ran(row: str) -> None:
    host = _host(row)
    undone = undo_failed(host, _start(), XEN)
    assert undone.message == ""
    assert undone.ran == ()
    assert host.calls == [("xl", "list")]


def test_a_paused_domain_without_cpu_time_is_destroyed() -> None:
    host = _host(PAUSED_NEVER_RAN)
    undone = undo_failed(host, _start(), XEN)
    # By its id: a domain that took the name since the listing is not touched.
    assert host.calls == [("xl", "list"), ("xl", "destroy", "7")]
    assert undone.ran == (("xl", "destroy", "7"),)
    assert undone.message == ("; the half-made vm100 (domain 7, paused, never ran) was destroyed, as xl does when a "
                              "start fails: the next pass starts it again")


def test_a_destroy_that_fails_says_the_next_start_will_fail_too() -> None:
    host = _host(PAUSED_NEVER_RAN, destroy_fails=True)
    undone = undo_failed(host, _start(), XEN)
    assert undone.message.startswith("; vm100 (domain 7) was left paused and never ran, and "
                                     "`xl destroy 7` (exit 1)")
    assert undone.message.endswith("failed: the next start fails until it is gone")


def test_an_unreadable_listing_is_said_and_nothing_is_destroyed() -> None:
    host = FakeHost(responders=[lambda argv: fail(argv, 1, "xencall: error: Could not obtain handle\n")
                                if argv == ("xl", "list") else None])
    undone = undo_failed(host, _start(), XEN)
    assert undone.ran == ()
    assert undone.message.startswith("; could not look for a half-made vm100 afterwards: `xl list` (exit 1)")


def test_kinds_without_an_undo_check_never_look() -> None:
    host = _host(PAUSED_NEVER_RAN)
    other = _start().model_copy(update={"kind": "set-domain-memory"})
    assert undo_failed(host, other, XEN).message == ""
    assert host.calls == []


class _Listed:
    def __init__(self, name: str, domid: int, state: str, time_s: float) -> None:
        self.name, self.domid, self.state, self.time_s = name, domid, state, time_s


class OtherHypervisor(XenHypervisor):
    """Another hypervisor's listing: its own command and its own format."""

    def watch_argv(self) -> tuple[str, ...]:
        return ("other-hv", "list")

    def listed_domains(self, listing: str) -> list[_Listed]:  # type: ignore[override]
        return [_Listed(name, int(domid), state, float(time_s))
                for name, domid, state, time_s in (line.split(",") for line in listing.splitlines())]


def test_the_remnant_is_looked_for_in_the_nodes_hypervisors_listing() -> None:
    def answer(argv: tuple[str, ...]) -> object:
        return ok(argv, "vm100,9,paused,0.0\n") if argv == ("other-hv", "list") else None

    host = FakeHost(responders=[answer])  # type: ignore[list-item]
    undone = undo_failed(host, _start(), OtherHypervisor())
    assert host.calls == [("other-hv", "list"), ("xl", "destroy", "9")]
    assert undone.ran == (("xl", "destroy", "9"),)

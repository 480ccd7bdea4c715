"""The last look reads only the resource a step acts on: ``drbdsetup status NAME`` on DRBD 9 and
``lvs VG/LV`` for an LV; a resource that is not up or an LV that does not exist is absent, and any other
failure is a failed read (which stops the step), never "absent"."""

from __future__ import annotations

import pytest

from reconciler.apply.identity import resolve_identity
from reconciler.host.base import CommandResult
from reconciler.names import UnsafeNameError
from reconciler.observe.observer import Observer
from tests.apply.fakes import FakeHost, Responder, drbd9_status_json, fail, lvs_report, ok
from tests.plan.factories import drbd_state


def _status(code: int, stderr: str = "", *resources: str) -> Responder:
    def answer(argv: tuple[str, ...]) -> CommandResult | None:
        if argv[:2] != ("drbdsetup", "status"):
            return None
        if code:
            return fail(argv, code, stderr)
        return ok(argv, drbd9_status_json(*(drbd_state(r, i) for i, r in enumerate(resources))))
    return answer


def test_one_resource_is_asked_for_by_name() -> None:
    host = FakeHost(drbd=(), responders=[_status(0, "", "vm100")])
    status, state = Observer(host).observe_drbd_resource("vm100")
    assert status.state == "available"
    assert [r.name for r in state.resources] == ["vm100"]
    assert ("drbdsetup", "status", "vm100", "--json") in host.calls
    assert ("drbdsetup", "status", "--json") not in host.calls


def test_a_resource_that_is_not_up_is_absent() -> None:
    host = FakeHost(drbd=(), responders=[_status(10, "vm100: No such resource\n")])
    status, state = Observer(host).observe_drbd_resource("vm100")
    assert (status.state, state.resources) == ("available", ())


@pytest.mark.parametrize(("code", "stderr"), [(10, "vm101: No such resource\n"), (10, "Failure: (158) unknown\n"),
                                              (20, "Failed to modprobe drbd\n"), (124, "")])
def test_any_other_failure_is_a_failed_read(code: int, stderr: str) -> None:
    host = FakeHost(drbd=(), responders=[_status(code, stderr)])
    status, state = Observer(host).observe_drbd_resource("vm100")
    assert status.state == "failed"
    assert state.resources == ()


def test_an_unsafe_resource_name_never_reaches_the_command_line() -> None:
    host = FakeHost(drbd=())
    with pytest.raises(UnsafeNameError):
        Observer(host).observe_drbd_resource("vm100;reboot")
    assert not any(c[0] == "drbdsetup" for c in host.calls)


def _lvs(code: int, stderr: str, *lvs: tuple[str, str, str]) -> Responder:
    def answer(argv: tuple[str, ...]) -> CommandResult | None:
        if argv[0] != "lvs":
            return None
        return CommandResult(argv, code, lvs_report(*lvs, tags="reconciler"), stderr)
    return answer


def test_an_lv_is_read_by_name_and_a_missing_one_is_absent() -> None:
    host = FakeHost(responders=[_lvs(5, '  Failed to find logical volume "vg-sdb/root100"\n',
                                     ("vg-sda", "root100", "uuid-a"))])
    observer = Observer(host)
    status, lvs = observer.observe_named_lvs((("vg-sda", "root100"), ("vg-sdb", "root100")))
    assert status.state == "available"
    assert [(v.vg, v.name, v.uuid) for v in lvs] == [("vg-sda", "root100", "uuid-a")]
    assert host.calls[-1][-2:] == ("vg-sda/root100", "vg-sdb/root100")


@pytest.mark.parametrize("stderr", ['  Volume group "vg-sdb" not found\n  Cannot process volume group vg-sdb\n',
                                    '  Failed to find logical volume "vg-sdc/root100"\n', ""])
def test_an_lvs_failure_that_does_not_account_for_every_lv_is_a_failed_read(stderr: str) -> None:
    host = FakeHost(responders=[_lvs(5, stderr, ("vg-sda", "root100", "uuid-a"))])
    status, lvs = Observer(host).observe_named_lvs((("vg-sda", "root100"), ("vg-sdb", "root100")))
    assert status.state == "failed"
    assert lvs == ()


def test_identity_asks_for_exactly_the_lvs_beneath_the_device() -> None:
    host = FakeHost(responders=[_lvs(0, "", ("vg-sda", "root100", "uuid-a"), ("vg-sdb", "root100", "uuid-b"))])
    assert resolve_identity(host, "/dev/vg-sdb/root100,/dev/vg-sda/root100") == "uuid-b,uuid-a"
    assert host.calls[-1][-2:] == ("vg-sdb/root100", "vg-sda/root100")
    host.calls.clear()
    assert resolve_identity(host, "/dev/mapper/root100") == ""
    assert resolve_identity(host, "/dev/vg-sda/root100;x") == ""
    assert host.calls == [], "a path that is not a safe /dev/VG/LV never reaches lvs"

"""Each degraded condition with what it tells the operator, and the states that must not raise one."""

from __future__ import annotations

from reconciler.core.actions import Action
from reconciler.core.plan_model import Note, Plan
from reconciler.model.desired import DesiredNode
from reconciler.model.observed import DomainState, DrbdConnectionState, ObservedNode
from reconciler.model.status import Condition
from reconciler.plan.health import assess
from tests.plan.factories import converged, drbd_state, make_node, make_vm

EMPTY = Plan(node="erdbeere")


def _observed(desired: DesiredNode, **state: object) -> ObservedNode:
    observed = converged(desired)
    res = drbd_state("vm100", 0, **state)  # type: ignore[arg-type]
    return observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": (res,)})})


def _messages(conditions: tuple[Condition, ...]) -> dict[str, str]:
    return {c.kind: c.message for c in conditions}


def test_vms_that_are_not_meant_to_run_raise_no_condition() -> None:
    # The same failed disk that degrades a present VM says nothing about an absent, deleted or suspended one.
    for vm in (make_vm(100, lifecycle="absent"), make_vm(100, lifecycle="deleted"), make_vm(100, suspended=True)):
        desired = make_node(vm)
        observed = _observed(make_node(make_vm(100)), disk="Failed", peer_disk="DUnknown", conn="Connecting",
                             peer_role="Unknown")
        assert assess(desired, observed, EMPTY) == (), vm.lifecycle
    present = make_node(make_vm(100))
    assert {c.kind for c in assess(present, _observed(present, disk="Failed"), EMPTY)} == {"disk"}


def test_a_failed_disk_on_a_secondary_names_the_state() -> None:
    desired = make_node(make_vm(100))
    observed = _observed(desired, role="Secondary", peer_role="Primary", disk="Failed")
    conditions = assess(desired, observed.model_copy(update={"domains": ()}), EMPTY)
    disk = next(c for c in conditions if c.kind == "disk")
    assert disk == Condition(key="drbd:vm100", vm="vm100", kind="disk",
                             message="vm100: local disk is Failed, not UpToDate")


def test_a_missing_local_device_is_degraded_unless_this_node_is_meant_to_be_diskless() -> None:
    desired = make_node(make_vm(100))
    observed = _observed(desired)
    res = observed.drbd.resources[0].model_copy(update={"devices": ()})
    no_device = observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": (res,)})})
    assert _messages(assess(desired, no_device, EMPTY))["disk"] == (
        "vm100: local disk is missing, not UpToDate (the domain's writes go to the peer only)")

    vm = make_vm(100)
    assert vm.drbd is not None
    hosts = tuple(h.model_copy(update={"diskless": h.name == "erdbeere"}) for h in vm.drbd.hosts)
    diskless_here = make_node(vm.model_copy(update={"drbd": vm.drbd.model_copy(update={"hosts": hosts})}))
    assert "disk" not in _messages(assess(diskless_here, _observed(diskless_here, disk="Diskless"), EMPTY))


def test_the_peer_condition_lists_every_peer_that_is_not_known_to_be_uptodate() -> None:
    desired = make_node(make_vm(100))
    outdated = _messages(assess(desired, _observed(desired, peer_disk="Outdated"), EMPTY))
    assert outdated["peer-disk"] == ("vm100: the peer's data is not known to be UpToDate (himbeere "
                                     "Connected/Outdated); a failover now could lose writes or find no good copy")

    observed = _observed(desired)
    res = observed.drbd.resources[0]
    no_volumes = res.model_copy(update={"connections": (DrbdConnectionState(
        peer_name="himbeere", connection_state="Connecting", peer_role="Unknown"),)})
    found = _messages(assess(desired, observed.model_copy(update={"drbd": observed.drbd.model_copy(
        update={"resources": (no_volumes,)})}), EMPTY))
    assert "(himbeere not connected)" in found["peer-disk"]

    # The designated peer is missing from DRBD's connections altogether (another peer is connected).
    stranger = res.model_copy(update={"connections": tuple(c.model_copy(update={"peer_name": "kiwi"})
                                                           for c in res.connections)})
    found = _messages(assess(desired, observed.model_copy(update={"drbd": observed.drbd.model_copy(
        update={"resources": (stranger,)})}), EMPTY))
    assert "(himbeere not connected)" in found["peer-disk"]
    healthy = assess(desired, observed, EMPTY)
    assert healthy == ()


def test_split_brain_without_detail_still_names_the_recovery() -> None:
    desired = make_node(make_vm(100))
    observed = _observed(desired, conn="StandAlone", peer_role="Unknown", peer_disk="DUnknown")
    res = observed.drbd.resources[0].model_copy(update={"split_brain": True})
    observed = observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": (res,)})})
    message = _messages(assess(desired, observed, EMPTY))["split-brain"]
    assert message.startswith("vm100 is in split brain (detected): both sides wrote while disconnected; incident not "
                              "named yet (the peer's record is unknown); generation identifiers at detection: "
                              "erdbeere unknown, himbeere unknown (no peer status); nothing is adjusted or "
                              "reconnected automatically: decide which node's changes are discarded")
    assert "`drbdadm secondary vm100; drbdadm connect --discard-my-data vm100`" in message
    assert "on the survivor `drbdadm connect vm100` (docs/split-brain.md)" in message


def _running(observed: ObservedNode, state: str = "running") -> ObservedNode:
    return observed.model_copy(update={"domains": (
        DomainState(name="vm100", domid=3, state=state, memory_mib=1024, maxmem_mib=2048, vcpus=2),)})


def test_domain_conditions_say_where_the_vm_runs() -> None:
    here = make_node(make_vm(100))
    both = _messages(assess(here, _running(_observed(here, peer_role="Primary")), EMPTY))
    assert both["domain-on-both"] == "vm100 runs here while himbeere is Primary too: the VM may run on both nodes"
    away = make_node(make_vm(100, primary="himbeere"))
    found = _messages(assess(away, _running(_observed(away)), EMPTY))
    assert found["domain-away"] == "vm100 runs here, away from its designated primary himbeere"
    stopped = _messages(assess(here, _observed(here, role="Secondary", peer_role="Primary").model_copy(
        update={"domains": ()}), EMPTY))
    assert stopped["domain-away"] == ("vm100 is designated to run here, but himbeere is Primary (the VM runs there, "
                                      "away from this node)")
    # A stopped (shut off) domain record is not a running VM.
    assert "domain-away" not in _messages(assess(away, _running(_observed(away), state="shutdown"), EMPTY))
    # Designated elsewhere, not running here, the peer Primary: healthy.
    assert assess(away, _observed(away, role="Secondary", peer_role="Primary").model_copy(
        update={"domains": ()}), EMPTY) == ()


def test_a_domain_that_exists_on_its_node_but_does_not_run_says_why_and_what_brings_it_back() -> None:
    here = make_node(make_vm(100))

    def said(state: str, cpu_time_s: float | None) -> str:
        observed = _running(_observed(here), state=state)
        dom = observed.domains[0].model_copy(update={"cpu_time_s": cpu_time_s})
        found = _messages(assess(here, observed.model_copy(update={"domains": (dom,)}), EMPTY))
        assert set(found) == {"domain-not-running"}, state
        return found["domain-not-running"]

    assert said("paused", 0.0) == (
        "vm100 (domain 3) is paused and has never run: most likely a start that did not finish (`xl create` stopped "
        "before it unpaused the domain), whose guest wrote nothing, and then `xl destroy vm100` lets the reconciler "
        "start it again; if it was restored or migrated in paused, `xl unpause vm100` runs it instead")
    assert said("paused", 12.5) == "vm100 (domain 3) is paused; `xl unpause vm100` resumes it"
    assert said("paused", None) == "vm100 (domain 3) is paused; `xl unpause vm100` resumes it"
    assert said("crashed", 3.0) == ("vm100 (domain 3) crashed and is kept for inspection (its on_crash setting); "
                                    "once inspected, `xl destroy vm100` lets the reconciler start it again")
    assert said("shutdown", 3.0).startswith("vm100 (domain 3) is shutdown but still listed")
    # Running or blocked is healthy; designated elsewhere, a stopped record here is the shutdown's business.
    assert assess(here, _running(_observed(here), state="blocked"), EMPTY) == ()
    away = make_node(make_vm(100, primary="himbeere"))
    assert "domain-not-running" not in _messages(assess(away, _running(_observed(away), state="paused"), EMPTY))


def test_a_vm_without_a_domain_or_without_drbd_state_raises_only_what_applies() -> None:
    vm = make_vm(100)
    no_domain = make_node(vm.model_copy(update={"domain": None}))
    assert assess(no_domain, _running(_observed(no_domain, peer_role="Primary")), EMPTY) == ()
    desired = make_node(vm)
    observed = converged(desired)
    down = observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": ()})})
    assert assess(desired, down, EMPTY) == ()


def _plan(*actions: Action, notes: tuple[Note, ...] = ()) -> Plan:
    return Plan(node="erdbeere", actions=actions, notes=notes)


def test_a_restart_or_a_growth_still_pending_is_degraded() -> None:
    desired = make_node(make_vm(100))
    observed = _observed(desired)
    restart = Note(key="domain:vm100", vm="vm100", kind="restart-needed", message="vcpus 2 -> 4 needs a restart")
    info = Note(key="vm:vm100", vm="vm100", kind="info", message="just so you know")
    resize = Action(id="drbd-resize@drbd:vm100", kind="drbd-resize", key="drbd:vm100", vm="vm100", change="change",
                    description="resize", waiting="the peer's backing device has not grown yet")
    ready_resize = resize.with_(id="x", waiting="")
    adjust = resize.with_(id="y", kind="drbd-adjust", waiting="held")
    conditions = assess(desired, observed, _plan(resize, ready_resize, adjust, notes=(restart, info)))
    assert conditions == (
        Condition(key="domain:vm100", vm="vm100", kind="restart-needed", message="vcpus 2 -> 4 needs a restart"),
        Condition(key="drbd:vm100", vm="vm100", kind="growth-pending",
                  message="the backing device grew but the DRBD device has not: the peer's backing device has not "
                          "grown yet"),
    )


def _two_peers(observed: ObservedNode, **state: str) -> ObservedNode:
    res = observed.drbd.resources[0]
    kiwi = res.connections[0].model_copy(update={"peer_name": "kiwi", **state})
    both = res.model_copy(update={"connections": (*tuple(c.model_copy(update=state) for c in res.connections), kiwi)})
    return observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": (both,)})})


def test_every_primary_peer_and_every_bad_state_is_listed() -> None:
    here = make_node(make_vm(100))
    both = _messages(assess(here, _running(_two_peers(_observed(here), peer_role="Primary")), EMPTY))
    assert both["domain-on-both"].startswith("vm100 runs here while himbeere, kiwi is Primary too")
    stopped = _two_peers(_observed(here, role="Secondary"), peer_role="Primary").model_copy(update={"domains": ()})
    assert "but himbeere, kiwi is Primary" in _messages(assess(here, stopped, EMPTY))["domain-away"]
    outdated = _two_peers(_observed(here))
    res = outdated.drbd.resources[0]
    conns = tuple(c.model_copy(update={"peer_devices": tuple(p.model_copy(update={"peer_disk_state": "Outdated"})
                                                             for p in c.peer_devices)}) for c in res.connections)
    two_bad = outdated.model_copy(update={"drbd": outdated.drbd.model_copy(update={"resources": (
        res.model_copy(update={"connections": conns}),)})})
    assert "(himbeere Connected/Outdated, kiwi Connected/Outdated)" in _messages(
        assess(here, two_bad, EMPTY))["peer-disk"]
    volumes = res.model_copy(update={"devices": (res.devices[0].model_copy(update={"disk_state": "Outdated"}),
                                                 res.devices[0].model_copy(update={"volume": 1,
                                                                                   "disk_state": "Failed"}))})
    two_disks = outdated.model_copy(update={"drbd": outdated.drbd.model_copy(update={"resources": (volumes,)})})
    assert _messages(assess(here, two_disks, EMPTY))["disk"].startswith("vm100: local disk is Failed/Outdated, ")


def test_a_node_missing_from_the_drbd_hosts_still_wants_its_disk() -> None:
    vm = make_vm(100)
    assert vm.drbd is not None
    others = tuple(h for h in vm.drbd.hosts if h.name != "erdbeere")
    odd = make_node(vm.model_copy(update={"drbd": vm.drbd.model_copy(update={"hosts": others})}))
    assert "disk" in _messages(assess(odd, _observed(odd, disk="Failed"), EMPTY))


def test_each_vm_is_assessed_after_one_that_is_not_meant_to_run() -> None:
    desired = make_node(make_vm(101, lifecycle="absent"), make_vm(100))
    assert {c.kind for c in assess(desired, _observed(make_node(make_vm(100)), disk="Failed"), EMPTY)} == {"disk"}


def test_a_vm_without_drbd_is_assessed_on_its_domain_alone() -> None:
    vm = make_vm(100, primary="himbeere")
    local = make_node(vm.model_copy(update={"drbd": None}))
    conditions = assess(local, _running(_observed(make_node(make_vm(100)))), EMPTY)
    assert [c.kind for c in conditions] == ["domain-away"]

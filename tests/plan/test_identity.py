"""Identities never change in place, and nothing is created on a minor, port or name that another holds.

Each case is one of the destructive paths the simulator's leniency once hid: the VM is refused as a whole
(no action at all), with the reason and the documented way; the other VMs of the revision still converge.
"""

from __future__ import annotations

from reconciler.core.plan_model import Plan
from reconciler.model.desired import DesiredLV, DesiredNode, DesiredVm
from reconciler.model.observed import DmDevice, DrbdState, LogicalVolume, ObservedNode, OwnedFile
from reconciler.plan.diff import plan_node
from tests.plan.factories import GIB, converged, drbd_state, empty_observed, make_node, make_vm


def linear(vm: DesiredVm) -> DesiredVm:
    """The same VM with one linear data LV on vg-sda as DRBD's backing device."""
    assert vm.drbd is not None
    data = DesiredLV(vm=vm.name, vg="vg-sda", name=f"root{vm.id}", size_bytes=30 * GIB, purpose="data")
    swaps = tuple(lv for lv in vm.lvs if lv.purpose == "swap")
    drbd = vm.drbd.model_copy(update={"backing_device": data.path})
    return vm.model_copy(update={"layout": "linear", "stripe": None, "lvs": (data, *swaps), "drbd": drbd})


def refusal(plan: Plan, vm: str) -> str:
    found = [r.reason for r in plan.refused_vms if r.vm == vm]
    assert found, f"{vm} was not refused: {[a.id for a in plan.actions]}"
    assert not [a for a in plan.actions if a.vm == vm], "a refused VM gets no action at all"
    return found[0]


def test_layout_change_of_an_existing_vm_is_refused_and_the_rest_converges() -> None:
    observed = converged(make_node(make_vm(100)))
    new_vm = make_vm(101)
    plan = plan_node(make_node(linear(make_vm(100)), new_vm), observed)
    reason = refusal(plan, "vm100")
    assert "backing device would change from /dev/mapper/root100 to /dev/vg-sda/root100" in reason
    assert "create a new VM and copy the data" in reason
    assert any(a.vm == "vm101" and a.kind == "create-lv" for a in plan.actions)
    assert not plan.is_empty


def test_layout_change_is_refused_after_a_reboot_too() -> None:
    """dm tables and DRBD vanish at reboot; the config file still names the backing device."""
    observed = converged(make_node(make_vm(100)))
    rebooted = observed.model_copy(update={"dm_devices": (), "drbd": DrbdState(kernel_version="9.2.12"),
                                           "domains": ()})
    plan = plan_node(make_node(linear(make_vm(100))), rebooted)
    refusal(plan, "vm100")
    assert not any("create-md" in a.kind for a in plan.actions)


def test_removing_the_stripe_from_the_layout_is_refused_while_the_stripe_exists() -> None:
    observed = converged(make_node(make_vm(100)))
    no_config = observed.model_copy(update={"files": ()})
    reason = refusal(plan_node(make_node(linear(make_vm(100))), no_config), "vm100")
    assert "storage layout would change from dm-striped" in reason


def test_minor_change_is_refused() -> None:
    vm = make_vm(100)
    assert vm.drbd is not None
    moved = vm.model_copy(update={"drbd": vm.drbd.model_copy(update={"minor": 7})})
    reason = refusal(plan_node(make_node(moved), converged(make_node(vm))), "vm100")
    assert "minor would change from 0 to 7" in reason


def test_stripe_geometry_change_is_refused_for_the_whole_vm() -> None:
    vm = make_vm(100)
    assert vm.stripe is not None
    wider = vm.model_copy(update={"stripe": vm.stripe.model_copy(update={"chunk_sectors": 256})})
    reason = refusal(plan_node(make_node(wider), converged(make_node(vm))), "vm100")
    assert "chunk 128 to 3 legs with chunk 256" in reason


def _renamed(vm_id: int, *, minor: int, port: int) -> DesiredVm:
    vm = make_vm(vm_id)
    assert vm.drbd is not None
    hosts = tuple(h.model_copy(update={"port": port}) for h in vm.drbd.hosts)
    return vm.model_copy(update={
        "drbd": vm.drbd.model_copy(update={"minor": minor, "port": port, "hosts": hosts}),
        "filesystem": vm.filesystem.model_copy(update={"device": f"/dev/drbd{minor}"}) if vm.filesystem else None,
    })


def _with_res_file(observed: ObservedNode, name: str, minor: int, port: int) -> ObservedNode:
    text = (f"resource {name} {{\n  on erdbeere {{ device /dev/drbd{minor}; disk /dev/mapper/root100; "
            f"address 192.168.2.1:{port}; meta-disk internal; }}\n}}\n")
    files = tuple(f for f in observed.files if f.path != f"/etc/drbd.d/{name}.res")
    return observed.model_copy(update={"files": (*files, OwnedFile(path=f"/etc/drbd.d/{name}.res", content=text))})


def test_id_change_keeping_minor_and_port_never_brings_a_second_resource_up_on_the_live_minor() -> None:
    live = _with_res_file(converged(make_node(make_vm(100))), "vm100", 0, 7788)
    plan = plan_node(make_node(_renamed(101, minor=0, port=7788)), live)
    reason = refusal(plan, "vm101")
    assert "minor 0 (/dev/drbd0) is held by resource vm100" in reason
    assert not any(a.kind in ("create-md", "drbd-up", "promote-force-initial", "start-domain") for a in plan.actions)


def test_a_minor_held_only_by_a_running_resource_is_taken() -> None:
    running = empty_observed().model_copy(update={
        "drbd": DrbdState(kernel_version="9.2.12", resources=(drbd_state("handmade", 3),))})
    reason = refusal(plan_node(make_node(_renamed(101, minor=3, port=7800)), running), "vm101")
    assert "held by resource handmade (running)" in reason


def test_a_port_held_by_an_orphaned_config_is_refused() -> None:
    orphan = _with_res_file(empty_observed(), "vm100", 0, 7788)
    reason = refusal(plan_node(make_node(_renamed(101, minor=1, port=7788)), orphan), "vm101")
    assert "port 7788 is used by resource vm100" in reason


def _handmade(update: dict[str, object]) -> tuple[DesiredNode, ObservedNode]:
    vm = make_vm(100)
    observed = converged(make_node(vm))
    handmade = tuple(d.model_copy(update=update) for d in observed.dm_devices)
    # The data LVs' own dm devices, whose numbers the stripe's table shows (8:0, 8:1, 8:2 in the factory).
    legs = tuple(DmDevice(name=f"{lv.vg.replace('-', '--')}-{lv.name}", uuid=f"LVM-{lv.vg}", major=8, minor=i)
                 for i, lv in enumerate(lv for lv in vm.lvs if lv.purpose == "data"))
    handmade += legs
    return make_node(vm), observed.model_copy(update={"dm_devices": handmade, "files": (),
                                                      "drbd": DrbdState(kernel_version="9.2.12"), "domains": ()})


def test_a_hand_made_dm_device_with_the_desired_table_is_taken_over_before_anything_else() -> None:
    desired, fresh = _handmade({"uuid": ""})
    plan = plan_node(desired, fresh)
    assert not plan.refused_vms
    adopt = plan.action("adopt-stripe@dm:root100")
    assert adopt is not None
    assert not adopt.refused
    assert adopt.argvs == (("dmsetup", "rename", "root100", "--setuuid", "RECONCILER-root100"),)
    others = [a for a in plan.actions if a.kind != "adopt-stripe"]
    assert others, "the rest of the VM is planned, and waits"
    assert all(a.waiting for a in others)
    assert plan.action("create-md@drbd:vm100") is not None
    assert plan.action("create-md@drbd:vm100").waiting.startswith("taking over what was built by hand first")  # type: ignore[union-attr]


def test_a_hand_made_dm_device_with_another_table_refuses_the_vm() -> None:
    desired, fresh = _handmade({"uuid": ""})
    stripe = fresh.dm("root100")
    assert stripe is not None
    other = stripe.model_copy(update={"targets": (stripe.targets[0].model_copy(update={"length": 1024}),)})
    fresh = fresh.model_copy(update={"dm_devices": tuple(other if d.name == "root100" else d
                                                         for d in fresh.dm_devices)})
    reason = refusal(plan_node(desired, fresh), "vm100")
    assert reason == (
        "vm100: dm device root100 shows the table '0 1024 striped 3 128 8:0 0 8:1 0 8:2 0', not the desired "
        "'0 62914560 striped 3 128 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0 /dev/vg-sdc/root100 0': it is taken "
        "over only when both are equal; change the desired state to match (a difference to resolve by commit)")


def test_a_hand_made_dm_device_of_a_vm_marked_absent_is_not_taken_over() -> None:
    """Taking over is part of converging a present VM; an absent one only stops, and stops on nothing foreign."""
    desired, fresh = _handmade({"uuid": ""})
    absent = make_node(make_vm(100, lifecycle="absent"))
    assert desired.vms[0].stripe == absent.vms[0].stripe
    assert refusal(plan_node(absent, fresh), "vm100") == (
        "vm100: a dm device named root100 exists with uuid (none), not RECONCILER-root100: it was made by hand or by "
        "another tool and is not taken over implicitly (if nothing uses it, `dmsetup remove root100` frees the name)")


def test_a_dm_device_with_a_foreign_uuid_under_the_stripe_name_refuses_the_vm() -> None:
    desired, fresh = _handmade({"uuid": "CRYPT-root100"})
    reason = refusal(plan_node(desired, fresh), "vm100")
    assert "dm device named root100 exists with uuid CRYPT-root100" in reason


def _preexisting(tags: tuple[str, ...]) -> ObservedNode:
    vm = make_vm(100)
    lvs = tuple(LogicalVolume(vg=lv.vg, name=lv.name, size_bytes=lv.size_bytes, uuid=f"u-{lv.vg}", tags=tags)
                for lv in vm.lvs)
    return empty_observed().model_copy(update={"logical_volumes": lvs})


def test_lvs_that_exist_under_a_new_vms_names_are_not_taken_over_implicitly() -> None:
    reason = refusal(plan_node(make_node(make_vm(100)), _preexisting(())), "vm100")
    assert "was not created by this project" in reason
    assert "lvchange --addtag reconciler" in reason


def test_lvs_tagged_as_ours_are_used_and_their_legs_probed_before_metadata_is_written() -> None:
    plan = plan_node(make_node(make_vm(100)), _preexisting(("reconciler",)))
    assert not plan.refused_vms
    md = next(a for a in plan.actions if a.kind == "create-md")
    assert md.probe_before == ("/dev/mapper/root100",)
    assert md.probe_beneath == ("/dev/vg-sda/root100", "/dev/vg-sdb/root100", "/dev/vg-sdc/root100")


def test_an_existing_vm_with_untagged_lvs_gets_the_tag_and_nothing_else() -> None:
    observed = converged(make_node(make_vm(100)))
    untagged = tuple(lv.model_copy(update={"tags": ()}) for lv in observed.logical_volumes)
    plan = plan_node(make_node(make_vm(100)), observed.model_copy(update={"logical_volumes": untagged}))
    assert {a.kind for a in plan.actions} == {"adopt-lv"}
    assert len(plan.actions) == len(untagged)
    assert all(not a.refused and a.argvs[0][:3] == ("lvchange", "--addtag", "reconciler") for a in plan.actions)


def test_an_untagged_lv_of_another_size_is_not_taken_over() -> None:
    observed = converged(make_node(make_vm(100)))
    untagged = tuple(lv.model_copy(update={"tags": (), "size_bytes": lv.size_bytes * 2})
                     for lv in observed.logical_volumes)
    plan = plan_node(make_node(make_vm(100)), observed.model_copy(update={"logical_volumes": untagged}))
    adopts = [a for a in plan.actions if a.kind == "adopt-lv"]
    assert adopts
    assert all("taken over only when the sizes match" in a.refused for a in adopts)


def test_deleting_a_vm_is_never_blocked_by_an_identity_check() -> None:
    vm = linear(make_vm(100, lifecycle="deleted"))
    plan = plan_node(make_node(vm), converged(make_node(make_vm(100))))
    assert not plan.refused_vms

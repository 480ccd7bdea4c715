"""Identities at their edges: the running minor, a stripe table that is not ours or sits on other legs, LVM
striping, an unreadable DRBD config, and what counts as a trace of an existing VM."""

from __future__ import annotations

from reconciler.core.plan_model import Plan
from reconciler.model.desired import DesiredLV, DesiredVm
from reconciler.model.observed import DmDevice, DmTarget, DrbdState, LogicalVolume, ObservedNode, OwnedFile
from reconciler.plan.diff import plan_node
from reconciler.plan.identity import HOW
from tests.plan.factories import GIB, converged, drbd_state, empty_observed, make_node, make_vm


def _refusal(plan: Plan, vm: str) -> str:
    found = [r.reason for r in plan.refused_vms if r.vm == vm]
    assert found, f"{vm} was not refused: {[a.id for a in plan.actions]}"
    assert not [a for a in plan.actions if a.vm == vm], "a refused VM gets no action at all"
    return found[0]


def _no_config(observed: ObservedNode) -> ObservedNode:
    return observed.model_copy(update={"files": tuple(f for f in observed.files if not f.path.endswith(".res"))})


def test_a_refusal_names_the_vm_what_would_change_and_the_way_to_do_it() -> None:
    vm = make_vm(100)
    assert vm.drbd is not None
    moved = vm.model_copy(update={"drbd": vm.drbd.model_copy(update={"minor": 7})})
    reason = _refusal(plan_node(make_node(moved), converged(make_node(vm))), "vm100")
    assert reason == f"vm100: its DRBD minor would change from 0 to 7 (/etc/drbd.d/vm100.res); {HOW}"


def test_the_running_minor_counts_even_without_a_config_file() -> None:
    vm = make_vm(100)
    observed = _no_config(converged(make_node(vm)))
    running = drbd_state("vm100", 5)
    observed = observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": (running,)})})
    reason = _refusal(plan_node(make_node(vm), observed), "vm100")
    assert reason.startswith("vm100: its DRBD minor would change from 5 (running now) to 0; ")
    # Its own minor, running: nothing changes.
    same = observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": (
        drbd_state("vm100", 0),)})})
    assert not plan_node(make_node(vm), same).refused_vms


def _with_stripe(observed: ObservedNode, **changes: object) -> ObservedNode:
    devices = tuple(d.model_copy(update=changes) if d.name == "root100" else d for d in observed.dm_devices)
    return observed.model_copy(update={"dm_devices": devices})


def test_a_stripe_of_ours_with_a_table_we_did_not_write_refuses_the_vm() -> None:
    vm = make_vm(100)
    observed = _with_stripe(converged(make_node(vm)), targets=(
        DmTarget(start=0, length=62914560, target="linear", args="8:0 0"),))
    reason = _refusal(plan_node(make_node(vm), observed), "vm100")
    assert reason.startswith("vm100: the stripe root100 has a table this project did not write (")
    assert "linear" in reason


def test_a_stripe_over_other_legs_refuses_the_vm() -> None:
    vm = make_vm(100)
    observed = converged(make_node(vm))
    # The legs resolve through their own dm devices (major:minor); the live table uses other devices.
    legs = tuple(DmDevice(name=f"{vg.replace('-', '--')}-root100", uuid=f"LVM-{vg}", major=253, minor=10 + i,
                          targets=(DmTarget(start=0, length=20971520, target="linear", args=f"8:{i} 2048"),))
                 for i, vg in enumerate(("vg-sda", "vg-sdb", "vg-sdc")))
    stripe = next(d for d in observed.dm_devices if d.name == "root100")
    ours = stripe.model_copy(update={"targets": (stripe.targets[0].model_copy(update={
        "args": "3 128 253:10 0 253:11 0 253:12 0"}),)})
    matching = observed.model_copy(update={"dm_devices": (ours, *legs)})
    assert not plan_node(make_node(vm), matching).refused_vms
    other = stripe.model_copy(update={"targets": (stripe.targets[0].model_copy(update={
        "args": "3 128 253:10 0 253:99 0 253:12 0"}),)})
    reason = _refusal(plan_node(make_node(vm), matching.model_copy(update={"dm_devices": (other, *legs)})), "vm100")
    assert reason.startswith("vm100: the legs of its stripe root100 would change (volume groups vg-sda, vg-sdb, "
                             "vg-sdc; the live table is ")


def test_a_stripe_with_fewer_legs_is_named_with_both_geometries() -> None:
    vm = make_vm(100)
    observed = _with_stripe(converged(make_node(vm)), targets=(
        DmTarget(start=0, length=62914560, target="striped", args="2 128 8:0 0 8:1 0"),))
    reason = _refusal(plan_node(make_node(vm), observed), "vm100")
    assert reason.startswith("vm100: its stripe root100 would change from 2 legs with chunk 128 to 3 legs with chunk "
                             "128 sectors; ")


def test_a_foreign_device_under_the_stripe_name_is_not_read_as_our_geometry() -> None:
    # Another table under our name (wrong uuid): a collision, never "our stripe would change".
    vm = make_vm(100)
    observed = _with_stripe(converged(make_node(vm)), uuid="CRYPT-x", targets=(
        DmTarget(start=0, length=8, target="crypt", args="aes 0 8:0 0"),))
    reason = _refusal(plan_node(make_node(vm), observed), "vm100")
    assert reason.startswith("vm100: a dm device named root100 exists with uuid CRYPT-x, not RECONCILER-root100: ")
    assert "`dmsetup remove root100` frees the name" in reason


def _linear(vm: DesiredVm, stripes: int = 1, stripe_size: int | None = None) -> DesiredVm:
    assert vm.drbd is not None
    data = DesiredLV(vm=vm.name, vg="vg-sda", name=f"root{vm.id}", size_bytes=30 * GIB, purpose="data",
                     stripes=stripes, stripe_size_bytes=stripe_size)
    swaps = tuple(lv for lv in vm.lvs if lv.purpose == "swap")
    drbd = vm.drbd.model_copy(update={"backing_device": data.path})
    return vm.model_copy(update={"layout": "linear", "stripe": None, "lvs": (data, *swaps), "drbd": drbd})


def _lvm_observed(vm: DesiredVm, stripes: int, stripe_size: int | None) -> ObservedNode:
    lvs = tuple(LogicalVolume(vg=lv.vg, name=lv.name, size_bytes=lv.size_bytes, uuid=f"u-{lv.name}",
                              tags=("reconciler",), stripes=stripes if lv.purpose == "data" else 1,
                              stripe_size_bytes=stripe_size if lv.purpose == "data" else None)
                for lv in vm.lvs)
    return empty_observed().model_copy(update={"logical_volumes": lvs})


def test_lvm_striping_never_changes_in_place() -> None:
    vm = _linear(make_vm(100), stripes=2, stripe_size=64 * 1024)
    reason = _refusal(plan_node(make_node(vm), _lvm_observed(vm, 1, None)), "vm100")
    assert reason.startswith("vm100: its LV vg-sda/root100 would change from 1 stripes to 2 (LVM does not restripe "
                             "in place); ")
    other_size = _refusal(plan_node(make_node(vm), _lvm_observed(vm, 2, 128 * 1024)), "vm100")
    assert "would change from 2 stripes to 2" in other_size
    # Same striping, or a stripe size LVM did not report: nothing changes.
    assert not plan_node(make_node(vm), _lvm_observed(vm, 2, 64 * 1024)).refused_vms
    assert not plan_node(make_node(vm), _lvm_observed(vm, 2, None)).refused_vms
    # A stripe size on a linear LV means nothing.
    plain = _linear(make_vm(100), stripes=1, stripe_size=64 * 1024)
    assert not plan_node(make_node(plain), _lvm_observed(plain, 1, 128 * 1024)).refused_vms


def test_an_unreadable_drbd_config_refuses_bringing_a_resource_up() -> None:
    broken = empty_observed().model_copy(update={"files": (
        OwnedFile(path="/etc/drbd.d/other.res", content="resource other { on erdbeere { device"),)})
    reason = _refusal(plan_node(make_node(make_vm(100)), broken), "vm100")
    assert reason.startswith("vm100: the DRBD configuration on this node cannot be read (")
    assert "/etc/drbd.d/other.res" in reason
    assert reason.endswith("so it cannot be checked that minor and port are free; fix or remove the file")
    # Files that are not DRBD resources, and files that could not be read at all, are not parsed.
    other = empty_observed().model_copy(update={"files": (
        OwnedFile(path="/etc/drbd.d/global_common.conf", content="global { usage-count"),
        OwnedFile(path="/etc/drbd.d/unreadable.res", content=None))})
    assert not plan_node(make_node(make_vm(100)), other).refused_vms


def test_a_minor_held_by_another_resources_config_names_the_file() -> None:
    text = ("resource vm200 {\n  on erdbeere { device /dev/drbd0; disk /dev/mapper/root200; "
            "address 192.168.2.1:7900; meta-disk internal; }\n}\n")
    held = empty_observed().model_copy(update={"files": (OwnedFile(path="/etc/drbd.d/vm200.res", content=text),)})
    reason = _refusal(plan_node(make_node(make_vm(100)), held), "vm100")
    assert reason == ("vm100: DRBD minor 0 (/dev/drbd0) is held by resource vm200 (/etc/drbd.d/vm200.res); two "
                      "resources never share a minor: choose a free minor, or delete the other VM first")


def test_its_own_config_holds_nothing_against_it() -> None:
    # After a reboot: only the VM's own config file and LVs are there; bringing it up is no collision.
    vm = make_vm(100)
    observed = converged(make_node(vm)).model_copy(update={"dm_devices": (), "domains": (),
                                                          "drbd": DrbdState(kernel_version="9.2.12")})
    plan = plan_node(make_node(vm), observed)
    assert not plan.refused_vms
    assert any(a.kind == "create-stripe" for a in plan.actions)


def test_any_trace_of_the_vm_makes_its_untagged_lvs_its_own() -> None:
    vm = make_vm(100)
    observed = converged(make_node(vm))
    untagged = tuple(lv.model_copy(update={"tags": ()}) for lv in observed.logical_volumes)
    base = observed.model_copy(update={"logical_volumes": untagged, "domains": ()})
    only_config = base.model_copy(update={"dm_devices": (), "drbd": DrbdState(kernel_version="9.2.12")})
    assert not plan_node(make_node(vm), only_config).refused_vms
    only_stripe = _no_config(base).model_copy(update={"drbd": DrbdState(kernel_version="9.2.12")})
    assert not plan_node(make_node(vm), only_stripe).refused_vms
    only_running = _no_config(base).model_copy(update={"dm_devices": ()})
    assert not plan_node(make_node(vm), only_running).refused_vms
    nothing = _no_config(base).model_copy(update={"dm_devices": (), "drbd": DrbdState(kernel_version="9.2.12")})
    assert "was not created by this project" in _refusal(plan_node(make_node(vm), nothing), "vm100")


def test_a_stripe_table_with_fewer_legs_than_it_declares_refuses_the_vm_instead_of_failing_the_plan() -> None:
    vm = make_vm(100)
    for args in ("3 128 8:0 0", "3 128 8:0 0 8:1 0 8:2", "0 128"):
        observed = _with_stripe(converged(make_node(vm)), targets=(
            DmTarget(start=0, length=62914560, target="striped", args=args),))
        plan = plan_node(make_node(vm, make_vm(101)), observed)
        reason = _refusal(plan, "vm100")
        assert reason.startswith("vm100: the stripe root100 has a table this project did not write ("), args
        assert any(a.vm == "vm101" for a in plan.actions)


def test_two_running_minors_are_both_named() -> None:
    vm = make_vm(100)
    observed = _no_config(converged(make_node(vm)))
    res = drbd_state("vm100", 0)
    two = res.model_copy(update={"devices": (*res.devices, res.devices[0].model_copy(update={"volume": 1,
                                                                                            "minor": 5}))})
    observed = observed.model_copy(update={"drbd": observed.drbd.model_copy(update={"resources": (two,)})})
    assert _refusal(plan_node(make_node(vm), observed), "vm100").startswith(
        "vm100: its DRBD minor would change from 0/5 (running now) to 0; ")


def test_every_data_lv_is_compared_even_after_one_lvm_did_not_describe() -> None:
    vm = _linear(make_vm(100), stripes=2, stripe_size=64 * 1024)
    second = DesiredLV(vm="vm100", vg="vg-sdb", name="root100b", size_bytes=GIB, purpose="data", stripes=2,
                       stripe_size_bytes=64 * 1024)
    vm = vm.model_copy(update={"lvs": (vm.lvs[0], second, *vm.lvs[1:])})
    observed = _lvm_observed(vm, 1, None)
    first_unknown = tuple(lv.model_copy(update={"stripes": None}) if lv.name == "root100" else lv
                          for lv in observed.logical_volumes)
    reason = _refusal(plan_node(make_node(vm), observed.model_copy(update={"logical_volumes": first_unknown})),
                      "vm100")
    assert "its LV vg-sdb/root100b would change from 1 stripes to 2" in reason


def test_a_running_resource_is_not_held_against_an_unreadable_config_elsewhere() -> None:
    # The collision check guards bringing a resource up; one that is up already holds its minor and port.
    vm = make_vm(100)
    observed = converged(make_node(vm))
    broken = OwnedFile(path="/etc/drbd.d/other.res", content="resource other { on erdbeere { device")
    assert not plan_node(make_node(vm), observed.model_copy(update={"files": (*observed.files, broken)})).refused_vms


def test_a_port_collision_says_what_to_do() -> None:
    text = ("resource vm200 {\n  on erdbeere { device /dev/drbd9; disk /dev/mapper/root200; "
            "address 192.168.2.1:7788; meta-disk internal; }\n}\n")
    held = empty_observed().model_copy(update={"files": (OwnedFile(path="/etc/drbd.d/vm200.res", content=text),)})
    assert _refusal(plan_node(make_node(make_vm(100)), held), "vm100") == (
        "vm100: port 7788 is used by resource vm200 (/etc/drbd.d/vm200.res); choose a free port, or delete the other "
        "VM first")

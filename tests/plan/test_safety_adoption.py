"""Taking over what was built by hand: a dm device only while its live table is exactly the desired one, an LV
only while it is untagged and of the size lvcreate would have made. Each case is one a hand-built node shows."""

from __future__ import annotations

import pytest

from reconciler.core.safety import dm_adoption_refusal, lv_adoption_refusal, lvm_dm_name
from reconciler.model.observed import DmDevice, DmTarget, LogicalVolume

MIB = 1024**2
GIB = 1024**3


@pytest.mark.parametrize(("path", "name"), [
    # lvm names an LV's dm device VG-LV and doubles every '-' inside either name, so the split stays unique.
    ("/dev/vg-sda/data100", "vg--sda-data100"),
    ("/dev/vg/root-100", "vg-root--100"),
    ("/dev/vg-sda/root-a-b", "vg--sda-root--a--b"),
    ("/dev/vg0/lv0", "vg0-lv0"),
    # A /dev/mapper path already carries the dm name.
    ("/dev/mapper/vg--sda-data100", "vg--sda-data100"),
    ("/dev/mapper/root100", "root100"),
])
def test_an_lv_path_resolves_to_the_dm_name_lvm_gives_it(path: str, name: str) -> None:
    assert lvm_dm_name(path) == name


@pytest.mark.parametrize("word", [
    "/dev/drbd0",  # not an LV
    "/dev/disk/by-id/dm-name-root100",  # a deeper udev link
    "/sys/block/dm-0",  # not under /dev
    "x/dev/vg/lv",  # not an absolute path
    "dev/vg/lv",
    "253:1",  # the words a table holds besides paths
    "striped",
    "0",
])
def test_anything_but_an_lv_or_mapper_path_has_no_dm_name(word: str) -> None:
    assert lvm_dm_name(word) is None


# Three 10 GiB legs as `lvcreate` made them by hand, and their dm devices (numbers as the kernel gave them).
LEGS = tuple(DmDevice(name=f"vg--{d}-root100", uuid=f"LVM-{d}", major=253, minor=i + 1)
             for i, d in enumerate(("sda", "sdb", "sdc")))
DESIRED = "0 62914560 striped 3 128 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0 /dev/vg-sdc/root100 0"


def _stripe(args: str = "3 128 253:1 0 253:2 0 253:3 0", **attrs: object) -> DmDevice:
    """`dmsetup create root100` without --uuid, as the article does it."""
    return DmDevice(name="root100", uuid="", major=253, minor=4, live_table=True, inactive_table=False,
                    targets=(DmTarget(start=0, length=62914560, target="striped", args=args),)).model_copy(
                        update=attrs)


def _refusal(device: DmDevice | None, table: str = DESIRED, legs: tuple[DmDevice, ...] = LEGS) -> str | None:
    devices = (*legs, *((device,) if device is not None else ()))
    return dm_adoption_refusal("root100", device, uuid="RECONCILER-root100", table=table, devices=iter(devices))


def test_a_hand_made_stripe_over_the_desired_legs_is_taken_over() -> None:
    # The kernel shows the legs as major:minor; the desired table names their paths, with lvm's escaping.
    assert _refusal(_stripe()) is None


@pytest.mark.parametrize(("what", "attrs"), [
    ("suspended", {"suspended": True}),
    ("a reload in progress", {"inactive_table": True}),
    ("both", {"suspended": True, "inactive_table": True}),
])
def test_a_stripe_in_the_middle_of_a_change_is_not_taken_over(what: str, attrs: dict[str, object]) -> None:
    assert _refusal(_stripe(**attrs)) == (
        "dm device root100 is suspended or has an inactive table loaded; it is taken over only when idle"), what


def test_a_stripe_over_other_lvs_is_not_taken_over_and_both_tables_are_named() -> None:
    # The third leg is another LV (253:9), e.g. an old root100 on a disk that was replaced.
    other = (*LEGS, DmDevice(name="vg--sdd-root100", uuid="LVM-sdd", major=253, minor=9))
    device = _stripe("3 128 253:1 0 253:2 0 253:9 0")
    assert _refusal(device, legs=other) == (
        "dm device root100 shows the table '0 62914560 striped 3 128 253:1 0 253:2 0 253:9 0', not the desired "
        f"{DESIRED!r}: it is taken over only when both are equal; change the desired state to match (a difference "
        "to resolve by commit)")


def test_a_desired_leg_without_a_dm_device_is_a_difference_not_a_failure() -> None:
    # The desired state names an LV that is not active here (no dm device): its path stays a path and differs.
    missing = DESIRED.replace("/dev/vg-sdc/root100", "/dev/vg-sdd/root100")
    refusal = _refusal(_stripe(), table=missing)
    assert refusal is not None
    assert refusal.startswith("dm device root100 shows the table '0 62914560 striped 3 128 253:1 0 253:2 0 253:3 0', "
                              "not the desired '0 62914560 striped 3 128 /dev/vg-sda/root100 0 /dev/vg-sdb/root100 0 "
                              "/dev/vg-sdd/root100 0'")


def test_a_stripe_with_a_uuid_can_never_become_ours() -> None:
    assert _refusal(_stripe(uuid="CRYPT-root100")) == (
        "dm device root100 has uuid CRYPT-root100; device-mapper sets a uuid only once, so it cannot become "
        "RECONCILER-root100 (it was made by another tool; see docs/import.md)")
    assert _refusal(None) == "dm device root100 is gone; nothing to take over"


def _lv(size: int, *, stripes: int | None = 1, uuid: str = "u-root", tags: tuple[str, ...] = ()) -> LogicalVolume:
    return LogicalVolume(vg="vg-sda", name="root100", size_bytes=size, uuid=uuid, stripes=stripes, tags=tags)


def _lv_refusal(lv: LogicalVolume | None, size: int, *, stripes: int = 1, extent: int | None = 4 * MIB,
                uuid: str = "u-root") -> str | None:
    return lv_adoption_refusal("vg-sda", "root100", lv, uuid=uuid, size_bytes=size, stripes=stripes,
                               extent_bytes=extent, tag="reconciler")


def test_an_lv_is_taken_over_at_the_size_lvcreate_rounds_to() -> None:
    # `lvcreate -L 1500M` on 4 MiB extents: exactly 375 extents.
    assert _lv_refusal(_lv(1500 * MIB), 1500 * MIB) is None
    # `lvcreate -L 1000M` in a VG made with `vgcreate -s 32M`: rounded up to 32 extents, 1 GiB.
    assert _lv_refusal(_lv(GIB), 1000 * MIB, extent=32 * MIB) is None
    # `lvcreate -i 3 -L 10G`: 2560 extents rounded up to the stripe boundary, 2562 extents (10248 MiB).
    assert _lv_refusal(_lv(10248 * MIB, stripes=3), 10 * GIB, stripes=3) is None
    # A VG whose extent size is unknown counts with LVM's default of 4 MiB.
    assert _lv_refusal(_lv(1500 * MIB), 1500 * MIB, extent=None) is None


def test_an_lv_of_another_size_is_not_taken_over_and_the_message_says_what_to_change() -> None:
    assert _lv_refusal(_lv(20 * GIB), 10 * GIB) == (
        "LV vg-sda/root100 is 20GiB, not the desired 10GiB: it is taken over only when the sizes match; change the "
        "desired size (a difference to resolve by commit)")
    # One extent too many on 32 MiB extents is a difference too.
    assert _lv_refusal(_lv(GIB + 32 * MIB), 1000 * MIB, extent=32 * MIB) is not None
    # The stripe boundary is 3 extents for 3 stripes: 10 GiB exactly is not what `lvcreate -i 3 -L 10G` makes.
    assert _lv_refusal(_lv(10 * GIB, stripes=3), 10 * GIB, stripes=3) is not None


def test_an_lv_that_is_not_the_planned_one_or_already_tagged_is_not_taken_over() -> None:
    assert _lv_refusal(_lv(10 * GIB, uuid="u-new"), 10 * GIB) == (
        "LV vg-sda/root100 is now a different LV (uuid u-new, planned for u-root); not taken over")
    assert _lv_refusal(_lv(10 * GIB, tags=("reconciler",)), 10 * GIB) == (
        "LV vg-sda/root100 already carries the tag 'reconciler'")
    assert _lv_refusal(_lv(10 * GIB, stripes=2), 10 * GIB) == (
        "LV vg-sda/root100 has 2 stripes, not 1: not taken over")
    assert _lv_refusal(None, 10 * GIB) == "LV vg-sda/root100 is gone; nothing to take over"
    # Without a uuid from the plan, size, stripes and tag decide; an LV whose stripes lvs did not report is linear.
    assert _lv_refusal(_lv(10 * GIB, uuid="u-other", stripes=None), 10 * GIB, uuid="") is None

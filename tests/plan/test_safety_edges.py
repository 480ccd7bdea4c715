"""The safety gate at its edges: what each refusal tells the operator, and the states that sit right next to
an allowed one (a peer without disks, a second connection, a failed read)."""

from __future__ import annotations

import pytest

from reconciler.core.safety import (
    GenerationIds,
    beneath_verdict,
    dm_ownership_refusal,
    forced_promotion_refusal,
    lv_ownership_refusal,
    lv_shrink_refusal,
    mass_delete_refusal,
    parse_generation_ids,
    parse_mounts,
    peer_cannot_write,
    promotion_verdict,
    signature_verdict,
    start_domain_refusal,
    stripe_shrink_refusal,
)
from reconciler.model.observed import (
    DmDevice,
    DrbdConnectionState,
    DrbdPeerDeviceState,
    DrbdResourceState,
    LogicalVolume,
    Signature,
)
from tests.plan.factories import GIB, drbd_state

FRESH = GenerationIds(current=4, bitmap=0, history=())
NEW_PAIR = drbd_state("vm100", 0, role="Secondary", disk="Inconsistent", peer_disk="Inconsistent")


def _connection(peer: str, conn: str, role: str, *disks: str) -> DrbdConnectionState:
    return DrbdConnectionState(peer_name=peer, connection_state=conn, peer_role=role, peer_devices=tuple(
        DrbdPeerDeviceState(volume=i, replication_state="Established", peer_disk_state=d) for i, d in enumerate(disks)))


def test_generation_ids_are_read_field_by_field() -> None:
    gi = parse_generation_ids("drbdadm banner line\n"
                              "8A1B2C3D4E5F6071:00000000000000A0:6A4C9D3E5B1F2C10:00000000000000B0:1:1:1:1\n")
    # The trailing flags (":1:1:1:1") are not identifiers.
    assert gi == GenerationIds(current=0x8A1B2C3D4E5F6071, bitmap=0xA0, history=(0x6A4C9D3E5B1F2C10, 0xB0))
    # Only the bitmap differs from a fresh pair's: that alone is history.
    parsed = parse_generation_ids("0000000000000004:00000000000000FF\n")
    assert parsed == GenerationIds(current=4, bitmap=0xFF, history=())
    assert GenerationIds(current=4, bitmap=0xFF, history=()).has_history
    # Bit 0 of the current UUID only records the Primary role.
    assert not GenerationIds(current=5, bitmap=0, history=(0, 0)).has_history
    assert GenerationIds(current=6, bitmap=0, history=()).has_history


def test_forced_promotion_needs_disks_on_both_sides() -> None:
    # Connected, local Inconsistent, but the peer shows no disk at all (a diskless client): not a new pair.
    res = DrbdResourceState(name="vm100", role="Secondary", devices=NEW_PAIR.devices,
                            connections=(_connection("himbeere", "Connected", "Secondary"),))
    assert forced_promotion_refusal(res, designated_primary=True, gi=FRESH) == (
        "forced promotion refused: both disks must be Inconsistent (local Inconsistent, peer ?)")
    no_local = res.model_copy(update={"devices": (), "connections": NEW_PAIR.connections})
    assert forced_promotion_refusal(no_local, designated_primary=True, gi=FRESH) == (
        "forced promotion refused: both disks must be Inconsistent (local ?, peer Inconsistent)")
    two = NEW_PAIR.model_copy(update={"connections": (_connection("himbeere", "Connected", "Secondary",
                                                                   "Inconsistent", "UpToDate"),)})
    assert forced_promotion_refusal(two, designated_primary=True, gi=FRESH) == (
        "forced promotion refused: both disks must be Inconsistent (local Inconsistent, peer Inconsistent/UpToDate)")


def test_forced_promotion_refusals_say_why() -> None:
    assert forced_promotion_refusal(NEW_PAIR, designated_primary=False, gi=FRESH) == (
        "forced promotion refused: this node is not the designated primary")
    assert forced_promotion_refusal(None, designated_primary=True, gi=FRESH) == (
        "forced promotion refused: the DRBD resource is not up")
    cut = drbd_state("vm100", 0, role="Secondary", disk="Inconsistent", peer_disk="DUnknown", conn="Connecting")
    assert forced_promotion_refusal(cut, designated_primary=True, gi=FRESH) == (
        "forced promotion refused: the peer is not connected (never forced while disconnected)")
    alone = NEW_PAIR.model_copy(update={"connections": ()})
    assert forced_promotion_refusal(alone, designated_primary=True, gi=FRESH) == (
        "forced promotion refused: the peer is not connected (never forced while disconnected)")
    assert forced_promotion_refusal(NEW_PAIR, designated_primary=True, gi=None) == (
        "forced promotion refused: generation identifiers could not be read")
    history = GenerationIds(current=4, bitmap=0, history=(0x1234,))
    assert forced_promotion_refusal(NEW_PAIR, designated_primary=True, gi=history) == (
        "forced promotion refused: generation identifiers show history; this is not a new pair")
    assert forced_promotion_refusal(NEW_PAIR, designated_primary=True, gi=None, check_gi=False) is None


def test_a_resync_target_is_never_force_promoted() -> None:
    # Local Inconsistent, peer UpToDate: this node is the sync target. Forcing it would make it the source.
    target = drbd_state("vm100", 0, role="Secondary", disk="Inconsistent", peer_disk="UpToDate", resync=42.0)
    verdict = promotion_verdict(target, quorum_mechanism=False, gi=FRESH, check_gi=True)
    assert verdict.kind == "promote"
    assert verdict.waiting == "local disk is Inconsistent (resync 42.0%); promotion needs UpToDate data"
    assert verdict.refused == ""
    assert "both disks must be Inconsistent" in (
        forced_promotion_refusal(target, designated_primary=True, gi=FRESH) or "")
    # Half a new pair (one volume UpToDate) is no new pair either.
    mixed = target.model_copy(update={"connections": (_connection("himbeere", "Connected", "Secondary",
                                                                   "Inconsistent", "UpToDate"),)})
    assert promotion_verdict(mixed, quorum_mechanism=False).kind == "promote"


def test_a_disconnected_new_pair_waits_and_a_missing_disk_says_so() -> None:
    cut = drbd_state("vm100", 0, role="Secondary", disk="Inconsistent", peer_disk="DUnknown", conn="Connecting")
    verdict = promotion_verdict(cut, quorum_mechanism=False)
    assert verdict.kind == "promote-force-initial"
    assert verdict.waiting == "brand-new pair: waiting for the peer to connect (never forced while disconnected)"
    diskless = drbd_state("vm100", 0, role="Secondary").model_copy(update={"devices": ()})
    assert promotion_verdict(diskless, quorum_mechanism=False).waiting == (
        "local disk is missing; promotion needs UpToDate data")


def test_a_peer_that_cannot_be_proven_harmless_is_named_in_the_wait() -> None:
    unknown = drbd_state("vm100", 0, role="Secondary", conn="Connecting", peer_role="Unknown", peer_disk="DUnknown")
    assert promotion_verdict(unknown, quorum_mechanism=False).waiting == (
        "cannot prove the peer is not writing (peer: himbeere Connecting/Unknown); unreachable proves nothing: "
        "waiting for the peer to show Secondary, for fencing to outdate it, or for quorum")
    primary = drbd_state("vm100", 0, role="Secondary", peer_role="Primary")
    assert promotion_verdict(primary, quorum_mechanism=False).waiting == (
        "peer himbeere is Primary; promotion waits until it demotes (two primaries are refused)")


def test_every_connection_must_show_the_peer_cannot_write() -> None:
    res = drbd_state("vm100", 0, role="Secondary")
    second = _connection("kiwi", "Connecting", "Unknown", "DUnknown")
    both = res.model_copy(update={"connections": (*res.connections, second)})
    assert not peer_cannot_write(both, quorum_mechanism=False)
    outdated = _connection("himbeere", "Connecting", "Unknown", "Outdated")
    outdated_first = res.model_copy(update={"connections": (outdated, second)})
    assert not peer_cannot_write(outdated_first, quorum_mechanism=False)
    with_quorum = outdated_first.model_copy(update={"devices": tuple(d.model_copy(update={"quorum": True})
                                                                     for d in res.devices)})
    assert peer_cannot_write(with_quorum, quorum_mechanism=True)
    assert not peer_cannot_write(with_quorum, quorum_mechanism=False)
    # A peer Outdated on one volume and UpToDate on another may still write.
    half = res.model_copy(update={"connections": (_connection("himbeere", "Connecting", "Unknown",
                                                              "Outdated", "UpToDate"),)})
    assert not peer_cannot_write(half, quorum_mechanism=False)


def test_quorum_without_any_connection_counts_only_for_quorum_resources() -> None:
    res = drbd_state("vm100", 0, role="Secondary").model_copy(update={"connections": ()})
    quorate = res.model_copy(update={"devices": tuple(d.model_copy(update={"quorum": True}) for d in res.devices)})
    assert peer_cannot_write(quorate, quorum_mechanism=True)
    assert not peer_cannot_write(quorate, quorum_mechanism=False)
    lost = res.model_copy(update={"devices": tuple(d.model_copy(update={"quorum": False}) for d in res.devices)})
    assert not peer_cannot_write(lost, quorum_mechanism=True)
    # Quorum on no device at all proves nothing while connected to a peer that is not Secondary.
    empty = drbd_state("vm100", 0, role="Secondary", conn="Connecting", peer_role="Unknown",
                       peer_disk="DUnknown").model_copy(update={"devices": ()})
    assert not peer_cannot_write(empty, quorum_mechanism=True)


@pytest.mark.parametrize(("kind", "verb"), [("make-fs", "mkfs.xfs"), ("make-swap", "mkswap"),
                                            ("create-md", "drbdadm create-md")])
def test_signature_refusals_name_the_command_and_what_it_would_destroy(kind: str, verb: str) -> None:
    found = Signature(device="/dev/x", type="ext4")
    verdict = signature_verdict(kind, "/dev/x", found, journal_names_device=False)
    assert verdict.decision == "refuse"
    assert verdict.reason == (f"/dev/x carries a ext4 signature; {verb} would destroy it (wipe it by hand if it is "
                              "really unwanted)")
    below = beneath_verdict(kind, "run", "/dev/leg", Signature(device="/dev/leg", type="ext4"), above="/dev/x")
    assert below is not None
    assert below.reason == (f"/dev/leg beneath /dev/x carries a ext4 signature; {verb} on /dev/x would destroy it "
                            "(wipe it by hand if it is really unwanted)")


def test_unreadable_devices_are_named() -> None:
    assert signature_verdict("make-fs", "/dev/x", None, journal_names_device=False).reason == (
        "blkid -p could not tell what /dev/x holds; refusing to write over it")
    below = beneath_verdict("make-fs", "redo", "/dev/leg", None, above="/dev/x")
    assert below is not None
    assert below.reason == "blkid -p could not tell what /dev/leg (beneath /dev/x) holds; refusing to write over it"
    # A blank leg under a swap device that is written for the first time is fine.
    assert beneath_verdict("make-swap", "run", "/dev/leg", Signature(device="/dev/leg", type=None),
                           above="/dev/x") is None


def test_ownership_refusals_name_what_they_leave_alone() -> None:
    assert dm_ownership_refusal("root100", DmDevice(name="root100"), "RECONCILER-root100") == (
        "dm device root100 has uuid (none), not RECONCILER-root100: it was not made by this project and is left "
        "alone")
    lv = LogicalVolume(vg="vg-sda", name="root100", size_bytes=GIB, uuid="u1", tags=("reconciler",))
    assert lv_ownership_refusal("vg-sda", "root100", lv, uuid="u2", tag="reconciler") == (
        "LV vg-sda/root100 is now a different LV (uuid u1, planned for u2); refusing to remove what was not planned")
    # Without a planned uuid the tag alone decides.
    assert lv_ownership_refusal("vg-sda", "root100", lv, uuid="", tag="reconciler") is None
    assert lv_ownership_refusal("vg-sda", "root100", None, uuid="u1", tag="reconciler") == (
        "LV vg-sda/root100 is gone; nothing to remove")


def test_a_refusal_lists_every_volume_of_both_sides() -> None:
    res = NEW_PAIR.model_copy(update={"devices": (*NEW_PAIR.devices, NEW_PAIR.devices[0].model_copy(update={
        "volume": 1, "disk_state": "UpToDate"}))})
    assert forced_promotion_refusal(res, designated_primary=True, gi=FRESH) == (
        "forced promotion refused: both disks must be Inconsistent (local Inconsistent/UpToDate, peer Inconsistent)")


MIB = 1024**2


def test_lv_shrink_rounds_to_the_real_extent_and_stripe_count() -> None:
    # 12 MiB on 4 MiB extents is exactly 12 MiB: 16 MiB now is a shrink.
    assert lv_shrink_refusal("vg/lv", 12 * MIB, 16 * MIB, 4 * MIB) == (
        "shrinking vg/lv from 16MiB to 12MiB is refused: lvreduce destroys whatever lives past the new end "
        "(and shrinks an inactive LV without asking)")
    assert lv_shrink_refusal("vg/lv", 12 * MIB, 16 * MIB, 4 * MIB, stripes=1) is not None
    # With 32 MiB extents, 40 MiB is allocated as 64 MiB: no shrink.
    assert lv_shrink_refusal("vg/lv", 40 * MIB, 64 * MIB, 32 * MIB) is None
    # Two stripes of 4 MiB extents: 12 MiB becomes 16 MiB.
    assert lv_shrink_refusal("vg/lv", 12 * MIB, 16 * MIB, 4 * MIB, stripes=2) is None
    assert lv_shrink_refusal("vg/lv", 12 * MIB, 16 * MIB, None) is not None


def test_shrink_and_mass_delete_refusals_say_what_to_do() -> None:
    assert stripe_shrink_refusal("root100", 100, 200) == (
        "shrinking the stripe root100 from 200 to 100 sectors is refused: DRBD metadata and data past the new end "
        "would be cut off")
    assert mass_delete_refusal(3, 1, allowed=False) == (
        "3 VMs would be removed in this revision, more than the limit of 1; allow it explicitly "
        "(--allow-mass-delete, or allow_mass_delete in the repository)")


def test_mounted_devices_are_decoded_and_all_named() -> None:
    mounted = parse_mounts("/dev/disk/by-label/my\\040disk /mnt xfs rw 0 0\n/dev/drbd0 /a xfs rw 0 0\n"
                           "/dev/drbd1 /b xfs rw 0 0\n")
    assert mounted == ("/dev/disk/by-label/my disk", "/dev/drbd0", "/dev/drbd1")
    assert start_domain_refusal("vm100", ("/dev/drbd1", "/dev/drbd0"), mounted) == (
        "starting vm100 refused: /dev/drbd0, /dev/drbd1 is mounted in dom0")


def test_waits_name_every_volume_and_every_peer() -> None:
    res = drbd_state("vm100", 0, role="Secondary", disk="Outdated")
    two = res.model_copy(update={"devices": (*res.devices, res.devices[0].model_copy(update={
        "volume": 1, "disk_state": "Inconsistent"}))})
    assert promotion_verdict(two, quorum_mechanism=False).waiting.startswith(
        "local disk is Outdated/Inconsistent; ")
    unknown = drbd_state("vm100", 0, role="Secondary", conn="Connecting", peer_role="Unknown", peer_disk="DUnknown")
    kiwi = unknown.connections[0].model_copy(update={"peer_name": "kiwi"})
    pair = unknown.model_copy(update={"connections": (*unknown.connections, kiwi)})
    assert "(peer: himbeere Connecting/Unknown, kiwi Connecting/Unknown)" in promotion_verdict(
        pair, quorum_mechanism=False).waiting
    alone = unknown.model_copy(update={"connections": ()})
    assert "(peer: none)" in promotion_verdict(alone, quorum_mechanism=False).waiting


@pytest.mark.parametrize(("kind", "found", "journal", "reason"), [
    ("make-fs", None, False, "/dev/x carries no signature"),
    ("make-fs", "swap", True, "/dev/x carries a swap signature; mkfs.xfs would destroy it (wipe it by hand if it "
                              "is really unwanted)"),
    ("make-fs", "xfs", True, "/dev/x shows xfs from our own make-fs, and xfs_db could not tell whether mkfs.xfs "
                             "finished; refusing to write over it"),
    ("make-fs", "xfs", False, "/dev/x already carries a xfs signature"),
    ("make-swap", "swap", False, "/dev/x already carries a swap signature"),
    ("create-md", "drbd", False, "/dev/x already carries DRBD metadata (never recreated)"),
])
def test_signature_verdicts_say_what_they_saw(kind: str, found: str | None, journal: bool, reason: str) -> None:
    verdict = signature_verdict(kind, "/dev/x", Signature(device="/dev/x", type=found), journal_names_device=journal)
    assert verdict.reason == reason

"""The safety gate's decisions, one by one."""

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
from reconciler.model.observed import DmDevice, LogicalVolume, Signature
from tests.plan.factories import GIB, drbd_state

MIB = 1024**2


def test_lv_shrink_is_refused_but_extent_rounding_is_not_a_shrink() -> None:
    assert lv_shrink_refusal("vg/lv", 10 * GIB, 12 * GIB, 4 * MIB) is not None
    assert lv_shrink_refusal("vg/lv", 10 * GIB - 1000, 10 * GIB, 4 * MIB) is None  # rounded up to an extent
    assert lv_shrink_refusal("vg/lv", 10 * GIB, 10 * GIB + 8 * MIB, 4 * MIB, stripes=3) is None  # 854 x 12 MiB
    assert lv_shrink_refusal("vg/lv", 10 * GIB, 10 * GIB + 20 * MIB, 4 * MIB, stripes=3) is not None


def test_stripe_shrink_is_refused() -> None:
    assert stripe_shrink_refusal("root100", 100, 200) is not None
    assert stripe_shrink_refusal("root100", 200, 100) is None


@pytest.mark.parametrize(("kind", "found", "journal", "decision"), [
    ("make-fs", None, False, "run"),
    ("make-fs", "xfs", False, "done"),
    ("make-fs", "swap", False, "refuse"),
    ("make-swap", "swap", True, "done"),  # mkswap writes its header at once: a swap signature is a whole one
    ("make-swap", "xfs", True, "refuse"),  # mkswap runs only on a blank device: this came after it, not from it
    ("make-fs", "swap", True, "refuse"),
    ("make-swap", "xfs", False, "refuse"),  # mkswap would silently wipe it
    ("make-swap", "swap", False, "done"),
    ("create-md", "drbd", False, "done"),
    ("create-md", "drbd", True, "done"),  # metadata is never recreated, journal or not
    ("create-md", "xfs", False, "refuse"),
    ("create-md", None, False, "run"),
])
def test_signature_verdicts(kind: str, found: str | None, journal: bool, decision: str) -> None:
    verdict = signature_verdict(kind, "/dev/x", Signature(device="/dev/x", type=found), journal_names_device=journal)
    assert verdict.decision == decision


@pytest.mark.parametrize(("journal", "unfinished", "decision"), [
    (True, True, "redo"), (True, False, "done"), (True, None, "refuse"),
    # Without the journal: an mkfs.xfs that never finished left a filesystem the kernel never mounted.
    (False, True, "redo"), (False, False, "done"), (False, None, "done"),
])
def test_an_xfs_signature_is_redone_only_when_xfs_db_shows_mkfs_unfinished(journal: bool, unfinished: bool | None,
                                                                            decision: str) -> None:
    xfs = Signature(device="/dev/x", type="xfs")
    verdict = signature_verdict("make-fs", "/dev/x", xfs, journal_names_device=journal, unfinished=unfinished)
    assert verdict.decision == decision


def test_unknown_signature_refuses() -> None:
    assert signature_verdict("make-fs", "/dev/x", None, journal_names_device=True).decision == "refuse"


def test_generation_ids() -> None:
    fresh = parse_generation_ids("0000000000000004:0000000000000000:0000000000000000:0000000000000000:0:0:0:0\n")
    assert fresh is not None
    assert not fresh.has_history
    used = parse_generation_ids("some banner\n8A1B2C3D4E5F6071:0000000000000000:0000000000000004:0:1\n")
    assert used is None or used.has_history
    history = parse_generation_ids("0000000000000004:0000000000000000:6A4C9D3E5B1F2C10:0000000000000000\n")
    assert history is not None
    assert history.has_history
    assert parse_generation_ids("no numbers here") is None


def test_forced_promotion_gate() -> None:
    fresh = parse_generation_ids("0000000000000004:0000000000000000:0000000000000000:0000000000000000\n")
    new = drbd_state("vm100", 0, role="Secondary", disk="Inconsistent", peer_disk="Inconsistent")
    assert forced_promotion_refusal(new, designated_primary=True, gi=fresh) is None
    assert "designated" in (forced_promotion_refusal(new, designated_primary=False, gi=fresh) or "")
    cut = drbd_state("vm100", 0, role="Secondary", disk="Inconsistent", peer_disk="DUnknown", conn="Connecting")
    assert "not connected" in (forced_promotion_refusal(cut, designated_primary=True, gi=fresh) or "")
    synced = drbd_state("vm100", 0, role="Secondary", disk="UpToDate", peer_disk="Inconsistent")
    assert "Inconsistent" in (forced_promotion_refusal(synced, designated_primary=True, gi=fresh) or "")
    assert forced_promotion_refusal(new, designated_primary=True, gi=None) is not None
    assert forced_promotion_refusal(None, designated_primary=True, gi=fresh) is not None


def test_peer_cannot_write() -> None:
    assert peer_cannot_write(drbd_state("r", 0, role="Secondary"), quorum_mechanism=False)
    unknown = drbd_state("r", 0, role="Secondary", conn="Connecting", peer_role="Unknown", peer_disk="DUnknown")
    assert not peer_cannot_write(unknown, quorum_mechanism=False)
    outdated = drbd_state("r", 0, role="Secondary", conn="Connecting", peer_role="Unknown", peer_disk="Outdated")
    assert peer_cannot_write(outdated, quorum_mechanism=False)
    assert not peer_cannot_write(drbd_state("r", 0, peer_role="Primary"), quorum_mechanism=False)


def test_mounts_and_domains() -> None:
    mounted = parse_mounts("/dev/sda1 / ext4 rw 0 0\n/dev/drbd0 /mnt/my\\040data xfs rw 0 0\n")
    assert mounted == ("/dev/sda1", "/dev/drbd0")
    assert start_domain_refusal("vm100", ("/dev/drbd0",), mounted) is not None
    assert start_domain_refusal("vm100", ("/dev/drbd1",), mounted) is None


def test_mass_delete_limit() -> None:
    assert mass_delete_refusal(2, 1, allowed=False) is not None
    assert mass_delete_refusal(2, 1, allowed=True) is None
    assert mass_delete_refusal(1, 1, allowed=False) is None


FRESH_GI = GenerationIds(current=4, bitmap=0, history=())
HISTORY_GI = GenerationIds(current=0x5A3B, bitmap=0, history=(0x1234,))


@pytest.mark.parametrize(("local", "peer", "conn", "peer_role", "kind", "waits", "refused"), [
    # brand-new pair, connected: forced promotion, nothing to wait for
    ("Inconsistent", "Inconsistent", "Connected", "Secondary", "promote-force-initial", False, False),
    # brand-new here, peer unknown: never forced while disconnected
    ("Inconsistent", "DUnknown", "Connecting", "Unknown", "promote-force-initial", True, False),
    # a resync target (local Inconsistent, peer UpToDate): a normal promotion that waits for UpToDate data,
    # never a forced one (forcing it would make the stale side the sync source)
    ("Inconsistent", "UpToDate", "Connected", "Secondary", "promote", True, False),
    ("Outdated", "UpToDate", "Connected", "Secondary", "promote", True, False),
    ("Diskless", "UpToDate", "Connected", "Secondary", "promote", True, False),
    ("UpToDate", "UpToDate", "Connected", "Secondary", "promote", False, False),
    ("UpToDate", "UpToDate", "Connected", "Primary", "promote", True, False),
    ("UpToDate", "DUnknown", "Connecting", "Unknown", "promote", True, False),
    ("UpToDate", "Outdated", "Connecting", "Unknown", "promote", False, False),
])
def test_promotion_verdict(local: str, peer: str, conn: str, peer_role: str, kind: str,  # noqa: PLR0917
                           waits: bool, refused: bool) -> None:
    res = drbd_state("r", 0, role="Secondary", disk=local, peer_disk=peer, conn=conn, peer_role=peer_role)
    verdict = promotion_verdict(res, quorum_mechanism=False)
    assert verdict.kind == kind
    assert bool(verdict.waiting) is waits
    assert bool(verdict.refused) is refused


def test_promotion_verdict_checks_generation_ids_only_when_asked() -> None:
    new = drbd_state("r", 0, role="Secondary", disk="Inconsistent", peer_disk="Inconsistent")
    assert promotion_verdict(new, quorum_mechanism=False, gi=HISTORY_GI, check_gi=True).refused
    assert not promotion_verdict(new, quorum_mechanism=False, gi=FRESH_GI, check_gi=True).refused
    assert promotion_verdict(new, quorum_mechanism=False, gi=None, check_gi=True).refused
    assert not promotion_verdict(new, quorum_mechanism=False).refused


def test_quorum_alone_proves_a_disconnected_peer_cannot_write() -> None:
    res = drbd_state("r", 0, role="Secondary", conn="Connecting", peer_role="Unknown", peer_disk="DUnknown")
    with_quorum = res.model_copy(update={"devices": (res.devices[0].model_copy(update={"quorum": True}),)})
    assert promotion_verdict(with_quorum, quorum_mechanism=True).waiting == ""
    assert promotion_verdict(with_quorum, quorum_mechanism=False).waiting != ""


@pytest.mark.parametrize(("kind", "target", "leg", "refused"), [
    ("create-md", "run", None, False),
    ("create-md", "run", "xfs", True),  # someone's filesystem on a leg, invisible through the stripe
    ("create-md", "run", "drbd", True),  # metadata of another resource on a leg
    ("create-md", "done", "xfs", False),  # the stripe already carries our metadata: legs are not judged
    ("make-fs", "run", "drbd", False),  # pieces of our own DRBD metadata on a leg
    ("make-fs", "run", "xfs", True),
    ("make-fs", "run", "swap", True),
    ("make-fs", "redo", "xfs", False),  # the start of our own interrupted mkfs
    ("make-fs", "redo", "swap", True),
    ("make-fs", "refuse", "swap", False),  # already refused on the device itself
])
def test_beneath_verdicts(kind: str, target: str, leg: str | None, refused: bool) -> None:
    verdict = beneath_verdict(kind, target, "/dev/vg-sdb/root100",  # type: ignore[arg-type]
                              Signature(device="/dev/vg-sdb/root100", type=leg), above="/dev/x")
    assert (verdict is not None and verdict.decision == "refuse") is refused


def test_a_leg_that_cannot_be_probed_refuses() -> None:
    verdict = beneath_verdict("create-md", "run", "/dev/vg-sdb/root100", None, above="/dev/mapper/root100")
    assert verdict is not None
    assert verdict.decision == "refuse"


def test_dm_ownership() -> None:
    ours = DmDevice(name="root100", uuid="RECONCILER-root100")
    assert dm_ownership_refusal("root100", ours, "RECONCILER-root100") is None
    assert dm_ownership_refusal("root100", DmDevice(name="root100"), "RECONCILER-root100") is not None
    assert dm_ownership_refusal("root100", DmDevice(name="root100", uuid="LVM-abc"), "RECONCILER-root100")
    assert dm_ownership_refusal("root100", None, "RECONCILER-root100") is not None


def test_lv_ownership() -> None:
    lv = LogicalVolume(vg="vg-sda", name="root100", size_bytes=GIB, uuid="u1", tags=("reconciler",))
    assert lv_ownership_refusal("vg-sda", "root100", lv, uuid="u1", tag="reconciler") is None
    assert lv_ownership_refusal("vg-sda", "root100", lv, uuid="u2", tag="reconciler") is not None
    untagged = lv.model_copy(update={"tags": ()})
    assert "addtag" in (lv_ownership_refusal("vg-sda", "root100", untagged, uuid="u1", tag="reconciler") or "")
    assert lv_ownership_refusal("vg-sda", "root100", None, uuid="u1", tag="reconciler") is not None

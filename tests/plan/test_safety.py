"""The safety gate's decisions, one by one."""

from __future__ import annotations

import pytest

from reconciler.model.observed import DomainState, Signature
from reconciler.plan.safety import (
    forced_promotion_refusal,
    lv_shrink_refusal,
    mass_delete_refusal,
    mount_refusal,
    parse_generation_ids,
    parse_mounts,
    peer_cannot_write,
    signature_verdict,
    start_domain_refusal,
    stripe_shrink_refusal,
)
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
    ("make-fs", "xfs", True, "redo"),
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
    running = (DomainState(name="vm100", domid=3, state="blocked", memory_mib=1024),)
    assert mount_refusal("/dev/drbd0", running, {"vm100": ("/dev/drbd0",)}) is not None
    assert mount_refusal("/dev/drbd1", running, {"vm100": ("/dev/drbd0",)}) is None


def test_mass_delete_limit() -> None:
    assert mass_delete_refusal(2, 1, allowed=False) is not None
    assert mass_delete_refusal(2, 1, allowed=True) is None
    assert mass_delete_refusal(1, 1, allowed=False) is None

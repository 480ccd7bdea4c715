"""Real lvm2 on loop devices: skipped, with the reason, where root or the tools are missing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lvm_real.loopvg import LoopLab, loop_vgs, unavailable_reason


@pytest.fixture
def lab() -> Iterator[LoopLab]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"real lvm2 on loop devices: {reason}")
    with loop_vgs(["vg-sda", "vg-sdb"], disk_bytes=2 * 1024**3) as created:
        yield created

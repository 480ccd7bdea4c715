"""Split brain as DRBD reports it: its split-brain handler records the incident, the observer flags it."""

from __future__ import annotations

import pytest

from reconciler.backends.drbd.splitbrain_handler import peer_from_env
from reconciler.backends.drbd.splitbrain_markers import (
    SplitBrainMarker,
    apply_markers,
    marker_path,
    marker_text,
    parse_marker,
)
from reconciler.core.parse_error import ParseError
from reconciler.daemon.peers.splitbrain import record_split_brain
from reconciler.model.observed import DrbdState
from tests.apply.fakes import FakeHost, ok
from tests.plan.factories import drbd_state

GI = "6A3C9E27B1D04F58:7D0A5D3C6D93AB0E:0000000000000000:0000000000000000:1:1:1:0:0:0:0:0\n"


def test_the_handler_records_resource_peer_time_and_generation() -> None:
    host = FakeHost(responders=[lambda argv: ok(argv, GI) if argv[:2] == ("drbdadm", "show-gi") else None])
    env = {"DRBD_RESOURCE": "vm100", "DRBD_PEER_NODE_ID": "1", "DRBD_NODE_ID_1": "himbeere"}
    marker = record_split_brain(host, env, lambda: 1234.0)
    assert marker == SplitBrainMarker(resource="vm100", peer="himbeere", detected_at=1234.0,
                                      generation="6A3C9E27B1D04F58:7D0A5D3C6D93AB0E:0000000000000000:0000000000000000")
    assert parse_marker(host.files[marker_path("vm100")], "x") == marker


def test_the_handler_refuses_an_unsafe_resource_name() -> None:
    with pytest.raises(ValueError, match="DRBD resource"):
        record_split_brain(FakeHost(), {"DRBD_RESOURCE": "../etc/passwd"}, lambda: 0.0)


def test_peer_names_from_drbd_9_and_8_4_environments() -> None:
    assert peer_from_env({"DRBD_PEER_NODE_ID": "1", "DRBD_NODE_ID_1": "himbeere"}) == "himbeere"
    assert peer_from_env({"DRBD_PEERS": "erdbeere"}) == "erdbeere"
    assert peer_from_env({"DRBD_PEER": "bad name;"}) == ""


def test_a_marker_flags_only_a_resource_whose_connection_stays_standalone() -> None:
    marker = SplitBrainMarker(resource="vm100", peer="himbeere", detected_at=5.0, generation="ABC")
    standalone = drbd_state("vm100", 0, conn="StandAlone", peer_role="Unknown", peer_disk="DUnknown")
    flagged = apply_markers(DrbdState(resources=(standalone,)), (marker,)).resources[0]
    assert flagged.split_brain
    assert "with himbeere" in flagged.split_brain_detail
    assert "ABC" in flagged.split_brain_detail
    for healed in (drbd_state("vm100", 0), drbd_state("vm100", 0, conn="Connecting", peer_role="Unknown",
                                                          peer_disk="DUnknown")):
        assert not apply_markers(DrbdState(resources=(healed,)), (marker,)).resources[0].split_brain


def test_a_damaged_marker_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="split-brain marker"):
        parse_marker("{not json", "/var/lib/reconciler/split-brain/vm100.json")
    with pytest.raises(ParseError):
        parse_marker(marker_text(SplitBrainMarker(resource="vm100", detected_at=1.0)) + "x" * 5000, "p")

"""DRBD's fence-peer contract sits in its backend: the environment read into a neutral request, the shared
verdict answered as DRBD's exit code; the shared fence logic names no exit code and no DRBD variable."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from reconciler.backends.drbd.fence_handler import EXIT_CODES, exit_code, request_from_env
from reconciler.core.seams import FenceRequest

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]


def test_the_verdicts_are_drbds_exit_codes() -> None:
    assert {verdict: exit_code(verdict) for verdict in EXIT_CODES} == {
        "not-fenced": 1, "already": 3, "outdated": 4, "peer-primary": 6, "stonithed": 7}
    assert 5 not in EXIT_CODES.values()  # "unreachable" would let DRBD take a live peer as Outdated


def test_drbds_environment_becomes_a_request() -> None:
    env = {"DRBD_RESOURCE": "vm100", "DRBD_PEER_NODE_ID": "1", "DRBD_PEER_ADDRESS": "192.168.2.2",
           "DRBD_PEERS": "himbeere kiwi", "DRBD_MINOR": "0 x 3"}
    assert request_from_env(env) == FenceRequest(resource="vm100", peer_node_id=1, peer_address="192.168.2.2",
                                                 peer_names=("himbeere", "kiwi"), minors=(0, 3))
    assert request_from_env({"DRBD_PEER_NODE_ID": "one"}) == FenceRequest(resource="")


def test_the_shared_fence_logic_reads_no_drbd_variable_and_names_no_exit_code() -> None:
    source = (ROOT / "reconciler" / "daemon" / "peers" / "fence.py").read_text(encoding="utf-8")
    strings = [n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert not [s for s in strings if s.startswith("DRBD_")]
    assert "EXIT_" not in source


def test_the_fence_peer_command_names_no_drbd_module() -> None:
    # The handler answers through the node's replicator (its adapter), never DRBD's by name.
    tree = ast.parse((ROOT / "reconciler" / "cli" / "cmd_fence.py").read_text(encoding="utf-8"))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert "reconciler.backends.registry" in imported
    assert not [m for m in imported if m.startswith("reconciler.backends.drbd")]

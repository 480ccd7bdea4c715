"""Peer endpoints from the unit's environment file (RECONCILER_PEERS), as the shipped unit passes them."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from reconciler.cli import cmd_run
from reconciler.cli.cmd_run import ConfigError, build_config
from reconciler.names import UnsafeNameError


def run_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cmd_run.register(parser.add_subparsers())
    return parser.parse_args(["run", *argv])


BASE = ("--node", "erdbeere", "--peer-auth", "none")


def test_peers_come_from_the_environment_when_no_option_names_one(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_PEERS", "himbeere=127.0.0.1:9791  kirsche=127.0.0.2:9795")
    config = build_config(run_args("--repo", str(tmp_path), *BASE))
    assert [(p.node, p.host, p.port) for p in config.peers] == [
        ("himbeere", "127.0.0.1", 9791), ("kirsche", "127.0.0.2", 9795)]


def test_an_option_replaces_the_environment_list_instead_of_adding_to_it(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_PEERS", "himbeere=127.0.0.1:9791")
    config = build_config(run_args("--repo", str(tmp_path), *BASE, "--peer", "himbeere=127.0.0.3:9000"))
    assert [(p.node, p.host, p.port) for p in config.peers] == [("himbeere", "127.0.0.3", 9000)]


def test_a_malformed_environment_item_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_PEERS", "himbeere:9791")
    with pytest.raises(ConfigError, match=r"RECONCILER_PEERS 'himbeere:9791': expected NODE=HOST:PORT"):
        build_config(run_args("--repo", str(tmp_path), *BASE))


def test_a_peer_name_from_the_environment_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_PEERS", "../etc=127.0.0.1:9791")
    with pytest.raises(UnsafeNameError, match="peer node"):
        build_config(run_args("--repo", str(tmp_path), *BASE))

"""Suspensions and allowed revisions persist; the control socket wakes a running daemon."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.daemon.node.control import ControlServer, ControlStore, send_command
from reconciler.names import UnsafeNameError
from reconciler.source.errors import SourceError


def test_suspend_resume_round_trip(tmp_path: Path) -> None:
    store = ControlStore(tmp_path)
    store.suspend("node", "maintenance", "alice", at=10.0)
    store.suspend("vm100", "debugging", "bob", at=11.0)
    state = ControlStore(tmp_path).read()
    assert state.node_suspended
    assert state.vm_suspended("vm200") is not None  # the node scope covers every VM
    assert store.resume("node")
    state = store.read()
    assert not state.node_suspended
    assert state.vm_suspended("vm200") is None
    suspension = state.vm_suspended("vm100")
    assert suspension is not None
    assert (suspension.by, suspension.reason) == ("bob", "debugging")
    assert not store.resume("node")


def test_bad_requests_are_rejected(tmp_path: Path) -> None:
    store = ControlStore(tmp_path)
    with pytest.raises(UnsafeNameError):
        store.suspend("../etc", "x", "me")
    with pytest.raises(ValueError, match="reason"):
        store.suspend("vm100", "  ", "me")
    with pytest.raises(SourceError):
        store.allow_revision("HEAD~1")


def test_cli_suspend_records_who_and_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SUDO_USER", "carol")
    assert main(["suspend", "--vm", "vm100", "--reason", "disk replacement", "--state-dir", str(tmp_path)]) == 0
    assert "no daemon listens" in capsys.readouterr().out
    suspension = ControlStore(tmp_path).read().suspension("vm100")
    assert suspension is not None
    assert (suspension.by, suspension.reason) == ("carol", "disk replacement")
    assert main(["resume", "--vm", "vm100", "--state-dir", str(tmp_path)]) == 0
    assert main(["resume", "--vm", "vm100", "--state-dir", str(tmp_path)]) == 1
    assert main(["allow-revision", "a" * 40, "--state-dir", str(tmp_path)]) == 0
    assert ControlStore(tmp_path).read().allowed_revisions == frozenset({"a" * 40})


def test_the_control_socket_wakes_the_daemon(tmp_path: Path) -> None:
    got = threading.Event()
    commands: list[str] = []

    def on_command(command: str) -> None:
        commands.append(command)
        got.set()

    server = ControlServer(tmp_path, on_command)
    server.start()
    try:
        assert (tmp_path / "control.sock").stat().st_mode & 0o077 == 0
        assert send_command(tmp_path, "reconcile-now")
        assert got.wait(2)
        assert commands == ["reconcile-now"]
    finally:
        server.stop()
    assert not send_command(tmp_path, "reconcile-now")
    assert main(["reconcile-now", "--state-dir", str(tmp_path)]) == 1


def test_cli_refuses_a_vm_id_and_warns_about_an_unknown_vm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from reconciler.cli import cmd_control

    for command in ("suspend", "resume"):
        extra = ["--reason", "x"] if command == "suspend" else []
        assert main([command, "--vm", "100", *extra, "--state-dir", str(tmp_path)]) == 2
        assert "--vm takes the VM's name (e.g. vm100" in capsys.readouterr().err
    assert ControlStore(tmp_path).read().suspensions == ()
    monkeypatch.setattr(cmd_control, "_vms_in_force", lambda state_dir: ("0123456789ab", {"vm100", "vm101"}))
    assert main(["suspend", "--vm", "vm10", "--reason", "typo", "--state-dir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "warning: revision 0123456789ab in force has no VM named vm10 (it has vm100, vm101)" in err
    assert main(["suspend", "--vm", "vm100", "--reason", "fine", "--state-dir", str(tmp_path)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_cli_shutdown_node_with_a_bad_sim_or_node_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reconciler.sim.state import SimCluster

    assert main(["shutdown-node", "--sim", str(tmp_path / "none"), "--node", "erdbeere",
                 "--state-dir", str(tmp_path / "state")]) == 2
    assert "no simulated cluster" in capsys.readouterr().err
    SimCluster.init(tmp_path / "sim", ["erdbeere"], {"vg-sda": 400 << 30})
    assert main(["shutdown-node", "--sim", str(tmp_path / "sim"), "--node", "kiwi",
                 "--state-dir", str(tmp_path / "state")]) == 2
    assert "'kiwi' is not part of the simulated cluster" in capsys.readouterr().err
    assert main(["shutdown-node", "--node", "not-" + os.uname().nodename, "--state-dir", str(tmp_path / "state")]) == 2
    assert "does not match this host's name" in capsys.readouterr().err

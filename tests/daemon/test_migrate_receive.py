"""`reconciler migrate-receive`: only the receiver `xl migrate` asks for runs, and where systemd runs, in
machine.slice, ordered to stop after reconciler-shutdown.service (so its xl monitor outlives the domains' shutdown)."""

from __future__ import annotations

import argparse
import os
from typing import Any

import pytest

from reconciler.cli import cmd_migrate_receive
from reconciler.cli.cmd_migrate_receive import SYSTEM_PATH, receiver
from reconciler.daemon.node.migrate_receive import ReceiveCommandError, scoped_receive_argv

pytestmark = pytest.mark.timeout(60)


def test_sshd_original_command_is_run_as_the_receiver() -> None:
    argv = receiver({"SSH_ORIGINAL_COMMAND": "xl migrate-receive"}, [], systemd=False, pid=42)
    assert argv == ("xl", "migrate-receive")


def test_the_flags_xl_migrate_writes_are_passed_on() -> None:
    # xl_migrate.c writes "xl%s%s%.*s migrate-receive%s%s%s": -t, -T, -v..., then -e, -d, -p.
    text = "xl -t -T -vv migrate-receive -e -d -p"
    assert receiver({"SSH_ORIGINAL_COMMAND": text}, [], systemd=False, pid=42) == tuple(text.split())


def test_words_after_the_double_dash_stand_for_a_transport_without_sshd() -> None:
    assert receiver({}, ["--", "xl", "migrate-receive"], systemd=False, pid=7) == ("xl", "migrate-receive")


def test_under_systemd_the_receiver_runs_in_a_scope_of_machine_slice() -> None:
    argv = receiver({"SSH_ORIGINAL_COMMAND": "xl migrate-receive"}, [], systemd=True, pid=4242)
    assert argv[:2] == ("systemd-run", "--scope")
    assert "--slice=machine.slice" in argv
    assert "--unit=reconciler-incoming-4242.scope" in argv
    assert "--property=Before=reconciler-shutdown.service" in argv
    assert argv[argv.index("--") + 1:] == ("xl", "migrate-receive")


@pytest.mark.parametrize("text", [
    "",
    "xl destroy vm100",
    "xl migrate-receive --coloft-script /tmp/evil",
    "xl migrate-receive -r",
    "xl -c /etc/other.conf migrate-receive",
    "sh -c 'xl migrate-receive'",
    "/usr/sbin/xl migrate-receive",
    "xl migrate-receive; reboot",
    "xl migrate-receive " + "-e " * 200,
])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ReceiveCommandError, match="migrate-receive"):
        receiver({"SSH_ORIGINAL_COMMAND": text}, [], systemd=False, pid=1)


def test_a_scope_is_named_after_a_process_id_only() -> None:
    with pytest.raises(ValueError, match="process id"):
        scoped_receive_argv(("xl", "migrate-receive"), "x/../y")


def test_the_command_replaces_itself_with_the_system_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def fake_exec(file: str, argv: tuple[str, ...], env: dict[str, str]) -> None:
        seen.append((file, argv, env))
        raise OSError("stopped here by the test")

    monkeypatch.setattr(os, "execvpe", fake_exec)
    monkeypatch.setattr(cmd_migrate_receive.os.path, "isdir", lambda _p: False)
    monkeypatch.setenv("SSH_ORIGINAL_COMMAND", "xl migrate-receive")
    monkeypatch.setenv("PATH", "/tmp/attacker:/usr/bin")
    code = cmd_migrate_receive._receive(argparse.Namespace(command=[]))
    assert code == 127
    assert seen == [("xl", ("xl", "migrate-receive"), {"PATH": SYSTEM_PATH, "LANG": "C", "LC_ALL": "C"})]


def test_a_refusal_exits_2_with_the_reason(capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_ORIGINAL_COMMAND", "xl destroy vm100")
    assert cmd_migrate_receive._receive(argparse.Namespace(command=[])) == 2
    assert "refused" in capsys.readouterr().err


def test_the_doctors_probe_succeeds_without_running_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[object] = []
    monkeypatch.setattr(os, "execvpe", lambda *a: ran.append(a))
    monkeypatch.setenv("SSH_ORIGINAL_COMMAND", "true")
    assert cmd_migrate_receive._receive(argparse.Namespace(command=[])) == 0
    assert ran == []

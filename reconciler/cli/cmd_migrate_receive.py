"""`reconciler migrate-receive`: the receiving end of a live migration, as the transport's forced command.

On the target node, the transport's key runs it instead of what the source asked for
(``command="/usr/bin/reconciler migrate-receive",restrict`` in root's ``authorized_keys``). It reads the command
``xl migrate`` sent (sshd's ``SSH_ORIGINAL_COMMAND``, or the words after ``--``), accepts only
``xl migrate-receive`` with xl's own flags (and ``true``, the doctor's probe of the transport, which does
nothing), and replaces itself with it: inside a transient scope of
``machine.slice`` where systemd runs (:mod:`reconciler.daemon.node.migrate_receive`), as it is elsewhere.
It has no timeout of its own: it becomes the receiver of the sender's stream, which ends when the sender's
``xl migrate`` (under the daemon's step timeout) ends.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from reconciler.daemon.node.migrate_receive import (
    SYSTEMD_DIR,
    ReceiveCommandError,
    receive_argv,
    scoped_receive_argv,
    split_original_command,
)

if TYPE_CHECKING:
    from reconciler.cli.common import Subparsers

PROG = "reconciler migrate-receive"
# The receiver runs as root with the system's directories only, whatever the login's environment says.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROBE = "true"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "migrate-receive", help="receiving end of `xl migrate` (the transport's forced command on the target)",
        description="Run `xl migrate-receive` as the sending `xl migrate` asked (SSH_ORIGINAL_COMMAND, or the "
                    "words after --), only that, in machine.slice where systemd runs.")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="xl migrate-receive [FLAGS], when not given by sshd in SSH_ORIGINAL_COMMAND")
    parser.set_defaults(func=_receive)


def given_command(env: Mapping[str, str], words: Sequence[str]) -> list[str]:
    return [w for w in words if w != "--"] if words else split_original_command(env.get("SSH_ORIGINAL_COMMAND", ""))


def receiver(env: Mapping[str, str], words: Sequence[str], *, systemd: bool, pid: int) -> tuple[str, ...]:
    """The argv that replaces this process; ReceiveCommandError when the command is not a receiver."""
    argv = receive_argv(given_command(env, words))
    return scoped_receive_argv(argv, str(pid)) if systemd else argv


def _receive(args: argparse.Namespace) -> int:
    if given_command(os.environ, args.command) == [PROBE]:
        return 0  # `reconciler doctor` checks the transport with `TRANSPORT PEER true`: the key reaches this node
    try:
        argv = receiver(os.environ, args.command, systemd=os.path.isdir(SYSTEMD_DIR), pid=os.getpid())
    except ReceiveCommandError as exc:
        print(f"{PROG}: refused: {exc}", file=sys.stderr)
        return 2
    env = {"PATH": SYSTEM_PATH, "LANG": "C", "LC_ALL": "C"}
    try:
        os.execvpe(argv[0], argv, env)  # noqa: S606  argv is checked word by word above
    except OSError as exc:
        print(f"{PROG}: cannot run {argv[0]}: {exc}", file=sys.stderr)
        return 127
    return 127  # not reached: exec replaces the process

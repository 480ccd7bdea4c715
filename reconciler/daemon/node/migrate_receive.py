"""The receiving end of ``xl migrate``: the command the transport runs on the target, checked, and where it runs.

``xl migrate -s TRANSPORT NAME HOST`` runs ``exec TRANSPORT HOST xl [-t] [-T] [-v...] migrate-receive [-e] [-d]
[-p]`` on the source; with ssh, the target's sshd runs ``xl migrate-receive`` as the login's command. The xl
monitor that ``migrate-receive`` leaves behind for the domain (it carries out the domain's ``on_poweroff`` and
``on_crash`` actions and releases its disks) would then live in the ssh login's session: stopped with the user
sessions at system shutdown, before ``reconciler-shutdown.service`` has shut the domains down, which then wait
out their timeout holding their DRBD devices. ``reconciler migrate-receive`` (the forced command of the
transport's key) runs the same receiver where the daemon's own domain starts run: in ``machine.slice``, ordered
to stop after ``reconciler-shutdown.service``. It is a scope rather than a service because the receiver must
keep the transport's standard input and output (the migration stream), which a scope's command inherits; the
scope leaves sshd's session, lives as long as the monitor does, and is collected afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from reconciler.daemon.node.scope import SHUTDOWN_UNIT

SYSTEMD_DIR = "/run/systemd/system"
SCOPE_PREFIX = "reconciler-incoming-"
RECEIVE = "migrate-receive"
# What xl puts before and after `migrate-receive` (xl_migrate.c's main_migrate): a tty and timestamps for its
# progress output, its verbosity, no monitor (-e), debug (-d), pause after the migration (-p).
_GLOBAL_FLAG = re.compile(r"-(?:t|T|v+)")
_RECEIVE_FLAGS = frozenset({"-e", "-d", "-p"})
MAX_COMMAND = 200


class ReceiveCommandError(ValueError):
    """A command for the receiving end that is not ``xl migrate-receive`` as ``xl migrate`` asks for it."""


def receive_argv(words: Sequence[str]) -> tuple[str, ...]:
    """``words`` (``xl [FLAGS] migrate-receive [FLAGS]``, as the sending xl wrote them) checked word by word."""
    text = " ".join(words)
    if len(text) > MAX_COMMAND or not words or words[0] != "xl" or RECEIVE not in words:
        raise ReceiveCommandError(f"{text[:MAX_COMMAND]!r}: only `xl migrate-receive` (as `xl migrate` runs it "
                                  "through its transport) is accepted here")
    at = list(words).index(RECEIVE)
    before, after = words[1:at], words[at + 1:]
    bad = [w for w in before if not _GLOBAL_FLAG.fullmatch(w)] + [w for w in after if w not in _RECEIVE_FLAGS]
    if bad:
        raise ReceiveCommandError(f"{text!r}: unexpected {' '.join(bad)!r}; `xl migrate-receive` accepts only "
                                  f"-t, -T and -v before it and {', '.join(sorted(_RECEIVE_FLAGS))} after it here")
    return tuple(words)


def split_original_command(text: str) -> list[str]:
    """sshd's SSH_ORIGINAL_COMMAND as words: xl writes it with single spaces and no quoting."""
    return text.split()


def scoped_receive_argv(argv: Sequence[str], token: str) -> tuple[str, ...]:
    """``argv`` (a checked receiver) in a transient scope of ``machine.slice`` named after ``token``."""
    if not re.fullmatch(r"[0-9]{1,10}", token):
        raise ValueError(f"scope token {token!r}: expected a process id")
    return ("systemd-run", "--scope", "--quiet", "--collect", "--no-ask-password", "--slice=machine.slice",
            f"--unit={SCOPE_PREFIX}{token}.scope", "--description=Xen domain received by xl migrate (reconciler)",
            f"--property=Before={SHUTDOWN_UNIT}", "--", *argv)

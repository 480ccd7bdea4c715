"""``xl migrate``: the argv of a live migration, the transport it travels over, and xl's names meanwhile.

``xl migrate -s SSHCOMMAND DOMAIN HOST`` runs ``exec SSHCOMMAND HOST xl migrate-receive`` through ``/bin/sh`` on
this node: the transport is shell text, so it is held to a strict set of characters (words of letters, digits
and ``._/=@:,-``, separated by single spaces), and the host is a checked node name. While the memory is copied,
xl names the domain ``NAME--incoming`` on the receiving node; once it is sent, ``NAME--migratedaway`` on the
sending one. When the final handshake fails xl says the domain's state is undefined and leaves both.
"""

from __future__ import annotations

import re

from reconciler.names import check_name

INCOMING_SUFFIX = "--incoming"
MIGRATED_AWAY_SUFFIX = "--migratedaway"
UNDEFINED_MARKER = "Domain state is now undefined"
DEFAULT_TRANSPORT = "ssh -o BatchMode=yes"
TRANSPORT_ENV = "RECONCILER_MIGRATE_TRANSPORT"

_WORD = r"[A-Za-z0-9._/=@:,+-]+"
_TRANSPORT = re.compile(rf"{_WORD}(?: {_WORD})*")
MAX_TRANSPORT = 256


class TransportError(ValueError):
    """A migration transport that cannot be passed to ``xl migrate -s``."""


def check_transport(text: str, source: str = TRANSPORT_ENV) -> str:
    """``text`` if it is a transport ``xl migrate -s`` may run through the shell; TransportError otherwise."""
    if not text or len(text) > MAX_TRANSPORT or not _TRANSPORT.fullmatch(text):
        raise TransportError(f"{source} {text!r}: expected a command such as {DEFAULT_TRANSPORT!r}: words of "
                             "letters, digits and ._/=@:,+- separated by single spaces (xl runs it through the "
                             "shell, so nothing else is allowed)")
    return text


def migrate_argv(domain: str, target: str, transport: str) -> tuple[str, ...]:
    return ("xl", "migrate", "-s", check_transport(transport), check_name(domain, "domain"),
            check_name(target, "node"))


def migration_names(domain: str) -> tuple[str, str]:
    """(at the target, at the source) while xl migrates ``domain``."""
    check_name(domain, "domain")
    return domain + INCOMING_SUFFIX, domain + MIGRATED_AWAY_SUFFIX


def undefined_state(output: str) -> bool:
    """xl said the migration failed in its final handshake, leaving the domain's state undefined at both ends."""
    return UNDEFINED_MARKER in output

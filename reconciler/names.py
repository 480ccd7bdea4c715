"""The one validator for every name that can reach a command line or a path.

Names of nodes, volume groups, logical volumes, dm devices, DRBD resources and domains all pass
through :func:`check_name` before they are used in an argv or joined into a path. The pattern is the
intersection of what LVM, device-mapper, DRBD and xl accept, minus anything a shell or a path could
misread: no ``/``, no ``..``, no leading ``-`` or ``.``, no whitespace or metacharacters.
"""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 63
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


class UnsafeNameError(ValueError):
    """A name that must not reach a command line or a path."""

    def __init__(self, what: str, value: object, reason: str) -> None:
        self.what = what
        self.value = value
        self.reason = reason
        super().__init__(f"{what} {value!r} is not a safe name: {reason}")


def name_problem(value: object) -> str | None:
    """Return why ``value`` is not a safe name, or None when it is one."""
    if not isinstance(value, str):
        return f"expected a string, got {type(value).__name__}"
    if not value:
        return "it is empty"
    if len(value) > MAX_NAME_LENGTH:
        return f"it is {len(value)} characters long; at most {MAX_NAME_LENGTH} are allowed"
    if value.startswith("-"):
        return "it starts with '-', which a command would read as an option"
    if ".." in value:
        return "it contains '..'"
    if not _NAME_RE.fullmatch(value):
        bad = sorted({c for c in value if not re.fullmatch(r"[A-Za-z0-9_.+-]", c)})
        shown = ", ".join(repr(c) for c in bad) if bad else repr(value[0])
        return f"it contains {shown}; use letters, digits, '_', '.', '+' and '-' (starting with a letter or digit)"
    return None


def check_name(value: object, what: str = "name") -> str:
    """Return ``value`` unchanged when it is a safe name, else raise :class:`UnsafeNameError`."""
    problem = name_problem(value)
    if problem is not None or not isinstance(value, str):
        raise UnsafeNameError(what, value, problem or "not a string")
    return value


_DEVICE_RE = re.compile(r"/dev(/[A-Za-z0-9][A-Za-z0-9_.+-]*){1,3}")


def check_device_path(value: str, what: str = "device") -> str:
    """Validate an absolute device path such as ``/dev/vg-sda/root100`` or ``/dev/drbd0``."""
    if not _DEVICE_RE.fullmatch(value) or ".." in value:
        raise UnsafeNameError(what, value, "expected /dev/ followed by one to three safe name components")
    return value


MAX_PATH_LENGTH = 1024


def check_absolute_path(value: str, what: str = "path") -> str:
    """Validate an absolute path whose every component is a safe name (no ``..``, no ``.``, no empty
    component, nothing a command could read as an option), such as ``/srv/images/busybox.tar``."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > MAX_PATH_LENGTH:
        raise UnsafeNameError(what, value, f"expected an absolute path of at most {MAX_PATH_LENGTH} characters")
    for part in value[1:].split("/"):
        problem = name_problem(part)
        if problem is not None:
            raise UnsafeNameError(what, value, f"component {part!r}: {problem}")
    return value

"""The device-mapper commands a plan runs: create, take over, reload, resume and remove a device.

Every device the reconciler creates or takes over carries the project's uuid
(:func:`reconciler.ownership.dm_uuid`), which the safety gate checks before any removal; every name passes
:func:`reconciler.names.check_name`.
"""

from __future__ import annotations

from reconciler.core.actions import Command, cmd
from reconciler.names import check_name
from reconciler.ownership import dm_uuid


def dmsetup_create(name: str, table: str) -> Command:
    return cmd("dmsetup", "create", check_name(name, "dm device"), "--uuid", dm_uuid(name), stdin=table + "\n")


def dmsetup_setuuid(name: str) -> Command:
    """Take over a dm device made without uuid: it keeps its name and table; the kernel allows this once."""
    return cmd("dmsetup", "rename", check_name(name, "dm device"), "--setuuid", dm_uuid(name))


def dmsetup_reload(name: str, table: str) -> Command:
    return cmd("dmsetup", "reload", check_name(name, "dm device"), stdin=table + "\n")


def dmsetup_resume(name: str) -> Command:
    return cmd("dmsetup", "resume", check_name(name, "dm device"))


def dmsetup_remove(name: str) -> Command:
    return cmd("dmsetup", "remove", check_name(name, "dm device"))

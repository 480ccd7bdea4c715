"""How this project marks what it creates, so that it changes and removes only its own devices.

A dm device it creates carries the uuid ``RECONCILER-<name>``; an LV it creates carries the LV tag
``reconciler``. Anything under a desired name without that mark was made by someone else (by hand, by
another tool, or by a version of this project before LV tags): it is never removed, and a hand-made dm
device is not changed.
"""

from __future__ import annotations

from reconciler.names import check_name

DM_UUID_PREFIX = "RECONCILER-"
LV_TAG = "reconciler"


def dm_uuid(name: str) -> str:
    return f"{DM_UUID_PREFIX}{check_name(name, 'dm device')}"


def is_our_dm_uuid(uuid: str) -> bool:
    return uuid.startswith(DM_UUID_PREFIX)

"""Asks the DRBD simulator, when it is present, which role a ``/dev/drbdN`` device has on a node.

Xen (``xl create``, ``xl migrate``) and ``mount`` need it. The DRBD simulator offers
``drbd_role_for_device(state, node, device) -> "Primary" | "Secondary" | None``; a build without it
answers None for every device, and callers then treat DRBD devices like any other block device.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import cast

from reconciler.sim.state import State

RoleQuery = Callable[[State, str, str], "str | None"]


def _query() -> RoleQuery | None:
    if importlib.util.find_spec("reconciler.sim.drbd") is None:
        return None
    module = importlib.import_module("reconciler.sim.drbd")
    found = getattr(module, "drbd_role_for_device", None)
    return cast("RoleQuery", found) if callable(found) else None


def is_drbd_path(path: str) -> bool:
    return path.startswith("/dev/drbd") and path[len("/dev/drbd"):].isdigit()


def drbd_role(state: State, node: str, device: str) -> str | None:
    """The DRBD role of ``device`` on ``node``; None when it is not a DRBD device or nobody knows."""
    if not is_drbd_path(device):
        return None
    query = _query()
    return None if query is None else query(state, node, device)

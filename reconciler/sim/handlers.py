"""Imports every simulator module so that their commands, virtual files, tickers and hooks register.

The DRBD simulator and the oracle are optional (a build may ship without them); a missing module is
skipped, while an error inside an existing module is raised.
"""

from __future__ import annotations

import importlib
import importlib.util

from reconciler.sim import blockdev, dm, faults, lvm, provision, system, xen

CORE_MODULES = (blockdev, dm, faults, lvm, provision, system, xen)
OPTIONAL_MODULES = ("reconciler.sim.drbd", "reconciler.sim.oracle")


def _load_optional() -> tuple[str, ...]:
    loaded = []
    for name in OPTIONAL_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        importlib.import_module(name)
        loaded.append(name)
    return tuple(loaded)


LOADED_OPTIONAL = _load_optional()

"""Tool versions, probed once per observer: they change only when packages do, not between passes.

The probes are the backends' (:data:`~reconciler.backends.providers.VERSION_PROBES`): each is one command
and a reader that never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from reconciler.backends.providers import VERSION_PROBES
from reconciler.core.facts import ToolVersions, VersionProbe
from reconciler.host.base import CommandResult


def probe_versions(run: Callable[[Sequence[str]], CommandResult],
                   probes: Sequence[VersionProbe] = VERSION_PROBES) -> ToolVersions:
    """Ask each tool for its version, in the probes' order. A version that cannot be read is a ``failed``
    status, never an error."""
    return ToolVersions(tools=tuple((probe.name, probe.read(run(probe.argv))) for probe in probes))

"""The replicator's ``split-brain`` handler (``reconciler split-brain``): record the incident where the
observer sees it, through the node's :class:`~reconciler.core.seams.Replicator` (DRBD's:
:mod:`reconciler.backends.drbd.splitbrain_handler`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from reconciler.backends.registry import DEFAULT_BACKENDS
from reconciler.core.seams import Replicator, SplitBrainRecord
from reconciler.host.base import Host


def record_split_brain(host: Host, env: Mapping[str, str], now: Callable[[], float],
                       replicator: Replicator = DEFAULT_BACKENDS.replicator) -> SplitBrainRecord:
    """Record the split brain the handler's environment ``env`` reports; raises ``UnsafeNameError`` for a bad
    resource name, ``HostFileError``/``OSError`` when the record cannot be written."""
    return replicator.record_split_brain(host, env, now)

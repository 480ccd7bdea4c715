"""What the planner needs to know about live migrations beyond this node's observation.

The daemon's :class:`~reconciler.daemon.loop.migrations.MigrationKeeper` fills it in each pass: the transport
``xl migrate -s`` travels over (configured on the node), the phase the peer reports for each VM it migrates at
this revision, and the migrations that must not go on (aborted or held, here or at the peer). A one-shot run
passes none: it plans no live migration step (a VM that allows one then waits, it is not moved cold).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from reconciler.model.status import MigrationPhase

StopKind = Literal["aborted", "held"]


@dataclass(frozen=True)
class MigrationStop:
    kind: StopKind
    reason: str


@dataclass(frozen=True)
class MigrationView:
    transport: str = ""  # "" when the node has none configured: a migration waits and says so
    peer_phases: dict[str, MigrationPhase] = field(default_factory=dict)  # VM -> the peer's phase at this revision
    stopped: dict[str, MigrationStop] = field(default_factory=dict)  # VM -> why its migration must not go on

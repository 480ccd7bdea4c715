"""Split brain as DRBD reports it: through its ``split-brain`` handler, which the rendered config points at
``reconciler split-brain``. Neither ``drbdsetup status`` nor ``/proc/drbd`` says "split brain"; after one
is detected (and not resolved automatically: the rendered ``after-sb-*`` policies are ``disconnect``) the
connection is just StandAlone. The handler leaves a marker per resource; the observer reads the markers and
flags a resource whose connection is still StandAlone. Pure apart from the path constants.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re

from reconciler.core.parse_error import ParseError
from reconciler.model.base import Frozen
from reconciler.model.observed import DrbdResourceState, DrbdState
from reconciler.names import check_name

MARKER_DIR = "/var/lib/reconciler/split-brain"
MARKER_SUFFIX = ".json"
TOOL = "split-brain marker"
MAX_MARKER_BYTES = 4096


class SplitBrainMarker(Frozen):
    resource: str
    peer: str = ""
    detected_at: float
    generation: str = ""  # this node's `current:bitmap:history` when the handler ran


def marker_path(resource: str) -> str:
    return posixpath.join(MARKER_DIR, check_name(resource, "DRBD resource") + MARKER_SUFFIX)


def marker_text(marker: SplitBrainMarker) -> str:
    return json.dumps(marker.model_dump(), sort_keys=True) + "\n"


def parse_marker(text: str, path: str) -> SplitBrainMarker:
    if len(text) > MAX_MARKER_BYTES:
        raise ParseError(TOOL, f"{path}: larger than {MAX_MARKER_BYTES} bytes")
    try:
        data = json.loads(text)
        marker = SplitBrainMarker.model_validate(data)
    except ValueError as exc:
        raise ParseError(TOOL, f"{path}: {exc}") from exc
    check_name(marker.resource, "DRBD resource")
    return marker


INCIDENT_PREFIX = "sb-"
_CURRENT_RE = re.compile(r"^([0-9A-Fa-f]{16})(?::|$)")


def current_uuid(generation: str) -> str | None:
    """The current data generation (the first identifier) of a ``current:bitmap:history`` record, without bit 0,
    which only says whether the node was Primary (DRBD ignores it when it compares generations too)."""
    match = _CURRENT_RE.match(generation.strip())
    return f"{int(match.group(1), 16) & ~1:016X}" if match else None


def incident_id(resource: str, local: str, peer: str) -> str | None:
    """The name of one split brain: both sides' current data generations at detection, which both nodes know
    alike (each records its own; the peer status carries the other's), and which a later split brain never
    repeats (every resolution ends in a new common generation, every write while disconnected in a new one).
    None while either side's record is unknown."""
    mine, theirs = current_uuid(local), current_uuid(peer)
    if mine is None or theirs is None:
        return None
    digest = hashlib.sha256("|".join((resource, *sorted((mine, theirs)))).encode()).hexdigest()
    return INCIDENT_PREFIX + digest[:12]


def describe(marker: SplitBrainMarker) -> str:
    peer = f" with {marker.peer}" if marker.peer else ""
    generation = f"; this node's generation identifiers then: {marker.generation}" if marker.generation else ""
    return f"detected{peer} at {marker.detected_at:.0f} (unix time){generation}"


def _still_split(res: DrbdResourceState, marker: SplitBrainMarker) -> bool:
    """DRBD drops the connection to StandAlone on an unresolved split brain and stays there until an operator
    connects again; a later plain disconnect shows Connecting, and a resolved one Connected."""
    connections = [c for c in res.connections if not marker.peer or c.peer_name == marker.peer]
    return any(c.connection_state == "StandAlone" for c in connections)


def apply_markers(state: DrbdState, markers: tuple[SplitBrainMarker, ...]) -> DrbdState:
    by_resource = {m.resource: m for m in markers}
    resources = []
    for res in state.resources:
        marker = by_resource.get(res.name)
        if marker is None:
            resources.append(res)
            continue
        update: dict[str, object] = {"split_brain_record": marker.generation}
        if _still_split(res, marker):
            update |= {"split_brain": True, "split_brain_detail": describe(marker)}
        resources.append(res.model_copy(update=update))
    return state.model_copy(update={"resources": tuple(resources)})

def parse_identity(identity: str) -> tuple[str, str, str]:
    """``incident peer-record local-record`` of a split-brain action (``-`` for unknown) -> the three."""
    wanted, peer, local = [*identity.split(" "), "", ""][:3]
    return wanted, "" if peer == "-" else peer, "" if local == "-" else local

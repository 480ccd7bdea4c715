"""``drbdsetup events2``: one line per state event, folded into a :class:`DrbdState`.

A line is ``[TIMESTAMP] ACTION OBJECT key:value...`` where ACTION is exists, create, change, destroy,
call or response and OBJECT is resource, device, connection, peer-device, path or helper. ``exists -``
ends the initial state dump (``--now`` stops there). Values are KiB for sizes and out-of-sync, as in
``status --json``; ``done`` is the resync percentage and ``eta`` the seconds left (``nan`` if unknown).
DRBD 8.4's ``drbdsetup events2`` (drbd-utils' drbdsetup-84) identifies connections without peer-node-id
and conn-name; such a connection is keyed by its resource alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Literal, cast

from reconciler.backends.drbd.drbd9 import (
    CONNECTION_STATES,
    DISK_STATES,
    KIB,
    REPLICATION_STATES,
    ROLES,
    SYNCING_STATES,
    VERIFY_STATES,
)
from reconciler.core.parse_error import ParseError
from reconciler.core.seams import StateEvent
from reconciler.model.base import Frozen, field
from reconciler.model.observed import (
    DrbdConnectionState,
    DrbdDeviceState,
    DrbdPeerDeviceState,
    DrbdResourceState,
    DrbdState,
)

# Every state change as it happens (the daemon's watcher follows it between passes), and the current state
# alone. Without --statistics: the watcher compares states, and the counters would change every line.
EVENTS2_STREAM_ARGV: tuple[str, ...] = ("drbdsetup", "events2")
EVENTS2_NOW_ARGV: tuple[str, ...] = (*EVENTS2_STREAM_ARGV, "--now")
# Appended for the counters too: sizes, out-of-sync, resync and verify progress. drbdsetup-84 (drbd-utils 9, for
# DRBD 8.4 modules) also wants the resource argument (`all`) before the options.
STATISTICS = "--statistics"
TOOL = "drbdsetup events2"

Action = Literal["exists", "create", "change", "destroy", "call", "response"]
EventObject = Literal["resource", "device", "connection", "peer-device", "path", "helper", "-"]
_ACTIONS = frozenset({"exists", "create", "change", "destroy", "call", "response"})
_OBJECTS = frozenset({"resource", "device", "connection", "peer-device", "path", "helper"})
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?", re.ASCII)
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_INT_KEYS = frozenset(
    {"volume", "minor", "peer-node-id", "size", "out-of-sync", "received", "sent", "pending", "unacked"}
)
_STATE_KEYS = {
    "role": ROLES,
    "disk": DISK_STATES,
    "peer-disk": DISK_STATES,
    "connection": CONNECTION_STATES,
    "replication": REPLICATION_STATES,
}
_YES_NO = frozenset({"yes", "no"})


class DrbdEvent(Frozen):
    timestamp: str | None = None
    action: Action
    object: EventObject
    name: str | None = None
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def is_end_of_initial_state(self) -> bool:
        """``exists -``: everything that existed has been listed; later lines are live changes."""
        return self.object == "-"


def _validate(obj: str, props: dict[str, str], line: str) -> None:
    for key, value in props.items():
        if key in _INT_KEYS and not re.fullmatch(r"-?[0-9]+", value):
            raise ParseError(TOOL, f"{key} {value!r} is not a whole number", line=line)
        allowed = _STATE_KEYS.get(key)
        # 'role' on a helper line does not exist; on resource and connection lines it is a DRBD role.
        if allowed is not None and obj != "helper" and value not in allowed:
            raise ParseError(TOOL, f"unknown {key} state {value!r}", line=line)
        if key in {"done", "eta"} and value != "nan":
            try:
                number = float(value)
            except ValueError:
                raise ParseError(TOOL, f"{key} {value!r} is not a number", line=line) from None
            if not math.isfinite(number) or number < 0 or (key == "done" and number > 100):
                raise ParseError(TOOL, f"{key} {value!r} is out of range", line=line)
        if key in {"client", "quorum", "congested"} and value not in _YES_NO:
            raise ParseError(TOOL, f"{key} {value!r} is neither yes nor no", line=line)


def parse_event_line(line: str) -> DrbdEvent | None:
    """One line of events2 output; None for a blank line."""
    words = line.split()
    if not words:
        return None
    timestamp = None
    if _TIMESTAMP.fullmatch(words[0]):
        timestamp = words.pop(0)
    if len(words) < 2:
        raise ParseError(TOOL, "expected '<action> <object> key:value...'", line=line)
    action, obj = words[0], words[1]
    if action not in _ACTIONS:
        raise ParseError(TOOL, f"unknown action {action!r}", line=line)
    if obj == "-":
        if action != "exists" or len(words) > 2:
            raise ParseError(TOOL, "'-' only ends the initial state as 'exists -'", line=line)
        return DrbdEvent(timestamp=timestamp, action="exists", object="-")
    if obj not in _OBJECTS:
        raise ParseError(TOOL, f"unknown object {obj!r}", line=line)
    props: dict[str, str] = {}
    for word in words[2:]:
        key, sep, value = word.partition(":")
        if not sep or not _KEY.fullmatch(key):
            raise ParseError(TOOL, f"expected key:value, got {word!r}", line=line)
        if key in props:
            raise ParseError(TOOL, f"key {key!r} given twice", line=line)
        props[key] = value
    name = props.pop("name", None)
    if not name:
        raise ParseError(TOOL, f"{action} {obj} without name:", line=line)
    _validate(obj, props, line)
    return DrbdEvent(
        timestamp=timestamp,
        action=cast(Action, action),
        object=cast(EventObject, obj),
        name=name,
        properties=props,
    )


def parse_events(text: str) -> tuple[DrbdEvent, ...]:
    """Every event of a whole output (e.g. ``events2 --now``), naming the line of the first bad one."""
    events = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        try:
            event = parse_event_line(line)
        except ParseError as exc:
            raise ParseError(TOOL, exc.message, line_no, line) from None
        if event is not None:
            events.append(event)
    return tuple(events)


def _int(props: dict[str, str], key: str) -> int | None:
    value = props.get(key)
    return int(value) if value is not None else None


def _float(props: dict[str, str], key: str) -> float | None:
    value = props.get(key)
    if value is None or value == "nan":
        return None
    return float(value)


def _connection_matches(connection: DrbdConnectionState, props: dict[str, str]) -> bool:
    node_id = _int(props, "peer-node-id")
    if node_id is not None and connection.peer_node_id is not None:
        return connection.peer_node_id == node_id
    conn_name = props.get("conn-name")
    if conn_name is not None:
        return connection.peer_name == conn_name
    # DRBD 8.4 has exactly one connection per resource and names neither side.
    return True


def _apply_resource(resource: DrbdResourceState | None, event: DrbdEvent) -> DrbdResourceState:
    props = event.properties
    update: dict[str, object] = {}
    if "role" in props:
        update["role"] = props["role"]
    if "suspended" in props:
        update["suspended"] = props["suspended"] != "no"
    base = resource or DrbdResourceState(name=event.name or "", role="Unknown")
    return base.model_copy(update=update)


def _apply_device(resource: DrbdResourceState, event: DrbdEvent) -> DrbdResourceState:
    props = event.properties
    volume = _int(props, "volume")
    if volume is None:
        raise ParseError(TOOL, f"device event of {event.name} without volume:")
    others = [d for d in resource.devices if d.volume != volume]
    if event.action == "destroy":
        return resource.model_copy(update={"devices": tuple(others)})
    existing = next((d for d in resource.devices if d.volume == volume), None)
    update: dict[str, object] = {}
    if "minor" in props:
        update["minor"] = _int(props, "minor")
    if "disk" in props:
        update["disk_state"] = props["disk"]
    if "client" in props:
        update["client"] = props["client"] == "yes"
    if "quorum" in props:
        update["quorum"] = props["quorum"] == "yes"
    if "size" in props:
        update["size_kib"] = _int(props, "size")
    if existing is None:
        if "minor" not in update:
            raise ParseError(TOOL, f"new device {event.name}/{volume} without minor:")
        device = DrbdDeviceState.model_validate({"volume": volume, "disk_state": "DUnknown", **update})
    else:
        device = existing.model_copy(update=update)
    devices = sorted([*others, device], key=lambda d: d.volume)
    return resource.model_copy(update={"devices": tuple(devices)})


def _apply_connection(resource: DrbdResourceState, event: DrbdEvent) -> DrbdResourceState:
    props = event.properties
    existing = next((c for c in resource.connections if _connection_matches(c, props)), None)
    others = [c for c in resource.connections if c is not existing]
    if event.action == "destroy":
        return resource.model_copy(update={"connections": tuple(others)})
    connection = existing or _new_connection(props)
    update: dict[str, object] = {}
    if "connection" in props:
        update["connection_state"] = props["connection"]
    if "role" in props:
        update["peer_role"] = props["role"]
    if "congested" in props:
        update["congested"] = props["congested"] == "yes"
    updated = connection.model_copy(update=update)
    if existing is None:
        return resource.model_copy(update={"connections": (*resource.connections, updated)})
    connections = tuple(updated if c is existing else c for c in resource.connections)
    return resource.model_copy(update={"connections": connections})


def _new_connection(props: dict[str, str]) -> DrbdConnectionState:
    return DrbdConnectionState(
        peer_name=props.get("conn-name", "unknown"),
        peer_node_id=_int(props, "peer-node-id"),
        connection_state="Unconnected",
        peer_role="Unknown",
    )


def _apply_peer_device(resource: DrbdResourceState, event: DrbdEvent) -> DrbdResourceState:
    props = event.properties
    volume = _int(props, "volume")
    if volume is None:
        raise ParseError(TOOL, f"peer-device event of {event.name} without volume:")
    connection = next((c for c in resource.connections if _connection_matches(c, props)), None)
    if connection is None:
        if event.action == "destroy":
            return resource
        connection = _new_connection(props)
    others = [p for p in connection.peer_devices if p.volume != volume]
    if event.action == "destroy":
        peer_devices = tuple(others)
    else:
        existing = next((p for p in connection.peer_devices if p.volume == volume), None)
        peer = existing or DrbdPeerDeviceState(volume=volume, replication_state="Off", peer_disk_state="DUnknown")
        update: dict[str, object] = {}
        if "replication" in props:
            update["replication_state"] = props["replication"]
        if "peer-disk" in props:
            update["peer_disk_state"] = props["peer-disk"]
        if "out-of-sync" in props:
            oos = _int(props, "out-of-sync")
            update["out_of_sync_bytes"] = oos * KIB if oos is not None else None
        peer = peer.model_copy(update=update)
        if peer.replication_state in SYNCING_STATES:
            percent = _float(props, "done")
            eta = _float(props, "eta")
            peer = peer.model_copy(
                update={
                    "resync_percent": percent if percent is not None else peer.resync_percent,
                    "resync_eta_seconds": eta if "eta" in props else peer.resync_eta_seconds,
                }
            )
        else:
            peer = peer.model_copy(update={"resync_percent": None, "resync_eta_seconds": None})
        if peer.replication_state in VERIFY_STATES:
            percent = _float(props, "done")
            peer = peer.model_copy(update={"verify_percent": percent if percent is not None else peer.verify_percent})
        elif peer.verify_percent is not None:
            peer = peer.model_copy(update={"verify_percent": None})
        peer_devices = tuple(sorted([*others, peer], key=lambda p: p.volume))
    updated = connection.model_copy(update={"peer_devices": peer_devices})
    connections = tuple(updated if c is connection else c for c in resource.connections)
    if connection not in resource.connections:
        connections = (*connections, updated)
    return resource.model_copy(update={"connections": connections})


def _changes_nothing(event: DrbdEvent) -> bool:
    return event.object in ("-", "helper", "path") or event.action in ("call", "response")


def _apply_to_resource(resource: DrbdResourceState | None, event: DrbdEvent) -> DrbdResourceState | None:
    """The resource after the event; None once it is destroyed."""
    if event.object == "resource":
        if event.action == "destroy":
            return None
        return _apply_resource(resource, event)
    base = resource or DrbdResourceState(name=event.name or "", role="Unknown")
    if event.object == "device":
        return _apply_device(base, event)
    if event.object == "connection":
        return _apply_connection(base, event)
    return _apply_peer_device(base, event)


def apply_event(state: DrbdState, event: DrbdEvent) -> DrbdState:
    """The state after one event. Helper calls, paths and the end-of-initial-state marker change nothing."""
    return fold_events((event,), state)


def fold_events(events: Iterable[DrbdEvent], state: DrbdState | None = None) -> DrbdState:
    """The state after all events, in order; new resources are appended, changed ones keep their place."""
    current = state or DrbdState()
    resources = {resource.name: resource for resource in current.resources}
    changed = False
    for event in events:
        if _changes_nothing(event):
            continue
        name = event.name or ""
        updated = _apply_to_resource(resources.get(name), event)
        if updated is None:
            resources.pop(name, None)
        else:
            resources[name] = updated
        changed = True
    if not changed:
        return current
    return current.model_copy(update={"resources": tuple(resources.values())})


def state_from_events(text: str, kernel_version: str | None = None) -> DrbdState:
    """The state ``drbdsetup events2 --now`` describes."""
    return fold_events(parse_events(text), DrbdState(kernel_version=kernel_version))


# Fields that change continuously without meaning a state change.
_COUNTERS = re.compile(r"\s(?:received|sent|read|written|al-writes|bm-writes|upper-pending|lower-pending|"
                       r"pending|unacked|out-of-sync|done|eta|dbdt\d?|ap-in-flight|rs-in-flight)"
                       r":\S+")


def state_signature(text: str) -> str:
    """The events2 dump without its counters: equal signatures mean no state change."""
    lines = [_COUNTERS.sub("", line).strip() for line in text.splitlines() if line.strip()]
    return "\n".join(sorted(lines))


def read_state(text: str) -> DrbdState | None:
    """The state a ``--now`` dump describes; None when it cannot be read (the next pass observes anyway)."""
    try:
        return state_from_events(text)
    except ValueError:
        return None


class EventFolder:
    """Folds a followed stream line by line: the initial dump first, then live changes (see
    :class:`reconciler.core.seams.StateEvent`)."""

    def __init__(self) -> None:
        self._state = DrbdState()
        self._live = False

    def feed(self, line: str) -> StateEvent | None:
        """The state after ``line``; None for a blank line and the end of the initial dump. A line that cannot
        be read raises :class:`ParseError` and changes nothing."""
        parsed = parse_event_line(line)
        if parsed is None:
            return None
        if parsed.is_end_of_initial_state:
            self._live = True
            return None
        self._state = apply_event(self._state, parsed)
        return StateEvent(state=self._state, live=self._live, resource=parsed.name, what=parsed.object)

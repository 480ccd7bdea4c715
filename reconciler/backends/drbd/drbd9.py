"""DRBD 9: ``drbdsetup status --json``.

Units as drbdsetup prints them: ``size`` and ``out-of-sync`` are KiB (sectors / 2); out-of-sync is
converted to bytes here. Keys appear and disappear across drbd-utils versions (``open``, ``tls``, ``paths``,
the ``suspended-*`` family, the resync details): unknown keys are ignored, optional keys may be missing.
State names are checked against DRBD's vocabulary so that a misread never passes as a state.
"""

from __future__ import annotations

import math
from typing import Any

from reconciler.core.jsontext import load_json
from reconciler.core.parse_error import ParseError
from reconciler.model.observed import (
    DrbdConnectionState,
    DrbdDeviceState,
    DrbdPeerDeviceState,
    DrbdResourceState,
)
from reconciler.names import check_name

STATUS_ARGV: tuple[str, ...] = ("drbdsetup", "status", "--json")
# drbdsetup's exit code when the resource named is not up ("NAME: No such resource").
EXIT_NO_SUCH_RESOURCE = 10


def status_argv(resource: str) -> tuple[str, ...]:
    """``drbdsetup status RESOURCE --json``: one resource's state, at a cost that does not grow with the others."""
    return ("drbdsetup", "status", check_name(resource, "DRBD resource"), "--json")


def no_such_resource(resource: str, stderr: str) -> bool:
    """Whether drbdsetup said that ``resource`` is not up (and nothing else went wrong)."""
    return any(line.strip() == f"{resource}: No such resource" for line in stderr.splitlines())

ROLES = frozenset({"Primary", "Secondary", "Unknown"})
DISK_STATES = frozenset(
    {
        "Diskless",
        "Attaching",
        "Detaching",
        "Failed",
        "Negotiating",
        "Inconsistent",
        "Outdated",
        "DUnknown",
        "Consistent",
        "UpToDate",
    }
)
CONNECTION_STATES = frozenset(
    {
        "StandAlone",
        "Disconnecting",
        "Unconnected",
        "Timeout",
        "BrokenPipe",
        "NetworkFailure",
        "ProtocolError",
        "TearDown",
        "Connecting",
        "Connected",
    }
)
SYNCING_STATES = frozenset({"SyncSource", "SyncTarget", "PausedSyncS", "PausedSyncT"})
VERIFY_STATES = frozenset({"VerifyS", "VerifyT"})
REPLICATION_STATES = frozenset(
    {
        "Off",
        "Established",
        "StartingSyncS",
        "StartingSyncT",
        "WFBitMapS",
        "WFBitMapT",
        "WFSyncUUID",
        "VerifyS",
        "VerifyT",
        "Ahead",
        "Behind",
    }
    | SYNCING_STATES
)
# drbdsetup prints this when it cannot estimate the time left.
_NO_ESTIMATE = 987654321
KIB = 1024


def check_state(value: object, allowed: frozenset[str], what: str, tool: str, where: str = "") -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ParseError(tool, f"{where + ': ' if where else ''}unknown {what} {value!r}")
    return value


class _Reader:
    """Typed access to one JSON object, naming where a bad value sits."""

    def __init__(self, data: object, where: str, tool: str) -> None:
        if not isinstance(data, dict):
            raise ParseError(tool, f"{where} is {type(data).__name__}, expected an object")
        self.data: dict[str, Any] = data
        self.where = where
        self.tool = tool

    def _fail(self, key: str, expected: str) -> ParseError:
        return ParseError(self.tool, f"{self.where}: '{key}' is {self.data.get(key)!r}, expected {expected}")

    def has(self, key: str) -> bool:
        return key in self.data

    def string(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def integer(self, key: str, *, optional: bool = False) -> int | None:
        value = self.data.get(key)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, "a whole number")
        return value

    def required_int(self, key: str) -> int:
        value = self.integer(key)
        if value is None:
            raise self._fail(key, "a whole number")
        return value

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(key, "a number")
        try:
            number = float(value)
        except OverflowError:
            raise self._fail(key, "a number of sensible size") from None
        if not math.isfinite(number):
            raise self._fail(key, "a finite number")
        return number

    def boolean(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def items(self, key: str) -> list[Any]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self._fail(key, "a list")
        return value


def _peer_device(data: object, where: str, tool: str) -> DrbdPeerDeviceState:
    r = _Reader(data, where, tool)
    replication = check_state(r.string("replication-state"), REPLICATION_STATES, "replication state", tool, where)
    oos_kib = r.integer("out-of-sync", optional=True)
    if oos_kib is not None and oos_kib < 0:
        raise ParseError(tool, f"{where}: negative out-of-sync {oos_kib}")
    percent = r.number("percent-resync-done")
    if percent is None and replication in SYNCING_STATES:
        percent = r.number("percent-in-sync")
    if percent is not None and not 0.0 <= percent <= 100.0:
        raise ParseError(tool, f"{where}: resync percent {percent} outside 0..100")
    eta = r.number("estimated-seconds-to-finish")
    if eta is not None and (eta < 0 or eta == _NO_ESTIMATE):
        eta = None
    return DrbdPeerDeviceState(
        volume=r.required_int("volume"),
        replication_state=replication,
        peer_disk_state=check_state(r.string("peer-disk-state"), DISK_STATES, "peer disk state", tool, where),
        out_of_sync_bytes=oos_kib * KIB if oos_kib is not None else None,
        resync_percent=percent if replication in SYNCING_STATES else None,
        resync_eta_seconds=eta if replication in SYNCING_STATES else None,
        # drbdsetup reports a verify's progress as percent-resync-done (from ov-left) as well.
        verify_percent=percent if replication in VERIFY_STATES else None,
    )


def _connection(data: object, where: str, tool: str) -> DrbdConnectionState:
    r = _Reader(data, where, tool)
    name = r.string("name")
    peer_devices = tuple(
        _peer_device(item, f"{where} peer device {index}", tool) for index, item in enumerate(r.items("peer_devices"))
    )
    return DrbdConnectionState(
        peer_name=name,
        peer_node_id=r.integer("peer-node-id", optional=True),
        connection_state=check_state(r.string("connection-state"), CONNECTION_STATES, "connection state", tool, where),
        peer_role=check_state(r.string("peer-role"), ROLES, "peer role", tool, where),
        congested=r.boolean("congested"),
        peer_devices=peer_devices,
    )


def _device(data: object, where: str, tool: str) -> DrbdDeviceState:
    r = _Reader(data, where, tool)
    return DrbdDeviceState(
        volume=r.required_int("volume"),
        minor=r.required_int("minor"),
        disk_state=check_state(r.string("disk-state"), DISK_STATES, "disk state", tool, where),
        client=bool(r.boolean("client")),
        quorum=r.boolean("quorum"),
        size_kib=r.integer("size", optional=True),
    )


def _resource(data: object, index: int, tool: str) -> DrbdResourceState:
    r = _Reader(data, f"resource {index}", tool)
    name = r.string("name")
    where = f"resource {name!r}"
    r.where = where
    node_id = r.integer("node-id", optional=True)
    suspended = bool(r.boolean("suspended")) or any(
        bool(r.boolean(key)) for key in ("suspended-user", "suspended-no-data", "suspended-fencing", "suspended-quorum")
    )
    return DrbdResourceState(
        name=name,
        role=check_state(r.string("role"), ROLES, "role", tool, where),
        node_id=node_id if node_id is not None and node_id >= 0 else None,
        suspended=suspended,
        devices=tuple(_device(item, f"{where} device {i}", tool) for i, item in enumerate(r.items("devices"))),
        connections=tuple(
            _connection(item, f"{where} connection {i}", tool) for i, item in enumerate(r.items("connections"))
        ),
    )


def parse_status_json(text: str) -> tuple[DrbdResourceState, ...]:
    """Resources from ``drbdsetup status --json``; empty output (no resources) gives ()."""
    tool = "drbdsetup status --json"
    if not text.strip():
        return ()
    data = load_json(text, tool)
    if not isinstance(data, list):
        raise ParseError(tool, f"expected a JSON list of resources, got {type(data).__name__}")
    return tuple(_resource(item, index, tool) for index, item in enumerate(data))

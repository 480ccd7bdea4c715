"""The crash journal: which action was in flight, on which device, with which identity.

Written atomically through the host before a mutating action starts and removed when it ends. After a
``kill -9`` the next pass re-observes anyway (every action is idempotent against a fresh observation);
the journal only matters where the observation alone is ambiguous: a signature found on a device could be
someone's data or our own interrupted mkfs. It is ours only when the journal names that very device with
the same identity (the uuids of the LVs beneath it).
"""

from __future__ import annotations

import json
import time

from reconciler.host.base import Host, HostFileError
from reconciler.model.base import Frozen

DEFAULT_JOURNAL_PATH = "/var/lib/reconciler/journal.json"


class JournalEntry(Frozen):
    node: str
    action_id: str
    kind: str
    key: str
    vm: str
    devices: tuple[str, ...] = ()
    identity: str = ""
    step: int = 0
    started_at: float = 0.0

    def names(self, kind: str, device: str, identity: str) -> bool:
        """True when this entry is our own unfinished ``kind`` on exactly this device incarnation."""
        return self.kind == kind and device in self.devices and bool(identity) and self.identity == identity


class Journal:
    """A small list of unfinished actions. An entry left by a crash stays until that action finishes in a
    later pass or disappears from the plan (the observation shows it is no longer needed)."""

    def __init__(self, host: Host, path: str = DEFAULT_JOURNAL_PATH) -> None:
        self.host = host
        self.path = path
        self._entries: list[JournalEntry] | None = None

    def load(self) -> tuple[JournalEntry, ...]:
        if self._entries is None:
            self._entries = list(self._read())
        return tuple(self._entries)

    def _read(self) -> tuple[JournalEntry, ...]:
        try:
            text = self.host.read_file(self.path)
        except HostFileError:
            return ()
        if not text:
            return ()
        try:
            data = json.loads(text)
            return tuple(JournalEntry.model_validate(e) for e in data.get("in_flight", []))
        except (ValueError, AttributeError, TypeError):
            return ()  # a torn or foreign file proves nothing; the observation decides

    def _save(self) -> None:
        entries = self._entries or []
        if not entries:
            self.host.remove_file(self.path)
            return
        body = {"in_flight": [e.model_dump() for e in entries]}
        self.host.write_file(self.path, json.dumps(body, sort_keys=True) + "\n", 0o600)

    def begin(self, entry: JournalEntry) -> JournalEntry:
        stamped = entry.model_copy(update={"started_at": entry.started_at or time.time()})
        self._entries = [e for e in self.load() if e.action_id != entry.action_id] + [stamped]
        self._save()
        return stamped

    def step(self, entry: JournalEntry, step: int) -> JournalEntry:
        moved = entry.model_copy(update={"step": step})
        self._entries = [moved if e.action_id == entry.action_id else e for e in self.load()]
        self._save()
        return moved

    def finish(self, action_id: str) -> None:
        before = self.load()
        self._entries = [e for e in before if e.action_id != action_id]
        if len(self._entries) != len(before):
            self._save()

    def forget_except(self, action_ids: set[str]) -> None:
        """Drop entries whose action the current plan no longer contains: the node shows them done."""
        before = self.load()
        self._entries = [e for e in before if e.action_id in action_ids]
        if len(self._entries) != len(before):
            self._save()

"""Notice DRBD state changes between passes (a disconnect, a role change, a disk failure).

The commands, the signature and the parsing are the replicator's (:class:`reconciler.core.seams.Replicator`,
DRBD's by default); the watcher only decides when to ask and whom to wake.

On a real node the watcher follows ``drbdsetup events2``: the kernel reports every state change on that
stream, so a disconnect wakes the loop at once. Where the stream is not available (the simulator, a
node whose DRBD module is not loaded yet, a stream that ended) it asks for the current state with
``drbdsetup events2 --now`` every couple of seconds and wakes the loop when anything but the counters
changed, retrying the stream now and then. Either way the parsed state refreshes the exported metrics.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable

from reconciler.backends.registry import DEFAULT_BACKENDS
from reconciler.core.parse_error import ParseError
from reconciler.core.seams import Replicator
from reconciler.daemon.records.logs import event
from reconciler.host.base import Host
from reconciler.model.observed import DrbdState

STREAM_RETRY_S = 30.0

Follow = Callable[[tuple[str, ...]], "subprocess.Popen[str]"]


class DrbdWatcher:
    def __init__(self, host: Host, *, interval: float, on_change: Callable[[DrbdState | None], None],
                 timeout: float = 10.0, follow: Follow | None = None,
                 replicator: Replicator = DEFAULT_BACKENDS.replicator) -> None:
        self.host = host
        self.replicator = replicator
        self.interval = interval
        self._on_change = on_change
        self._timeout = timeout
        self._follow = follow
        self._last: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[str] | None = None
        self.disabled_reason = ""
        self.mode = "stream" if follow is not None else "poll"

    # -- polling ---------------------------------------------------------------------------------
    def check_once(self) -> bool:
        """Ask once; True when the state changed since the last time."""
        argv = self.replicator.watch_argv()
        result = self.host.run(argv, timeout=self._timeout)
        if result.not_found:
            self.disabled_reason = f"{argv[0]} is not installed"
            return False
        if not result.ok:
            return False
        signature = self.replicator.state_signature(result.stdout)
        if signature == self._last:
            return False
        first = self._last is None
        self._last = signature
        if first:
            return False
        self._on_change(self.replicator.read_state(result.stdout))
        return True

    def _poll_for(self, seconds: float | None) -> None:
        waited = 0.0
        while not self._stop.is_set() and not self.disabled_reason and (seconds is None or waited < seconds):
            try:
                if self.check_once():
                    event("drbd.changed", source="poll")
            except Exception as exc:  # the watcher must outlive a bad dump; the next pass observes anyway
                event("drbd.watch_error", level=logging.WARNING, error=str(exc))
            self._stop.wait(self.interval)
            waited += self.interval

    # -- streaming -------------------------------------------------------------------------------
    def stream_once(self) -> int:
        """Follow the event stream until it ends (or stop); returns the number of live changes seen."""
        assert self._follow is not None  # noqa: S101  (only called in stream mode)
        try:
            proc = self._follow(self.replicator.follow_argv())
        except OSError as exc:
            event("drbd.stream_unavailable", level=logging.WARNING, error=str(exc))
            return 0
        self._proc = proc
        folder = self.replicator.event_folder()
        changes = 0
        try:
            assert proc.stdout is not None  # noqa: S101  (PIPE was requested)
            for line in proc.stdout:
                if self._stop.is_set():
                    break
                try:
                    folded = folder.feed(line)
                except ParseError as exc:
                    event("drbd.stream_bad_line", level=logging.WARNING, error=str(exc))
                    continue
                if folded is not None and folded.live:
                    changes += 1
                    event("drbd.changed", source="stream", resource=folded.resource, what=folded.what)
                    self._on_change(folded.state)
        finally:
            self._proc = None
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        return changes

    def _run(self) -> None:
        if self._follow is None:
            self._poll_for(None)
        else:
            while not self._stop.is_set():
                self.stream_once()
                if self._stop.is_set():
                    break
                event("drbd.stream_ended", level=logging.WARNING, fallback=f"polling for {STREAM_RETRY_S:g}s")
                self._last = None
                self._poll_for(STREAM_RETRY_S)
        if self.disabled_reason:
            event("drbd.watch_disabled", reason=self.disabled_reason)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="drbd-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout + 2)


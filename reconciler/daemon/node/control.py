"""Operator requests to a running daemon: suspensions, allowed revisions, and "reconcile now".

Requests that must survive a restart (suspensions, explicitly allowed revisions) live in
``<state>/control.json``, edited under an exclusive lock by the CLI and read by the daemon at every pass.
A datagram on ``<state>/control.sock`` wakes the daemon at once; when it is not running the file alone
carries the request to its next start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from reconciler.model.status import Suspension
from reconciler.names import check_name
from reconciler.source.statefile import read_json, write_json

CONTROL_FILE = "control.json"
CONTROL_SOCKET = "control.sock"
NODE_SCOPE = "node"
COMMANDS = frozenset({"reconcile-now", "reload", "ping"})


@dataclass(frozen=True)
class ControlState:
    suspensions: tuple[Suspension, ...] = ()
    allowed_revisions: frozenset[str] = frozenset()

    def suspension(self, scope: str) -> Suspension | None:
        return next((s for s in self.suspensions if s.scope == scope), None)

    @property
    def node_suspended(self) -> bool:
        return self.suspension(NODE_SCOPE) is not None

    def vm_suspended(self, vm: str) -> Suspension | None:
        return self.suspension(NODE_SCOPE) or self.suspension(vm)


def operator_name() -> str:
    """Who asked: the sudo caller when there is one, else the login user."""
    for var in ("SUDO_USER", "USER", "LOGNAME"):
        value = os.environ.get(var)
        if value:
            return value
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


class ControlStore:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / CONTROL_FILE

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.state_dir / "control.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def read(self) -> ControlState:
        data = read_json(self.path)
        if not isinstance(data, dict):
            return ControlState()
        suspensions = []
        for item in data.get("suspensions", []):
            with contextlib.suppress(ValueError):
                suspensions.append(Suspension.model_validate(item))
        allowed = frozenset(s for s in data.get("allowed_revisions", []) if isinstance(s, str))
        return ControlState(tuple(suspensions), allowed)

    def _write(self, state: ControlState) -> None:
        write_json(self.path, {
            "suspensions": [s.model_dump() for s in state.suspensions],
            "allowed_revisions": sorted(state.allowed_revisions),
        })

    def suspend(self, scope: str, reason: str, by: str, at: float | None = None) -> Suspension:
        if scope != NODE_SCOPE:
            check_name(scope, "VM")
        if not reason.strip():
            raise ValueError("a suspension needs a reason")
        suspension = Suspension(scope=scope, reason=reason.strip(), by=by, at=time.time() if at is None else at)
        with self._locked():
            current = self.read()
            kept = tuple(s for s in current.suspensions if s.scope != scope)
            self._write(ControlState((*kept, suspension), current.allowed_revisions))
        return suspension

    def resume(self, scope: str) -> bool:
        """Lift the suspension of ``scope``; False when there was none."""
        with self._locked():
            current = self.read()
            kept = tuple(s for s in current.suspensions if s.scope != scope)
            if len(kept) == len(current.suspensions):
                return False
            self._write(ControlState(kept, current.allowed_revisions))
        return True

    def allow_revision(self, sha: str) -> None:
        # Imported here: `plan` and `apply` read this store, and need none of the git mirror's code.
        from reconciler.source.mirror import check_sha  # noqa: PLC0415

        check_sha(sha)
        with self._locked():
            current = self.read()
            self._write(ControlState(current.suspensions, current.allowed_revisions | {sha}))


def send_command(state_dir: Path, command: str, timeout: float = 2.0) -> bool:
    """Wake the daemon of ``state_dir``; False when no daemon listens there."""
    if command not in COMMANDS:
        raise ValueError(f"unknown control command {command!r}")
    path = state_dir / CONTROL_SOCKET
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(command.encode(), str(path))
        except OSError:
            return False
    return True


def daemon_listening(state_dir: Path) -> bool:
    """True when a daemon listens on the control socket of ``state_dir`` (a datagram it ignores)."""
    return send_command(state_dir, "ping", timeout=1.0)


class ControlServer:
    """Receives wake-up datagrams on ``<state>/control.sock`` (mode 0600: only root may poke it)."""

    def __init__(self, state_dir: Path, on_command: Callable[[str], None]) -> None:
        self.path = state_dir / CONTROL_SOCKET
        self._on_command = on_command
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._sock is not None:
            try:
                data = self._sock.recv(256)
            except TimeoutError:
                continue
            except OSError:
                return
            command = data.decode(errors="replace").strip()
            if command in COMMANDS:
                self._on_command(command)

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

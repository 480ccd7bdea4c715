"""The host side of a node's command agent (JSON lines over QEMU's virtio-serial socket)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler_lab.proc import LabError


@dataclass(frozen=True)
class Result:
    node: str
    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def describe(self) -> str:
        return (f"{self.node}: {' '.join(self.argv)} exited {self.rc} after {self.seconds:.1f}s\n"
                f"--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}")


class AgentClient:
    """One connection to a node's agent; requests may run concurrently from several threads."""

    def __init__(self, node: str, socket_path: Path) -> None:
        self.node = node
        self._path = socket_path
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._pending: dict[int, dict[str, object]] = {}
        self._cond = threading.Condition()
        self._next = 0
        self._reader: threading.Thread | None = None
        self._closed = False

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(self._path))
        self._sock = sock
        self._closed = False
        self._reader = threading.Thread(target=self._read, name=f"agent-{self.node}", daemon=True)
        self._reader.start()

    def close(self) -> None:
        self._closed = True
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        with self._cond:
            self._cond.notify_all()

    def _read(self) -> None:
        sock = self._sock
        if sock is None:
            return
        buffer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                try:
                    reply = json.loads(line)
                except ValueError:
                    continue
                if isinstance(reply, dict) and isinstance(reply.get("id"), int):
                    with self._cond:
                        self._pending[reply["id"]] = reply
                        self._cond.notify_all()

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, stdin: str | None = None,
            env: Mapping[str, str] | None = None) -> Result:
        """Run ``argv`` on the node; the answer arrives within ``timeout`` plus a margin for the link."""
        args = tuple(argv)
        with self._lock:
            self._next += 1
            ident = self._next
            sock = self._sock
            if sock is None or self._closed:
                raise LabError(f"{self.node}: agent not connected (is the node up?)")
            request = {"id": ident, "argv": list(args), "timeout": timeout, "stdin": stdin, "env": dict(env or {})}
            sock.sendall((json.dumps(request) + "\n").encode())
        deadline = time.monotonic() + timeout + 60
        with self._cond:
            while ident not in self._pending:
                if self._closed:
                    raise LabError(f"{self.node}: agent connection lost while running {' '.join(args)}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LabError(f"{self.node}: no answer to {' '.join(args)} within {timeout + 60:g}s")
                self._cond.wait(left)
            reply = self._pending.pop(ident)
        return Result(self.node, args, int(reply.get("rc", -1)),  # type: ignore[call-overload]
                      str(reply.get("stdout", "")), str(reply.get("stderr", "")),
                      float(reply.get("seconds", 0.0)))  # type: ignore[arg-type]

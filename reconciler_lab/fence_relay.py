"""The lab's power switch: a node's fence agent asks the host, over a virtio-serial port, to pull the other
node's plug or to say whether it is on.

The guest side is ``guest/power-fence.py`` (a fence agent with fence-agents' exit codes); this is the host
side, one thread per node. A node may switch only the other node, and only off: there is no "on" and no
reboot, as the product's power fence requires. Each answer reflects the QEMU process at that moment.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

MAX_LINE = 4096
RECONNECT = 0.5


class FenceRelay:
    def __init__(self, node: str, socket_path: Path, *, power_off: Callable[[str], None],
                 is_on: Callable[[str], bool], others: frozenset[str]) -> None:
        self.node = node
        self._path = socket_path
        self._power_off = power_off
        self._is_on = is_on
        self._others = others
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.handled: list[dict[str, str]] = []  # what was asked and answered, for the scenarios' checks

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"fence-relay-{self.node}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.connect(str(self._path))
                    sock.settimeout(1.0)
                    self._serve(sock)
            except OSError:
                pass
            # QEMU is not up yet, or restarted: its socket is new.
            self._stop.wait(RECONNECT)

    def _serve(self, sock: socket.socket) -> None:
        buffer = b""
        while not self._stop.is_set():
            try:
                chunk = sock.recv(MAX_LINE)
            except TimeoutError:
                continue
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                sock.sendall(json.dumps(self.answer(line)).encode() + b"\n")
            if len(buffer) > MAX_LINE:
                buffer = b""

    def answer(self, line: bytes) -> dict[str, str]:
        try:
            request = json.loads(line)
            action = str(request["action"])
            target = str(request["target"])
        except (ValueError, KeyError, TypeError):
            return {"error": "bad request"}
        if target not in self._others:
            reply = {"error": f"{self.node} may not switch {target!r}"}
        elif action == "off":
            if self._is_on(target):
                self._power_off(target)
            reply = {"power": "OFF" if not self._is_on(target) else "ON"}
        elif action == "status":
            reply = {"power": "ON" if self._is_on(target) else "OFF"}
        else:
            reply = {"error": f"unknown action {action!r} (off and status only)"}
        with contextlib.suppress(Exception):
            self.handled.append({"at": f"{time.time():.3f}", "action": action, "target": target, **reply})
        return reply

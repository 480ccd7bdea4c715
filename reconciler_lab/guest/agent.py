"""The lab's command agent inside a node: JSON lines over a virtio-serial port.

Request ``{"id": 1, "argv": [...], "timeout": 60, "stdin": null}``; answer ``{"id": 1, "rc": 0, "stdout": ...,
"stderr": ..., "seconds": ...}``. Requests run concurrently (the lab samples a node while a long command
runs); every command is an argv list with a timeout, never a shell string (``sh -c`` only when the lab asks
for it explicitly, as ``shell NODE`` does).
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

PORT_NAME = "lab.agent"
MAX_TIMEOUT = 3600.0


def find_port() -> str:
    for name_file in glob.glob("/sys/class/virtio-ports/*/name"):
        if Path(name_file).read_text().strip() == PORT_NAME:
            return "/dev/" + Path(name_file).parent.name
    raise SystemExit(f"agent: no virtio-serial port named {PORT_NAME}")


def execute(request: dict[str, object]) -> dict[str, object]:
    argv = request.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return {"rc": 2, "stdout": "", "stderr": f"agent: bad argv {argv!r}", "seconds": 0.0}
    timeout = min(float(request.get("timeout", 60) or 60), MAX_TIMEOUT)  # type: ignore[arg-type]
    stdin = request.get("stdin")
    env = dict(os.environ)
    extra = request.get("env")
    if isinstance(extra, dict):
        env.update({str(k): str(v) for k, v in extra.items()})
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, input=stdin if isinstance(stdin, str) else None, capture_output=True, text=True,
                              errors="replace", timeout=timeout, env=env, check=False,
                              stdin=None if isinstance(stdin, str) else subprocess.DEVNULL)
        return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr,
                "seconds": time.monotonic() - started}
    except subprocess.TimeoutExpired:
        return {"rc": 124, "stdout": "", "stderr": f"agent: timed out after {timeout:g}s",
                "seconds": time.monotonic() - started}
    except OSError as exc:
        return {"rc": 127, "stdout": "", "stderr": f"agent: {argv[0]}: {exc.strerror}",
                "seconds": time.monotonic() - started}


def serve(path: str) -> None:
    fd = os.open(path, os.O_RDWR)
    lock = threading.Lock()

    def answer(request: dict[str, object]) -> None:
        reply = execute(request)
        reply["id"] = request.get("id")
        data = (json.dumps(reply) + "\n").encode()
        with lock:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]

    buffer = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            # No host connected: virtio-serial reads return EOF until one is.
            time.sleep(0.2)
            continue
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            try:
                request = json.loads(line)
            except ValueError:
                continue
            if isinstance(request, dict):
                threading.Thread(target=answer, args=(request,), daemon=True).start()


def main() -> None:
    path = find_port()
    print(f"agent: serving on {path}", file=sys.stderr, flush=True)
    serve(path)


if __name__ == "__main__":
    main()

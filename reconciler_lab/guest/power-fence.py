"""The lab's fence agent inside a node's dom0: asks the host (the lab's fence relay) over the virtio-serial
port ``lab.fence`` to power the other node off, or whether it is on.

    power-fence.py --node=NAME --action=off|status

Exit codes follow fence-agents: ``off`` 0 when the node is off afterwards, 1 otherwise; ``status`` 0 when on,
2 when off, 1 when the relay does not answer. Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import select
import sys
import time
from pathlib import Path

PORT_NAME = "lab.fence"
ANSWER_TIMEOUT = 20.0


def find_port() -> str:
    for name_file in glob.glob("/sys/class/virtio-ports/*/name"):
        if Path(name_file).read_text().strip() == PORT_NAME:
            return "/dev/" + Path(name_file).parent.name
    raise SystemExit(f"power-fence: no virtio-serial port named {PORT_NAME}")


def ask(action: str, target: str) -> dict[str, str]:
    # Non-blocking: a write to a port whose host side is not connected would block for good.
    fd = os.open(find_port(), os.O_RDWR | os.O_NONBLOCK)
    deadline = time.monotonic() + ANSWER_TIMEOUT
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # one question on the port at a time
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError("the port stayed locked by another question") from None
                time.sleep(0.1)
        request = json.dumps({"action": action, "target": target}).encode() + b"\n"
        while request:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise TimeoutError(f"the lab's power switch did not take the question in {ANSWER_TIMEOUT:g} s")
            try:
                request = request[os.write(fd, request):]
            except BlockingIOError:
                time.sleep(0.1)
        buffer = b""
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"no answer from the lab's power switch in {ANSWER_TIMEOUT:g} s")
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                chunk = b""
            if not chunk:
                time.sleep(0.1)  # the host side is reconnecting
            buffer += chunk
        answer = json.loads(buffer.split(b"\n", 1)[0])
        return answer if isinstance(answer, dict) else {"error": "bad answer"}
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    args = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    action, target = args.get("action", ""), args.get("node", "")
    if action not in ("off", "status") or not target:
        print("usage: power-fence.py --node=NAME --action=off|status", file=sys.stderr)
        return 1
    try:
        answer = ask(action, target)
    except (OSError, TimeoutError, ValueError) as exc:
        print(f"Failed: {exc}", file=sys.stderr)
        return 1
    if "error" in answer:
        print(f"Failed: {answer['error']}", file=sys.stderr)
        return 1
    power = answer.get("power", "")
    if action == "off":
        print("Success: Powered OFF" if power == "OFF" else f"Failed: still {power}")
        return 0 if power == "OFF" else 1
    print(f"Status: {power}")
    return 2 if power == "OFF" else 0 if power == "ON" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

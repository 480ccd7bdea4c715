"""Reading the lab nodes' real state: /proc/drbd (DRBD 8.4), xl list, dm tables, the command log."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from reconciler_lab.lab import GUEST_CONSOLE, Node

_PROC_DRBD = re.compile(r"^\s*(\d+): cs:(\S+) ro:(\S+)/(\S+) ds:(\S+)/(\S+)", re.M)


@dataclass(frozen=True)
class Replica:
    cs: str
    role: str
    peer_role: str
    disk: str
    peer_disk: str


def replica(node: Node, minor: int = 0) -> Replica | None:
    """The resource on ``minor`` as /proc/drbd shows it, or None when it is not configured."""
    for match in _PROC_DRBD.finditer(node.check(["cat", "/proc/drbd"], timeout=60)):
        if int(match.group(1)) == minor:
            return Replica(*match.group(2, 3, 4, 5, 6))
    return None


def domains(node: Node) -> set[str]:
    lines = node.check(["xl", "list"], timeout=120).splitlines()[1:]
    return {line.split()[0] for line in lines if line.split()} - {"Domain-0"}


def domain_states(node: Node) -> dict[str, str]:
    """Every domU's name and its state column (``r``, ``b``, ``p``, ``s``, ``c``, ``d`` or ``-``) in ``xl list``."""
    lines = node.check(["xl", "list"], timeout=120).splitlines()[1:]
    return {f[0]: f[4] for f in (line.split() for line in lines) if len(f) >= 6 and f[0] != "Domain-0"}


def running_state(state: str) -> bool:
    """A domain xl shows running or blocked (idle) is executing; paused, suspended, crashed or dying is not."""
    return "r" in state or "b" in state


def commands(node: Node) -> list[dict[str, object]]:
    """The real host's command log. A power loss can leave one torn line (NUL bytes after the journal
    replay); it is skipped, everything else must parse."""
    text = node.check(["cat", node.command_log], timeout=60)
    entries = []
    for line in text.splitlines():
        if not line.strip("\0 \t"):
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            if "\0" not in line and line.startswith("{") and line is not text.splitlines()[-1]:
                raise
    return entries


def daemon_log(node: Node) -> str:
    return node.daemon_log()


def passes(node: Node) -> list[str]:
    return [line for line in daemon_log(node).splitlines() if "event=pass.end" in line]


def kernel_log(node: Node) -> str:
    return node.check(["dmesg"], timeout=60)


def helper_exits(node: Node, helper: str = "fence-peer") -> list[int]:
    """Exit codes DRBD logged for a usermode helper (``helper command: drbdadm fence-peer ... exit code N``)."""
    pattern = re.compile(rf"helper command: \S*drbdadm {re.escape(helper)} \S+ exit code (\d+)")
    return [int(m.group(1)) for m in pattern.finditer(kernel_log(node))]


def legs(node: Node, device: str = "root100") -> list[str]:
    """The major:minor of each leg of a striped dm table."""
    table = node.check(["dmsetup", "table", device], timeout=60).split()
    assert table[2] == "striped", table
    count = int(table[3])
    return [table[5 + 2 * i] for i in range(count)]


def lv_devices(node: Node, lv: str = "root100") -> dict[str, str]:
    """vg -> major:minor of ``lv`` in every volume group."""
    out = node.check(["lvs", "--noheadings", "-o", "vg_name,lv_name,lv_kernel_major,lv_kernel_minor"], timeout=120)
    found = {}
    for line in out.splitlines():
        vg, name, major, minor = line.split()
        if name == lv:
            found[vg] = f"{major}:{minor}"
    return found


def drbd_bytes(node: Node, minor: int = 0) -> int:
    """The DRBD device's size (8.4's /proc/drbd shows none; sysfs counts 512-byte sectors)."""
    return int(node.check(["cat", f"/sys/block/drbd{minor}/size"], timeout=60).strip()) * 512


def dm_bytes(node: Node, device: str = "root100") -> int:
    """The length of a dm table, in bytes."""
    fields = node.check(["dmsetup", "table", device], timeout=60).split()
    return int(fields[1]) * 512


def lv_bytes(node: Node, lv: str = "root100") -> dict[str, int]:
    """vg -> size in bytes of ``lv`` in every volume group."""
    out = node.check(["lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_name,lv_name,lv_size"],
                     timeout=120)
    return {vg: int(size) for vg, name, size in (line.split() for line in out.splitlines() if line.strip())
            if name == lv}


def domain_id(node: Node, name: str) -> int | None:
    for line in node.check(["xl", "list"], timeout=120).splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == name:
            return int(fields[1])
    return None


def metrics(node: Node) -> str:
    """The daemon's Prometheus exposition, read inside the node (it listens on the node's loopback)."""
    return node.check(["python3", "-c", "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
                       "'http://127.0.0.1:9793/metrics', timeout=60).read().decode())"], timeout=120)


_ACKNOWLEDGED = re.compile(r"lab-domu: ack (\d+)")
_HELD = re.compile(r"lab-domu: have (\d+)")


def records_acknowledged(node: Node) -> int:
    """The highest record the domU announced as durable while it ran on ``node``, over every boot of the node:
    dom0 copies the announcements onto its serial console, a file on the lab's host that a power loss keeps."""
    return max((int(n) for n in _ACKNOWLEDGED.findall(node.every_console_text())), default=0)


def records_held(node: Node) -> list[int]:
    """What each boot of the domU on ``node`` found on its disk, oldest first: the longest run 1..N of records
    (``domu-rc.sh``). Read from xenconsoled's log of the domU, which lasts until dom0 reboots."""
    text = node.run(["cat", GUEST_CONSOLE], timeout=60)
    return [int(n) for n in _HELD.findall(text.stdout)] if text.rc == 0 else []

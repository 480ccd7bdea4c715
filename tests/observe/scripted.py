"""A scripted node for observer tests: fixed answers per argv, files in a dict, every call recorded.

The outputs are written in the formats the real tools print (lvm2 2.03 JSON reports, dmsetup columns,
DRBD 8.4 ``/proc/drbd``, ``drbdsetup status --json`` of DRBD 9, ``xl list``/``xl list -l``/``xl info``).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field

from reconciler.backends.dm import parse as dmsetup
from reconciler.backends.dm.parse import VERSION_ARGV as DMSETUP_VERSION_ARGV
from reconciler.backends.drbd import drbd9
from reconciler.backends.drbd.show import SHOW_ARGV
from reconciler.backends.drbd.utils_version import VERSION_ARGV as DRBDADM_VERSION_ARGV
from reconciler.backends.lvm import parse as lvm
from reconciler.backends.lvm.parse import VERSION_ARGV as LVM_VERSION_ARGV
from reconciler.backends.xen import xl
from reconciler.host.base import DEFAULT_TIMEOUT, EXIT_NOT_FOUND, CommandResult, HostFileError

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class Answer:
    stdout: str = ""
    stderr: str = ""
    exit: int = 0


@dataclass
class ScriptedHost:
    node: str = "erdbeere"
    answers: dict[tuple[str, ...], Answer] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    missing_programs: set[str] = field(default_factory=set)
    unreadable: set[str] = field(default_factory=set)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        args = tuple(argv)
        assert timeout > 0
        self.calls.append(args)
        if args[0] in self.missing_programs:
            return CommandResult(args, EXIT_NOT_FOUND, "", f"{args[0]}: No such file or directory", not_found=True)
        answer = self.answers.get(args)
        if answer is None and args == SHOW_ARGV:
            # The runtime options of DRBD's resources: none allows two primaries (no live migration under way).
            answer = Answer("")
        if answer is None:
            raise AssertionError(f"the observer ran a command this node was not scripted for: {args}")
        return CommandResult(args, answer.exit, answer.stdout, answer.stderr, 0.001)

    def read_file(self, path: str) -> str | None:
        self.reads.append(path)
        if path in self.unreadable:
            raise HostFileError(40, f"cannot read {path}: Too many levels of symbolic links")
        return self.files.get(path)

    def list_dir(self, path: str) -> tuple[str, ...]:
        return tuple(sorted(posixpath.basename(p) for p in self.files if posixpath.dirname(p) == path))

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        raise AssertionError(f"observing must not write ({path})")

    def remove_file(self, path: str) -> None:
        raise AssertionError(f"observing must not remove ({path})")

    def commands_since(self, start: int) -> list[tuple[str, ...]]:
        return self.calls[start:]


def lvm_report(section: str, rows: list[dict[str, str]]) -> str:
    """lvm2 2.03 ``--reportformat json`` layout: two-space indent, one row per line, every value a string."""
    body = ",\n".join(
        "                  {" + ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in row.items()) + "}"
        for row in rows
    )
    return (
        "  {\n      \"report\": [\n          {\n"
        f"              \"{section}\": [\n{body}\n              ]\n"
        "          }\n      ]\n  }\n"
    )


def vgs_output(groups: list[tuple[str, int, int]]) -> str:
    return lvm_report("vg", [
        {"vg_name": name, "vg_size": str(size), "vg_free": str(free), "vg_extent_size": str(4 * MIB),
         "pv_count": "1"}
        for name, size, free in groups
    ])


def lvs_output(volumes: list[tuple[str, str, int]]) -> str:
    return lvm_report("lv", [
        {"lv_name": name, "vg_name": vg, "lv_size": str(size), "lv_attr": "-wi-a-----",
         "lv_uuid": f"a{index:05d}-0000-0000-0000-0000-0000-000000", "segtype": "linear", "stripes": "1",
         "stripe_size": "0", "devices": "/dev/sda(0)", "lv_tags": ""}
        for index, (vg, name, size) in enumerate(volumes)
    ])


LVM_VERSION_OUT = (
    "  LVM version:     2.03.16(2) (2022-05-18)\n"
    "  Library version: 1.02.185 (2022-05-18)\n"
    "  Driver version:  4.48.0\n"
)
DMSETUP_VERSION_OUT = "Library version:   1.02.185 (2022-05-18)\nDriver version:    4.48.0\n"
DRBDADM_VERSION_OUT = (
    "DRBDADM_BUILDTAG=GIT-hash:\\ 409097fe02187f83790b88ac3e0d94f3c167adab\\ reproducible\\ build\\,\\ 2023-01-09\n"
    "DRBDADM_API_VERSION=2\nDRBD_KERNEL_VERSION_CODE=0x090212\nDRBD_KERNEL_VERSION=9.2.12\n"
    "DRBDADM_VERSION_CODE=0x091600\nDRBDADM_VERSION=9.22.0\n"
)

DM_INFO_OUT = (
    "vg--sda-root100/254/0/L--w/1/LVM-FinEeEomhBKVIqjj5kxVVKIgw2nCvFY8skpFw98flQ8Qcrw7wr9ZUGvSMvUrTheX\n"
    "vg--sdb-root100/254/1/L--w/1/LVM-V5X6y121ehURMAesMOQQS1riFO5mMYSING41jsqwEjd0C1PDyOL7drbDmBY32x0F\n"
    "root100/254/2/L--w/1/RECONCILER-root100\n"
)
DM_TABLE_OUT = (
    "vg--sda-root100: 0 2097152 linear 8:0 4196352\n"
    "vg--sdb-root100: 0 2097152 linear 8:16 4196352\n"
    "root100: 0 4194304 striped 2 128 254:0 0 254:1 0\n"
)

PROC_DRBD_84 = """version: 8.4.11 (api:1/proto:86-101)
srcversion: 9F2F6B6E1D4C3B2A1908F7E

 0: cs:SyncSource ro:Primary/Secondary ds:UpToDate/Inconsistent C r-----
    ns:716992 nr:0 dw:0 dr:719432 al:0 bm:43 lo:0 pe:33 ua:18 ap:0 ep:1 wo:f oos:335744
        [============>.......] sync'ed: 68.5% (335744/1048576)K
        finish: 0:00:05 speed: 64,800 (64,800) K/sec

 1: cs:Unconfigured

 3: cs:WFConnection ro:Secondary/Unknown ds:UpToDate/DUnknown C r-----
    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
"""

RES_VM100 = """resource vm100 {
  protocol C;
  on erdbeere { device /dev/drbd0; disk /dev/mapper/root100; address 192.168.2.1:7788; meta-disk internal; }
  on himbeere { device /dev/drbd0; disk /dev/mapper/root100; address 192.168.2.2:7788; meta-disk internal; }
}
"""
RES_VM103 = """# rendered by the reconciler
resource vm103 {
  device /dev/drbd3 minor 3;
  disk /dev/mapper/root103;
  meta-disk internal;
  on erdbeere { address 192.168.2.1:7791; }
  on himbeere { address 192.168.2.2:7791; }
}
"""

PROC_DRBD_9 = "version: 9.2.12 (api:2/proto:86-122)\nGIT-hash: 0123456789abcdef build by builder, 2024-10-01\n"

DRBD9_STATUS_OUT = json.dumps([
    {
        "name": "vm100", "node-id": 0, "role": "Primary", "suspended": False, "write-ordering": "flush",
        "devices": [{"volume": 0, "minor": 0, "disk-state": "UpToDate", "client": False, "quorum": True,
                     "size": 1048576, "read": 0, "written": 0, "al-writes": 0, "bm-writes": 0,
                     "upper-pending": 0, "lower-pending": 0}],
        "connections": [{
            "peer-node-id": 1, "name": "himbeere", "connection-state": "Connected", "congested": False,
            "peer-role": "Secondary", "ap-in-flight": 0, "rs-in-flight": 0,
            "peer_devices": [{"volume": 0, "replication-state": "SyncSource", "peer-disk-state": "Inconsistent",
                              "peer-client": False, "resync-suspended": "no", "received": 0, "sent": 0,
                              "out-of-sync": 4096, "pending": 0, "unacked": 0, "has-sync-details": True,
                              "has-online-verify-details": False, "percent-in-sync": 42.5}],
        }],
    }
], indent=2) + "\n"

XL_LIST_OUT = """Name                                        ID   Mem VCPUs\tState\tTime(s)
Domain-0                                     0  2048     2     r-----    1234.5
vm100                                        3  4096     2     -b----     567.8
"""
XL_LIST_LONG_OUT = json.dumps([
    {"domid": 0, "config": {"c_info": {"name": "Domain-0"}, "b_info": {}}},
    {"domid": 3, "config": {
        "c_info": {"name": "vm100", "uuid": "3f0e3b8e-2f7a-4e39-9a49-0f1c2d3e4f50"},
        "b_info": {"max_memkb": 4194304, "target_memkb": 4194304, "max_vcpus": 2},
        "disks": [{"pdev_path": "/dev/drbd0", "vdev": "xvda", "readwrite": 1}],
        "nics": [{"mac": "00:16:3e:00:01:00", "bridge": "xenbr0"}],
    }},
], indent=4) + "\n"
XL_INFO_OUT = """host                   : erdbeere
release                : 6.1.0-28-amd64
machine                : x86_64
nr_cpus                : 8
total_memory           : 65385
free_memory            : 40960
xen_major              : 4
xen_minor              : 17
xen_extra              : .5
xen_version            : 4.17.5
"""


def storage_answers(volumes: list[tuple[str, str, int]]) -> dict[tuple[str, ...], Answer]:
    groups = sorted({vg for vg, _, _ in volumes} | {"vg-sda"})
    return {
        LVM_VERSION_ARGV: Answer(LVM_VERSION_OUT),
        DMSETUP_VERSION_ARGV: Answer(DMSETUP_VERSION_OUT),
        DRBDADM_VERSION_ARGV: Answer(DRBDADM_VERSION_OUT),
        lvm.VGS_ARGV: Answer(vgs_output([(g, 100 * GIB, 50 * GIB) for g in groups])),
        lvm.LVS_ARGV: Answer(lvs_output(volumes)),
        dmsetup.INFO_ARGV: Answer(DM_INFO_OUT),
        dmsetup.TABLE_ARGV: Answer(DM_TABLE_OUT),
    }


def full_node(volumes: list[tuple[str, str, int]] | None = None, *, drbd: str | None = "9",
              xen: bool = True) -> ScriptedHost:
    """A node with every tool: ``drbd`` is '9', '8.4' or None (no module)."""
    if volumes is None:
        volumes = [("vg-sda", "root100", GIB), ("vg-sdb", "root100", GIB), ("vg-sda", "swap100", 2 * GIB)]
    host = ScriptedHost(answers=storage_answers(volumes))
    host.files["/etc/drbd.d/vm100.res"] = RES_VM100
    host.files["/etc/drbd.d/global_common.conf"] = "global { usage-count no; }\n"
    if drbd == "9":
        host.files["/proc/drbd"] = PROC_DRBD_9
        host.answers[drbd9.STATUS_ARGV] = Answer(DRBD9_STATUS_OUT)
    elif drbd == "8.4":
        host.files["/proc/drbd"] = PROC_DRBD_84
        host.files["/etc/drbd.d/vm103.res"] = RES_VM103
    if xen:
        host.files["/etc/xen/vm100.cfg"] = 'name = "vm100"\nmemory = 4096\n'
        host.answers[xl.XL_LIST_ARGV] = Answer(XL_LIST_OUT)
        host.answers[xl.XL_LIST_LONG_ARGV] = Answer(XL_LIST_LONG_OUT)
        host.answers[xl.XL_INFO_ARGV] = Answer(XL_INFO_OUT)
    else:
        host.missing_programs.add("xl")
    return host

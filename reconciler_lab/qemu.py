"""One lab node: a QEMU process (TCG unless KVM is proven to work) booting Xen 4.17 with a PV dom0.

The node's disks, console log, agent socket and QMP socket live in its run directory. QEMU runs inside the
lab's network namespace; its two links are UDP datagram backends on that namespace's loopback, which carry
frames again as soon as a restarted guest sends, so a node can die and come back.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from reconciler_lab import paths
from reconciler_lab.proc import LabError

DATA_DISKS = ("sda", "sdb", "sdc")
DATA_DISK_BYTES = 512 * 1024 * 1024
PERSIST_DISK_BYTES = 128 * 1024 * 1024
MEMORY_MIB = 1600
DOM0_MEMORY = "900M"
LINKS = ("rep", "mgmt")


@dataclass(frozen=True)
class NodeSpec:
    name: str
    index: int                       # 1 or 2: addresses and ports derive from it

    def mac(self, link: str) -> str:
        return f"52:54:00:00:{LINKS.index(link) + 1:02x}:{self.index:02x}"

    def address(self, link: str) -> str:
        return f"192.168.{2 if link == 'rep' else 3}.{self.index}"

    def port(self, link: str, index: int | None = None) -> int:
        return 40000 + 10 * (LINKS.index(link) + 1) + (self.index if index is None else index)


NODES = (NodeSpec("erdbeere", 1), NodeSpec("himbeere", 2))


def memory_mib() -> int:
    """The node's memory: dom0 keeps 900 MiB, the rest is for domUs (the benchmark's 20 need more)."""
    return int(os.environ.get("RECONCILER_LAB_MEMORY_MIB", MEMORY_MIB))


def node_spec(name: str) -> NodeSpec:
    for spec in NODES:
        if spec.name == name:
            return spec
    raise LabError(f"no lab node {name!r}; the nodes are {', '.join(n.name for n in NODES)}")


class Qemu:
    def __init__(self, spec: NodeSpec, run_dir: Path, accel: str) -> None:
        self.spec = spec
        self.dir = run_dir / spec.name
        self.accel = accel
        self.proc: subprocess.Popen[bytes] | None = None
        self.boots = 0
        # Stage 2 of the node's init: the lab's own (node-init.sh) or systemd with the shipped units.
        self.stage2 = "node-init.sh"

    @property
    def console(self) -> Path:
        return self.dir / f"console-{self.boots}.log"

    @property
    def agent_socket(self) -> Path:
        return self.dir / "agent.sock"

    @property
    def qmp_socket(self) -> Path:
        return self.dir / "qmp.sock"

    @property
    def fence_socket(self) -> Path:
        return self.dir / "fence.sock"

    def disk(self, name: str) -> Path:
        return self.dir / f"{name}.img"

    def make_disks(self) -> None:
        """Empty disks: sparse files, so that a fresh lab really starts from empty disks."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for name, size in [*((d, DATA_DISK_BYTES) for d in DATA_DISKS), ("persist", PERSIST_DISK_BYTES)]:
            path = self.disk(name)
            path.unlink(missing_ok=True)
            with path.open("wb") as handle:
                handle.truncate(size)

    def argv(self, conf_dir: Path) -> list[str]:
        spec = self.spec
        other = 3 - spec.index
        dom0 = " ".join((str(paths.vmlinuz()), "console=hvc0", "earlyprintk=xen", "loglevel=6",
                         f"lab.node={spec.name}", f"lab.conf={conf_dir}", f"lab.xenroot={paths.XEN_ROOT}",
                         f"lab.ktree={paths.KERNEL_TREE}", f"lab.project={paths.PROJECT}",
                         f"lab.init={paths.GUEST_DIR / self.stage2}"))
        argv = ["qemu-system-x86_64", "-name", spec.name, "-machine", f"pc,accel={self.accel}",
                "-cpu", "Nehalem" if self.accel == "tcg" else "host", "-smp", "1", "-m", str(memory_mib()),
                "-display", "none", "-monitor", "none", "-serial", f"file:{self.console}",
                "-qmp", f"unix:{self.qmp_socket},server=on,wait=off",
                "-kernel", str(paths.XEN_IMAGE),
                "-append", (f"dom0_mem={DOM0_MEMORY},max:{DOM0_MEMORY} dom0_max_vcpus=1 console=com1 loglvl=info "
                            "noreboot"),
                "-initrd", f"{dom0},{paths.DOM0_INITRD}",
                "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
                "-device", "virtio-serial-pci",
                "-chardev", f"socket,id=agent,path={self.agent_socket},server=on,wait=off",
                "-device", "virtserialport,chardev=agent,name=lab.agent",
                # The lab's power switch (reconciler_lab/fence_relay.py): the node's fence agent asks the host.
                "-chardev", f"socket,id=fence,path={self.fence_socket},server=on,wait=off",
                "-device", "virtserialport,chardev=fence,name=lab.fence"]
        for name in [*DATA_DISKS, "persist"]:
            argv += ["-drive", f"file={self.disk(name)},format=raw,if=none,id={name},cache=unsafe",
                     "-device", f"virtio-blk-pci,drive={name},serial={name}"]
        for link in LINKS:
            argv += ["-netdev", (f"dgram,id={link},local.type=inet,local.host=127.0.0.1,"
                                 f"local.port={spec.port(link)},remote.type=inet,remote.host=127.0.0.1,"
                                 f"remote.port={spec.port(link, other)}"),
                     "-device", f"virtio-net-pci,netdev={link},mac={spec.mac(link)}"]
        return argv

    def start(self, conf_dir: Path) -> None:
        if self.proc is not None and self.proc.poll() is None:
            raise LabError(f"{self.spec.name}: QEMU already running (pid {self.proc.pid})")
        self.boots += 1
        for sock in (self.agent_socket, self.qmp_socket, self.fence_socket):
            sock.unlink(missing_ok=True)
        argv = ["ip", "netns", "exec", paths.NETNS, *self.argv(conf_dir)]
        (self.dir / "qemu-argv.json").write_text(json.dumps(argv, indent=1) + "\n")
        log = (self.dir / f"qemu-{self.boots}.log").open("wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        (self.dir / "qemu.pid").write_text(f"{self.proc.pid}\n")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Power loss: SIGKILL, no chance to flush anything."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None
        (self.dir / "qemu.pid").unlink(missing_ok=True)

    def qmp(self, command: str, arguments: dict[str, object] | None = None, timeout: float = 30.0) -> object:
        """One QMP command (e.g. ``set_link``); its ``return`` value."""
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.qmp_socket))
            reader = sock.makefile("rb")
            reader.readline()  # greeting
            for request in ({"execute": "qmp_capabilities"},
                            {"execute": command, **({"arguments": arguments} if arguments else {})}):
                sock.sendall(json.dumps(request).encode() + b"\n")
                while True:
                    if time.monotonic() > deadline:
                        raise LabError(f"{self.spec.name}: QMP {command} timed out")
                    reply = json.loads(reader.readline())
                    if "return" in reply or "error" in reply:
                        break
                if "error" in reply:
                    raise LabError(f"{self.spec.name}: QMP {command}: {reply['error']}")
            return reply["return"]

"""The running lab: network namespace, two nodes, their agents, and deterministic waits on observed state."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from reconciler_lab import paths
from reconciler_lab.agent_client import AgentClient, Result
from reconciler_lab.desired import DesiredRepo
from reconciler_lab.fence_relay import FenceRelay
from reconciler_lab.proc import LabError, run
from reconciler_lab.qemu import NODES, NodeSpec, Qemu, node_spec

T = TypeVar("T")
PLAIN_STAGE2 = "node-init.sh"
SYSTEMD_STAGE2 = "node-systemd.sh"
# xenconsoled's log of the lab's domU (`--log=guest`): its announcements, until dom0 reboots.
GUEST_CONSOLE = "/var/log/xen/console/guest-vm100.log"
# What the console shows once dom0 has powered off (Linux's last words, Xen's after dom0 is gone).
POWERED_OFF = ("reboot: Power down", "Hardware Dom0 halted", "Hardware Dom0 shutdown")
BOOT_DEADLINE = 900.0      # TCG under load: Xen, dom0, 9p and the module loads take minutes, not seconds
POLL = 1.0
# Live migration's transport (`xl migrate -s`): the sender's command and the receiver's port on the management link.
MIGRATE_VIA = "/usr/local/sbin/lab-migrate-via"
MIGRATE_PORT = 8002

LVM_CONF = """# The lab's dom0s have no udev: LVM creates device nodes itself and sees only the data disks.
devices {
    obtain_device_list_from_udev = 0
    external_device_info_source = "none"
    use_devicesfile = 0
    global_filter = [ "a|^/dev/vd[abc]$|", "r|.*|" ]
}
activation {
    udev_sync = 0
    udev_rules = 0
    verify_udev_operations = 1
}
global {
    use_lvmpolld = 0
}
"""

# Emulated CPUs under load miss DRBD's default 0.5 s ping timeout; the common section raises it for every
# resource (timeout must stay below ping-int and connect-int, in tenths of a second).
GLOBAL_COMMON = """global { usage-count no; }
common {
    disk {
        # A fixed resync rate: the dynamic controller crawls at ~1 MiB/s on an emulated CPU.
        c-plan-ahead 0;
        resync-rate 40M;
    }
    net {
        ping-int 15;
        connect-int 15;
        ping-timeout 50;
        timeout 120;
    }
}
"""


def accel() -> str:
    """``kvm`` only where a guest was seen to boot with it (setup records the probe); TCG otherwise."""
    forced = os.environ.get("RECONCILER_LAB_ACCEL")
    if forced in ("tcg", "kvm"):
        return forced
    probe = paths.CACHE / "kvm-probe.json"
    if probe.exists():
        seen = json.loads(probe.read_text())
        if seen.get("host_kernel") == os.uname().release and seen.get("works") is True:
            return "kvm"
    return "tcg"


def wait_until(what: str, check: Callable[[], T | None], deadline: float, *, poll: float = POLL) -> T:
    """Poll ``check`` until it returns something other than None or False; LabError after ``deadline`` s."""
    end = time.monotonic() + deadline
    last_error = ""
    while True:
        try:
            value = check()
            if value is not None and value is not False:
                return value
        except LabError as exc:
            last_error = str(exc)
        if time.monotonic() > end:
            raise LabError(f"timed out after {deadline:g}s waiting for {what}"
                           + (f"; last error: {last_error}" if last_error else ""))
        time.sleep(poll)


class Node:
    def __init__(self, spec: NodeSpec, lab: Lab) -> None:
        self.spec = spec
        self.name = spec.name
        self.lab = lab
        self.qemu = Qemu(spec, lab.run_dir, lab.accel)
        self.agent = AgentClient(spec.name, self.qemu.agent_socket)
        self.boot_seconds: list[float] = []
        self.fence_relay = FenceRelay(spec.name, self.qemu.fence_socket, power_off=lab.power_off,
                                      is_on=lab.is_on, others=frozenset(n.name for n in NODES) - {spec.name})

    @property
    def conf_dir(self) -> Path:
        return self.lab.run_dir / self.name / "conf"

    def write_conf(self) -> None:
        conf = self.conf_dir
        (conf / "etc-reconciler").mkdir(parents=True, exist_ok=True)
        other = next(n for n in NODES if n.name != self.name)
        (conf / "links").write_text("".join(f"{self.spec.mac(link)}={self.spec.address(link)}/24\n"
                                            for link in ("rep", "mgmt")))
        (conf / "lvm.conf").write_text(LVM_CONF)
        (conf / "global_common.conf").write_text(GLOBAL_COMMON)
        (conf / "etc-reconciler" / "peer.key").write_text(self.lab.peer_key + "\n")
        repo = f"/mnt/host{self.lab.repo.path}"
        peer = f"{other.name}={other.address('mgmt')}:9791"
        daemon_args = " ".join((
            f"--repo {repo}", "--branch main", "--interval 5", "--drift-interval 30",
            "--no-watch", "--peer-listen 0.0.0.0:9791", f"--peer {peer}",
            "--metrics-address 127.0.0.1:9793"))
        (conf / "etc-reconciler" / "reconciler.env").write_text(
            f"RECONCILER_NODE={self.name}\nRECONCILER_STATE_DIR=/var/lib/reconciler\n"
            "RECONCILER_PEER_TOKEN_FILE=/etc/reconciler/peer.key\n"
            f"RECONCILER_COMMAND_LOG={self.command_log}\n"
            # What the shipped unit reads (`reconciler run` with no options); start-daemon.sh passes the
            # same as options.
            f"RECONCILER_REPO={repo}\nRECONCILER_BRANCH=main\nRECONCILER_INTERVAL=5\n"
            "RECONCILER_DRIFT_INTERVAL=30\nRECONCILER_PEER_LISTEN=0.0.0.0:9791\n"
            f"RECONCILER_PEERS={peer}\nRECONCILER_METRICS_ADDRESS=127.0.0.1:9793\n"
            # No udev in the lab's dom0: libdevmapper creates /dev/mapper nodes itself (as udev would).
            "DM_DISABLE_UDEV=1\n"
            # Live migration: `xl migrate -s` runs `lab-migrate-via HOST xl migrate-receive` (see below).
            f"RECONCILER_MIGRATE_TRANSPORT={MIGRATE_VIA}\n"
            f"LAB_DAEMON_ARGS='{daemon_args}'\n")
        (conf / "lab-fence-peer").write_text(
            "#!/bin/sh\n# The lab's fence-peer handler: the product's, asking the peer over the management link.\n"
            f"exec /usr/bin/reconciler fence-peer --peer {other.name}={other.address('mgmt')}:9791\n")
        # One-time provisioning (scenario 17): images the host writes into the run directory, read over 9p.
        (conf / "etc-reconciler" / "provisioning.toml").write_text(
            "# The lab's images: archives the scenarios write on the host, read through the 9p mount.\n"
            f'image_roots = ["{self.image_root}"]\n')
        (conf / "lab-migrate-via").write_text(
            "#!/bin/sh\n# The lab's transport for `xl migrate -s`: xl runs `lab-migrate-via HOST xl migrate-receive "
            "[FLAGS]`\n# and speaks its migration stream over this command's stdin and stdout. It connects to the "
            f"receiver\n# node-init.sh starts on every node (port {MIGRATE_PORT}, the management link), which runs "
            "`xl migrate-receive`.\n"
            'case "$1" in\n'
            + "".join(f"{n.name}) exec busybox nc {n.address('mgmt')} {MIGRATE_PORT} ;;\n" for n in NODES)
            + '*) echo "lab-migrate-via: unknown node $1" >&2; exit 2 ;;\nesac\n')
        (conf / "lab-power-fence").write_text(
            "#!/bin/sh\n# The lab's fence agent: asks the host to pull the other node's plug (fence_relay.py).\n"
            f"exec {paths.PROJECT}/.venv/bin/python {paths.GUEST_DIR}/power-fence.py \"$@\"\n")

    @property
    def image_root(self) -> str:
        """Where a node finds the images the host writes to ``Lab.image_dir`` (the host's root over 9p)."""
        return f"/mnt/host{self.lab.image_dir}"

    @property
    def systemd(self) -> bool:
        """Whether the node's init is systemd with the shipped units (scenario 10) rather than the lab's."""
        return self.qemu.stage2 == SYSTEMD_STAGE2

    @property
    def command_log(self) -> str:
        """The real host seam's command log. Under the shipped unit the daemon may write only its state
        directory (ProtectSystem=strict), which is on the persistent disk too."""
        return "/var/lib/reconciler/commands.jsonl" if self.systemd else "/persist/log/commands.jsonl"

    def daemon_log(self) -> str:
        if self.systemd:
            return self.check(["journalctl", "--no-pager", "--output=cat", "--unit=reconciler.service"], timeout=120)
        return self.check(["cat", "/persist/log/daemon.log"], timeout=60)

    def boot(self, *, fresh: bool, systemd: bool = False) -> None:
        self.qemu.stage2 = SYSTEMD_STAGE2 if systemd else PLAIN_STAGE2
        if fresh:
            self.qemu.make_disks()
        self.write_conf()
        started = time.monotonic()
        self.agent.close()
        self.qemu.start(self.conf_dir)
        self.fence_relay.start()

        wait_until(f"{self.name} to boot and answer", lambda: _connected(self), BOOT_DEADLINE, poll=3.0)
        self.wait_console("lab-init: ready", 300)
        self.boot_seconds.append(time.monotonic() - started)

    def console_text(self) -> str:
        try:
            return self.qemu.console.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def every_console_text(self) -> str:
        """The console of every boot of this node, oldest first: what a node said survives its power loss."""
        boots = sorted(self.qemu.dir.glob("console-*.log"), key=lambda p: int(p.stem.split("-")[1]))
        return "".join(path.read_text(errors="replace") for path in boots)

    def wait_console(self, marker: str, deadline: float) -> None:
        wait_until(f"{self.name} console to show {marker!r}", lambda: marker in self.console_text(), deadline)

    def run(self, argv: Sequence[str], *, timeout: float = 120.0, stdin: str | None = None) -> Result:
        return self.agent.run(argv, timeout=timeout, stdin=stdin)

    def check(self, argv: Sequence[str], *, timeout: float = 120.0, stdin: str | None = None) -> str:
        result = self.run(argv, timeout=timeout, stdin=stdin)
        if not result.ok:
            raise LabError(result.describe())
        return result.stdout

    def power_off(self) -> None:
        """Pull the plug (SIGKILL to QEMU)."""
        self.agent.close()
        self.qemu.kill()

    def stop_daemon(self) -> None:
        """What ``systemctl stop reconciler`` does: SIGTERM, then wait for the daemon to exit."""
        if self.systemd:
            self.check(["systemctl", "stop", "reconciler.service"], timeout=1000)
            return
        pid = self.check(["cat", "/run/reconciler.pid"], timeout=60).strip()
        if not pid.isdigit():
            raise LabError(f"{self.name}: no daemon pid in /run/reconciler.pid: {pid!r}")
        self.check(["kill", pid], timeout=60)
        # tail --pid returns when the process is gone; timeout bounds it.
        self.check(["timeout", "300", "tail", f"--pid={pid}", "-f", "/dev/null"], timeout=360)

    def clean_shutdown(self) -> str:
        """A clean system shutdown as the shipped units do it: reconciler.service stops first, then
        reconciler-shutdown.service's ExecStop (``reconciler shutdown-node``); then the power goes."""
        self.stop_daemon()
        report = self.check(["sh", "-c", "set -a; . /etc/reconciler/reconciler.env; set +a; "
                             "exec reconciler shutdown-node --state-dir /var/lib/reconciler"], timeout=1200)
        self.check(["sync"], timeout=120)
        self.power_off()
        return report

    def system_poweroff(self, deadline: float = 1500.0) -> None:
        """``systemctl poweroff`` on a systemd node: every unit stops in order (the shipped shutdown unit's
        ExecStop among them) and the machine powers off; waits for QEMU to exit, or for the hypervisor to
        say dom0 is gone where the emulated machine does not power off by itself."""
        if not self.systemd:
            raise LabError(f"{self.name}: not booted with systemd")
        # The agent may be stopped before it answers; what counts is the power-off below.
        with contextlib.suppress(LabError):
            self.run(["systemctl", "--no-block", "poweroff"], timeout=60)

        def off() -> bool:
            if not self.qemu.running():
                return True
            text = self.console_text()
            return any(marker in text for marker in POWERED_OFF)
        wait_until(f"{self.name} to power off", off, deadline, poll=2.0)
        self.power_off()

    def set_link(self, link: str, *, up: bool) -> None:
        """Cut or restore one of the node's links (QEMU ``set_link``), as a pulled cable would."""
        self.qemu.qmp("set_link", {"name": link, "up": up})


class Lab:
    def __init__(self, run_dir: Path = paths.RUN) -> None:
        self.run_dir = run_dir
        self.accel = accel()
        self.repo = DesiredRepo(run_dir / "desired")
        self.image_dir = run_dir / "images"
        key_file = run_dir / "peer.key"
        self.peer_key = key_file.read_text().strip() if key_file.exists() else secrets.token_hex(32)
        self.nodes = {spec.name: Node(spec, self) for spec in NODES}
        self.timings: dict[str, float] = {}
        # Counts the scenarios add up and the run prints at the end (power losses survived, records verified).
        self.figures: dict[str, int] = {}
        self.notes: list[str] = []

    def node(self, name: str) -> Node:
        node_spec(name)
        return self.nodes[name]

    def power_off(self, name: str) -> None:
        """The power switch the nodes' fence agents reach (fence_relay.py)."""
        self.node(name).power_off()
        self.notes.append(f"{name} powered off by the other node's power fence")

    def is_on(self, name: str) -> bool:
        return self.node(name).qemu.running()

    def create(self) -> None:
        """A fresh lab: empty disks, a new desired-state repository, the namespace."""
        if not paths.STAMP.exists():
            raise LabError(f"the lab is not set up ({paths.STAMP} missing): run scripts/lab setup")
        down(quiet=True)
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(parents=True)
        os.chmod(self.run_dir, 0o755)  # noqa: S103  the guests read it over 9p
        (self.run_dir / "peer.key").write_text(self.peer_key + "\n")
        self.repo.create()
        self.image_dir.mkdir(mode=0o755)
        run(("ip", "netns", "add", paths.NETNS), timeout=30)
        run(("ip", "netns", "exec", paths.NETNS, "ip", "link", "set", "lo", "up"), timeout=30)

    def boot_all(self, *, fresh: bool) -> None:
        started = time.monotonic()
        for node in self.nodes.values():
            # Starting both at once halves the wall time; the agents are waited for one after the other.
            if fresh:
                node.qemu.make_disks()
            node.write_conf()
            node.qemu.start(node.conf_dir)
            node.fence_relay.start()
        for node in self.nodes.values():
            wait_until(f"{node.name} agent", lambda n=node: _connected(n), BOOT_DEADLINE, poll=3.0)  # type: ignore[misc]
            node.wait_console("lab-init: ready", 300)
            node.boot_seconds.append(time.monotonic() - started)
        self.timings["boot"] = time.monotonic() - started

    def consoles(self) -> str:
        parts = []
        for node in self.nodes.values():
            parts.append(f"===== console of {node.name} ({node.qemu.console})\n{node.console_text()[-20000:]}")
        return "\n".join(parts)

    def save(self, out: Path) -> None:
        """Consoles, QEMU command lines and the nodes' logs into ``out`` (after a failure, or on request)."""
        out.mkdir(parents=True, exist_ok=True)
        for node in self.nodes.values():
            target = out / node.name
            target.mkdir(exist_ok=True)
            for source in sorted(node.qemu.dir.glob("console-*.log")) + sorted(node.qemu.dir.glob("qemu-*")):
                shutil.copy(source, target / source.name)
            if node.qemu.running():
                if node.systemd:
                    try:
                        journal = node.run(["journalctl", "--no-pager", "--output=short-precise"], timeout=120)
                        (target / "journal.txt").write_text(journal.stdout)
                    except LabError:
                        pass
                for path in ("/persist/log/daemon.log", node.command_log, "/persist/log/agent.log", GUEST_CONSOLE):
                    try:
                        result = node.run(["cat", path], timeout=30)
                    except LabError:
                        continue
                    (target / Path(path).name).write_text(result.stdout)


def _connected(node: Node) -> bool:
    if not node.qemu.running():
        raise LabError(f"{node.name}: QEMU exited during boot; see {node.qemu.console}:\n"
                       f"{node.console_text()[-3000:]}")
    if not node.qemu.agent_socket.exists():
        return False
    try:
        node.agent.connect()
    except OSError:
        return False
    try:
        result = node.agent.run(["cat", "/proc/sys/kernel/hostname"], timeout=10)
    except LabError:
        node.agent.close()
        return False
    return result.ok and result.stdout.strip() == node.name


def down(*, quiet: bool = False) -> list[str]:
    """Kill every QEMU this lab started (by the pids it recorded) and remove its namespace."""
    done: list[str] = []
    for spec in NODES:
        pid_file = paths.RUN / spec.name / "qemu.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip() or 0)
            if pid > 0 and _is_lab_qemu(pid):
                os.kill(pid, 9)
                _wait_gone(pid)
                done.append(f"killed QEMU of {spec.name} (pid {pid})")
            pid_file.unlink()
    namespaces = run(("ip", "netns", "list"), timeout=30).stdout
    if any(line.split()[0] == paths.NETNS for line in namespaces.splitlines() if line.split()):
        pids = run(("ip", "netns", "pids", paths.NETNS), timeout=30).stdout.split()
        for pid_text in pids:
            if _is_lab_qemu(int(pid_text)):
                os.kill(int(pid_text), 9)
                _wait_gone(int(pid_text))
                done.append(f"killed QEMU pid {pid_text} left in the namespace")
        run(("ip", "netns", "delete", paths.NETNS), timeout=30)
        done.append(f"deleted network namespace {paths.NETNS}")
    if not quiet:
        for line in done or ["nothing to do"]:
            print(f"lab down: {line}")
    return done


def _is_lab_qemu(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    ours = str(paths.RUN).encode() in b" ".join(cmdline)
    return bool(cmdline) and cmdline[0].endswith(b"qemu-system-x86_64") and ours


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"   # a zombie is dead; its parent reaps it


def _wait_gone(pid: int) -> None:
    wait_until(f"pid {pid} to exit", lambda: _gone(pid), 30, poll=0.2)




XL_CONF = '# The lab: dom0 keeps its memory (reconciler doctor checks this).\nautoballoon="off"\n'


def provision(node: Node) -> None:
    """What an operator does once on a new node before the daemon manages it: the volume groups on the data
    disks, xl.conf; then ``reconciler doctor`` must pass."""
    existing = node.check(["vgs", "--noheadings", "-o", "vg_name"], timeout=300).split()
    for disk, vg in (("/dev/vda", "vg-sda"), ("/dev/vdb", "vg-sdb"), ("/dev/vdc", "vg-sdc")):
        if vg not in existing:
            node.check(["vgcreate", "-q", vg, disk], timeout=300)
    node.check(["tee", "/etc/xen/xl.conf"], stdin=XL_CONF)
    doctor = node.run(["reconciler", "doctor"], timeout=600)
    (node.qemu.dir / "doctor.txt").write_text(doctor.stdout + doctor.stderr)
    if "[FAIL]" in doctor.stdout:
        raise LabError(f"{node.name}: reconciler doctor failed:\n{doctor.stdout}")


def bring_up(lab: Lab) -> None:
    """A fresh lab from empty disks: both nodes booted and provisioned, both daemons following the repository."""
    started = time.monotonic()
    lab.create()
    lab.boot_all(fresh=True)
    for node in lab.nodes.values():
        provision(node)
    for node in lab.nodes.values():
        start_daemon(node)
    lab.timings["boot+provision"] = time.monotonic() - started


def start_daemon(node: Node) -> None:
    if node.systemd:
        node.check(["systemctl", "start", "reconciler.service"], timeout=600)
        return
    node.check([str(paths.GUEST_DIR / "start-daemon.sh")], timeout=60)


# Commands whose real output the simulator must match, beyond what `observe` runs (see docs/lab.md).
EXTRA_OUTPUTS: dict[str, tuple[str, ...]] = {
    "blkid-drbd0": ("blkid", "-p", "-o", "export", "/dev/drbd0"),
    "dmsetup-table-root100": ("dmsetup", "table", "root100"),
    "proc-drbd": ("cat", "/proc/drbd"),
    "drbdsetup-events2-now": ("drbdsetup", "events2", "--now", "--statistics"),
    "drbdadm-dump-vm100": ("drbdadm", "dump", "vm100"),
    "xl-list": ("xl", "list"),
}


def capture(node: Node, label: str) -> Path:
    """``reconciler observe --capture`` on ``node`` plus a few more real outputs, copied to the host under
    RUN/corpus/<label>-<node> (the provenance file says what, where and when)."""
    inside = f"/run/capture-{label}"
    node.check(["rm", "-rf", inside], timeout=60)
    node.check(["reconciler", "observe", "--capture", inside], timeout=600)
    for name, argv in EXTRA_OUTPUTS.items():
        result = node.run(argv, timeout=120)
        text = (f"# command: {' '.join(argv)}\n# exit: {result.rc}\n# --- stdout\n{result.stdout}"
                f"# --- stderr\n{result.stderr}")
        node.check(["tee", f"{inside}/real-{name}.txt"], stdin=text)
    archive = node.check(["sh", "-c", f"tar -C {inside} -cf - . | base64 -w0"], timeout=300)
    target = node.lab.run_dir / "corpus" / f"{label}-{node.name}"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    run(("tar", "-x", "-C", str(target), "-f", "-"), timeout=120, stdin=base64.b64decode(archive))
    versions = node.check(["sh", "-c", "uname -r; head -1 /proc/drbd; xl info | grep -E '^xen_(major|minor|extra)'; "
                           "lvm version | head -1"], timeout=120)
    (target / "PROVENANCE.md").write_text(
        f"# {label} on {node.name}\n\nCaptured by the real-kernel lab (`scripts/lab run`, docs/lab.md) on "
        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}: `reconciler observe --capture` in dom0 of "
        f"{node.name} (Xen PV dom0 under QEMU TCG), plus the real-*.txt outputs.\n\n```\n{versions}```\n")
    return target

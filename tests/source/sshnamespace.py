"""The git-over-ssh scenario, run as the first process of its own network, mount and PID namespaces.

``test_git_over_ssh.py`` starts ``python -m tests.source.sshnamespace SSHD OUT NAMESPACES`` under ``unshare``.
Here, with only a loopback interface and private mounts: a real sshd on 127.0.0.1:22 serves a bare repository as the
unprivileged user ``git``; the runbook's own commands (step 4 of "Preparing the node", read from
docs/operations.md) write the deploy key, ``config`` and ``known_hosts`` into /root/.ssh, which is a tmpfs of
this namespace; and the daemon, built as ``reconciler run`` builds it, fetches from
``ssh://git@127.0.0.1/...`` with its own ``GIT_SSH_COMMAND``. What each step saw goes to OUT as JSON; the test
judges it. Leaving the namespace takes everything with it: the kernel kills every process of a PID namespace
whose first process ends, and the mounts and the interface go with their last process.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import termios
import textwrap
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reconciler.cli.main import main as cli_main
from reconciler.daemon.loop.config import DaemonConfig
from reconciler.daemon.loop.runtime import Daemon
from reconciler.daemon.records.logs import LOGGER_NAME
from reconciler.source.errors import SourceError
from tests.daemon.fakes import FakeEngine
from tests.source.gitrepo import GIT_ENV

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = PROJECT_ROOT / "docs" / "operations.md"
RUNBOOK_STEP = "**Git credentials under the unit's sandbox.**"
RUNBOOK_HOST = "git.example.org"
HOST = "127.0.0.1"
SERVER_HOME = Path("/srv/git")
BARE = SERVER_HOME / "infra" / "cluster.git"
WORK = SERVER_HOME / "work"
SSHD_DIR = Path("/srv/sshd")
AUTHORIZED_KEYS = SSHD_DIR / "authorized_keys"
URL = f"ssh://git@{HOST}{BARE}"
SCRATCH = Path("/run/reconciler-test")
STATE = Path("/run/reconciler")
DEPLOY_KEY = Path("/root/.ssh/reconciler_deploy")
KNOWN_HOSTS = Path("/root/.ssh/known_hosts")
COMMAND_TIMEOUT = 30.0
SSHD_START_TIMEOUT = 15.0
# A prompt waits until the fetch is killed: the daemon's 120 s would make that verdict slow, 15 s still
# leaves a local fetch ample time.
FETCH_TIMEOUT = 15.0


class ScenarioError(RuntimeError):
    """The scenario's own machinery failed (not the code under test)."""


def run(argv: Sequence[str], *, timeout: float = COMMAND_TIMEOUT, user: int | None = None,
        cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL, cwd=cwd, env=env, user=user, group=user,
                          extra_groups=[] if user is not None else None)
    if proc.returncode != 0:
        raise ScenarioError(f"{' '.join(argv)} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


# -- the namespace ------------------------------------------------------------------------------------
def isolate() -> int:
    """Loopback up; /run, /srv and /root/.ssh of this namespace only; password and shadow files with sshd and
    git (whose uid is returned)."""
    run(["mount", "--make-rprivate", "/"])
    run(["ip", "link", "set", "lo", "up"])
    # sshd's privilege-separation directory is /run/sshd, fixed at build time.
    run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run"])
    run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/srv"])
    Path("/run/sshd").mkdir(mode=0o755)
    SCRATCH.mkdir(mode=0o700)
    if not Path("/root/.ssh").is_dir():
        # No /root/.ssh on this machine: an overlay lets this namespace make one without writing to /root.
        upper, work = SCRATCH / "root-upper", SCRATCH / "root-work"
        upper.mkdir()
        work.mkdir()
        run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir=/root,upperdir={upper},workdir={work}", "/root"])
        Path("/root/.ssh").mkdir(mode=0o700)
    run(["mount", "-t", "tmpfs", "-o", "mode=0700", "tmpfs", "/root/.ssh"])
    # OpenSSH takes users from the password database: sshd needs its privilege-separation user, the server
    # side an account to log in as. Both exist only in this namespace's copy of /etc/passwd.
    lines = Path("/etc/passwd").read_text().splitlines()
    entries = [line.split(":") for line in lines]
    taken = {int(fields[2]) for fields in entries if len(fields) > 2 and fields[2].isdigit()}
    sshd_uid, git_uid = [uid for uid in range(64000, 65000) if uid not in taken][:2]
    names = {line.split(":", 1)[0] for line in lines}
    if "sshd" not in names:
        lines.append(f"sshd:x:{sshd_uid}:65534::/run/sshd:/usr/sbin/nologin")
    lines = [line for line in lines if not line.startswith("git:")]
    lines.append(f"git:*:{git_uid}:{git_uid}::{SERVER_HOME}:/bin/sh")
    passwd = SCRATCH / "passwd"
    passwd.write_text("\n".join(lines) + "\n")
    passwd.chmod(0o644)
    run(["mount", "--bind", str(passwd), "/etc/passwd"])
    if Path("/etc/shadow").exists():
        # A machine's own git account (locked, say) must not lock out this one.
        shadow = SCRATCH / "shadow"
        shadow.write_text("".join(line for line in Path("/etc/shadow").read_text().splitlines(keepends=True)
                                  if not line.startswith("git:")))
        shadow.chmod(0o600)
        run(["mount", "--bind", str(shadow), "/etc/shadow"])
    SERVER_HOME.mkdir(mode=0o755)
    os.chown(SERVER_HOME, git_uid, git_uid)
    SSHD_DIR.mkdir(mode=0o755)
    return git_uid


class Terminal:
    """A pseudo-terminal made this process's controlling terminal, so a prompt from ssh (which writes to
    /dev/tty, not to stderr) is seen here; everything written to it is kept."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        self._seen = bytearray()
        self._changed = threading.Condition()
        threading.Thread(target=self._drain, name="tty", daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            with self._changed:
                self._seen.extend(data)
                self._changed.notify_all()

    def mark(self) -> int:
        with self._changed:
            return len(self._seen)

    def since(self, mark: int) -> str:
        with self._changed:
            return bytes(self._seen[mark:]).decode(errors="replace")

    def wait_for(self, mark: int, text: str, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: text.encode() in self._seen[mark:], timeout)


class Sshd:
    """The extracted sshd in the foreground (``-D -e``), its log collected; started again for a new host key."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.log: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._listening = threading.Event()

    def start(self, host_key: Path) -> None:
        config = SSHD_DIR / "sshd_config"
        config.write_text(textwrap.dedent(f"""\
            ListenAddress {HOST}
            Port 22
            HostKey {host_key}
            AuthorizedKeysFile {AUTHORIZED_KEYS}
            PidFile none
            UsePAM no
            PermitRootLogin prohibit-password
            AllowUsers git
            PubkeyAuthentication yes
            # Offered so that a client that may prompt would be asked for a password here.
            PasswordAuthentication yes
            KbdInteractiveAuthentication no
            StrictModes yes
            LogLevel VERBOSE
            """))
        run([str(self.binary), "-t", "-f", str(config)])
        self._listening.clear()
        self._proc = subprocess.Popen([str(self.binary), "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                      start_new_session=True)
        threading.Thread(target=self._read, args=(self._proc,), name="sshd-log", daemon=True).start()
        if not self._listening.wait(SSHD_START_TIMEOUT):
            self.stop()
            raise ScenarioError(f"sshd did not listen on {HOST}:22 within {SSHD_START_TIMEOUT:g}s: "
                                + " | ".join(self.log[-10:]))
        with socket.create_connection((HOST, 22), timeout=5):
            pass

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log.append(line.rstrip("\n"))
            if line.startswith(f"Server listening on {HOST} port 22"):
                self._listening.set()

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._proc = None


# -- the server's side ------------------------------------------------------------------------------
class Server:
    """The forge: a bare repository owned by ``git``, and the keys allowed to log in as ``git``."""

    def __init__(self, uid: int) -> None:
        self.uid = uid

    def git(self, *args: str, cwd: Path = SERVER_HOME) -> str:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(SERVER_HOME), "LC_ALL": "C", **GIT_ENV}
        return run(["git", *args], user=self.uid, cwd=cwd, env=env).strip()

    def commit(self, message: str, vms: str) -> str:
        """A commit pushed to the bare repository by the server's own user, as a forge would receive it."""
        if not (WORK / ".git").is_dir():
            self.git("init", "-q", "--bare", "-b", "main", str(BARE))
            self.git("init", "-q", "-b", "main", str(WORK))
            self.git("remote", "add", "origin", str(BARE), cwd=WORK)
        (WORK / "vms.txt").write_text(vms)
        os.chown(WORK / "vms.txt", self.uid, self.uid)
        self.git("add", "-A", cwd=WORK)
        self.git("commit", "-q", "-m", message, cwd=WORK)
        self.git("push", "-q", "origin", "main", cwd=WORK)
        return self.git("--git-dir", str(BARE), "rev-parse", "refs/heads/main")

    @staticmethod
    def authorize(deploy_key: bool) -> None:
        """``restrict``: no shell, no forwarding, no pty; what a read-only deploy key is on a forge."""
        line = f"restrict {DEPLOY_KEY.with_suffix('.pub').read_text().strip()}\n" if deploy_key else ""
        AUTHORIZED_KEYS.write_text(line)
        AUTHORIZED_KEYS.chmod(0o644)

    @staticmethod
    def new_host_key(name: str) -> Path:
        key = SSHD_DIR / name
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)])
        return key


# -- the runbook ------------------------------------------------------------------------------------
def runbook_commands() -> str:
    """The shell block of step 4 of "Preparing the node", as written."""
    text = RUNBOOK.read_text()
    start = text.index(RUNBOOK_STEP)
    found = re.search(r"```sh\n(.*?)```", text[start:], re.DOTALL)
    if found is None:
        raise ScenarioError(f"no ```sh block after {RUNBOOK_STEP!r} in {RUNBOOK}")
    return textwrap.dedent(found.group(1))


def follow_runbook() -> str:
    script = runbook_commands().replace(RUNBOOK_HOST, HOST)
    run(["sh", "-e", "-c", script])
    return script


# -- the daemon's side ---------------------------------------------------------------------------------
class Events(logging.Handler):
    """The daemon's log events (what journald would get), kept as name and fields."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[dict[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", None)
        entry = {"event": record.getMessage()}
        if isinstance(fields, dict):
            entry.update({str(k): str(v) for k, v in fields.items() if v is not None})
        self.seen.append(entry)


def vms_loader(directory: Path) -> tuple[str, ...]:
    return tuple((directory / "vms.txt").read_text().split())


def cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = cli_main(list(args))
    return code, out.getvalue()


class Node:
    """The daemon as ``reconciler run`` builds it (its mirror, source, fetcher, control socket), driven one
    fetch and one pass at a time instead of by its threads; a fake engine stands in for the host."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal
        self.events = Events()
        logger = logging.getLogger(LOGGER_NAME)
        logger.addHandler(self.events)
        logger.setLevel(logging.INFO)
        config = DaemonConfig(node="erdbeere", repo=URL, state_dir=STATE, fetch_interval=3600,
                              drift_interval=3600, metrics_address=None, drbd_events=False, boot_fetch_timeout=0,
                              watch_local=False)
        self.daemon = Daemon(config, host=None, engine=FakeEngine(), loader=vms_loader)  # type: ignore[arg-type]
        self.daemon.source.mirror.fetch_timeout = FETCH_TIMEOUT
        self.daemon.control_server.start()

    def close(self) -> None:
        self.daemon.control_server.stop()

    def step(self) -> dict[str, Any]:
        """One fetch as the source makes it (its result or error), then the daemon's fetch, a pass, and what
        `reconciler status` and the log say afterwards."""
        mark = self.terminal.mark()
        events_before = len(self.events.seen)
        result: dict[str, Any] = {}
        started = time.monotonic()
        try:
            result["tip"] = self.daemon.source.mirror.fetch()
        except SourceError as exc:
            result["error_type"] = type(exc).__name__
            result["error"] = str(exc)
            result["stderr"] = getattr(exc, "stderr", "")
        except Exception as exc:  # judged by the test: anything but a SourceError is a bug
            result["error_type"] = type(exc).__name__
            result["error"] = str(exc)
            result["not_source_error"] = True
        result["seconds"] = round(time.monotonic() - started, 3)
        self.daemon.fetcher.fetch_once()
        self.daemon.run_one_pass(frozenset({"fetch"}))
        in_force = self.daemon.source.in_force
        result["in_force"] = in_force.info.sha if in_force is not None else None
        code, text = cli("status", "--json", "--state-dir", str(STATE))
        result["status_exit"] = code
        result["status"] = json.loads(text) if code in (0, 3) else text
        result["status_text"] = cli("status", "--state-dir", str(STATE))[1]
        result["events"] = self.events.seen[events_before:]
        result["tty"] = self.terminal.since(mark)
        return result


def prompting_client(terminal: Terminal) -> dict[str, Any]:
    """Plain ssh, without BatchMode, on the same terminal: shows that a prompt would be seen here."""
    mark = terminal.mark()
    argv = ["ssh", "-o", "BatchMode=no", "-o", "ConnectTimeout=15", f"git@{HOST}", "git-upload-pack", str(BARE)]
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as proc:
        prompted = terminal.wait_for(mark, "password:", timeout=COMMAND_TIMEOUT)
        proc.kill()
        proc.wait(timeout=10)
    return {"prompted": prompted, "tty": terminal.since(mark)}


# -- the scenario ------------------------------------------------------------------------------------
def scenario(sshd_binary: Path) -> dict[str, Any]:
    terminal = Terminal()
    server = Server(isolate())
    os.environ.pop("HOME", None)  # as under systemd without User=: ssh finds /root/.ssh from the password database
    out: dict[str, Any] = {"url": URL, "steps": {}, "heads": {}}
    sshd = Sshd(sshd_binary)
    first_key = server.new_host_key("host_ed25519_key")
    sshd.start(first_key)
    node: Node | None = None
    steps: dict[str, Any] = out["steps"]

    def attempt(name: str, action: Callable[[], dict[str, Any]]) -> None:
        try:
            steps[name] = action()
        except Exception:
            steps[name] = {"crash": traceback.format_exc()}

    try:
        out["heads"]["first"] = server.commit("first", "vm100\n")
        out["runbook"] = follow_runbook()
        out["known_hosts"] = KNOWN_HOSTS.read_text()
        server.authorize(True)
        node = Node(terminal)
        attempt("first", node.step)
        out["heads"]["second"] = server.commit("second", "vm100 vm101\n")
        attempt("second", node.step)
        # A newer commit waits on the server: a fetch that got through would bring it into force.
        out["heads"]["third"] = server.commit("third", "vm100 vm101 vm102\n")
        sshd.stop()
        sshd.start(server.new_host_key("host_ed25519_key.new"))
        attempt("changed_host_key", node.step)
        KNOWN_HOSTS.write_text("")
        attempt("unknown_host_key", node.step)
        KNOWN_HOSTS.write_text(run(["ssh-keyscan", "-t", "ed25519", "-p", "22", HOST]))
        server.authorize(False)
        attempt("deploy_key_removed", node.step)
        attempt("prompting_client", lambda: prompting_client(terminal))
        server.authorize(True)
        aside = DEPLOY_KEY.with_name(DEPLOY_KEY.name + ".aside")
        DEPLOY_KEY.rename(aside)
        attempt("deploy_key_missing_here", node.step)
        aside.rename(DEPLOY_KEY)
        attempt("deploy_key_restored", node.step)
    finally:
        if node is not None:
            node.close()
        sshd.stop()
        out["sshd_log"] = sshd.log
    return out


def namespaces() -> dict[str, int]:
    """The network and mount namespaces of this process, by inode."""
    return {kind: os.stat(f"/proc/self/ns/{kind}").st_ino for kind in ("net", "mnt")}


def main(argv: Sequence[str]) -> int:
    sshd_binary, out_file, outside = Path(argv[0]), Path(argv[1]), json.loads(argv[2])
    # What follows mounts over /run, /srv, /root and /etc/passwd: only ever in namespaces of its own.
    shared = [kind for kind, inode in namespaces().items() if outside.get(kind) == inode]
    if os.getpid() != 1 or shared:
        raise ScenarioError(f"refusing to run outside namespaces of its own (pid {os.getpid()}, shares {shared}); "
                            "test_git_over_ssh.py starts it under unshare")
    started = time.monotonic()
    result = scenario(sshd_binary)
    result["seconds"] = round(time.monotonic() - started, 3)
    out_file.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

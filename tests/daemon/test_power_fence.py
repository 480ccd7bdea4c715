"""Power fencing in the fence-peer handler: a peer that cannot be reached is exit 7 only after its fence
agent (real processes here, following fence-agents' status convention) powered it off and a status query
proved it off; otherwise exit 1, never 5."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from reconciler.backends.drbd.fence_handler import request_from_env
from reconciler.cli import cmd_fence
from reconciler.cli.main import main
from reconciler.daemon.peers.fence import stonith_peer
from reconciler.daemon.peers.powerfence import power_fence, read_records, record_path
from reconciler.desired.load import load_cluster
from reconciler.desired.schema import PowerFenceSection
from reconciler.host.base import CommandResult
from reconciler.host.real import RealHost
from tests.daemon.test_fence import FakeTime
from tests.desired.repo import CLUSTER, VM100

pytestmark = pytest.mark.timeout(60)

# A fence agent for tests: --state=FILE --action=off|status, and a MODE file beside STATE that makes it
# misbehave the ways real agents do.
AGENT = """\
import sys
from pathlib import Path
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
state = Path(args["state"])
mode = (state.parent / "MODE").read_text().strip() if (state.parent / "MODE").exists() else "normal"
with (state.parent / "CALLS").open("a") as calls:
    calls.write(args["action"] + "\\n")
if args["action"] == "off":
    if mode == "off-fails":
        print("Failed: Unable to obtain correct plug status or plug is not available", file=sys.stderr)
        sys.exit(1)
    if mode != "stays-on":
        state.write_text("OFF")
    print("Success: Powered OFF")
    sys.exit(0)
if mode == "unknown":
    print("Failed: Connection timed out", file=sys.stderr)
    sys.exit(1)
power = state.read_text() if state.exists() else "ON"
print("Status: " + power)
sys.exit(2 if power == "OFF" else 0)
"""


def _agent(tmp_path: Path, mode: str = "normal") -> tuple[Path, PowerFenceSection]:
    script = tmp_path / "fence_test"
    script.write_text(f"#!{sys.executable}\n{AGENT}")
    script.chmod(0o755)
    (tmp_path / "MODE").write_text(mode)
    state = f"--state={tmp_path / 'power'}"
    spec = PowerFenceSection(off=(str(script), state, "--action=off"),
                             status=(str(script), state, "--action=status"), timeout=5, delay=7)
    return script, spec


def _calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "CALLS"
    return path.read_text().split() if path.exists() else []


def test_off_is_verified_by_a_status_query_after_it(tmp_path: Path) -> None:
    _, spec = _agent(tmp_path)
    clock = FakeTime()
    record = power_fence(RealHost("erdbeere"), "himbeere", "vm100", spec, wait=clock.wait, clock=clock.clock)
    assert record.verified_off, record
    assert _calls(tmp_path) == ["off", "status"]
    assert "Status: OFF" in record.detail
    assert (record.peer, record.by, record.resource) == ("himbeere", "erdbeere", "vm100")


def test_a_failed_off_still_counts_when_the_status_proves_the_node_off(tmp_path: Path) -> None:
    _, spec = _agent(tmp_path, "off-fails")
    (tmp_path / "power").write_text("OFF")  # already off (the agent's off failed for its own reasons)
    clock = FakeTime()
    record = power_fence(RealHost("erdbeere"), "himbeere", "vm100", spec, wait=clock.wait, clock=clock.clock)
    assert record.verified_off
    assert "off exited 1" in record.detail


@pytest.mark.parametrize(("mode", "said"), [("stays-on", "still on"), ("unknown", "unknown")])
def test_a_node_not_proven_off_within_the_timeout_is_a_failed_fence(tmp_path: Path, mode: str, said: str) -> None:
    _, spec = _agent(tmp_path, mode)
    clock = FakeTime()
    record = power_fence(RealHost("erdbeere"), "himbeere", "vm100", spec, wait=clock.wait, clock=clock.clock)
    assert not record.verified_off
    assert said in record.detail
    assert _calls(tmp_path)[0] == "off"
    assert _calls(tmp_path).count("status") >= 4  # asked again every second until the timeout
    assert clock.now <= spec.timeout


# --- the handler's decision -----------------------------------------------------------------------------


class Node(RealHost):
    """The real command runner for fence agents; DRBD's view of the local disk and role comes from a
    /proc/drbd as DRBD 8.4 prints it (minor 0 is vm100's in the test cluster)."""

    def __init__(self, role: str = "Primary", disk: str = "UpToDate") -> None:
        super().__init__("erdbeere")
        self.proc_drbd = ("version: 8.4.11 (api:1/proto:86-101)\nsrcversion: 0\n"
                          f" 0: cs:WFConnection ro:{role}/Unknown ds:{disk}/DUnknown C r-----\n"
                          "    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0\n")
        self.ran: list[tuple[str, ...]] = []

    def read_file(self, path: str) -> str | None:
        return self.proc_drbd if path == "/proc/drbd" else super().read_file(path)

    def run(self, argv: Sequence[str], *, timeout: float = 30.0, stdin: str | None = None) -> CommandResult:
        self.ran.append(tuple(argv))
        return super().run(argv, timeout=timeout, stdin=stdin)


def _cluster(tmp_path: Path, spec: PowerFenceSection | None, policy: str = "resource-and-stonith") -> Path:
    root = tmp_path / "desired"
    (root / "vms").mkdir(parents=True)
    text = CLUSTER.replace("fencing_policy: resource-and-stonith", f"fencing_policy: {policy}")
    if spec is not None:
        lines = ["    power_fence:",
                 "      off: [" + ", ".join(spec.off) + "]",
                 "      status: [" + ", ".join(spec.status) + "]",
                 f"      timeout: {spec.timeout}", f"      delay: {spec.delay}"]
        text = text.replace("    address: 192.168.2.2\n", "    address: 192.168.2.2\n" + "\n".join(lines) + "\n")
    (root / "cluster.yaml").write_text(text)
    (root / "vms" / "vm100.yaml").write_text(VM100)
    return root


def test_the_node_running_the_vm_fences_at_once_and_answers_7(tmp_path: Path) -> None:
    _, spec = _agent(tmp_path)
    cluster = load_cluster(str(_cluster(tmp_path, spec)))
    state = tmp_path / "state"
    clock = FakeTime()
    node = Node("Primary")
    result = stonith_peer(node, cluster, "vm100", "himbeere", state, wait=clock.wait)
    assert result.verdict == "stonithed", result
    assert clock.waits == []
    # Inside `drbdsetup primary` DRBD's netlink is taken: nothing of DRBD is asked, only the fence agent runs.
    assert {Path(argv[0]).name for argv in node.ran} == {"fence_test"}
    records = read_records(state)
    assert [(r.peer, r.outcome, r.by) for r in records] == [("himbeere", "off", "erdbeere")]
    assert record_path(state, "himbeere").stat().st_mode & stat.S_IROTH == 0


def test_a_node_not_running_the_vm_waits_twice_the_delay_first(tmp_path: Path) -> None:
    _, spec = _agent(tmp_path)
    cluster = load_cluster(str(_cluster(tmp_path, spec)))
    clock = FakeTime()
    result = stonith_peer(Node("Secondary"), cluster, "vm100", "himbeere", tmp_path / "state", wait=clock.wait)
    assert result.verdict == "stonithed"
    assert clock.waits == [14.0]


def test_both_sides_stagger_by_the_larger_delay(tmp_path: Path) -> None:
    # erdbeere's own fence has a longer delay than himbeere's: a standby erdbeere must still wait longer than
    # a Primary himbeere would (2 x 20 s, not 2 x 7 s).
    _, spec = _agent(tmp_path)
    root = _cluster(tmp_path, spec)
    text = (root / "cluster.yaml").read_text()
    own = ["    power_fence:", "      off: [" + ", ".join(spec.off) + "]",
           "      status: [" + ", ".join(spec.status) + "]", "      delay: 20"]
    (root / "cluster.yaml").write_text(text.replace("    address: 192.168.2.1\n",
                                                    "    address: 192.168.2.1\n" + "\n".join(own) + "\n"))
    clock = FakeTime()
    result = stonith_peer(Node("Secondary"), load_cluster(str(root)), "vm100", "himbeere", tmp_path / "state",
                          wait=clock.wait)
    assert result.verdict == "stonithed"
    assert clock.waits == [40.0]


@pytest.mark.parametrize(("primary", "first", "wait"), [
    (True, True, 0.0), (True, False, 7.0), (False, True, 14.0), (False, False, 14.0)])
def test_when_both_links_fail_exactly_one_node_fences(primary: bool, first: bool, wait: float) -> None:
    from reconciler.daemon.peers.fence import fence_wait

    assert fence_wait(7, primary=primary, first=first) == wait
    # Both Primary (each for VMs of its own): the node that sorts first fences 7 s before the other could.
    assert fence_wait(7, primary=True, first=True) < fence_wait(7, primary=True, first=False)
    # The node running the VM always fences before a node that is not Primary.
    assert max(fence_wait(7, primary=True, first=f) for f in (True, False)) < fence_wait(7, primary=False,
                                                                                        first=True)


def test_a_failed_fence_is_exit_1_and_recorded(tmp_path: Path) -> None:
    _, spec = _agent(tmp_path, "unknown")
    spec = spec.model_copy(update={"timeout": 1})  # one status query, on the real clock
    cluster = load_cluster(str(_cluster(tmp_path, spec)))
    state = tmp_path / "state"
    result = stonith_peer(Node("Primary"), cluster, "vm100", "himbeere", state)
    assert result.verdict == "not-fenced"
    assert "did not prove it off" in result.message
    assert [r.outcome for r in read_records(state)] == ["failed"]


@pytest.mark.parametrize(("policy", "with_fence", "disk", "why"), [
    ("resource-only", True, "UpToDate", "without resource-and-stonith"),
    ("resource-and-stonith", False, "UpToDate", "names no power_fence"),
    ("resource-and-stonith", True, "Consistent", "not UpToDate"),
])
def test_without_every_condition_nothing_is_powered_off_and_the_answer_is_1(
        tmp_path: Path, policy: str, with_fence: bool, disk: str, why: str) -> None:
    _, spec = _agent(tmp_path)
    cluster = load_cluster(str(_cluster(tmp_path, spec if with_fence else None, policy)))
    node = Node("Secondary", disk)
    result = stonith_peer(node, cluster, "vm100", "himbeere", tmp_path / "state", wait=lambda _s: None)
    assert result.verdict == "not-fenced"
    assert why in result.message
    assert _calls(tmp_path) == []
    assert read_records(tmp_path / "state") == []


def test_drbd_9_never_powers_off_because_its_own_state_cannot_be_read_safely(tmp_path: Path) -> None:
    from reconciler.daemon.peers.fence import local_view

    # DRBD 9's /proc/drbd lists no minors, and UP_TO_DATE_NODES always carries this node's own bit for
    # fence-peer whatever its disk: neither proves the local disk UpToDate.
    node = Node()
    node.proc_drbd = "version: 9.2.12 (api:2/proto:86-122)\n"
    assert local_view(node, 0) == ("Unknown", "Unknown")
    _, spec = _agent(tmp_path)
    cluster = load_cluster(str(_cluster(tmp_path, spec)))
    result = stonith_peer(node, cluster, "vm100", "himbeere", tmp_path / "state", wait=lambda _s: None,
                          request=request_from_env({"UP_TO_DATE_NODES": "0x3", "DRBD_MY_NODE_ID": "0"}))
    assert result.verdict == "not-fenced"
    assert _calls(tmp_path) == []
    assert local_view(Node("Secondary", "Consistent"), 0) == ("Secondary", "Consistent")
    assert local_view(Node(), 7) == ("Unknown", "Unknown")  # another minor


@pytest.mark.parametrize(("env", "said"), [
    ({"DRBD_MINOR": "3"}, "minor(s) [3]"),
    ({"DRBD_PEERS": "kiwi"}, "DRBD lost kiwi"),
    ({"DRBD_PEER_NODE_ID": "0"}, "DRBD lost erdbeere"),
])
def test_a_peer_or_minor_other_than_drbds_is_never_switched_off(tmp_path: Path, env: dict[str, str],
                                                               said: str) -> None:
    _, spec = _agent(tmp_path)
    cluster = load_cluster(str(_cluster(tmp_path, spec)))
    result = stonith_peer(Node(), cluster, "vm100", "himbeere", tmp_path / "state", wait=lambda _s: None,
                          request=request_from_env({**env, "DRBD_RESOURCE": "vm100"}))
    assert result.verdict == "not-fenced"
    assert said in result.message
    assert _calls(tmp_path) == []
    matching = {"DRBD_MINOR": "0", "DRBD_PEERS": "himbeere"}
    assert stonith_peer(Node(), cluster, "vm100", "himbeere", tmp_path / "state", wait=lambda _s: None,
                        request=request_from_env({**matching, "DRBD_RESOURCE": "vm100"})).verdict == "stonithed"


def test_exit_2_without_status_off_is_no_proof(tmp_path: Path) -> None:
    # fence-agents (and argparse) exit 2 on bad arguments too.
    script = tmp_path / "fence_usage"
    script.write_text(f"#!{sys.executable}\nimport sys\nprint('usage: fence_x [--action=...]', file=sys.stderr)\n"
                      "sys.exit(2)\n")
    script.chmod(0o755)
    spec = PowerFenceSection(off=(str(script), "--action=off"), status=(str(script), "--action=status"), timeout=2)
    clock = FakeTime()
    record = power_fence(RealHost("erdbeere"), "himbeere", "vm100", spec, wait=clock.wait, clock=clock.clock)
    assert not record.verified_off
    assert "unknown" in record.detail


def test_a_node_that_does_not_hold_the_resource_is_never_switched_off(tmp_path: Path) -> None:
    _, spec = _agent(tmp_path)
    cluster = load_cluster(str(_cluster(tmp_path, spec)))
    for wrong in ("erdbeere", "kiwi"):  # this node itself, a node the cluster does not have
        result = stonith_peer(Node(), cluster, "vm100", wrong, tmp_path / "state", wait=lambda _s: None)
        assert result.verdict == "not-fenced"
        assert "not the other host" in result.message
    assert _calls(tmp_path) == []


def test_records_that_are_not_ours_are_never_trusted(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "power-fence"
    directory.mkdir(parents=True)
    (directory / "himbeere.json").write_text('{"peer": "kiwi", "by": "x", "resource": "vm100", "outcome": "off",'
                                             ' "started": 1, "finished": 2, "detail": ""}')
    (directory / "kiwi.json").write_text("not json")
    (directory / "..json").write_text("{}")
    assert read_records(tmp_path / "state") == []


# --- the handler as DRBD runs it --------------------------------------------------------------------------


def test_an_unreachable_peer_without_a_revision_is_exit_1_never_5(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = tmp_path / "peer.key"
    token.write_bytes(b"0123456789abcdef-fence-test\n")
    token.chmod(0o600)
    monkeypatch.setenv("DRBD_RESOURCE", "vm100")
    monkeypatch.setattr("reconciler.daemon.peers.fence.UNREACHABLE_GRACE", 0.0)
    code = main(["fence-peer", "--env-file", str(tmp_path / "absent.env"), "--node", "erdbeere",
                 "--state-dir", str(tmp_path / "state"), "--peer", f"himbeere=127.0.0.1:{port}",
                 "--peer-token-file", str(token), "--timeout", "2"])
    assert code == 1
    err = capsys.readouterr().err
    assert "unreachable" in err
    assert "no revision in force" in err



@pytest.mark.timeout(60)
def test_a_handler_stopped_by_a_signal_kills_the_agent_it_started_and_answers_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fence agent runs in a session of its own; a handler killed outright would leave it powering off on
    # its own. SIGTERM instead unwinds through the command runner, which kills the agent's whole session.
    pid_file = tmp_path / "agent.pid"
    agent = ("import subprocess, sys, time; "
             "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
             f"open({str(pid_file)!r}, 'w').write(str(child.pid)); time.sleep(60)")

    def fencing(args: object, env: object) -> int:
        RealHost().run([sys.executable, "-c", agent], timeout=50.0)
        return 7  # not reached: the signal arrives while the agent runs

    def send_term() -> None:
        deadline = time.monotonic() + 30
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # polls for the agent's pid file, the condition the signal needs
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(cmd_fence, "fence_peer", fencing)
    monkeypatch.setenv("DRBD_RESOURCE", "vm100")
    before = signal.getsignal(signal.SIGTERM)
    sender = threading.Thread(target=send_term)
    sender.start()
    try:
        code = cmd_fence._fence_peer(argparse.Namespace(env_file=str(tmp_path / "absent.env"), state_dir=None))
    finally:
        sender.join(timeout=40)
    assert code == 1
    assert signal.getsignal(signal.SIGTERM) == before
    stat = Path(f"/proc/{int(pid_file.read_text())}/stat")

    def gone() -> bool:
        # Gone, or a zombie for init to reap; SIGKILL takes effect when the process is next scheduled.
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    deadline = time.monotonic() + 20
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.05)  # polls the condition itself
    assert gone(), "the fence agent's child outlived the handler"


def test_a_fence_stopped_after_its_off_command_is_recorded_as_failed(tmp_path: Path) -> None:
    class StoppedAfterOff(Node):
        def run(self, argv: Sequence[str], *, timeout: float = 30.0, stdin: str | None = None) -> CommandResult:
            result = super().run(argv, timeout=timeout, stdin=stdin)
            if "--action=status" in argv:
                raise cmd_fence.Terminated("SIGTERM")  # the handler stopped while it checked the off state
            return result

    _, spec = _agent(tmp_path)
    cluster = load_cluster(str(_cluster(tmp_path, spec)))
    state = tmp_path / "state"
    with pytest.raises(cmd_fence.Terminated):
        stonith_peer(StoppedAfterOff("Primary"), cluster, "vm100", "himbeere", state, wait=FakeTime().wait)
    (record,) = read_records(state)
    assert (record.peer, record.outcome) == ("himbeere", "failed")
    assert "interrupted (Terminated SIGTERM)" in record.detail

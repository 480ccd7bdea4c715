from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from reconciler.host.base import HostFileError
from reconciler.host.real import RealHost


def test_run_captures_output_and_exit_code() -> None:
    host = RealHost("n1")
    result = host.run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"])
    assert (result.returncode, result.stdout, result.stderr.strip()) == (3, "out\n", "err")
    assert not result.ok
    assert "exit 3" in result.describe()


def test_run_never_uses_a_shell() -> None:
    result = RealHost().run(["echo", "$(id)", ";", "true"])
    assert result.stdout == "$(id) ; true\n"


def test_timeout_is_reported_not_raised() -> None:
    result = RealHost().run([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.3)
    assert result.timed_out
    assert result.returncode == 124
    assert result.duration_s < 3


def test_a_timeout_kills_what_the_command_started_too(tmp_path: Path) -> None:
    # Like `drbdadm` running `drbdmeta`: the child (it holds a lock in real life) must not outlive the timeout.
    pid_file = tmp_path / "grandchild.pid"
    parent = ("import subprocess, sys, time; "
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
              f"open({str(pid_file)!r}, 'w').write(str(child.pid)); time.sleep(60)")
    # Long enough for two interpreters to start on a loaded machine: the grandchild must exist to be killed.
    result = RealHost().run([sys.executable, "-c", parent], timeout=8.0)
    assert result.timed_out
    assert pid_file.exists(), "the command timed out before it started its child: nothing was tested"
    assert result.duration_s < 25
    stat = Path(f"/proc/{int(pid_file.read_text())}/stat")

    def ended() -> bool:
        # Gone, or a zombie waiting for init to reap it (its parent was killed with it): not running either way.
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    # SIGKILL is sent at the timeout; on a starved CPU the process may still show running until it is
    # scheduled to die, so the check waits (bounded) for the end the kill makes.
    deadline = time.monotonic() + 15.0
    while not ended() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ended(), f"the command's child is still running after its timeout: {stat.read_text()}"


def test_a_command_runs_in_a_session_of_its_own() -> None:
    result = RealHost().run([sys.executable, "-c", "import os; print(os.getsid(0) == os.getpid())"])
    assert result.stdout.strip() == "True"


def test_missing_program_is_reported() -> None:
    result = RealHost().run(["/nonexistent/program-xyz"])
    assert result.not_found
    assert result.returncode == 127


def test_stdin_is_passed() -> None:
    result = RealHost().run(["cat"], stdin="table line\n")
    assert result.stdout == "table line\n"


def test_env_is_added() -> None:
    result = RealHost(env={"RECONCILER_TEST_VAR": "x1"}).run(
        [sys.executable, "-c", "import os; print(os.environ['RECONCILER_TEST_VAR'])"]
    )
    assert result.stdout.strip() == "x1"


def test_write_is_atomic_and_replaces(tmp_path: Path) -> None:
    host = RealHost()
    target = tmp_path / "etc" / "drbd.d" / "vm100.res"
    host.write_file(str(target), "one\n")
    host.write_file(str(target), "two\n", mode=0o600)
    assert host.read_file(str(target)) == "two\n"
    assert (target.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["vm100.res"]


def test_write_refuses_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "vm100.cfg"
    link.symlink_to(victim)
    with pytest.raises(HostFileError, match="not a regular file"):
        RealHost().write_file(str(link), "evil")
    assert victim.read_text() == "precious"


def test_reading_a_directory_is_a_host_file_error(tmp_path: Path) -> None:
    # /etc/xen/scripts among the domain configs: the import skips it rather than crash (seen in the lab).
    with pytest.raises(HostFileError, match="Is a directory"):
        RealHost().read_file(str(tmp_path))


def test_read_does_not_follow_symlinks(tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.write_text("x")
    link = tmp_path / "l"
    link.symlink_to(target)
    with pytest.raises(HostFileError):
        RealHost().read_file(str(link))
    assert RealHost().read_file(str(tmp_path / "missing")) is None


def test_list_and_remove(tmp_path: Path) -> None:
    host = RealHost()
    (tmp_path / "b").write_text("")
    (tmp_path / "a").write_text("")
    assert host.list_dir(str(tmp_path)) == ("a", "b")
    host.remove_file(str(tmp_path / "a"))
    host.remove_file(str(tmp_path / "a"))
    assert os.listdir(tmp_path) == ["b"]
    assert host.list_dir(str(tmp_path / "nope")) == ()


def test_command_log_records_every_command_with_its_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    log = tmp_path / "commands.jsonl"
    monkeypatch.setenv("RECONCILER_COMMAND_LOG", str(log))
    host = RealHost("n1")
    host.run(["true"])
    host.run([sys.executable, "-c", "raise SystemExit(4)"])
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["argv"][0], e["rc"]) for e in entries] == [("true", 0), (sys.executable, 4)]


def test_no_command_log_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_COMMAND_LOG", raising=False)
    monkeypatch.chdir(tmp_path)
    RealHost("n1").run(["true"])
    assert list(tmp_path.iterdir()) == []


def test_the_mounts_file_the_executor_reads_is_readable_on_a_real_host() -> None:
    # Found on real kernels: /proc/mounts is a symlink and the real host never follows one (O_NOFOLLOW),
    # so every start-domain precheck crashed the pass until the last look read /proc/self/mounts.
    from reconciler.apply.lastlook import MOUNTS_FILE

    with pytest.raises(HostFileError):
        RealHost().read_file("/proc/mounts")
    text = RealHost().read_file(MOUNTS_FILE)
    assert text is not None
    assert any(line.split()[1] == "/" for line in text.splitlines())

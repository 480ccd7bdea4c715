"""`reconciler run` refuses to start with the reason: wrong node name, no peer secret, bad options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.daemon.node.identity import IdentityError, boot_time, check_node_name


def test_node_must_match_uname() -> None:
    check_node_name(os.uname().nodename)
    with pytest.raises(IdentityError, match=r"does not match this host's name .* \(uname -n\)"):
        check_node_name("not-" + os.uname().nodename)


def test_sim_node_must_exist() -> None:
    check_node_name("erdbeere", sim_nodes=("erdbeere", "himbeere"))
    with pytest.raises(IdentityError, match="not a node of the simulated cluster"):
        check_node_name("brombeere", sim_nodes=("erdbeere", "himbeere"))


def test_boot_time_from_proc_stat(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n")
    assert boot_time(stat) == 1700000000.0
    assert boot_time(tmp_path / "missing") is None


def run(tmp_path: Path, *extra: str) -> int:
    return main(["run", "--repo", str(tmp_path / "repo"), "--state-dir", str(tmp_path / "state"),
                 "--metrics-address", "none", *extra])


def test_run_refuses_a_foreign_node_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "--node", "not-this-host", "--peer-auth", "none") == 2
    err = capsys.readouterr().err
    assert "refusing to start" in err
    assert "uname -n" in err


def test_run_needs_the_peer_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "--peer-token-file", str(tmp_path / "absent.key")) == 2
    assert "cannot read the peer token file" in capsys.readouterr().err
    short = tmp_path / "short.key"
    short.write_text("abc\n")
    short.chmod(0o600)
    assert run(tmp_path, "--peer-token-file", str(short)) == 2
    assert "too short" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (("--branch", "../x"), "not an acceptable branch"),
    (("--path", "../etc"), "not an acceptable path"),
    (("--allow-non-descendant", "HEAD"), "not a full commit id"),
    (("--peer", "himbeere"), "expected NODE=HOST:PORT"),
])
def test_run_rejects_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
                                 message: str) -> None:
    assert run(tmp_path, "--peer-auth", "none", *args) == 2
    assert message in capsys.readouterr().err


def test_run_without_a_repository_says_so(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_REPO", raising=False)
    assert main(["run", "--peer-auth", "none", "--metrics-address", "none"]) == 2
    assert "no repository" in capsys.readouterr().err


def test_one_daemon_per_state_directory(tmp_path: Path) -> None:
    from reconciler.daemon.node.statelock import AlreadyRunning, StateLock

    first = StateLock(tmp_path)
    first.acquire()
    with pytest.raises(AlreadyRunning, match=rf"pid {os.getpid()}"):
        StateLock(tmp_path).acquire()
    first.release()
    again = StateLock(tmp_path)
    again.acquire()
    again.release()


def test_run_refuses_a_local_repository_that_is_not_there(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from reconciler.sim.state import SimCluster

    sim = tmp_path / "sim"
    SimCluster.init(sim, ["erdbeere"], {"vg-sda": 400 << 30})
    common = ("--sim", str(sim), "--node", "erdbeere", "--peer-auth", "none")
    assert run(tmp_path, *common) == 2
    assert f"--repo {tmp_path / 'repo'}: no such directory" in capsys.readouterr().err
    (tmp_path / "repo").mkdir()
    assert run(tmp_path, *common) == 2
    assert "not a git repository" in capsys.readouterr().err
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir())


def test_run_reports_an_unreadable_basic_auth_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "--peer-auth", "none", "--metrics-basic-auth-file", str(tmp_path / "absent")) == 2
    assert "cannot read the metrics basic-auth file" in capsys.readouterr().err

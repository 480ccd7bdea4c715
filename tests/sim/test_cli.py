"""`reconciler sim ...`: init, show, faults, time, the oracle's verdict, exec and the PATH wrappers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.sim.state import SimCluster


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_init_defaults_to_two_nodes_with_three_400g_vgs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "sim", "init", str(tmp_path / "c"))
    assert code == 0
    assert "nodes erdbeere, himbeere" in out
    state = SimCluster(tmp_path / "c").read()
    assert sorted(state["nodes"]) == ["erdbeere", "himbeere"]
    vgs = state["nodes"]["erdbeere"]["vgs"]
    assert sorted(vgs) == ["vg-sda", "vg-sdb", "vg-sdc"]
    assert vgs["vg-sdb"]["pvs"][0]["dev_size"] == 400 * 1024**3
    again, _, err = _run(capsys, "sim", "init", str(tmp_path / "c"))
    assert again == 2
    assert "--force" in err


def test_init_with_options_and_bad_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = _run(capsys, "sim", "init", str(tmp_path / "c"), "--nodes", "a,b,c", "--vg", "vg-x:10G",
                      "--drbd", "8.4")
    assert code == 0
    state = SimCluster(tmp_path / "c").read()
    assert state["nodes"]["c"]["drbd_version"] == "8.4"
    assert list(state["nodes"]["a"]["vgs"]) == ["vg-x"]
    code, _, _ = _run(capsys, "sim", "init", str(tmp_path / "f"), "--nodes", "a,b", "--address", "b=10.1.2.3")
    assert code == 0
    assert [n["address"] for n in SimCluster(tmp_path / "f").read()["nodes"].values()] == ["192.168.2.1", "10.1.2.3"]
    code, _, err = _run(capsys, "sim", "init", str(tmp_path / "g"), "--nodes", "a", "--address", "z=10.1.2.3")
    assert code == 2
    assert "expected NODE=IP" in err
    bad, _, err = _run(capsys, "sim", "init", str(tmp_path / "d"), "--nodes", "a;rm")
    assert bad == 2
    assert "not a safe name" in err
    size, _, err = _run(capsys, "sim", "init", str(tmp_path / "e"), "--vg", "vg-x:lots")
    assert size == 2
    assert "is not a size" in err
    small, _, err = _run(capsys, "sim", "init", str(tmp_path / "h"), "--memory", "1K")
    assert small == 2
    assert "a node needs more than dom0's 4GiB" in err


def test_exec_show_fault_clear_and_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = str(tmp_path / "c")
    _run(capsys, "sim", "init", directory)
    code, out, _ = _run(capsys, "sim", "exec", directory, "erdbeere", "--", "lvcreate", "-L", "1G", "-n", "root100",
                        "vg-sda")
    assert (code, out) == (0, '  Logical volume "root100" created.\n')
    code, _, err = _run(capsys, "sim", "fault", directory, "transient", "--node", "erdbeere", "--match",
                        "lvs", "--count", "1")
    assert code == 0
    code, _, err = _run(capsys, "sim", "exec", directory, "erdbeere", "--", "lvs")
    assert code == 5
    assert "Resource temporarily unavailable" in err
    _, shown, _ = _run(capsys, "sim", "show", directory)
    assert "vg-sda: 409596MiB, 408572MiB free; root100" in shown
    assert "fault #1: transient on erdbeere: lvs, 0 left (fired 1)" in shown
    _run(capsys, "sim", "fault", directory, "partition", "erdbeere", "himbeere")
    _run(capsys, "sim", "clear", directory)
    state = json.loads(_run(capsys, "sim", "show", directory, "--json")[1])
    assert (state["faults"], state["network"]["cut"]) == ([], [])
    _, log, _ = _run(capsys, "sim", "log", directory, "--mutating")
    assert log.splitlines() == ["     0.0 * erdbeere: lvcreate -L 1G -n root100 vg-sda -> 0"]


def test_crash_boot_disk_fail_and_advance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = str(tmp_path / "c")
    _run(capsys, "sim", "init", directory)
    _run(capsys, "sim", "exec", directory, "himbeere", "--", "lvcreate", "-L", "1G", "-n", "root100", "vg-sda")
    assert _run(capsys, "sim", "fault", directory, "crash", "himbeere")[0] == 0
    code, _, err = _run(capsys, "sim", "exec", directory, "himbeere", "--", "lvs")
    assert code == 255
    assert "node is down" in err
    assert "DOWN" in _run(capsys, "sim", "show", directory)[1]
    assert _run(capsys, "sim", "fault", directory, "boot", "himbeere")[0] == 0
    code, out, _ = _run(capsys, "sim", "fault", directory, "disk-fail", "himbeere", "vg-sda/root100")
    assert code == 0
    assert "failed (lv:" in out
    missing, _, err = _run(capsys, "sim", "fault", directory, "disk-fail", "himbeere", "vg-sda/nope")
    assert missing == 2
    assert "no device /dev/vg-sda/nope" in err
    assert _run(capsys, "sim", "advance", directory, "12.5")[1] == "time 12.5s\n"


def test_check_reports_the_oracle_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = str(tmp_path / "c")
    _run(capsys, "sim", "init", directory)
    code, out, _ = _run(capsys, "sim", "check", directory)
    assert code == 0
    assert out.startswith("ok: no violation")
    with SimCluster(directory).transaction() as state:
        for node in ("erdbeere", "himbeere"):
            state["nodes"][node]["domains"]["vm100"] = {"domid": 1, "memory": 512, "maxmem": 512, "vcpus": 1,
                                                        "maxvcpus": 1, "disks": [], "vifs": [], "uuid": "u",
                                                        "state": "running", "started": 0.0}
    code, out, _ = _run(capsys, "sim", "check", directory, "--json")
    verdict = json.loads(out)
    assert code == 1
    assert verdict["ok"] is False
    assert any("vm100" in v for v in verdict["violations"])


def test_missing_cluster_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "sim", "show", str(tmp_path / "none"))
    assert code == 2
    assert "no simulated cluster" in err


def test_a_desired_state_directory_is_not_taken_for_a_cluster(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    desired = tmp_path / "desired-state"
    desired.mkdir()
    (desired / "cluster.yaml").write_text("nodes: {}\n")
    for argv in (("sim", "show", str(desired)), ("sim", "advance", str(desired), "5"),
                 ("observe", "--sim", str(desired), "--node", "erdbeere"), ("sim", "init", str(desired))):
        code, _, err = _run(capsys, *argv)
        assert code == 2, argv
        assert str(desired) in err, (argv, err)
        assert "sim init" in err or "not empty" in err, (argv, err)
    assert sorted(p.name for p in desired.iterdir()) == ["cluster.yaml"]


def test_shims_put_the_simulated_tools_on_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = str(tmp_path / "c")
    _run(capsys, "sim", "init", directory, "--nodes", "erdbeere")
    code, out, _ = _run(capsys, "sim", "shims", directory, "erdbeere", str(tmp_path / "bin"))
    assert code == 0
    assert "export PATH=" in out
    for program in ("lvs", "lvcreate", "dmsetup", "blkid", "mkfs.xfs", "xl", "drbdadm"):
        assert os.access(tmp_path / "bin" / program, os.X_OK), program
    for program in ("git", "ssh", "true", "uname"):
        assert not (tmp_path / "bin" / program).exists(), f"{program} would shadow the user's own"
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    created = subprocess.run(["lvcreate", "-L", "1G", "-n", "root100", "vg-sda"], env=env, capture_output=True,
                             text=True, timeout=60, check=False)
    assert (created.returncode, created.stdout) == (0, '  Logical volume "root100" created.\n')
    table = subprocess.run(["dmsetup", "create", "root100"], input="0 2097152 linear /dev/vg-sda/root100 0\n",
                           env=env, capture_output=True, text=True, timeout=60, check=False)
    assert table.returncode == 0, table.stderr
    listed = subprocess.run(["dmsetup", "table", "root100"], env=env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert listed.stdout == "0 2097152 linear 253:0 0\n"
    failing = subprocess.run(["lvs", "vg-nope"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert failing.returncode == 5
    assert 'Volume group "vg-nope" not found' in failing.stderr


def test_python_module_entry_point_runs_exec(tmp_path: Path) -> None:
    directory = str(tmp_path / "c")
    assert main(["sim", "init", directory, "--nodes", "erdbeere"]) == 0
    result = subprocess.run([sys.executable, "-m", "reconciler", "sim", "exec", directory, "erdbeere", "--", "xl",
                             "list"], capture_output=True, text=True, timeout=60, check=False,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0
    assert result.stdout.startswith("Name ")


def test_fault_remove_heal_and_zombie(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = str(tmp_path / "c")
    _run(capsys, "sim", "init", directory)
    _run(capsys, "sim", "fault", directory, "permanent", "--match", "xl create")
    assert _run(capsys, "sim", "fault", directory, "remove", "1")[0] == 0
    code, _, err = _run(capsys, "sim", "fault", directory, "remove", "1")
    assert code == 2
    assert "no fault #1" in err
    _run(capsys, "sim", "fault", directory, "partition", "erdbeere", "himbeere")
    code, _, err = _run(capsys, "sim", "fault", directory, "heal", "erdbeere")
    assert code == 2
    assert "two nodes or none" in err
    assert _run(capsys, "sim", "fault", directory, "heal", "himbeere", "erdbeere")[0] == 0
    assert SimCluster(directory).read()["network"]["cut"] == []
    code, _, err = _run(capsys, "sim", "fault", directory, "zombie", "erdbeere", "vm100")
    assert code == 2
    assert "no domain vm100 runs on erdbeere" in err
    code, _, err = _run(capsys, "sim", "fault", directory, "transient", "--match", "lvs")
    assert code == 2
    assert "--count N or --rate R" in err


@pytest.mark.parametrize("seconds", ["nan", "inf", "NaN", "1e999"])
def test_advance_refuses_time_that_is_not_a_finite_forward_step(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 seconds: str) -> None:
    _run(capsys, "sim", "init", str(tmp_path / "c"))
    code, _, err = _run(capsys, "sim", "advance", str(tmp_path / "c"), seconds)
    assert code == 2
    assert "finite number of seconds" in err
    assert SimCluster(tmp_path / "c").read()["time"] == 0.0


def test_fault_verify_finds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = str(tmp_path / "c")
    _run(capsys, "sim", "init", directory)
    code, out, _ = _run(capsys, "sim", "fault", directory, "verify-finds", "erdbeere", "4M")
    assert code == 0
    assert "finds 4096 KiB out of sync" in out
    assert SimCluster(directory).read()["nodes"]["erdbeere"]["drbd"]["settings"]["verify_finds_kib"] == 4096
    code, _, err = _run(capsys, "sim", "fault", directory, "verify-finds", "erdbeere", "lots")
    assert code == 2
    assert "not a size" in err

"""`reconciler plan` and `reconciler apply` on a simulated cluster: output, JSON and exit codes."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from reconciler.cli.main import main
from tests.apply.simlab import SimLab, edit_vm, init_cluster
from tests.conftest import EXAMPLE_DIR


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    init_cluster(tmp_path / "sim")
    return tmp_path / "sim"


def test_plan_shows_changes_and_exits_2(fresh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "plan", "--sim", str(fresh), "--node", "erdbeere", str(EXAMPLE_DIR))
    assert code == 2
    assert "+ create-lv" in out
    assert "$ lvcreate --yes --wipesignatures y --zero y --addtag reconciler -L 107374182400b -n root100 vg-sda" in out
    assert "= promote" in out
    assert SimLab(fresh).log()[-1]["mutating"] is False  # planning never changes the node
    assert not any(e["mutating"] for e in SimLab(fresh).log())


def test_plan_json(fresh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "plan", "--json", "--sim", str(fresh), "--node", "himbeere", str(EXAMPLE_DIR))
    assert code == 2
    doc = json.loads(out)
    assert doc["node"] == "himbeere"
    kinds = [a["kind"] for a in doc["actions"]]
    assert "create-md" in kinds
    up = next(a for a in doc["actions"] if a["kind"] == "drbd-up" and a["resource"] == "drbd:vm100")
    assert up["argv"] == [["drbdadm", "up", "vm100"]]
    assert "create-md@drbd:vm100" in up["depends_on"]
    assert up["refused"] is None


def test_apply_until_converged_then_plan_exits_0(converged_lab: SimLab, capsys: pytest.CaptureFixture[str]) -> None:
    sim = str(converged_lab.directory)
    code, out, _ = run_cli(capsys, "plan", "--sim", sim, "--node", "erdbeere", str(EXAMPLE_DIR))
    assert code == 0
    assert "no changes" in out
    code, out, _ = run_cli(capsys, "apply", "--sim", sim, "--node", "erdbeere", str(EXAMPLE_DIR))
    assert code == 0
    assert "erdbeere: converged" in out


def test_plan_on_a_simulated_node_hears_no_peer_as_on_a_real_one(converged_lab: SimLab,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A one-shot plan has no peer status: a resize waits for the peer's size, and nothing runs on the peer."""
    edit_vm(converged_lab, "vm100", r"^  size: 100G", "  size: 120G")
    grown = converged_lab.apply("erdbeere")  # erdbeere's LVs grow; its DRBD resize waits for himbeere's
    assert any(a.kind == "drbd-resize" and a.waiting for a in grown.plan.actions)
    on_peer = [e for e in converged_lab.log() if e["node"] == "himbeere"]
    code, out, _ = run_cli(capsys, "plan", "--json", "--sim", str(converged_lab.directory), "--node", "erdbeere",
                           str(converged_lab.desired_dir))
    assert code == 2
    resize = next(a for a in json.loads(out)["actions"] if a["kind"] == "drbd-resize")
    assert resize["waiting"] == "the peer's backing size is unknown here (no peer status); resize waits for it"
    assert [e for e in converged_lab.log() if e["node"] == "himbeere"] == on_peer


def test_apply_line_output_and_progressing_exit(fresh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "apply", "--sim", str(fresh), "--node", "erdbeere", str(EXAMPLE_DIR))
    assert code == 3  # the peer is not up yet: promotion waits
    lines = [line for line in out.splitlines() if line.startswith("apply ")]
    assert lines
    assert all("node=erdbeere" in line and " result=" in line for line in lines)
    assert "result=waiting" in out
    assert "erdbeere: progressing" in out.splitlines()[-1]


def test_apply_reports_refusals_and_exits_1(converged_lab: SimLab, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    desired = converged_lab.desired_dir
    vm = desired / "vms" / "vm100.yaml"
    vm.write_text(vm.read_text().replace("  size: 100G", "  size: 50G", 1))
    sim = str(converged_lab.directory)
    code, out, _ = run_cli(capsys, "plan", "--sim", sim, "--node", "erdbeere", str(desired))
    assert code == 2
    assert "\n! extend-lv" in out
    code, out, _ = run_cli(capsys, "apply", "--sim", sim, "--node", "erdbeere", str(desired))
    assert code == 1
    assert "! extend-lv lv:vg-sda/root100: shrinking" in out
    assert not any(e["argv"][0] in ("lvreduce", "lvresize") for e in converged_lab.log())


def test_invalid_desired_state_is_an_error(fresh: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(EXAMPLE_DIR, broken)
    (broken / "vms" / "vm100.yaml").write_text("id: [not a number\n")
    code, _, err = run_cli(capsys, "plan", "--sim", str(fresh), "--node", "erdbeere", str(broken))
    assert code == 1
    assert "vm100.yaml" in err
    code, _, err = run_cli(capsys, "apply", "--sim", str(fresh), "--node", "nowhere", str(EXAMPLE_DIR))
    assert code == 1
    assert "nowhere" in err


def test_terminal_progress_rewrites_one_line() -> None:
    from reconciler.apply.progress import LineProgress, TerminalProgress, progress_for
    from reconciler.core.actions import Action
    from reconciler.model.status import ActionRecord

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    assert isinstance(progress_for("erdbeere", tty), TerminalProgress)
    assert isinstance(progress_for("erdbeere", io.StringIO()), LineProgress)
    progress = TerminalProgress("erdbeere", tty)
    action = Action(id="a", kind="create-lv", key="lv:vg/x", vm="vm1", change="create", description="d")
    progress.started(action, 1, 3)
    progress.finished(action, ActionRecord(kind="create-lv", key="lv:vg/x", vm="vm1", result="failed", message="no"))
    progress.resync("vm1", "himbeere", 42.0)
    text = tty.getvalue()
    assert "\r\x1b[K[1/3] vm1: create-lv" in text
    assert "failed vm1: create-lv lv:vg/x: no\n" in text
    assert "42.0%" in text


def test_a_real_host_acts_only_as_the_node_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    import os

    if os.uname().nodename in ("erdbeere", "himbeere"):
        pytest.skip("this machine is named like a node of the example; the mismatch cannot be shown here")
    for command in ("plan", "apply"):
        assert main([command, "--node", "erdbeere", str(EXAMPLE_DIR)]) == 1
        err = capsys.readouterr().err
        assert "declared with host name 'erdbeere'" in err
        assert f"this host is {os.uname().nodename!r}" in err


def test_an_unknown_node_lists_the_known_ones(fresh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--sim", str(fresh), "--node", "kiwi", str(EXAMPLE_DIR)]) == 1
    err = capsys.readouterr().err
    assert "erdbeere" in err
    assert "himbeere" in err

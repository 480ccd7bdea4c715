"""`reconciler observe`: JSON document, human summary, capture and replay from the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.host.capture import CapturingHost
from reconciler.observe.observer import Observer
from reconciler.observe.summary import format_summary, table, to_json
from tests.observe.scripted import full_node


@pytest.fixture
def capture_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "bundle"
    Observer(CapturingHost(full_node(), directory)).observe()
    return directory


def test_json_has_every_documented_field(capture_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["observe", "--json", "--replay", str(capture_dir)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["node"] == "erdbeere"
    assert {"name": "vg-sda", "size_bytes": 100 * 1024**3, "free_bytes": 50 * 1024**3}.items() \
        <= doc["volume_groups"][0].items()
    lv = doc["logical_volumes"][0]
    assert {"vg", "name", "size_bytes", "attributes"} <= lv.keys()
    dm = next(d for d in doc["dm_devices"] if d["name"] == "root100")
    assert dm["uuid"] == "RECONCILER-root100"
    assert dm["table"] == "0 4194304 striped 2 128 254:0 0 254:1 0"
    resource = doc["drbd"]["resources"][0]
    assert resource["role"] == "Primary"
    assert {"minor": 0, "disk_state": "UpToDate"}.items() <= resource["devices"][0].items()
    connection = resource["connections"][0]
    assert {"peer_name": "himbeere", "connection_state": "Connected", "peer_role": "Secondary"}.items() \
        <= connection.items()
    peer_device = connection["peer_devices"][0]
    assert peer_device["peer_disk_state"] == "Inconsistent"
    assert peer_device["replication_state"] == "SyncSource"
    assert peer_device["out_of_sync_bytes"] == 4096 * 1024
    assert "resync_percent" in peer_device
    assert doc["domains"] == [{
        "name": "vm100", "id": 3, "state": "blocked", "memory_mib": 4096, "maxmem_mib": 4096, "vcpus": 2,
        "uuid": "3f0e3b8e-2f7a-4e39-9a49-0f1c2d3e4f50", "disks": ["/dev/drbd0"], "nics": ["00:16:3e:00:01:00"],
    }]
    assert doc["host"]["free_memory_mib"] == 40960
    assert {t["name"]: (t["state"], t["version"]) for t in doc["tools"]} == {
        "lvm": ("available", "2.03.16"), "dmsetup": ("available", "1.02.185 (driver 4.48.0)"),
        "drbd": ("available", "9.2.12"), "drbdadm": ("available", "9.22.0"), "xl": ("available", "4.17.5"),
        "files": ("available", None),
    }
    assert doc["commands_run"] == 9
    # lvm version, dmsetup version and drbdadm --version ran too, before the pass: counted, not hidden.
    assert doc["version_commands_run"] == 3


def test_human_summary_is_aligned_tables(capture_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["observe", "--replay", str(capture_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("node erdbeere: 12 commands ran (9 for this pass and 3 version probes)\n")
    lines = out.splitlines()
    header = next(line for line in lines if line.strip().startswith("VG ") and "ATTR" in line)
    row = next(line for line in lines if "swap100" in line)
    assert header.index("SIZE") == row.index("2GiB"), "columns line up"
    assert "vm100     Primary  0:UpToDate  himbeere  Connected   Secondary  Inconsistent  SyncSource" in out
    assert "4MiB" in out
    assert "42.5%" in out


def test_unavailable_sections_say_unknown_not_none() -> None:
    observed = Observer(full_node(drbd=None, xen=False)).observe()
    text = format_summary(observed)
    assert "domains: unknown (xl missing)" in text
    assert "drbd (kernel not loaded): unknown (drbd missing)" in text
    assert "volume groups: 2" in text


def test_table_pads_all_but_the_last_column() -> None:
    assert table(("A", "BB"), [("xyz", None), ("", True)]) == ["  A    BB", "  xyz  -", "       yes"]


def test_capture_then_replay_on_this_machine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real host: whatever this machine has (lvm2 here; no device-mapper, DRBD or Xen)."""
    if shutil.which("vgs") is None:
        pytest.skip("lvm2 is not installed on this machine")
    bundle = tmp_path / "bundle"
    assert main(["observe", "--json", "--node", "testnode", "--capture", str(bundle)]) == 0
    captured = capsys.readouterr()
    assert f"capture saved to {bundle}" in captured.err
    assert main(["observe", "--json", "--replay", str(bundle)]) == 0
    replayed = capsys.readouterr().out
    assert json.loads(replayed) == json.loads(captured.out)
    assert json.loads(replayed)["node"] == "testnode"


def test_replay_errors_are_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["observe", "--replay", str(tmp_path)]) == 2
    assert "is not a capture" in capsys.readouterr().err
    assert main(["observe", "--replay", str(tmp_path), "--sim", str(tmp_path)]) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_an_unwritable_capture_directory_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reconciler.sim.state import SimCluster

    SimCluster.init(tmp_path / "sim", ["erdbeere"], {"vg-sda": 400 << 30})
    blocker = tmp_path / "a-file"
    blocker.write_text("x\n")
    argv = ["observe", "--sim", str(tmp_path / "sim"), "--node", "erdbeere", "--capture"]
    assert main([*argv, str(blocker / "cap")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"reconciler observe: {blocker / 'cap'}: Not a directory; give --capture a new directory")
    assert main([*argv, str(tmp_path)]) == 2
    assert "is not empty; choose a new one" in capsys.readouterr().err


def test_to_json_is_serialisable_for_every_tool_state() -> None:
    for host in (full_node(), full_node(drbd="8.4"), full_node(drbd=None, xen=False)):
        doc = to_json(Observer(host).observe())
        assert json.loads(json.dumps(doc)) == doc


def test_a_replay_can_be_captured_again(capture_dir: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["observe", "--json", "--replay", str(capture_dir), "--capture", str(capture_dir)]) == 2
    assert "not empty" in capsys.readouterr().err
    again = tmp_path / "again"
    assert main(["observe", "--json", "--replay", str(capture_dir), "--capture", str(again)]) == 0
    first = capsys.readouterr().out
    assert main(["observe", "--json", "--replay", str(again)]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(first)

"""Capture a pass into a directory, replay it without the host, and get the same observation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.backends.lvm import parse as lvm
from reconciler.backends.xen import xl
from reconciler.host.base import Host, HostFileError
from reconciler.host.capture import INDEX_NAME, CapturingHost
from reconciler.host.replay import ReplayError, ReplayHost
from reconciler.observe.observer import Observer
from tests.observe.scripted import Answer, full_node


@pytest.mark.parametrize("drbd", ["9", "8.4", None])
def test_replay_builds_the_same_observation(tmp_path: Path, drbd: str | None) -> None:
    host = full_node(drbd=drbd, xen=drbd is not None)
    captured = Observer(CapturingHost(host, tmp_path)).observe()
    calls_after_capture = len(host.calls)

    replayed = Observer(ReplayHost(tmp_path)).observe()

    assert replayed == captured
    assert len(host.calls) == calls_after_capture, "replay must not touch the captured host"


def test_capture_is_human_readable(tmp_path: Path) -> None:
    host = full_node()
    Observer(CapturingHost(host, tmp_path)).observe()
    index = json.loads((tmp_path / INDEX_NAME).read_text())
    assert index["format"] == "reconciler-capture/1"
    assert index["node"] == "erdbeere"
    assert index["captured_at"].endswith("+00:00")
    assert index["reconciler_version"]
    vgs = next(c for c in index["commands"] if tuple(c["argv"]) == lvm.VGS_ARGV)
    assert vgs["exit"] == 0
    assert vgs["not_found"] is False
    assert (tmp_path / vgs["stdout"]).read_text() == host.answers[lvm.VGS_ARGV].stdout
    assert vgs["stdout"].startswith("commands/")
    assert vgs["stdout"].endswith("-vgs.stdout")
    proc = next(f for f in index["files"] if f["path"] == "/proc/drbd")
    assert (tmp_path / proc["content"]).read_text() == host.files["/proc/drbd"]
    assert proc["content"] == "files/proc/drbd"
    assert {"path": "/etc/xen", "entries": ["vm100.cfg"]} in index["dirs"]


def test_missing_things_are_captured_too(tmp_path: Path) -> None:
    host = full_node(drbd=None, xen=False)
    captured = Observer(CapturingHost(host, tmp_path)).observe()
    index = json.loads((tmp_path / INDEX_NAME).read_text())
    xl_entry = next(c for c in index["commands"] if tuple(c["argv"]) == xl.XL_LIST_ARGV)
    assert xl_entry["not_found"] is True
    assert xl_entry["exit"] == 127
    assert {"path": "/proc/drbd", "exists": False} in index["files"]
    replayed = Observer(ReplayHost(tmp_path)).observe()
    assert replayed.tools == captured.tools
    assert replayed.tool("xl").state == "missing"  # type: ignore[union-attr]


def test_file_errors_replay_as_file_errors(tmp_path: Path) -> None:
    host = full_node()
    host.unreadable.add("/etc/drbd.d/vm100.res")
    captured = Observer(CapturingHost(host, tmp_path)).observe()
    replay = ReplayHost(tmp_path)
    assert Observer(replay).observe() == captured
    with pytest.raises(HostFileError, match="symbolic links"):
        ReplayHost(tmp_path).read_file("/etc/drbd.d/vm100.res")


def test_later_passes_replay_in_order(tmp_path: Path) -> None:
    host = full_node()
    capturing = CapturingHost(host, tmp_path)
    observer = Observer(capturing)
    first = observer.observe()
    host.answers[xl.XL_LIST_ARGV] = Answer(host.answers[xl.XL_LIST_ARGV].stdout.replace("-b----", "--p---"))
    host.files["/etc/xen/vm100.cfg"] = "name = 'vm100'\nmemory = 8192\n"
    second = observer.observe()
    assert first != second

    replayer = Observer(ReplayHost(tmp_path))
    assert replayer.observe() == first
    assert replayer.observe() == second
    assert replayer.observe() == second, "after the recordings run out, the last one keeps answering"


def test_replay_refuses_writes_and_unknown_operations(tmp_path: Path) -> None:
    Observer(CapturingHost(full_node(), tmp_path)).observe()
    replay = ReplayHost(tmp_path)
    with pytest.raises(ReplayError, match=r"refusing to write /etc/drbd\.d/vm100\.res"):
        replay.write_file("/etc/drbd.d/vm100.res", "x")
    with pytest.raises(ReplayError, match="refusing to remove"):
        replay.remove_file("/etc/xen/vm100.cfg")
    with pytest.raises(ReplayError, match=r"`lvcreate -n x` was not captured .*captured: lvm version; .*; vgs --"):
        replay.run(["lvcreate", "-n", "x"])
    with pytest.raises(ReplayError, match="/etc/shadow was not read"):
        replay.read_file("/etc/shadow")
    with pytest.raises(ReplayError, match="/root was not listed"):
        replay.list_dir("/root")


def test_replay_rejects_what_is_not_a_capture(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="is not a capture"):
        ReplayHost(tmp_path)
    (tmp_path / INDEX_NAME).write_text('{"format": "something-else"}')
    with pytest.raises(ReplayError, match="not a capture in format"):
        ReplayHost(tmp_path)
    (tmp_path / INDEX_NAME).write_text("{not json")
    with pytest.raises(ReplayError, match="cannot read"):
        ReplayHost(tmp_path)


def test_replay_does_not_read_outside_the_capture(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / INDEX_NAME).write_text(json.dumps({
        "format": "reconciler-capture/1", "node": "n1",
        "commands": [{"argv": ["vgs"], "exit": 0, "stdout": "../secret.txt", "stderr": "../secret.txt"}],
        "files": [], "dirs": [],
    }))
    with pytest.raises(ReplayError, match="outside the capture"):
        ReplayHost(bundle).run(["vgs"])


def test_node_name_comes_from_the_capture_unless_given(tmp_path: Path) -> None:
    Observer(CapturingHost(full_node(), tmp_path)).observe()
    assert ReplayHost(tmp_path).node == "erdbeere"
    assert ReplayHost(tmp_path, "himbeere").node == "himbeere"


def test_writes_pass_through_and_are_recorded(tmp_path: Path) -> None:
    class Recorder:
        node = "n1"
        written: dict[str, str] = {}

        def run(self, argv: object, *, timeout: float = 1.0, stdin: str | None = None) -> object:
            raise AssertionError("not used")

        def read_file(self, path: str) -> str | None:
            return None

        def list_dir(self, path: str) -> tuple[str, ...]:
            return ()

        def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
            self.written[path] = content

        def remove_file(self, path: str) -> None:
            self.written.pop(path, None)

    inner = Recorder()
    assert isinstance(inner, Host)
    capturing = CapturingHost(inner, tmp_path / "cap")
    capturing.write_file("/etc/xen/vm100.cfg", "name = 'vm100'\n", 0o600)
    capturing.remove_file("/etc/xen/vm100.cfg")
    index = json.loads((tmp_path / "cap" / INDEX_NAME).read_text())
    assert index["writes"] == [
        {"op": "write", "path": "/etc/xen/vm100.cfg", "mode": "0o600", "content": "written/etc/xen/vm100.cfg"},
        {"op": "remove", "path": "/etc/xen/vm100.cfg"},
    ]
    assert (tmp_path / "cap" / "written/etc/xen/vm100.cfg").read_text() == "name = 'vm100'\n"
    assert inner.written == {}


def test_replay_refuses_an_unsafe_node_name(tmp_path: Path) -> None:
    (tmp_path / INDEX_NAME).write_text(json.dumps({"format": "reconciler-capture/1", "node": "../../etc",
                                                   "commands": [], "files": [], "dirs": []}))
    with pytest.raises(ReplayError, match="is not safe"):
        ReplayHost(tmp_path)


def test_capture_refuses_a_directory_in_use(tmp_path: Path) -> None:
    Observer(CapturingHost(full_node(), tmp_path)).observe()
    with pytest.raises(FileExistsError, match="not empty"):
        CapturingHost(full_node(), tmp_path)


def test_capture_is_private_to_its_owner(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    Observer(CapturingHost(full_node(), bundle)).observe()
    assert bundle.stat().st_mode & 0o777 == 0o700
    stored = [p for p in bundle.rglob("*") if p.is_file()]
    assert stored
    assert {p.stat().st_mode & 0o777 for p in stored} == {0o600}
    assert not (bundle / f".{INDEX_NAME}.tmp").exists()

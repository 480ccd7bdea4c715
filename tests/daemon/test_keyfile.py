"""Key and password files are refused when anyone but their owner could read them, or the owner is wrong."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.daemon.peers.keyfile import SecretFileError, read_secret


def secret(tmp_path: Path, mode: int, name: str = "peer.key") -> Path:
    path = tmp_path / name
    path.write_bytes(b"0123456789abcdef0123456789abcdef\n")
    path.chmod(mode)
    return path


def test_a_private_file_is_read(tmp_path: Path) -> None:
    assert read_secret(str(secret(tmp_path, 0o600)), "peer token file").strip() == b"0123456789abcdef" * 2
    assert read_secret(str(secret(tmp_path, 0o400, "ro.key")), "peer token file").strip().startswith(b"0123")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o620, 0o602])
def test_group_or_world_access_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    path = secret(tmp_path, mode)
    with pytest.raises(SecretFileError, match=rf"mode {mode:04o}: others can read or change it; fix it with "
                                              rf"`chmod 600 {path}`"):
        read_secret(str(path), "peer token file")


def test_another_owner_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    path = secret(tmp_path, 0o600)
    os.chown(path, 65534, 65534)
    with pytest.raises(SecretFileError, match=r"belongs to uid 65534, not root"):
        read_secret(str(path), "peer token file")


def test_links_and_special_files_are_refused(tmp_path: Path) -> None:
    real = secret(tmp_path, 0o600)
    link = tmp_path / "link.key"
    link.symlink_to(real)
    with pytest.raises(SecretFileError, match="is a symbolic link"):
        read_secret(str(link), "peer token file")
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(SecretFileError, match="not a regular file"):  # opened non-blocking: no hang
        read_secret(str(fifo), "peer token file")


def test_the_daemon_refuses_to_start_with_a_readable_key_or_password_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    base = ["run", "--repo", str(repo), "--node", os.uname().nodename, "--state-dir", str(tmp_path / "state")]
    key = secret(tmp_path, 0o644)
    assert main([*base, "--peer-token-file", str(key)]) == 2
    assert f"the peer token file {key} has mode 0644" in capsys.readouterr().err
    password = secret(tmp_path, 0o644, "basic-auth")
    assert main([*base, "--peer-auth", "none", "--metrics-basic-auth-file", str(password)]) == 2
    assert f"the metrics basic-auth file {password} has mode 0644" in capsys.readouterr().err

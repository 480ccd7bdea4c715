"""Signed-commit verification with SSH keys made by ssh-keygen: only trusted signers are applied."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.source.gitsource import GitSource
from reconciler.source.mirror import Mirror
from reconciler.source.signatures import SignaturePolicy
from tests.source.gitrepo import WorkRepo


def make_key(directory: Path, name: str) -> Path:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed, so SSH-signed commits cannot be made")
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
                   check=True, timeout=30, capture_output=True)
    return key


def signing(key: Path) -> tuple[str, ...]:
    return ("-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "-c", "commit.gpgsign=true")


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path, Path]:
    keydir = tmp_path / "keys"
    keydir.mkdir()
    trusted = make_key(keydir, "trusted")
    stranger = make_key(keydir, "stranger")
    allowed = keydir / "allowed_signers"
    allowed.write_text(f"ops@example.org {(keydir / 'trusted.pub').read_text()}")
    return trusted, stranger, allowed


def loader(directory: Path) -> str:
    return (directory / "cluster.txt").read_text()


def test_only_commits_signed_by_an_allowed_key_are_applied(tmp_path: Path, keys: tuple[Path, Path, Path]) -> None:
    trusted, stranger, allowed = keys
    repo = WorkRepo(tmp_path / "repo")
    state = tmp_path / "state"
    source = GitSource(Mirror(state, repo.url, "main"), state, loader=loader,
                       policy=SignaturePolicy("ssh", allowed_signers=allowed))

    good = repo.commit("signed", {"cluster.txt": "signed\n"}, sign_args=signing(trusted))
    source.mirror.fetch()
    view = source.evaluate(1.0)
    assert view.in_force is not None
    assert view.in_force.info.sha == good

    unsigned = repo.commit("unsigned", {"cluster.txt": "unsigned\n"})
    source.mirror.fetch()
    view = source.evaluate(2.0)
    assert view.in_force is not None
    assert view.in_force.info.sha == good
    assert view.attempted is not None
    assert view.attempted.sha == unsigned
    assert "is not signed" in view.refusal

    foreign = repo.commit("foreign", {"cluster.txt": "foreign\n"}, sign_args=signing(stranger))
    source.mirror.fetch()
    view = source.evaluate(3.0)
    assert view.in_force is not None
    assert view.in_force.info.sha == good
    assert f"commit {foreign[:12]} has no trusted signature" in view.refusal

    healed = repo.commit("signed again", {"cluster.txt": "healed\n"}, sign_args=signing(trusted))
    source.mirror.fetch()
    view = source.evaluate(4.0)
    assert view.in_force is not None
    assert view.in_force.info.sha == healed
    assert view.refusal == ""


def test_missing_allowed_signers_file_refuses_everything(tmp_path: Path) -> None:
    repo = WorkRepo(tmp_path / "repo")
    state = tmp_path / "state"
    source = GitSource(Mirror(state, repo.url, "main"), state, loader=loader,
                       policy=SignaturePolicy("ssh", allowed_signers=tmp_path / "absent"))
    repo.commit("c", {"cluster.txt": "x\n"})
    source.mirror.fetch()
    view = source.evaluate(1.0)
    assert view.in_force is None
    assert "allowed-signers file" in view.refusal


def test_policy_requires_its_trust_store() -> None:
    with pytest.raises(ValueError, match="allowed-signers"):
        SignaturePolicy("ssh")
    with pytest.raises(ValueError, match="keyring"):
        SignaturePolicy("gpg")

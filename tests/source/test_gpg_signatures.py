"""GPG-signed commits: a keyring directory holding only the trusted public keys decides."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.source.gitsource import GitSource
from reconciler.source.mirror import Mirror
from reconciler.source.signatures import SignaturePolicy
from tests.source.gitrepo import WorkRepo


def gpg(home: Path, *args: str, stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(["gpg", "--homedir", str(home), "--batch", "--quiet", *args], input=stdin,
                          capture_output=True, timeout=60, check=False)
    if proc.returncode != 0:
        pytest.skip(f"gpg cannot work here: {proc.stderr.decode(errors='replace').strip()[:200]}")
    return proc.stdout


def new_key(home: Path, uid: str) -> str:
    home.mkdir(mode=0o700)
    gpg(home, "--passphrase", "", "--pinentry-mode", "loopback", "--quick-gen-key", uid, "ed25519", "sign", "never")
    listing = gpg(home, "--with-colons", "--list-secret-keys").decode()
    return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    # Key generation starts a gpg-agent per home; do not leave them behind.
    for home in ("signer", "stranger", "trusted"):
        if (tmp_path / home).is_dir() and shutil.which("gpgconf"):
            subprocess.run(["gpgconf", "--homedir", str(tmp_path / home), "--kill", "all"], capture_output=True,
                           timeout=30, check=False)


@pytest.mark.slow
def test_gpg_keyring_trusts_only_its_keys(homes: Path) -> None:
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed")
    tmp_path = homes
    signer_home = tmp_path / "signer"
    stranger_home = tmp_path / "stranger"
    trusted_fpr = new_key(signer_home, "Ops <ops@example.org>")
    stranger_fpr = new_key(stranger_home, "Eve <eve@example.org>")
    keyring = tmp_path / "trusted"
    keyring.mkdir(mode=0o700)
    gpg(keyring, "--import", stdin=gpg(signer_home, "--export", trusted_fpr))

    repo = WorkRepo(tmp_path / "repo")
    state = tmp_path / "state"
    source = GitSource(Mirror(state, repo.url, "main"), state, loader=lambda d: (d / "c").read_text(),
                       policy=SignaturePolicy("gpg", gpg_home=keyring))

    def signed(home: Path, fpr: str) -> tuple[str, ...]:
        return ("-c", f"gpg.program={Path(__file__).with_name('gpg_in_home.sh')}", "-c", f"user.signingkey={fpr}",
                "-c", "commit.gpgsign=true")

    os.environ["TEST_GNUPGHOME"] = str(signer_home)
    try:
        good = repo.commit("signed", {"c": "1"}, sign_args=signed(signer_home, trusted_fpr))
        source.mirror.fetch()
        view = source.evaluate(1.0)
        assert view.in_force is not None
        assert view.in_force.info.sha == good
        os.environ["TEST_GNUPGHOME"] = str(stranger_home)
        foreign = repo.commit("foreign", {"c": "2"}, sign_args=signed(stranger_home, stranger_fpr))
    finally:
        del os.environ["TEST_GNUPGHOME"]
    source.mirror.fetch()
    view = source.evaluate(2.0)
    assert view.in_force is not None
    assert view.in_force.info.sha == good
    assert f"commit {foreign[:12]} has no trusted signature" in view.refusal

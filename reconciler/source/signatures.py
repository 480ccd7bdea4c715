"""Commit signature verification: a revision is applied only when a trusted key signed it.

Two trust stores are supported, as git itself supports them: an SSH allowed-signers file
(``gpg.ssh.allowedSignersFile``) and a GnuPG keyring directory holding only the trusted public keys
(``GNUPGHOME``). ``git verify-commit`` exits non-zero for an unsigned commit, a bad signature or a key
the store does not know; its message becomes the refusal shown in status.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reconciler.source.gitcmd import GitRunner
from reconciler.source.mirror import check_sha

SignatureMode = Literal["none", "ssh", "gpg"]


@dataclass(frozen=True)
class Verdict:
    trusted: bool
    reason: str


@dataclass(frozen=True)
class SignaturePolicy:
    mode: SignatureMode = "none"
    allowed_signers: Path | None = None
    gpg_home: Path | None = None

    def __post_init__(self) -> None:
        if self.mode == "ssh" and self.allowed_signers is None:
            raise ValueError("SSH signature verification needs an allowed-signers file")
        if self.mode == "gpg" and self.gpg_home is None:
            raise ValueError("GPG signature verification needs a keyring directory")

    def verify(self, runner: GitRunner, git_dir: Path, sha: str) -> Verdict:
        if self.mode == "none":
            return Verdict(True, "signature verification disabled")
        check_sha(sha)
        args = ["--git-dir", str(git_dir)]
        env: dict[str, str] = {}
        if self.mode == "ssh":
            if self.allowed_signers is None or not self.allowed_signers.is_file():
                return Verdict(False, f"allowed-signers file {self.allowed_signers} is missing")
            args += ["-c", f"gpg.ssh.allowedSignersFile={self.allowed_signers}"]
        else:
            if self.gpg_home is None:
                return Verdict(False, "no GPG keyring configured")
            env["GNUPGHOME"] = str(self.gpg_home)
        out = runner.output([*args, "verify-commit", "--raw", sha], env=env)
        said = " ".join(line.strip() for line in out.stderr.strip().splitlines() if line.strip())
        if out.returncode == 0:
            return Verdict(True, said[:300] or "good signature")
        if not said or "no signature" in said.lower():
            reason = f"commit {sha[:12]} is not signed"
        else:
            reason = f"commit {sha[:12]} has no trusted signature: {said[:300]}"
        return Verdict(False, reason)

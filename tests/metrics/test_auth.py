"""Password hashes for basic auth: formats, constant-time checks, start-up validation."""

from __future__ import annotations

import base64
import hashlib
import importlib
import subprocess
import sys

import pytest

from reconciler.metrics.auth import BasicAuth, PasswordHashError, check_hash_format, hash_password, verify_password


def _header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_pbkdf2_round_trip_and_salted() -> None:
    first = hash_password("s3cret", iterations=1000)
    second = hash_password("s3cret", iterations=1000)
    assert first != second
    assert verify_password("s3cret", first)
    assert not verify_password("s3cret!", first)


def test_sha256_hash_for_tokens() -> None:
    encoded = "sha256:" + hashlib.sha256(b"long-random-token").hexdigest()
    assert verify_password("long-random-token", encoded)
    assert not verify_password("other", encoded)


@pytest.mark.parametrize("bad", ["plaintext", "sha256:abc", "pbkdf2-sha256$x$y$z", "md5:0123"])
def test_malformed_hashes_are_refused_at_start(bad: str) -> None:
    with pytest.raises(PasswordHashError):
        check_hash_format(bad)
    with pytest.raises(PasswordHashError):
        BasicAuth("prometheus", bad)


def test_bcrypt_without_the_package_says_what_to_do() -> None:
    try:
        importlib.import_module("bcrypt")
    except ImportError:
        with pytest.raises(PasswordHashError, match="bcrypt"):
            check_hash_format("$2b$12$" + "a" * 53)
    else:
        pytest.skip("the bcrypt package is installed here; the missing-package message cannot be shown")


def test_basic_auth_header_checks() -> None:
    auth = BasicAuth("prometheus", hash_password("pw", iterations=1000))
    assert auth.check_header(_header("prometheus", "pw"))
    assert auth.check_header(_header("prometheus", "pw"))  # remembered
    assert not auth.check_header(_header("prometheus", "nope"))
    assert not auth.check_header(_header("root", "pw"))
    assert not auth.check_header(None)
    assert not auth.check_header("Bearer xyz")
    assert not auth.check_header("Basic !!!not-base64")
    assert not auth.check_header("Basic " + base64.b64encode(b"no-colon").decode())


def test_hash_command_reads_the_password_from_stdin() -> None:
    done = subprocess.run([sys.executable, "-m", "reconciler.metrics.auth"], input="hunter2\n", capture_output=True,
                          text=True, timeout=30, check=True)
    assert verify_password("hunter2", done.stdout.strip())

"""Basic-auth password hashes for the metrics endpoint.

Accepted hash formats (the password itself is never stored):

- ``pbkdf2-sha256$<iterations>$<salt, base64>$<digest, base64>``: the default, standard library only;
  make one with ``python -m reconciler.metrics.auth``.
- ``$2a$``/``$2b$``/``$2y$`` bcrypt hashes, as Prometheus' own web configuration uses, when the optional
  ``bcrypt`` package is installed.
- ``sha256:<hex digest>``: a plain SHA-256, acceptable only for long random tokens (it is unsalted and fast).

Every comparison is constant-time, and a wrong user name costs as much as a wrong password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import os
import sys
import threading

from reconciler.metrics.guard import FailureLimiter

PBKDF2_PREFIX = "pbkdf2-sha256"
PBKDF2_ITERATIONS = 200_000
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


class PasswordHashError(ValueError):
    """The configured hash is not in a format this module can check."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{PBKDF2_PREFIX}${iterations}${_b64(salt)}${_b64(digest)}"


def _check_pbkdf2(password: str, encoded: str) -> bool:
    try:
        _, iterations, salt, digest = encoded.split("$")
        expected = base64.b64decode(digest, validate=True)
        computed = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt, validate=True),
                                       int(iterations))
    except ValueError as exc:
        raise PasswordHashError(f"malformed {PBKDF2_PREFIX} hash: {exc}") from exc
    return hmac.compare_digest(computed, expected)


def _check_bcrypt(password: str, encoded: str) -> bool:
    try:
        bcrypt = importlib.import_module("bcrypt")
    except ImportError as exc:
        raise PasswordHashError("bcrypt hashes need the 'bcrypt' package; install it or use a pbkdf2-sha256 hash "
                                "from `python -m reconciler.metrics.auth`") from exc
    ok = bcrypt.checkpw(password.encode(), encoded.encode())
    return bool(ok)


def _check_sha256(password: str, encoded: str) -> bool:
    expected = encoded.removeprefix("sha256:").strip().lower()
    if len(expected) != 64:
        raise PasswordHashError("a sha256: hash must have 64 hexadecimal digits")
    return hmac.compare_digest(hashlib.sha256(password.encode()).hexdigest(), expected)


def check_hash_format(encoded: str) -> None:
    """Raise :class:`PasswordHashError` now (at start-up) rather than at the first scrape."""
    if encoded.startswith(PBKDF2_PREFIX + "$"):
        _check_pbkdf2("", encoded)
    elif encoded.startswith(BCRYPT_PREFIXES):
        _check_bcrypt("", encoded)
    elif encoded.startswith("sha256:"):
        _check_sha256("", encoded)
    else:
        raise PasswordHashError("unknown password hash format; expected pbkdf2-sha256$..., a bcrypt $2b$... hash "
                                "or sha256:<hex>")


def verify_password(password: str, encoded: str) -> bool:
    if encoded.startswith(PBKDF2_PREFIX + "$"):
        return _check_pbkdf2(password, encoded)
    if encoded.startswith(BCRYPT_PREFIXES):
        return _check_bcrypt(password, encoded)
    if encoded.startswith("sha256:"):
        return _check_sha256(password, encoded)
    raise PasswordHashError("unknown password hash format")


ALLOWED = "allowed"
REFUSED = "refused"
LIMITED = "limited"


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against one user and password hash.

    Slow hashes at every scrape would cost a noticeable share of a core, so a successful check is
    remembered by the SHA-256 of the credentials (as Prometheus' exporter toolkit does); failures are not.
    Each failure costs a slow hash, so failures are limited (:meth:`check`): per client address and in all,
    one hash at a time; a client over the limit is answered without hashing. The remembered good
    credentials are checked first, so a scraper with the right password is never held up by a guesser.
    """

    def __init__(self, username: str, password_hash: str, limiter: FailureLimiter | None = None) -> None:
        check_hash_format(password_hash)
        self._username = username.encode()
        self._hash = password_hash
        self._good: set[bytes] = set()
        self._lock = threading.Lock()
        self._hashing = threading.Lock()
        self.limiter = limiter or FailureLimiter()

    def check(self, header: str | None, client: str) -> str:
        """:data:`ALLOWED`, :data:`REFUSED`, or :data:`LIMITED` (not checked: too many failures)."""
        key = _credentials_key(header)
        if key is not None:
            with self._lock:
                if key in self._good:
                    return ALLOWED
        if not self.limiter.allow(client):
            return LIMITED
        with self._hashing:  # one slow hash at a time: guessers in parallel get no more than one core
            if not self.limiter.allow(client):
                return LIMITED
            if self.check_header(header):
                return ALLOWED
            self.limiter.failed(client)
            return REFUSED

    def check_header(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[len("Basic "):].strip(), validate=True)
        except ValueError:
            return False
        user, sep, password = decoded.partition(b":")
        if not sep:
            return False
        key = hashlib.sha256(decoded).digest()
        with self._lock:
            if key in self._good:
                return True
        user_ok = hmac.compare_digest(user, self._username)
        # The hash runs even for a wrong user so the answer time does not tell valid user names apart.
        password_ok = verify_password(password.decode("utf-8", "replace"), self._hash)
        if user_ok and password_ok:
            with self._lock:
                self._good.add(key)
            return True
        return False


def _credentials_key(header: str | None) -> bytes | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        return hashlib.sha256(base64.b64decode(header[len("Basic "):].strip(), validate=True)).digest()
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    """Print a pbkdf2-sha256 hash of the password read from standard input (one line)."""
    del argv
    password = sys.stdin.readline().rstrip("\n")
    if not password:
        sys.stderr.write("usage: echo PASSWORD | python -m reconciler.metrics.auth\n")
        return 2
    sys.stdout.write(hash_password(password) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

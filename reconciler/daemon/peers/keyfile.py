"""Secrets from files (the peer key, the metrics password hash), read only when nobody else can read them.

A key file that another user can read is a key that user has: refusing to start says so at once, instead
of authenticating with a secret that is no longer one. Running as root, the file must also belong to root
(another owner could rewrite it); otherwise it must belong to the user the daemon runs as.
"""

from __future__ import annotations

import os
import stat

MAX_SECRET_BYTES = 64 * 1024


class SecretFileError(Exception):
    pass


def read_secret(path: str, what: str) -> bytes:
    """The content of ``path``; :class:`SecretFileError` (with what to do) when it is unsafe or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the last component is a symbolic link
            raise SecretFileError(f"the {what} {path} is a symbolic link; give the file itself") from exc
        raise SecretFileError(f"cannot read the {what} {path}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretFileError(f"the {what} {path} is not a regular file")
        owner = os.geteuid()
        if info.st_uid != owner:
            who = "root" if owner == 0 else f"uid {owner} (the user the daemon runs as)"
            raise SecretFileError(f"the {what} {path} belongs to uid {info.st_uid}, not {who}; "
                                  f"fix it with `chown {owner} {path}`")
        if info.st_mode & 0o077:
            raise SecretFileError(f"the {what} {path} has mode {stat.S_IMODE(info.st_mode):04o}: others can read "
                                  f"or change it; fix it with `chmod 600 {path}` (and replace the secret if "
                                  "anyone else may have read it)")
        if info.st_size > MAX_SECRET_BYTES:
            raise SecretFileError(f"the {what} {path} has {info.st_size} bytes; a secret needs far fewer")
        return os.read(fd, MAX_SECRET_BYTES)
    finally:
        os.close(fd)

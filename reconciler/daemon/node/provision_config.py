"""The node's own provisioning settings: which provisioners it offers and where images may come from.

They live on the node (``/etc/reconciler/provisioning.toml``), never in the desired-state repository: a
provisioner runs as root in dom0, so a command taken from git would be root code for anyone who can push.
The repository only names a provisioner or an image; this file says what that name runs and which images
are allowed. Example::

    # Directories whose archives (.tar, .tar.gz, .tar.xz, ...) and directory trees may be named as images.
    image_roots = ["/srv/images"]
    # Device nodes in an image are skipped (a guest's /dev is devtmpfs); true extracts them.
    device_nodes = false

    [provisioners.debootstrap-bookworm]
    # An absolute program and its arguments, no shell; "{target}" is replaced by the mounted filesystem's
    # directory (appended as the last argument when no argument is "{target}").
    command = ["/usr/sbin/debootstrap", "--variant=minbase", "bookworm", "{target}", "http://deb.debian.org/debian"]
"""

from __future__ import annotations

import posixpath
import tomllib
from dataclasses import dataclass, field

from reconciler.names import UnsafeNameError, check_absolute_path, check_name

CONFIG_PATH = "/etc/reconciler/provisioning.toml"
TARGET = "{target}"
MAX_ARGS = 256
MAX_ARG_LENGTH = 4096


class ProvisionConfigError(ValueError):
    """The node's provisioning config is missing, unreadable or wrong; the message names the file and the fix."""


@dataclass(frozen=True)
class Provisioner:
    name: str
    command: tuple[str, ...]

    def argv(self, target: str) -> tuple[str, ...]:
        if TARGET in self.command:
            return tuple(target if word == TARGET else word for word in self.command)
        return (*self.command, target)


@dataclass(frozen=True)
class ProvisionConfig:
    path: str = CONFIG_PATH
    image_roots: tuple[str, ...] = ()
    device_nodes: bool = False
    provisioners: dict[str, Provisioner] = field(default_factory=dict)

    def provisioner(self, name: str) -> Provisioner:
        found = self.provisioners.get(name)
        if found is None:
            known = ", ".join(sorted(self.provisioners)) or "none"
            raise ProvisionConfigError(f"{self.path}: no provisioner {name!r} is configured on this node (configured: "
                                       f"{known}); add a [provisioners.{name}] table with its command")
        return found

    def image_root(self, image: str) -> str:
        """The allowed root ``image`` lies under, by its path as written (symlinks are checked by the helper)."""
        check_absolute_path(image, "image")
        for root in self.image_roots:
            if image.startswith(root.rstrip("/") + "/"):
                return root
        roots = ", ".join(self.image_roots) or "none"
        raise ProvisionConfigError(f"{self.path}: image {image} is not under an image root of this node (image_roots: "
                                   f"{roots}); put it under one, or add its directory to image_roots")


def _where(path: str, key: str) -> str:
    return f"{path}: {key}"


def _command(path: str, name: str, value: object) -> tuple[str, ...]:
    key = f"provisioners.{name}.command"
    if not isinstance(value, list) or not value or len(value) > MAX_ARGS:
        raise ProvisionConfigError(f"{_where(path, key)}: must be a list of 1 to {MAX_ARGS} strings, the program "
                                   "first (no shell)")
    words: list[str] = []
    for i, word in enumerate(value):
        if not isinstance(word, str) or not word or len(word) > MAX_ARG_LENGTH or "\0" in word:
            raise ProvisionConfigError(f"{_where(path, key)}[{i}]: must be a non-empty string of at most "
                                       f"{MAX_ARG_LENGTH} characters")
        words.append(word)
    try:
        check_absolute_path(words[0], "program")
    except UnsafeNameError as exc:
        raise ProvisionConfigError(f"{_where(path, key)}[0]: {exc}; give the program's absolute path") from None
    if words.count(TARGET) > 1:
        raise ProvisionConfigError(f"{_where(path, key)}: {TARGET} may appear once")
    return tuple(words)


def parse_config(text: str, path: str = CONFIG_PATH) -> ProvisionConfig:
    """The config from its text; every mistake is a :class:`ProvisionConfigError` naming ``path``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProvisionConfigError(f"{path}: {exc}") from None
    unknown = sorted(set(data) - {"image_roots", "device_nodes", "provisioners"})
    if unknown:
        raise ProvisionConfigError(f"{path}: unknown setting {unknown[0]!r} (known: image_roots, device_nodes, "
                                   "provisioners)")
    roots_value = data.get("image_roots", [])
    if not isinstance(roots_value, list):
        raise ProvisionConfigError(f"{_where(path, 'image_roots')}: must be a list of absolute directories")
    roots: list[str] = []
    for i, root in enumerate(roots_value):
        try:
            if not isinstance(root, str) or not root.rstrip("/"):
                raise UnsafeNameError("image root", root, "give a directory below /, e.g. /srv/images")
            roots.append(posixpath.normpath(check_absolute_path(root.rstrip("/"), "image root")))
        except UnsafeNameError as exc:
            raise ProvisionConfigError(f"{_where(path, 'image_roots')}[{i}]: {exc}") from None
    device_nodes = data.get("device_nodes", False)
    if not isinstance(device_nodes, bool):
        raise ProvisionConfigError(f"{_where(path, 'device_nodes')}: must be true or false")
    table = data.get("provisioners", {})
    if not isinstance(table, dict):
        raise ProvisionConfigError(f"{_where(path, 'provisioners')}: must be a table of [provisioners.NAME] tables")
    provisioners: dict[str, Provisioner] = {}
    for name, entry in table.items():
        try:
            check_name(name, "provisioner")
        except UnsafeNameError as exc:
            raise ProvisionConfigError(f"{_where(path, 'provisioners')}: {exc}") from None
        if not isinstance(entry, dict) or set(entry) != {"command"}:
            raise ProvisionConfigError(f"{_where(path, f'provisioners.{name}')}: must hold exactly one setting, "
                                       "command = [\"/absolute/program\", \"arg\", ...]")
        provisioners[name] = Provisioner(name=name, command=_command(path, name, entry["command"]))
    return ProvisionConfig(path=path, image_roots=tuple(roots), device_nodes=device_nodes, provisioners=provisioners)


def load_config(text: str | None, path: str = CONFIG_PATH) -> ProvisionConfig:
    if text is None:
        raise ProvisionConfigError(f"{path} does not exist: this node offers no provisioners and no images (see "
                                   "docs/operations.md, \"Provisioning\")")
    return parse_config(text, path)

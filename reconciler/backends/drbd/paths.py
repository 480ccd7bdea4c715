"""Where DRBD's configuration lives on a node: the directory of the reconciler's resource files, and the
top file drbdadm reads first (which a node built by hand may define resources in)."""

from __future__ import annotations

from reconciler.core.facts import OwnedConfigFiles
from reconciler.names import check_name

CONFIG_DIR = "/etc/drbd.d"
CONFIG_SUFFIX = ".res"
TOP_CONFIG = "/etc/drbd.conf"


def config_path(resource: str) -> str:
    """The resource's file, which the reconciler owns."""
    return f"{CONFIG_DIR}/{check_name(resource, 'DRBD resource')}{CONFIG_SUFFIX}"


# What the observer reads of DRBD's files each pass (registered in reconciler.backends.providers): the top file
# is not the reconciler's, but drbdadm reads it first, so a resource a hand-written drbd.conf defines is taken
# over with it and must not be defined a second time by a rendered file.
OWNED = OwnedConfigFiles(CONFIG_DIR, CONFIG_SUFFIX, also=(TOP_CONFIG,))

"""Where DRBD's configuration lives on a node: the directory of the reconciler's resource files, and the
top file drbdadm reads first (which a node built by hand may define resources in)."""

from __future__ import annotations

from reconciler.names import check_name

CONFIG_DIR = "/etc/drbd.d"
CONFIG_SUFFIX = ".res"
TOP_CONFIG = "/etc/drbd.conf"


def config_path(resource: str) -> str:
    """The resource's file, which the reconciler owns."""
    return f"{CONFIG_DIR}/{check_name(resource, 'DRBD resource')}{CONFIG_SUFFIX}"

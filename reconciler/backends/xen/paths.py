"""Where Xen's domain configs live on a node: ``xl create`` reads the reconciler's from this directory."""

from __future__ import annotations

from reconciler.core.facts import OwnedConfigFiles
from reconciler.names import check_name

CONFIG_DIR = "/etc/xen"
CONFIG_SUFFIX = ".cfg"
# xl's own settings (not the reconciler's): the doctor checks that starting a domain cannot shrink dom0.
XL_CONF = f"{CONFIG_DIR}/xl.conf"


def config_path(domain: str) -> str:
    """The domain's config, which the reconciler owns."""
    return f"{CONFIG_DIR}/{check_name(domain, 'domain')}{CONFIG_SUFFIX}"


# What the observer reads of Xen's files each pass (registered in reconciler.backends.providers).
OWNED = OwnedConfigFiles(CONFIG_DIR, CONFIG_SUFFIX)

"""The host seam: every command and every file access of the node passes through a :class:`Host`."""

from reconciler.host.base import CommandResult, Host, HostFileError

__all__ = ["CommandResult", "Host", "HostFileError"]

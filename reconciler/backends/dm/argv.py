"""The device-mapper report command line of an observation pass (``dmsetup info -c``).

Kept apart from the parser so that a fresh command can start this report before it imports the rest
(see reconciler.host.prefetch): this module imports nothing.
"""

from __future__ import annotations

DM_INFO_ARGV: tuple[str, ...] = (
    "dmsetup",
    "info",
    "-c",
    "--noheadings",
    "--separator",
    "/",
    "-o",
    "name,major,minor,attr,open,uuid",
)

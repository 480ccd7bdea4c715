"""The daemon's state directory by default; importable on its own, for the commands' option help."""

from __future__ import annotations

from pathlib import Path

DEFAULT_STATE_DIR = Path("/var/lib/reconciler")
# The unit's EnvironmentFile; the handlers DRBD runs (not systemd) and `doctor` read it themselves.
DEFAULT_ENV_FILE = "/etc/reconciler/reconciler.env"

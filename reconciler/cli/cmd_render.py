"""`reconciler render`: not built yet; the issue that owns it replaces this module."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("render", help="(not available in this build)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    print("reconciler render is not available in this build", file=sys.stderr)
    return 2

"""The mark on the first line of every file the reconciler renders: any other file at its paths was written by hand.

Shared by the backends that own config files (a file of ours edited by hand is drift; one written by hand is
a takeover's starting point) and by the renderers that write the mark.
"""

from __future__ import annotations

OWN_MARK = "written by the reconciler from"
"""Every file the reconciler renders says so on its first line; any other file there was written by hand."""

def is_own(text: str | None) -> bool:
    first = (text or "").split("\n", 1)[0]
    return first.startswith("#") and OWN_MARK in first

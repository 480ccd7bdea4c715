"""Text from outside (file names, values, peer headers) made safe to print on a terminal or in a log line.

A file name can hold a newline (a forged second report line), ANSI escape sequences (a recoloured or
cleared terminal) or bidirectional overrides (text that reads differently than it is). Each such character
is shown as a Python-style escape instead, so what an operator reads is what is there.
"""

from __future__ import annotations

import unicodedata

# Bidirectional embeddings, overrides and isolates, and the zero-width characters that hide text.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069"
                       "\ufeff")


def _escaped(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{code:02x}")
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _unsafe(char: str) -> bool:
    if char in _INVISIBLE:
        return True
    return unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def escape(text: str) -> str:
    """``text`` with every control, format or unassigned character written as an escape; a backslash stays."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escaped(c) if _unsafe(c) else c for c in text)

"""Text from outside (file names, values, peer headers) made safe to print on a terminal or in a log line.

A file name can hold a newline (a forged second report line), ANSI escape sequences (a recoloured or
cleared terminal) or bidirectional overrides (text that reads differently than it is). Each such character
is shown as a Python-style escape instead, so what an operator reads is what is there.
"""

from __future__ import annotations

# Bidirectional embeddings, overrides and isolates, and the zero-width characters that hide text.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069"
                       "\ufeff")


def _escaped(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{code:02x}")
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _unsafe(char: str) -> bool:
    # Not printable: controls, format characters, unassigned code points and every space but ' ' (a
    # no-break space in a file name looks like a plain one).
    return char in _INVISIBLE or not char.isprintable()


def escape(text: str) -> str:
    """``text`` with every character that is not printable (controls, format characters, unassigned code
    points, spaces other than ' ') written as an escape; the result is always ``str.isprintable()``."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escaped(c) if _unsafe(c) else c for c in text)

"""Text from the database (run names, ids, error messages) made safe to print on a terminal."""

from __future__ import annotations

import unicodedata


def printable(text: object) -> str:
    """`text` with every control or format character (escape sequences, carriage returns, bidi
    overrides, newlines) shown as a visible escape such as `\\x1b`, so a stored value can never move
    the cursor, recolour or rewrite what the terminal shows."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(char if unicodedata.category(char)[0] not in "CZ" or char == " " else
                   (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}") for char in text)

"""How wide text is on a terminal: a Chinese character takes two columns, so columns
lined up with ``str.ljust`` (which counts characters) drift under Chinese."""

from __future__ import annotations

import unicodedata


def wide(char: str) -> bool:
    """Whether ``char`` takes two columns (East Asian wide or full-width)."""
    return unicodedata.east_asian_width(char) in ("W", "F")


def cells(text: str) -> int:
    """How many terminal columns ``text`` takes (a Chinese character takes two)."""
    return sum(2 if wide(char) else 1 for char in text)


def padded(text: str, width: int) -> str:
    """``text`` with blanks after it up to ``width`` columns (as ``ljust`` for ASCII)."""
    return text + " " * max(0, width - cells(text))

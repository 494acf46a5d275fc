"""The command line: the commands' faces, their options, the console (the one printer).

Options in, :mod:`batchops.api` called, one ``Error:`` line and an exit code out.
"""

from __future__ import annotations

from .main import entry, main
from .stand_in import sandbox

__all__ = [
    "entry",
    "main",
    "sandbox",
]

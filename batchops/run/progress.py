"""The progress protocol: what a run tells whoever shows its progress.

A run calls :class:`ProgressSink` and nothing else; the terminal sinks (a tqdm bar, one
line at intervals) live in :mod:`batchops.cli.console`. :class:`NullProgress` shows nothing
(``--quiet``, the Python API by default); notices still go to stderr.
"""

from __future__ import annotations

import sys
from typing import IO, Protocol

from batchops.model import Status


class ProgressSink(Protocol):
    def start(self, total: int, done: int = 0) -> None: ...

    def advance(self, status: Status) -> None: ...

    def close(self) -> None: ...

    def write(self, text: str) -> None: ...


def say(text: str, stream: IO[str] | None = None) -> None:
    """A line for a person, on stderr (never lost to a broken pipe or a narrow code page)."""
    stream = stream or sys.stderr
    try:
        print(text, file=stream, flush=True)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        print(text.encode(encoding, "replace").decode(encoding), file=stream, flush=True)
    except (OSError, ValueError):
        pass


class NullProgress:
    """Shows no progress (``--quiet``, the Python API by default); notices still go out."""

    def start(self, total: int, done: int = 0) -> None:
        return None

    def write(self, text: str) -> None:
        say(text)

    def advance(self, status: Status) -> None:
        return None

    def close(self) -> None:
        return None

"""The wall clock as the report shows it: local time, to the second.

Every finished row carries the moment it finished (``finished_at``). Formatting that
moment (``datetime.now().astimezone()`` looks the local zone up each time) costs ~4.4 µs,
about 2 % of a row's CPU at the rates the benchmark reaches; a :class:`LocalClock`
formats it once per second and hands the same text to every row finishing within that
second (measured in BENCHMARKS.md, "Issue 10: speed tricks kept or removed"). One clock
belongs to one run: nothing is cached between runs, so a zone change shows at the next
second.
"""

from __future__ import annotations

import time
from datetime import datetime


def local_now() -> str:
    """The local time to the second, ISO 8601 with its offset (``2026-11-28T11:02:03+08:00``)."""
    return datetime.now().astimezone().replace(microsecond=0).isoformat()


class LocalClock:
    """:func:`local_now`, formatted at most once per second of wall time."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self) -> str:
        second = int(time.time())
        if second != self._second:
            # Format first, then mark the second: the two stay a pair if this raises.
            self._text = local_now()
            self._second = second
        return self._text

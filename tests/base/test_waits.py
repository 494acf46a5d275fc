"""The one wait a stop ends (batchops/stops.py), and ``--rate``'s pace on it."""

from __future__ import annotations

import asyncio
import time

import pytest

from batchops import stops
from batchops.stops import RateLimit, RunControl, Stop, StopKind, Stopped

INTERRUPT = Stop(StopKind.INTERRUPTED, "interrupted by SIGTERM")


def test_a_stop_ends_every_queued_rate_wait_at_once() -> None:
    """Twenty requests queued at --rate 0.05 (400 s of turns): a stop ends all their waits
    at once, each with Stopped, and none of them is let through."""

    async def go() -> tuple[int, list[BaseException | None], float]:
        control = RunControl()
        pace = RateLimit(0.05, control)
        await pace.acquire()  # the first goes at once
        waiters = [asyncio.ensure_future(pace.acquire()) for _ in range(20)]
        await asyncio.sleep(0.1)
        through = sum(w.done() for w in waiters)
        stopped_at = time.monotonic()
        control.request_stop(INTERRUPT)
        results = await asyncio.gather(*waiters, return_exceptions=True)
        return through, list(results), time.monotonic() - stopped_at

    through, results, took = asyncio.run(go())
    assert through == 0
    assert all(isinstance(r, Stopped) for r in results), results
    assert took < 2


class _Recorded(RunControl):
    """A stop switch whose waits are written down instead of waited."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))


def _turns(rate: float, requests: int, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The wait each of ``requests`` asked for at once is given, the clock standing still."""
    monkeypatch.setattr(stops.time, "monotonic", lambda: 1000.0)
    control = _Recorded()

    async def go() -> None:
        pace = RateLimit(rate, control)
        for _ in range(requests):
            await pace.acquire()

    asyncio.run(go())
    return control.waits


def test_the_rate_gives_each_request_its_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """At --rate 2 the first request goes at once, then one every half second."""
    assert _turns(2, 4, monkeypatch) == [0.0, 0.5, 1.0, 1.5]


def test_a_fast_rate_allows_a_twentieth_of_a_second_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At --rate 100, 5 requests (1/20 s worth) go at once; the next ones every 10 ms."""
    waits = _turns(100, 7, monkeypatch)
    assert [w <= 0 for w in waits] == [True] * 5 + [False] * 2
    assert waits[5:] == [0.01, 0.02]

"""The one wait a stop ends (batchops/stops.py), ``--rate``'s pace on it, and the second
signal that leaves at once (batchops/process.py)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from batchops import stops
from batchops.exits import Exit
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


#: A process that takes the run's signals, then is busy in a long synchronous step.
_BUSY_CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    from batchops.process import RunSignals
    from batchops.stops import RunControl

    async def main():
        control = RunControl()
        RunSignals(control)
        print("ready", flush=True)
        time.sleep(60)  # the loop is busy: no callback of it runs meanwhile
        print("the busy step ended", flush=True)

    asyncio.run(main())
    """
)


def test_a_second_signal_leaves_at_once_while_the_loop_is_busy() -> None:
    """SIGTERM, then SIGINT, while the event loop is held by a long synchronous step:
    the process ends at once with exit 130, not when the step is over."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _BUSY_CHILD],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("the second signal did not end the process while its loop was busy")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == Exit.INTERRUPTED, out + err
    assert "the busy step ended" not in out

"""Why a run stops early, as types: the exit code follows the kind, never a message's wording.

A :class:`Stop` is decided once (the first reason wins) and held by :class:`RunControl`,
which every worker consults: before a request leaves, and during every wait (backoff,
read-back, rate limit, rate-limit pause, outage, ``select``'s paging). A stop therefore
takes effect within one loop turn of being requested, not after the retries in flight
have run their course. A worker that meets a stop mid-row raises :class:`Stopped`,
telling whether its row may already have reached ITSM (then it stays in doubt, to be
read back by the next run).

:meth:`RunControl.sleep` is the one timed wait of every command (nothing else in batchops
calls ``asyncio.sleep``); :class:`RateLimit`, ``--rate``'s pace, waits through it.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from batchops.exits import Exit

T = TypeVar("T")


class StopKind(enum.Enum):
    """What stopped the run. Every kind but ``INTERRUPTED`` exits 3; all are resumable."""

    #: The server refused every further request: authentication, permission, API not
    #: found, service switched off, a redirect.
    FATAL = "fatal"
    #: Too many rows failed (``--max-failures``).
    BRAKE = "brake"
    #: The canary rows did not pass, or the person declined the rest.
    CANARY = "canary"
    #: The target could not be reached before anything was sent.
    UNREACHABLE = "unreachable"
    #: ITSM went away mid-run (or asked for a longer wait) for more than ``--outage-wait``.
    OUTAGE = "outage"
    #: The pre-check could not read tickets that have SUSPEND rows.
    PRECHECK = "precheck"
    #: The checkpoint can no longer be written (disk full, quota, file-size limit).
    CHECKPOINT = "checkpoint"
    #: SIGINT / SIGTERM.
    INTERRUPTED = "interrupted"

    @property
    def exit_code(self) -> Exit:
        return Exit.INTERRUPTED if self is StopKind.INTERRUPTED else Exit.STOPPED


@dataclass(frozen=True, slots=True)
class Stop:
    """One stop: its kind, what happened (for a person), and what to do about it."""

    kind: StopKind
    reason: str
    #: What to fix before running again (e.g. which credential); "" when nothing.
    fix: str = ""


class Stopped(Exception):
    """Raised inside a worker when the run stops while its row is not finished."""

    def __init__(self, *, in_doubt: bool = False) -> None:
        super().__init__("run stopped")
        #: The row's request may have reached ITSM: it must be read back, never resent blind.
        self.in_doubt = in_doubt


class RunControl:
    """The run's one stop switch, and waits that end as soon as it is thrown."""

    def __init__(self) -> None:
        self.stop: Stop | None = None
        self._event = asyncio.Event()

    @property
    def stopping(self) -> bool:
        return self.stop is not None

    def request_stop(self, stop: Stop) -> None:
        """Stop taking rows and sending; the first stop requested is the one reported."""
        if self.stop is None:
            self.stop = stop
        self._event.set()

    def check(self) -> None:
        """Raise :class:`Stopped` if the run is stopping (call before a request leaves)."""
        if self.stop is not None:
            raise Stopped()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or raise :class:`Stopped` as soon as the run stops."""
        self.check()
        if seconds > 0:
            await self.run(asyncio.sleep(seconds))
            self.check()  # a stop requested as the time ran out still wins

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Await ``work``, cancelling it as soon as the run stops (then :class:`Stopped`)."""
        self.check()
        task = asyncio.ensure_future(work)
        stop_wait = asyncio.ensure_future(self._event.wait())
        try:
            await asyncio.wait((task, stop_wait), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if task.cancelled():
            raise Stopped()
        return task.result()

    async def wait_for(self, event: asyncio.Event, seconds: float | None = None) -> bool:
        """Wait until ``event`` is set (True) or ``seconds`` pass (False); a stop raises."""
        self.check()
        if event.is_set():
            return True
        stop_wait = asyncio.ensure_future(self._event.wait())
        event_wait = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait(
                (stop_wait, event_wait), timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop_wait.cancel()
            event_wait.cancel()
        self.check()
        return event.is_set()


class RateLimit:
    """``--rate``: at most ``rate`` requests a second, across every worker that shares it.

    Each request is given the next free moment and waits for it in
    :meth:`RunControl.sleep`, so a stop ends every wait at once, however many requests
    are queued and however slow the rate (a queue of 20 workers at ``--rate 0.05`` is
    400 s of waiting). A small burst is allowed (1/20 of a second's worth, at least one
    request): a whole second's worth at start would double the first second's rate,
    which is exactly what a gateway's limit punishes.
    """

    def __init__(self, rate: float, control: RunControl) -> None:
        if not rate > 0:
            raise ValueError(f"a rate must be above 0, not {rate!r}")
        self._control = control
        self._interval = 1.0 / rate
        #: How far ahead of now the schedule may run without waiting (the burst).
        self._slack = (max(1.0, rate / 20.0) - 1.0) * self._interval
        #: When the next request is due (``time.monotonic()``), were none early.
        self._due = 0.0

    async def acquire(self) -> None:
        """Wait for this request's turn; :class:`Stopped` if the run stops first."""
        now = time.monotonic()
        due = max(self._due, now)
        self._due = due + self._interval
        await self._control.sleep(due - self._slack - now)

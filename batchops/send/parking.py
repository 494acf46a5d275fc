"""Parking: tickets whose operation may still land wait aside while the run goes on.

An answer that was lost (a timeout, a dropped connection, the gateway's "backend timeout")
does not say whether ITSM applied the operation, and ITSM may apply it minutes later: the
gateway gives up after 30 s, ITSM's worker runs on until its own hard timeout. So such a
ticket is *parked*: its row gives its sending slot back (the run's other tickets go on
meanwhile), and the ticket is read back until it shows the operation's end state, or
until the operation can no longer land (``--server-timeout`` after the request left);
only then may an unchanged ticket be sent again (:mod:`.delivery` decides).

Reads of parked tickets are batched: one ``get_tickets`` (through
:func:`.precheck.read_statuses`, which falls back to single reads where the app may not
call it) reads every ticket parked at the time, every few seconds. When nothing else is
left to send, the run says how many tickets it still waits for, and for how long.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from batchops.errors import FatalAnswerError
from batchops.i18n import _, ngettext
from batchops.itsm import Transport
from batchops.stops import RunControl, Stopped

from .precheck import read_statuses

#: Seconds between two batched reads of the parked tickets.
READ_EVERY_S = 2.0
#: Seconds between two "still waiting" notices once nothing else is left to send.
COUNTDOWN_EVERY_S = 15.0


class ParkingLot:
    """The run's sending slots, and the batched read-back of parked tickets."""

    def __init__(
        self,
        transport: Transport,
        control: RunControl,
        concurrency: int,
        *,
        notice: Callable[[str], None] | None = None,
        read_every_s: float = READ_EVERY_S,
    ) -> None:
        self._transport = transport
        self._control = control
        self._concurrency = concurrency
        self._notice = notice or (lambda text: None)
        self._read_every_s = read_every_s
        #: Requests in flight at once: a parked ticket gives its slot back.
        self.slots = asyncio.Semaphore(max(1, concurrency))
        #: sn → the futures of the rows waiting for its next read, and their deadlines.
        self._waiting: dict[str, list[asyncio.Future[tuple[str | None, str]]]] = {}
        self._deadlines: dict[str, float] = {}
        self._reader: asyncio.Task[None] | None = None
        #: Parked tickets waiting for a sending slot again: workers give theirs up
        #: between chains while there are any.
        self.returning = 0
        #: Set once every row not parked is done: from then on the run says what it waits for.
        self.rest_done = False
        self._last_notice = 0.0
        #: Tickets parked so far (for the summary).
        self.parked_count = 0

    @property
    def parked_now(self) -> int:
        """Tickets parked at this moment, read back until their operation shows."""
        return len(self._deadlines)

    def parked_left_s(self) -> float:
        """Seconds until the last parked ticket's operation can no longer land (0: none)."""
        if not self._deadlines:
            return 0.0
        return max(0.0, max(self._deadlines.values()) - time.monotonic())

    @contextlib.asynccontextmanager
    async def parked(self, sn: str, deadline: float) -> AsyncIterator[None]:
        """Give the sending slot back while ``sn`` waits (until ``deadline``, monotonic)."""
        self.parked_count += 1
        self._deadlines[sn] = max(deadline, self._deadlines.get(sn, 0.0))
        try:
            async with self.slot_given_back():
                yield
        finally:
            self._deadlines.pop(sn, None)

    @contextlib.asynccontextmanager
    async def slot_given_back(self) -> AsyncIterator[None]:
        """Give the sending slot back while waiting (for a read-back, for the first
        request's answer): a slot held by a waiter could be the one the awaited needs."""
        self.slots.release()
        try:
            yield
        finally:
            if not self._control.stopping:
                # Stopping, nothing is sent any more: waiting for a slot could only delay
                # the end (the worker's own release then leaves one slot over, unused).
                self.returning += 1
                try:
                    await self.slots.acquire()
                finally:
                    self.returning -= 1

    async def status(self, sn: str) -> tuple[str | None, str]:
        """``sn``'s status at the next batched read, or None and why it could not be read."""
        future: asyncio.Future[tuple[str | None, str]] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(sn, []).append(future)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.ensure_future(self._read_loop())
        try:
            return await self._control.run(_wait(future))
        finally:
            if not future.done():
                future.cancel()

    async def _read_loop(self) -> None:
        try:
            while self._waiting:
                await self._control.sleep(self._read_every_s)
                self._countdown()
                asked, self._waiting = self._waiting, {}
                await self._read(asked)
        except asyncio.CancelledError:
            self._fail_all(Stopped())
            raise
        except Exception as exc:
            # A fatal answer, or a stop: every row waiting for this read gets it.
            self._fail_all(exc)

    async def _read(self, asked: dict[str, list[asyncio.Future[tuple[str | None, str]]]]) -> None:
        try:
            checked = await read_statuses(
                self._transport,
                list(asked),
                concurrency=self._concurrency,
                # No retries within a read: the parked ticket is read again next round.
                retries=1,
                prove_absent=set(asked),
                control=self._control,
            )
        except FatalAnswerError as exc:
            # Reads refused (permission, authentication): the tickets cannot be read back,
            # which makes their rows unknown at the deadline; it is the next operation's
            # answer that stops the run if nothing can succeed.
            why = _("ticket reads refused: {message}").format(
                message=getattr(exc.answer, "message", exc)
            )
            for futures in asked.values():
                _resolve(futures, (None, why))
            return
        except Exception as exc:
            for futures in asked.values():
                _settle(futures, exc)
            raise
        unlisted = _("ITSM does not list the ticket")
        for sn, futures in asked.items():
            status = checked.statuses.get(sn)
            why = "" if status else checked.unreadable.get(sn, unlisted)
            for future in futures:
                if not future.done():
                    future.set_result((status, why))

    def _countdown(self) -> None:
        """Once the rest is done, say (now and then) what the run still waits for."""
        now = time.monotonic()
        if not self.rest_done or not self._deadlines:
            return
        if now - self._last_notice < COUNTDOWN_EVERY_S:
            return
        self._last_notice = now
        left = max(0.0, max(self._deadlines.values()) - now)
        count = len(self._deadlines)
        self._notice(
            ngettext(
                "waiting for {count} ticket whose answer was lost: each is read back until "
                "its operation shows or can no longer land (at most {left} more)",
                "waiting for {count} tickets whose answer was lost: each is read back until "
                "its operation shows or can no longer land (at most {left} more)",
                count,
            ).format(count=count, left=_minutes(left))
        )

    def _fail_all(self, exc: Exception) -> None:
        waiting, self._waiting = self._waiting, {}
        for futures in waiting.values():
            _settle(futures, exc)

    async def close(self) -> None:
        """Stop reading (the run is over)."""
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


async def _wait(future: asyncio.Future[tuple[str | None, str]]) -> tuple[str | None, str]:
    return await future


def _resolve(
    futures: list[asyncio.Future[tuple[str | None, str]]], value: tuple[str | None, str]
) -> None:
    for future in futures:
        if not future.done():
            future.set_result(value)


def _settle(futures: list[asyncio.Future[tuple[str | None, str]]], exc: Exception) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(exc)


def _minutes(seconds: float) -> str:
    whole = int(seconds + 0.5)
    return f"{whole // 60}:{whole % 60:02d}"

"""The one door every request of a run passes: stop switch, outage gate, rate, and the
gateway's rate-limit pause (:class:`ThrottledTransport`).

It sits apart from the pool that builds it (:mod:`.pool`) and the row sender that uses it
(:mod:`.delivery`), so both import it and not each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from batchops.i18n import _
from batchops.itsm import Answer, Transport
from batchops.model import Row
from batchops.stops import RateLimit, RunControl, Stop, StopKind

from .outage import OutageGuard


class ThrottledTransport:
    """Every request of a run passes here: stop switch, outage gate, rate, rate-limit pause.

    No request leaves once the run is stopping, none while an outage holds the gate, and
    every request, operation or read, takes its turn from one :class:`RateLimit`, so
    ``--rate`` caps the whole run. Every one of these waits ends at once at a stop. When
    any answer says the gateway is rate-limiting, every worker waits
    out the pause, not only the one that got the answer; a pause longer than
    ``--outage-wait`` stops the run instead (resumable), so a hostile ``Retry-After``
    cannot hang it.
    """

    def __init__(
        self,
        inner: Transport,
        rate: float | None,
        control: RunControl,
        guard: OutageGuard | None = None,
        *,
        longest_pause_s: float = 60.0,
        notice: Callable[[str], None] | None = None,
        events: Callable[[str, Mapping[str, object]], None] | None = None,
    ) -> None:
        self.inner = inner
        self._events = events
        self._control = control
        self._guard = guard
        self._longest_pause_s = longest_pause_s
        self._notice = notice or (lambda text: None)
        self._limiter = RateLimit(rate, control) if rate else None
        self._pause_until = 0.0
        #: Rate-limit pauses the gateway asked for (for the heartbeat and the summary).
        self.throttled = 0

    @property
    def pause_left_s(self) -> float:
        """Seconds left of the rate-limit pause the gateway asked for (0: none)."""
        return max(0.0, self._pause_until - time.monotonic())

    async def _gate(self) -> None:
        if self._guard is not None:
            await self._guard.admit()
        delay = self._pause_until - time.monotonic()
        if delay > 0:
            await self._control.sleep(delay)
        if self._limiter is not None:
            await self._limiter.acquire()
        # Whatever was waited for, a stop requested meanwhile wins: nothing leaves after it.
        self._control.check()

    def _observe(self, sn: str, answer: Answer) -> Answer:
        if answer.rate_limited:
            pause = answer.retry_after_s if answer.retry_after_s is not None else 1.0
            if time.monotonic() >= self._pause_until:
                self._throttled(answer, pause)
            self.check_wait(pause, _("the gateway's rate limit"))
            if pause >= 5 and time.monotonic() + pause > self._pause_until + 1:
                self._notice(
                    _("rate limited: every request waits {seconds} s, as the gateway asked").format(
                        seconds=f"{pause:.0f}"
                    )
                )
            self._pause_until = max(self._pause_until, time.monotonic() + pause)
        if self._guard is not None:
            self._guard.observe(sn, answer)
        return answer

    def _throttled(self, answer: Answer, pause: float) -> None:
        """A new rate-limit pause: named once as a ``throttled`` event, not per answer
        (every worker in flight may get the same 429)."""
        self.throttled += 1
        if self._events is not None:
            self._events(
                "throttled",
                {
                    "http_status": answer.http_status,
                    "code": answer.code,
                    "retry_after_s": answer.retry_after_s,
                    "pause_s": round(pause, 3),
                    "message": answer.message,
                },
            )

    def check_wait(self, seconds: float, why: str) -> None:
        """Stop the run (resumable) rather than wait longer than ``--outage-wait``."""
        if seconds > self._longest_pause_s:
            self._control.request_stop(
                Stop(
                    StopKind.OUTAGE,
                    _(
                        "{who} asked to wait {seconds} s before the next request, longer "
                        "than --outage-wait {limit} s"
                    ).format(who=why, seconds=f"{seconds:.0f}", limit=f"{self._longest_pause_s:g}"),
                    _("wait, or raise --outage-wait"),
                )
            )
            self._control.check()

    async def operate(self, row: Row) -> Answer:
        return (await self.operate_timed(row))[0]

    async def operate_timed(self, row: Row) -> tuple[Answer, float]:
        """The answer, and when (``time.monotonic()``) the request left, after every wait."""
        left_at = time.monotonic()
        if self._limiter is None and left_at >= self._pause_until and not self._paused():
            # Nothing to wait for (the common case): no gate coroutine for every row.
            self._control.check()
        else:
            await self._gate()
            left_at = time.monotonic()
        return self._observe(row.sn, await self.inner.operate(row)), left_at

    def _paused(self) -> bool:
        return self._guard is not None and self._guard.paused

    async def read_ticket_status(self, sn: str) -> Answer:
        await self._gate()
        return self._observe(sn, await self.inner.read_ticket_status(sn))

    async def read_tickets(self, sns: Iterable[str]) -> Answer:
        await self._gate()
        return await self.inner.read_tickets(sns)

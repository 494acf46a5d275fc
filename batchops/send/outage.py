"""Outages: when ITSM (or the way to it) fails for every ticket, pause the run as a whole.

A refused connection, a DNS or TLS failure is never one ticket's problem: the first one
closes the gate. Timeouts, dropped connections and 5xx answers can be one ticket's
trouble, so they close it only when they come from several tickets in a row with no
real answer between them. While the gate is closed no request leaves (workers wait in
:meth:`OutageGuard.admit`), one prober reads the server with backoff, and row retries
are not spent. If the server answers again within ``--outage-wait`` the gate opens and
the run goes on by itself; otherwise the run stops, resumable (:class:`StopKind.OUTAGE`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from batchops.i18n import _
from batchops.itsm import Answer
from batchops.stops import RunControl, Stop, StopKind, Stopped

#: Environmental failures from this many different tickets, with no real answer between
#: them, make an outage (a single ticket's repeated 5xx does not).
DISTINCT_TICKETS = 3
_PROBE_FIRST_S = 0.5
_PROBE_MAX_S = 5.0

Probe = Callable[[str], Awaitable[Answer]]
Notice = Callable[[str], None]


def _clock(wall: float) -> str:
    return datetime.fromtimestamp(wall).strftime("%H:%M:%S")


class OutageGuard:
    """Tells an outage from one ticket's trouble, holds every request during it, probes."""

    def __init__(
        self, probe: Probe, control: RunControl, wait_s: float, notice: Notice | None = None
    ) -> None:
        self._probe = probe
        self._control = control
        self.wait_s = wait_s
        self._notice = notice or (lambda text: None)
        self._open = asyncio.Event()
        self._open.set()
        self._streak: set[str] = set()
        self._prober: asyncio.Task[None] | None = None
        #: Outages seen, and seconds spent waiting them out (for the summary).
        self.count = 0
        self.waited_s = 0.0
        #: When (``time.monotonic()``) the outage being waited out gives up; 0 when none.
        self.deadline = 0.0

    @property
    def paused(self) -> bool:
        return not self._open.is_set()

    async def admit(self) -> None:
        """Return when a request may leave; raise :class:`Stopped` if the run stops first."""
        if self._open.is_set():
            self._control.check()
            return
        await self._control.wait_for(self._open)

    def observe(self, sn: str, answer: Answer) -> None:
        """Learn from one answer (of an operation or a read) about ticket ``sn``."""
        if not answer.environmental:
            self._streak.clear()
            return
        if self.paused:
            return
        self._streak.add(sn)
        if not answer.connected or len(self._streak) >= DISTINCT_TICKETS:
            self._begin(sn, answer.network or answer.message)

    def _begin(self, sn: str, cause: str) -> None:
        self._open.clear()
        self._streak.clear()
        self.count += 1
        self._prober = asyncio.ensure_future(self._wait_out(sn, cause))

    async def _wait_out(self, sn: str, cause: str) -> None:
        since_wall, since = time.time(), time.monotonic()
        deadline = self.deadline = since + self.wait_s
        self._notice(
            _(
                "ITSM unreachable since {time} ({cause}); no request leaves while "
                "it is; waiting up to {seconds} s for it to come back"
            ).format(time=_clock(since_wall), cause=cause, seconds=f"{self.wait_s:g}")
        )
        delay = _PROBE_FIRST_S
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                await self._control.sleep(min(delay, left))
                delay = min(delay * 2, _PROBE_MAX_S)
                answer = await self._probe(sn)
                if not answer.environmental:
                    waited = time.monotonic() - since
                    self.waited_s += waited
                    self._notice(
                        _("ITSM answers again after {seconds} s; carrying on").format(
                            seconds=f"{waited:.0f}"
                        )
                    )
                    self._open.set()
                    return
                cause = answer.network or answer.message
        except Stopped:
            return
        self.waited_s += time.monotonic() - since
        self._control.request_stop(
            Stop(
                StopKind.OUTAGE,
                _(
                    "ITSM unreachable since {time} ({cause}), longer than --outage-wait {seconds} s"
                ).format(time=_clock(since_wall), cause=cause, seconds=f"{self.wait_s:g}"),
                _("check that ITSM is up and reachable from here (VPN, proxy, --base-url)"),
            )
        )

    async def close(self) -> None:
        """Stop probing (the run is over)."""
        if self._prober is not None and not self._prober.done():
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)

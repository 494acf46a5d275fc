"""One row's life: attempts, retries, read-back, and UNSUSPEND's confirmation.

"Can batchops ever suspend a ticket twice?" is answered here. A row's request is sent
again only when it certainly did not run:

- answers that were certainly not applied (connect failure, 429, 503) are retried with
  exponential backoff and jitter, honouring ``Retry-After``;
- answers that may have been applied (timeouts, lost connections, 1306201, 502/504,
  1650xxx) are never blindly resent: the ticket is read back first, no sooner than the
  gateway's backend time (``--server-timeout``) after the request left. Reached →
  success; unchanged → send again; anything else → ``unknown``. So SUSPEND is never
  resent unread, which keeps the server's double-suspend bug from firing;
- every UNSUSPEND that answered success is confirmed by a read: a ticket stuck in
  SUSPENDED by an earlier double suspend is reported ``failed``, not ``success``;
- a row that was "sending" when an earlier run died is settled the same way
  (:meth:`RowSender.settle_in_doubt`) before anything is resent.

Which rows are sent, and in what order, is the executor's (:mod:`batchops.send.pool`);
whether a row need be sent at all is the ticket rules' (:mod:`batchops.send.tickets`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from batchops.aio import Backoff, retrying
from batchops.clock import LocalClock
from batchops.i18n import _, ngettext
from batchops.itsm import Answer, Verdict
from batchops.model import Action, Outcome, Row, Status
from batchops.settings import SendPolicy
from batchops.stops import RunControl, Stopped

from .outage import OutageGuard
from .parking import ParkingLot
from .throttle import ThrottledTransport
from .tickets import ReadBack, judge_readback

#: A status read is tried this many times before the ticket counts as unreadable.
READ_TRIES = 3
#: Answers after which a read (or a send) may succeed when tried again.
_UNSURE = (Verdict.RETRY, Verdict.AMBIGUOUS)

BeforeSend = Callable[[Row, int, str | None], Awaitable[None]]


def status_of(answer: Answer) -> str | None:
    """The ticket status a successful read carries, if any."""
    data = answer.data
    if answer.verdict is Verdict.SUCCESS and isinstance(data, dict):
        status = data.get("current_status")
        return str(status) if status else None
    return None


@dataclass(slots=True)
class Step:
    """The result of one attempt: a final outcome, or a reason to try again."""

    answer: Answer
    attempts: int
    outcome: Outcome | None = None

    @property
    def again(self) -> bool:
        return self.outcome is None


class FatalAnswer(Exception):
    """An answer after which nothing else can succeed either (auth, service off)."""

    def __init__(self, answer: Answer, attempts: int) -> None:
        super().__init__(answer.message)
        self.answer = answer
        self.attempts = attempts


class RowSender:
    """Sends one row until it has an outcome, reading the ticket back where in doubt."""

    def __init__(
        self,
        transport: ThrottledTransport,
        policy: SendPolicy,
        control: RunControl,
        outage: OutageGuard,
        parking: ParkingLot,
        before_send: BeforeSend,
    ) -> None:
        self.transport = transport
        self.policy = policy
        self.control = control
        self.outage = outage
        self.parking = parking
        self._before_send = before_send
        #: When a row finished, as the report shows it (one clock for the whole run).
        self.now = LocalClock()
        self._send_backoff = Backoff(policy.backoff_initial_s, policy.backoff_max_s, jitter_s=1.0)
        self._read_backoff = Backoff(0.5, policy.backoff_max_s)

    async def send(self, row: Row, before: str | None) -> Step:
        """Attempts until an outcome, with backoff; an outage is waited out at the gate.

        While ITSM is unreachable no attempt leaves (every request waits at the outage
        gate), so an outage costs each row in flight one attempt, not ``retries`` of them.
        Raises :class:`FatalAnswer` (nothing else can succeed), :class:`Stopped` (with
        ``in_doubt`` when the request may have landed) or a checkpoint error (the
        "sending" mark could not be committed, so the request did not leave).
        """

        # Most rows are done in one attempt: that one goes without the retry loop's
        # closures and frames (a few µs of every row at the rates the benchmark reaches).
        step = await self._attempt(row, 1, before)
        if step.again and self.policy.retries > 0:
            await self._wait_after(1, step)
            step, _unused = await retrying(
                lambda number: self._attempt(row, number, before),
                again=lambda step: step.again,
                tries=self.policy.retries + 1,
                wait=self._wait_after,
                first=2,
            )
        return self._exhausted(row, step) if step.again else step

    async def _wait_after(self, attempts: int, step: Step) -> None:
        """Backoff before the next attempt, never shorter than the server asked for."""
        if self.outage.paused and step.answer.environmental:
            return  # the gate holds the next attempt until ITSM answers again
        asked = step.answer.retry_after_s or 0.0
        # Only a wait the server asks for can be unreasonable; our backoff never is.
        self.transport.check_wait(asked, _("the server"))
        await self.control.sleep(max(self._send_backoff.delay(attempts), asked))

    def _exhausted(self, row: Row, step: Step) -> Step:
        tries = ngettext("{count} attempt", "{count} attempts", step.attempts).format(
            count=step.attempts
        )
        answer = step.answer
        if answer.environmental or answer.rate_limited:
            # ITSM never refused this row: the way to it failed. Not done, never "failed".
            step.outcome = Outcome(
                Status.PENDING,
                answer.code,
                _("not applied after {tries} ({message}); the next run sends it again").format(
                    tries=tries, message=answer.message
                ),
            )
        elif answer.verdict is Verdict.AMBIGUOUS:
            # Only reached when every read-back found the ticket unchanged.
            message = _("gave up after {tries}: {message}")
            step.outcome = Outcome(
                Status.UNKNOWN, answer.code, message.format(tries=tries, message=answer.message)
            )
        else:
            message = _("not applied, gave up after {tries}: {message}")
            step.outcome = Outcome(
                Status.FAILED, answer.code, message.format(tries=tries, message=answer.message)
            )
        return step

    async def _attempt(self, row: Row, attempt: int, before: str | None) -> Step:
        self.control.check()
        await self._before_send(row, attempt, before)
        answer, left_at = await self.transport.operate_timed(row)
        verdict = answer.verdict
        if verdict is Verdict.SUCCESS:
            return Step(answer, attempt, await self._confirm_success(row, answer))
        if verdict is Verdict.REJECTED:
            return Step(answer, attempt, Outcome(Status.FAILED, answer.code, answer.message))
        if verdict is Verdict.FATAL:
            raise FatalAnswer(answer, attempt)
        if verdict is Verdict.RETRY:
            return Step(answer, attempt)
        try:
            return await self._resolve_ambiguous(row, answer, attempt, before, left_at)
        except Stopped:
            raise Stopped(in_doubt=True) from None

    async def _confirm_success(self, row: Row, answer: Answer) -> Outcome:
        if row.action is not Action.UNSUSPEND or not self.policy.confirm_unsuspend:
            return Outcome(Status.SUCCESS, answer.code, _("success"))
        try:
            status, why = await self.read_status(row.sn)
        except Stopped:
            status, why = None, _("the run stopped first")
        if status == "SUSPENDED":
            return Outcome(
                Status.FAILED,
                answer.code,
                _(
                    "ITSM answered success but the ticket is still SUSPENDED: it was suspended "
                    "twice before (ITSM double-suspend bug), so UNSUSPEND cannot resume it; "
                    "ask an ITSM administrator to repair the ticket's state"
                ),
            )
        if status is None:
            message = _("success (not confirmed: {why})").format(why=why)
            return Outcome(Status.SUCCESS, answer.code, message)
        message = _("success (ticket now {status})").format(status=status)
        return Outcome(Status.SUCCESS, answer.code, message)

    async def _resolve_ambiguous(
        self, row: Row, answer: Answer, attempt: int, before: str | None, left_at: float
    ) -> Step:
        """Park the ticket: read it back until its end state shows or the request can no
        longer land; only then is an unchanged ticket sent again.

        "Unchanged" proves nothing while the request may still be running on the server:
        the gateway gives up after 30 s, but ITSM may apply the operation minutes later.
        Only ``--server-timeout`` after the request left, plus ``--readback-delay``, does
        an unchanged ticket mean the action did not run.
        """
        deadline = left_at + self.policy.server_timeout_s + self.policy.readback_delay_s
        judged, status, why = await self._parked_read_back(row.sn, row.action, before, deadline)
        if judged is ReadBack.REACHED:
            message = _("success, confirmed by read-back (ticket {status}) after: {message}")
            message = message.format(status=status, message=answer.message)
            return Step(answer, attempt, Outcome(Status.SUCCESS, 0, message))
        if judged is ReadBack.UNCHANGED:
            # Read only once the request could no longer land, and unchanged: it did not
            # run, so it is safe to send again.
            return Step(answer, attempt)
        if judged is ReadBack.UNCLEAR:
            return Step(answer, attempt, _unexplained(row, answer, status))
        return Step(answer, attempt, _not_read_back(answer, why))

    async def _parked_read_back(
        self, sn: str, action: Action, before: str | None, deadline: float
    ) -> tuple[ReadBack | None, str, str]:
        """Read ticket ``sn`` back while parked, judged for ``action``: (verdict, status, why).

        REACHED and UNCLEAR are final whenever read; UNCHANGED only once read at or after
        ``deadline`` (monotonic); None: still unreadable at the deadline (``why``). An
        unreadable ticket is read on until the deadline: this row must not end, and free
        the ticket's later rows (a SUSPEND among them), while its request may still land.
        """
        async with self.parking.parked(sn, deadline):
            while True:
                read_at = time.monotonic()
                status, why = await self.parking.status(sn)
                if status is not None:
                    judged = judge_readback(action, status, before)
                    if judged is not ReadBack.UNCHANGED or read_at >= deadline:
                        return judged, status, ""
                elif read_at >= deadline:
                    return None, "", why

    async def settle_in_doubt(self, row: Row, before: str | None, sent_at: float) -> Outcome | None:
        """Settle a row that was being sent when an earlier run died: None means send it.

        Its request left at ``sent_at`` (wall clock) and may still land: the ticket is
        parked like any lost answer, never blindly resent: end state reached → success;
        ticket where it was once the request can no longer land → send again; anything
        else → unknown. The run's other tickets go on meanwhile.
        """
        deadline = self._landing_deadline(sent_at)
        judged, status, why = await self._parked_read_back(row.sn, row.action, before, deadline)
        if judged is None:
            return Outcome(
                Status.UNKNOWN,
                None,
                _(
                    "was being sent when an earlier run stopped and could not be read back "
                    "({why}); check the ticket in ITSM, then use --retry-failed"
                ).format(why=why),
                finished_at=self.now(),
            )
        if judged is ReadBack.REACHED:
            return Outcome(
                Status.SUCCESS,
                0,
                _(
                    "success, confirmed by read-back after an interrupted run (ticket {status})"
                ).format(status=status),
                finished_at=self.now(),
            )
        if judged is ReadBack.UNCHANGED:
            return None
        return Outcome(
            Status.UNKNOWN,
            None,
            _(
                "was being sent when an earlier run stopped; read-back found the ticket "
                "{status}, which this {action} does not explain: check it in ITSM"
            ).format(status=status, action=row.action.value),
            finished_at=self.now(),
        )

    async def await_landing(
        self, sn: str, action: Action, before: str | None, sent_at: float
    ) -> tuple[str | None, str]:
        """Wait (parked) until ``action``, which an earlier run sent to ``sn`` at
        ``sent_at`` and never settled, shows or can no longer land; the ticket's status
        then, or None and why it could not be read."""
        judged, status, why = await self._parked_read_back(
            sn, action, before, self._landing_deadline(sent_at)
        )
        return (None, why) if judged is None else (status, "")

    def _landing_deadline(self, sent_at: float) -> float:
        """When (monotonic) a request that left at ``sent_at`` (wall clock) can no longer land."""
        policy = self.policy
        lands_until = sent_at + policy.server_timeout_s + policy.readback_delay_s
        return time.monotonic() + max(0.0, lands_until - time.time())

    async def read_status(self, sn: str) -> tuple[str | None, str]:
        """The ticket's current status, or None and why it could not be read.

        Reads wait at the outage gate like every request, so a read during an outage is
        made once ITSM is back (or the run stops: :class:`Stopped`).
        """

        async def read(number: int) -> Answer:
            return await self.transport.read_ticket_status(sn)

        async def wait(number: int, answer: Answer) -> None:
            if self.outage.paused and answer.environmental:
                return  # the gate holds the next read until ITSM answers again
            await self.control.sleep(self._read_backoff.delay(number))

        answer, _unused = await retrying(
            read,
            again=lambda a: status_of(a) is None and a.verdict in _UNSURE,
            tries=READ_TRIES,
            wait=wait,
        )
        status = status_of(answer)
        if status is not None:
            return status, ""
        return None, answer.message or _("no status in the answer")


def _not_read_back(answer: Answer, why: str) -> Outcome:
    return Outcome(
        Status.UNKNOWN,
        answer.code,
        _(
            "{message}; the ticket could not be read back ({why}): check it in ITSM "
            "before running this row again"
        ).format(message=answer.message, why=why),
    )


def _unexplained(row: Row, answer: Answer, status: str) -> Outcome:
    return Outcome(
        Status.UNKNOWN,
        answer.code,
        _(
            "{message}; read-back found the ticket {status}, which this "
            "{action} does not explain: check it in ITSM"
        ).format(message=answer.message, status=status, action=row.action.value),
    )

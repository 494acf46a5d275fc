"""Sending many rows: the worker pool, per-ticket ordering, rate, the first request
alone, and the failure brake.

The executor turns rows into outcomes through a small :class:`Transport` interface (the
real one is :class:`batchops.itsm.client.ItsmClient`; tests may pass an in-memory fake):

- a fixed pool of ``concurrency`` workers pulls *chains* — all rows of one ``sn``, in
  file order — so rows of one ticket never overlap (ITSM takes no lock) and memory does
  not grow with the number of rows;
- a ticket's rows are walked with what is known of it (:class:`TicketTrack`): a row
  whose work is already done is skipped, and a SUSPEND is never sent blind;
- the very first request goes out alone: if the credentials are wrong the run stops
  after one request, not after ``concurrency`` of them (unless a read, such as the
  pre-check, already proved them: then the first round trip is not spent alone);
- every request passes one :class:`ThrottledTransport` (stop switch, outage gate, rate);
- one row's life — attempts, retries, read-back, UNSUSPEND's confirmation — is
  :class:`batchops.send.delivery.RowSender`'s;
- a fatal answer, the failure brake or :meth:`Executor.request_stop` stop the intake of
  new rows; rows not done stay ``pending`` (and can be resumed).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from batchops.aio import all_or_none
from batchops.errors import CheckpointError
from batchops.i18n import N_, _
from batchops.itsm import Answer, Transport
from batchops.model import Action, Outcome, Row, Status
from batchops.settings import FailureBrake as FailureBrake
from batchops.settings import SendPolicy
from batchops.stops import RunControl, Stop, StopKind, Stopped

from .delivery import BeforeSend, FatalAnswer, RowSender
from .outage import OutageGuard
from .parking import ParkingLot
from .throttle import ThrottledTransport
from .tickets import TicketTrack, skip_reason

#: A row's message when the run stopped while its lost answer was still to be read back.
_IN_DOUBT = N_(
    "in doubt: its answer was lost and the run stopped before the ticket could be read back; "
    "the next run reads it back before anything is resent"
)

#: Tickets that may wait parked at once, beyond the ones sending, before the intake of new
#: tickets waits too (each parked ticket keeps one idle worker).
_PARKING_ROOM = 200


@dataclass(frozen=True, slots=True)
class InDoubt:
    """A row that was in flight when an earlier run died: read back before any resend."""

    #: The ticket's status before the request left, when it was known.
    before: str | None
    #: When the request left (wall clock): it may land until the landing window after.
    sent_at: float
    attempts: int
    #: The action in flight when it is not the row's own (an earlier run of another sheet
    #: sent it): the row waits until it shows or can no longer land, then goes as usual.
    action: Action | None = None


@dataclass(slots=True)
class ExecutionResult:
    stop: Stop | None = None
    fatal: Answer | None = None


OnOutcome = Callable[[Row, Outcome], None]


async def _no_hook(row: Row, attempt: int, before: str | None) -> None:
    return None


class Executor:
    """Sends rows through a transport under a :class:`SendPolicy`.

    ``on_outcome`` receives every row's final outcome; ``on_in_doubt`` the rows whose
    request may have reached ITSM when the run stopped before it could be read back (the
    checkpoint keeps those "sending", so the next run reads them back).
    """

    def __init__(
        self,
        transport: Transport,
        policy: SendPolicy,
        *,
        on_outcome: OnOutcome,
        on_in_doubt: OnOutcome | None = None,
        before_send: BeforeSend = _no_hook,
        statuses: Mapping[str, str] | None = None,
        control: RunControl | None = None,
        notice: Callable[[str], None] | None = None,
        row_number: Callable[[int], int] | None = None,
        events: Callable[[str, Mapping[str, object]], None] | None = None,
    ) -> None:
        self.control = control or RunControl()
        #: A data row's number in the user's sheet (blank rows counted), for messages.
        self._row_number = row_number or (lambda index: index + 2)
        self.outage = OutageGuard(self._probe, self.control, policy.outage_wait_s, notice=notice)
        self.transport = ThrottledTransport(
            transport,
            policy.rate,
            self.control,
            self.outage,
            longest_pause_s=policy.outage_wait_s,
            notice=notice,
            events=events,
        )
        self._direct = transport
        self.policy = policy
        self._on_outcome = on_outcome
        self._on_in_doubt = on_in_doubt or on_outcome
        #: Ticket statuses from the pre-check; None when the pre-check was skipped.
        self._statuses = statuses
        self.parking = ParkingLot(
            self.transport,
            self.control,
            policy.concurrency,
            notice=notice,
            read_every_s=max(0.05, min(2.0, policy.readback_delay_s)),
        )
        self.rows = RowSender(
            self.transport, policy, self.control, self.outage, self.parking, before_send
        )
        #: Rows that were in flight when an earlier run died, by index: settled first.
        self.in_doubt: Mapping[int, InDoubt] = {}
        self._fatal: Answer | None = None
        self._gate = asyncio.Event()
        self._probing = False
        self._answered = 0
        self._failures = 0
        self._streak = 0

    async def _probe(self, sn: str) -> Answer:
        # The outage prober reads past the closed gate (it is what opens it).
        return await self._direct.read_ticket_status(sn)

    def waiting(self) -> tuple[str, float] | None:
        """What every request waits for now, and for at most how many seconds more:
        ``outage`` (ITSM unreachable), ``rate_limit`` (the gateway's pause), ``parked``
        (nothing left to send but tickets being read back); None while rows go out."""
        if self.outage.paused:
            return "outage", max(0.0, self.outage.deadline - time.monotonic())
        pause = self.transport.pause_left_s
        if pause > 0:
            return "rate_limit", pause
        if self.parking.rest_done and self.parking.parked_now:
            return "parked", self.parking.parked_left_s()
        return None

    def credentials_accepted(self) -> None:
        """The server took our credentials on a read: the first request need not go alone."""
        self._gate.set()

    @property
    def stopping(self) -> bool:
        return self.control.stopping

    def request_stop(self, stop: Stop) -> None:
        """Take no new rows and send nothing more; rows not finished stay pending."""
        self.control.request_stop(stop)
        self._gate.set()

    async def run(
        self,
        chains: Iterable[Sequence[int] | np.ndarray],
        row_of: Callable[[int], Row],
        statuses: Mapping[str, str] | None = None,
    ) -> ExecutionResult:
        """Send the chains; ``statuses`` (the latest pre-check) replaces the one given before."""
        known = statuses if statuses is not None else self._statuses
        feed = iter(chains)
        # Up to ``concurrency`` requests go at once (the parking lot's slots); the workers
        # beyond that take over the slots of parked tickets, so a ticket whose answer was
        # lost costs the run nothing while it waits.
        workers = _PARKING_ROOM + max(1, self.policy.concurrency)
        try:
            await all_or_none(self._worker(feed, row_of, known) for __ in range(workers))
        finally:
            await self.parking.close()
            await self.outage.close()
        return ExecutionResult(self.control.stop, self._fatal)

    async def _worker(
        self,
        feed: Iterator[Sequence[int] | np.ndarray],
        row_of: Callable[[int], Row],
        statuses: Mapping[str, str] | None,
    ) -> None:
        # A worker holds its sending slot from chain to chain (handing it over at every
        # chain cost a wake-up of a waiting worker per row); it gives it back when its
        # ticket parks, and between chains when a parked ticket wants one again.
        slots = self.parking.slots
        await slots.acquire()
        try:
            while not self.stopping:
                chain = next(feed, None)
                if chain is None:
                    self.parking.rest_done = True
                    return
                await self._run_chain(chain, row_of, statuses)
                if self.parking.returning:
                    slots.release()
                    await slots.acquire()
        finally:
            slots.release()

    async def _run_chain(
        self,
        chain: Sequence[int] | np.ndarray,
        row_of: Callable[[int], Row],
        statuses: Mapping[str, str] | None,
    ) -> None:
        """Send one ticket's rows in file order, skipping those whose work is already done.

        The ticket's status is tracked through the chain from the pre-check (when there
        was one) and from this run's own outcomes (always), so a SUSPEND is never sent
        to a ticket this run knows to be SUSPENDED, with or without ``--no-precheck``.
        """
        track: TicketTrack | None = None
        for index in chain:
            if self.stopping:
                return
            row = row_of(int(index))
            if track is None:
                track = TicketTrack(statuses.get(row.sn) if statuses else None)
            doubt = self.in_doubt.get(int(index))
            if doubt is not None:
                done = await self._first_settle(row, doubt, track)
                if done is None:
                    return
                if done:
                    continue
            if track.uncertain and row.action is Action.SUSPEND:
                # An earlier row of this ticket ended unknown: never SUSPEND blind.
                try:
                    status, why = await self.rows.read_status(row.sn)
                except Stopped:
                    return
                if status is None:
                    self._emit(row, self._not_sent_blind(why))
                    continue
                track.status, track.uncertain = status, False
            reason = skip_reason(row.action, track.status)
            if reason:
                skipped = Outcome(Status.SKIPPED, None, reason, 0, finished_at=self.rows.now())
                self._emit(row, skipped)
                continue
            if self._gate.is_set():
                outcome = await self._deliver(row, track.status)
            else:
                outcome = await self._deliver_behind_gate(row, track.status)
            if outcome is None:
                return
            track.advance(row.action, outcome.status)
            if outcome.status is Status.PENDING:
                # Not done: the ticket's later rows must wait for it, in file order.
                self._hold_rest(chain, index, row_of)
                return

    async def _first_settle(self, row: Row, doubt: InDoubt, track: TicketTrack) -> bool | None:
        """An operation of an earlier run may still land on ``row``'s ticket: settle it
        before anything is sent. True: the row is done; False: go on with it; None: the
        run stopped first (the row stays in doubt)."""
        if doubt.action is not None and doubt.action is not row.action:
            try:
                status, _unused = await self.rows.await_landing(
                    row.sn, doubt.action, doubt.before, doubt.sent_at
                )
            except Stopped:
                return None
            # The ticket as it is now, once nothing more can land on it (None: unread,
            # and then a SUSPEND is not sent blind).
            track.status, track.uncertain = status, status is None
            return False
        settled = await self._settle(row, doubt)
        if settled is None:
            return None
        if settled.status is not Status.PENDING:
            track.advance(row.action, settled.status)
            return True
        if doubt.before is not None:
            # Read back unchanged: the ticket is where it was before the request.
            track.status = doubt.before
        return False

    async def _settle(self, row: Row, doubt: InDoubt) -> Outcome | None:
        """A row in flight when an earlier run died: its outcome by read-back, or PENDING
        (send it now), or None (the run stopped first; it stays in doubt)."""
        try:
            outcome = await self.rows.settle_in_doubt(row, doubt.before, doubt.sent_at)
        except Stopped:
            return None
        if outcome is None:
            return Outcome(Status.PENDING, None, "")
        outcome = dataclasses.replace(outcome, attempts=doubt.attempts)
        self._emit(row, outcome)
        self._brake(outcome.status)
        return outcome

    def _hold_rest(
        self, chain: Sequence[int] | np.ndarray, index: int, row_of: Callable[[int], Row]
    ) -> None:
        later = [int(i) for i in chain if int(i) > int(index)]
        if later:
            wait = Outcome(
                Status.PENDING,
                None,
                _(
                    "not sent: row {row} of the same ticket is not done "
                    "yet, and a ticket's rows go in file order"
                ).format(row=self._row_number(int(index))),
            )
            for i in later:
                self._emit(row_of(i), wait)

    def _not_sent_blind(self, why: str) -> Outcome:
        # Skipped, not failed: ITSM never saw (let alone refused) this row. Not pending
        # either: the same command would then send it without knowing the ticket's state
        # (with --no-precheck nothing reads it first). --retry-failed sends it again right
        # after the unknown row it waits for, in file order.
        return Outcome(
            Status.SKIPPED,
            None,
            _(
                "not sent: an earlier row of this ticket ended unknown and the ticket could not "
                "be read back ({why}), and a SUSPEND of a ticket that is already SUSPENDED "
                "leaves it stuck; check the ticket in ITSM, then --retry-failed sends that row "
                "and this one again, in order"
            ).format(why=why),
            0,
            finished_at=self.rows.now(),
        )

    async def _deliver_behind_gate(self, row: Row, before: str | None) -> Outcome | None:
        """Until the credentials are known good, the first request goes alone.

        The others wait for its answer, so wrong credentials cost one request, not one per
        worker (a fatal answer stops the run, then opens the gate).
        """
        if not self._probing:
            self._probing = True
            try:
                return await self._deliver(row, before)
            finally:
                self._gate.set()
        try:
            async with self.parking.slot_given_back():
                await self.control.wait_for(self._gate)
        except Stopped:
            return None
        if self.stopping:
            return None
        return await self._deliver(row, before)

    async def _deliver(self, row: Row, before: str | None) -> Outcome | None:
        started = time.perf_counter()
        try:
            step = await self.rows.send(row, before)
        except CheckpointError as exc:
            # The "sending" mark could not be committed, so the request did not leave:
            # stop at once (the checkpoint can no longer vouch for what was sent).
            self.request_stop(Stop(StopKind.CHECKPOINT, str(exc)))
            why = _("stopped before sending: {error}").format(error=exc)
            self._emit(row, Outcome(Status.PENDING, None, why))
            return None
        except FatalAnswer as fatal:
            self._fatal = fatal.answer
            self.request_stop(Stop(StopKind.FATAL, fatal.answer.message))
            self._emit(
                row,
                Outcome(
                    Status.PENDING,
                    fatal.answer.code,
                    _("not done, run stopped: {message}").format(message=fatal.answer.message),
                    fatal.attempts,
                    fatal.answer.http_status,
                    fatal.answer.request_id,
                    None,
                    "",
                ),
            )
            return None
        except Stopped as stopped:
            if stopped.in_doubt:
                self._on_in_doubt(
                    row,
                    Outcome(Status.PENDING, None, _(_IN_DOUBT)),
                )
            else:
                self._emit(row, Outcome(Status.PENDING, None, _("not sent: the run stopped first")))
            return None
        outcome = step.outcome
        assert outcome is not None
        elapsed = (time.perf_counter() - started) * 1000.0
        outcome = Outcome(
            outcome.status,
            outcome.code,
            outcome.message,
            step.attempts,
            step.answer.http_status,
            step.answer.request_id,
            round(elapsed, 1),
            self.rows.now() if outcome.status is not Status.PENDING else "",
        )
        self._emit(row, outcome)
        self._brake(outcome.status)
        return outcome

    def _emit(self, row: Row, outcome: Outcome) -> None:
        self._on_outcome(row, outcome)

    def _brake(self, status: Status) -> None:
        if status in (Status.FAILED, Status.UNKNOWN):
            self._failures += 1
            self._streak += 1
        elif status is Status.SUCCESS:
            self._streak = 0
        else:
            return
        self._answered += 1
        reason = self.policy.brake.tripped(self._answered, self._failures, self._streak)
        if reason:
            self.request_stop(
                Stop(
                    StopKind.BRAKE,
                    _("failure brake: {reason}").format(reason=reason),
                    _("look at the failed rows' reasons before sending more"),
                )
            )

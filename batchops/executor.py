"""Sending: concurrency, per-ticket ordering, retries, read-back, rate and the failure brake.

The executor turns rows into outcomes through a small :class:`Transport` interface (the
real one is :class:`batchops.client.ItsmClient`; tests may pass an in-memory fake). It
owns the rules that make a bulk run safe against the real server:

- a fixed pool of ``concurrency`` workers pulls *chains* — all rows of one ``sn``, in
  file order — so rows of one ticket never overlap (ITSM takes no lock) and memory does
  not grow with the number of rows;
- the very first request goes out alone: if the credentials are wrong the run stops
  after one request, not after ``concurrency`` of them (unless a read, such as the
  pre-check, already proved them: then the first round trip is not spent alone);
- answers that were certainly not applied (connect failure, 429, 503) are retried with
  exponential backoff and jitter (tenacity), honouring ``Retry-After``;
- answers that may have been applied (timeouts, lost connections, 1306201, 502/504,
  1650xxx) are never blindly resent: the ticket is read back first. Reached → success;
  unchanged → resend; anything else → ``unknown``. SUSPEND is never resent unread,
  which keeps the server's double-suspend bug from firing;
- every UNSUSPEND that answered success is confirmed by a read: a ticket stuck in
  SUSPENDED by an earlier double suspend is reported ``failed``, not ``success``;
- a fatal answer, the failure brake or :meth:`Executor.request_stop` stop the intake of
  new rows; rows not done stay ``pending`` (and can be resumed).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from .client import Answer, Transport, Verdict
from .errors import CheckpointError
from .model import FINAL_TICKET_STATUSES, Action, Outcome, Row, Status
from .outage import OutageGuard
from .planner import END_STATUS, TicketTrack, skip_reason
from .stops import RunControl, Stop, StopKind, Stopped

if TYPE_CHECKING:
    from aiolimiter import AsyncLimiter


@dataclass(frozen=True, slots=True)
class FailureBrake:
    """When to stop sending because too many rows fail.

    ``count``: stop once more than this many rows failed. ``ratio``: stop once the share
    of failed rows passes it, after ``min_answered`` rows. ``consecutive``: stop after this
    many failures in a row with no success between them (catches a systematic error early).
    """

    count: int | None = None
    ratio: float | None = None
    consecutive: int | None = 50
    min_answered: int = 20

    @classmethod
    def parse(cls, text: str) -> FailureBrake:
        text = text.strip()
        if text.lower() in {"off", "none"} or text == "":
            return cls(consecutive=None)
        if text.endswith("%"):
            ratio = float(text[:-1]) / 100.0
            if not 0.0 <= ratio <= 1.0:
                raise ValueError("a percentage between 0% and 100%")
            if ratio == 0.0:
                # "No failure is acceptable": the first one stops, as with a count of 0.
                return cls(count=0, consecutive=None)
            return cls(ratio=ratio, consecutive=None)
        count = int(text)
        if count < 0:
            raise ValueError("a count of 0 or more")
        return cls(count=count, consecutive=None)

    def tripped(self, answered: int, failures: int, streak: int) -> str | None:
        if self.count is not None and failures > self.count:
            return f"{failures} rows failed, more than --max-failures {self.count}"
        ratio_applies = self.ratio is not None and answered >= self.min_answered
        if ratio_applies and failures / answered > (self.ratio or 0.0):
            return (
                f"{failures} of {answered} answered rows failed, more than "
                f"--max-failures {self.ratio:.0%}"
            )
        if self.consecutive is not None and streak >= self.consecutive:
            return f"the last {streak} answered rows all failed"
        return None


@dataclass(frozen=True, slots=True)
class SendPolicy:
    concurrency: int = 20
    retries: int = 8
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    readback_delay_s: float = 1.0
    #: How long after it left a request can still land (the gateway's backend timeout).
    server_timeout_s: float = 30.0
    #: How long to wait out an outage, or a rate-limit pause, before stopping the run.
    outage_wait_s: float = 60.0
    rate: float | None = None
    brake: FailureBrake = field(default_factory=FailureBrake)
    confirm_unsuspend: bool = True


@dataclass(slots=True)
class ExecutionResult:
    stop: Stop | None = None
    fatal: Answer | None = None


def backoff_delay(attempt: int, initial_s: float, max_s: float) -> float:
    """Seconds to wait after the ``attempt``-th try: exponential, up to 1 s of jitter, capped.

    ``min(initial_s * 2 ** (attempt - 1) + uniform(0, 1), max_s)``, the strategy of
    tenacity's ``wait_exponential_jitter``, computed here because that class's
    arguments changed between tenacity releases (``initial`` warns since 9.1).
    """
    try:
        exponential = initial_s * 2.0 ** max(0, attempt - 1)
    except OverflowError:
        exponential = max_s
    return max(0.0, min(exponential + random.uniform(0.0, 1.0), max_s))


_clock: list[object] = [-1, ""]


def _now() -> str:
    """The local time to the second, as the report shows it; formatted once a second,
    not once a row (formatting a timestamp per row was 2% of a fast run)."""
    second = int(time.time())
    if _clock[0] != second:
        _clock[0] = second
        _clock[1] = datetime.fromtimestamp(second, UTC).astimezone().isoformat()
    return str(_clock[1])


def chains_by_sn(sns: np.ndarray, indices: np.ndarray) -> Iterator[np.ndarray]:
    """Yield the given row indices grouped by ticket, each group in file order.

    Groups come in the order of each ticket's first row. Views into one sorted array,
    made lazily, so a million single-row tickets cost two integer arrays, not a million
    lists.
    """
    if len(indices) == 0:
        return
    codes, _ = _factorize(sns[indices])
    order = np.argsort(codes, kind="stable")
    grouped = indices[order]
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    start = 0
    for stop in bounds.tolist():
        yield grouped[start:stop]
        start = stop
    yield grouped[start:]


def _factorize(values: np.ndarray) -> tuple[np.ndarray, int]:
    import pandas as pd

    codes, uniques = pd.factorize(values)
    return np.asarray(codes), len(uniques)


class ThrottledTransport:
    """Every request of a run passes here: stop switch, outage gate, rate, rate-limit pause.

    No request leaves once the run is stopping, none while an outage holds the gate, and
    every request, operation or read, takes a token from one limiter, so ``--rate`` caps
    the whole run. When any answer says the gateway is rate-limiting, every worker waits
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
    ) -> None:
        self.inner = inner
        self._control = control
        self._guard = guard
        self._longest_pause_s = longest_pause_s
        self._notice = notice or (lambda text: None)
        # A small bucket: a burst of a whole second's worth at start would double the
        # first second's rate, which is exactly what a gateway limit punishes.
        self._limiter: AsyncLimiter | None = None
        if rate:
            from aiolimiter import AsyncLimiter  # only --rate needs it

            bucket = max(1.0, rate / 20.0)
            self._limiter = AsyncLimiter(bucket, bucket / rate)
        self._pause_until = 0.0

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
            self.check_wait(pause, "the gateway's rate limit")
            if pause >= 5 and time.monotonic() + pause > self._pause_until + 1:
                self._notice(
                    f"rate limited: every request waits {pause:.0f} s, as the gateway asked"
                )
            self._pause_until = max(self._pause_until, time.monotonic() + pause)
        if self._guard is not None:
            self._guard.observe(sn, answer)
        return answer

    def check_wait(self, seconds: float, why: str) -> None:
        """Stop the run (resumable) rather than wait longer than ``--outage-wait``."""
        if seconds > self._longest_pause_s:
            self._control.request_stop(
                Stop(
                    StopKind.OUTAGE,
                    f"{why} asked to wait {seconds:.0f} s before the next request, longer "
                    f"than --outage-wait {self._longest_pause_s:g} s",
                    "wait, or raise --outage-wait",
                )
            )
            self._control.check()

    async def operate(self, row: Row) -> Answer:
        return (await self.operate_timed(row))[0]

    async def operate_timed(self, row: Row) -> tuple[Answer, float]:
        """The answer, and when (``time.monotonic()``) the request left, after every wait."""
        await self._gate()
        left_at = time.monotonic()
        return self._observe(row.sn, await self.inner.operate(row)), left_at

    async def read_ticket_status(self, sn: str) -> Answer:
        await self._gate()
        return self._observe(sn, await self.inner.read_ticket_status(sn))

    async def read_tickets(self, sns: Iterable[str]) -> Answer:
        await self._gate()
        return await self.inner.read_tickets(sns)


@dataclass(slots=True)
class _Step:
    """The result of one attempt: a final outcome, or a reason to try again."""

    answer: Answer
    attempts: int
    outcome: Outcome | None = None

    @property
    def again(self) -> bool:
        return self.outcome is None


class _FatalAnswer(Exception):
    def __init__(self, answer: Answer, attempts: int) -> None:
        super().__init__(answer.message)
        self.answer = answer
        self.attempts = attempts


OnOutcome = Callable[[Row, Outcome], None]
BeforeSend = Callable[[Row, int, str | None], Awaitable[None]]


async def _no_hook(row: Row, attempt: int, before: str | None) -> None:
    return None


def _status_of(answer: Answer) -> str | None:
    data = answer.data
    if answer.verdict is Verdict.SUCCESS and isinstance(data, dict):
        status = data.get("current_status")
        return str(status) if status else None
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
        )
        self._direct = transport
        self.policy = policy
        self._on_outcome = on_outcome
        self._on_in_doubt = on_in_doubt or on_outcome
        self._before_send = before_send
        #: Ticket statuses from the pre-check; None when the pre-check was skipped.
        self.statuses = statuses
        self._fatal: Answer | None = None
        self._gate = asyncio.Event()
        self._probing = False
        self._answered = 0
        self._failures = 0
        self._streak = 0

    async def _probe(self, sn: str) -> Answer:
        # The outage prober reads past the closed gate (it is what opens it).
        return await self._direct.read_ticket_status(sn)

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
        self, chains: Iterable[Sequence[int] | np.ndarray], row_of: Callable[[int], Row]
    ) -> ExecutionResult:
        feed = iter(chains)
        workers = [
            asyncio.create_task(self._worker(feed, row_of), name=f"batchops-worker-{n}")
            for n in range(max(1, self.policy.concurrency))
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await self.outage.close()
        return ExecutionResult(self.control.stop, self._fatal)

    async def _worker(
        self, feed: Iterator[Sequence[int] | np.ndarray], row_of: Callable[[int], Row]
    ) -> None:
        for chain in feed:
            if self.stopping:
                return
            await self._run_chain(chain, row_of)

    async def _run_chain(
        self, chain: Sequence[int] | np.ndarray, row_of: Callable[[int], Row]
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
                track = TicketTrack(self.statuses.get(row.sn) if self.statuses else None)
            if track.uncertain and row.action is Action.SUSPEND:
                # An earlier row of this ticket ended unknown: never SUSPEND blind.
                try:
                    status, why = await self.read_status(row.sn)
                except Stopped:
                    return
                if status is None:
                    self._emit(row, self._not_sent_blind(why))
                    self._brake(Status.FAILED)
                    continue
                track.status, track.uncertain = status, False
            reason = skip_reason(row.action, track.status)
            if reason:
                self._emit(row, Outcome(Status.SKIPPED, None, reason, 0, finished_at=_now()))
                continue
            outcome = await self._send_row(row, track.status)
            if outcome is None:
                return
            track.advance(row.action, outcome.status)
            if outcome.status is Status.PENDING:
                # Not done: the ticket's later rows must wait for it, in file order.
                self._hold_rest(chain, index, row_of)
                return

    def _hold_rest(
        self, chain: Sequence[int] | np.ndarray, index: int, row_of: Callable[[int], Row]
    ) -> None:
        later = [int(i) for i in chain if int(i) > int(index)]
        if later:
            wait = Outcome(
                Status.PENDING,
                None,
                f"not sent: row {self._row_number(int(index))} of the same ticket is not done "
                "yet, and a ticket's rows go in file order",
            )
            for i in later:
                self._emit(row_of(i), wait)

    @staticmethod
    def _not_sent_blind(why: str) -> Outcome:
        return Outcome(
            Status.FAILED,
            None,
            f"not sent: an earlier row left this ticket's state unknown and it could not be "
            f"read back ({why}); a SUSPEND of a ticket that is already SUSPENDED leaves it "
            "stuck, so check the ticket in ITSM, then use --retry-failed",
            0,
            finished_at=_now(),
        )

    async def _send_row(self, row: Row, before: str | None) -> Outcome | None:
        if not self._gate.is_set():
            if self._probing:
                try:
                    await self.control.wait_for(self._gate)
                except Stopped:
                    return None
                if self.stopping:
                    return None
            else:
                self._probing = True
                try:
                    return await self._deliver(row, before)
                finally:
                    self._gate.set()
        return await self._deliver(row, before)

    async def _deliver(self, row: Row, before: str | None) -> Outcome | None:
        started = time.perf_counter()
        try:
            step = await self._attempts(row, before)
        except CheckpointError as exc:
            # The "sending" mark could not be committed, so the request did not leave:
            # stop at once (the checkpoint can no longer vouch for what was sent).
            self.request_stop(Stop(StopKind.CHECKPOINT, str(exc)))
            self._emit(row, Outcome(Status.PENDING, None, f"stopped before sending: {exc}"))
            return None
        except _FatalAnswer as fatal:
            self._fatal = fatal.answer
            self.request_stop(Stop(StopKind.FATAL, fatal.answer.message))
            self._emit(
                row,
                Outcome(
                    Status.PENDING,
                    fatal.answer.code,
                    f"not done, run stopped: {fatal.answer.message}",
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
                    Outcome(
                        Status.PENDING,
                        None,
                        "in doubt: its answer was lost and the run stopped before the ticket "
                        "could be read back; the next run reads it back before anything is "
                        "resent",
                    ),
                )
            else:
                self._emit(row, Outcome(Status.PENDING, None, "not sent: the run stopped first"))
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
            _now() if outcome.status is not Status.PENDING else "",
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
                    f"failure brake: {reason}",
                    "look at the failed rows' reasons before sending more",
                )
            )

    async def _attempts(self, row: Row, before: str | None) -> _Step:
        """Attempts until an outcome, with backoff; an outage is waited out at the gate.

        While ITSM is unreachable no attempt leaves (every request waits at the outage
        gate), so an outage costs each row in flight one attempt, not ``retries`` of them.
        """
        attempt = 0
        while True:
            attempt += 1
            step = await self._attempt(row, attempt, before)
            if not step.again:
                return step
            if attempt > self.policy.retries:
                return self._exhausted(row, step)
            if self.outage.paused and step.answer.environmental:
                continue  # the gate holds the next attempt until ITSM answers again
            # Only a wait the server asks for can be unreasonable; our backoff never is.
            self.transport.check_wait(step.answer.retry_after_s or 0.0, "the server")
            await self.control.sleep(self._wait_after(attempt, step))

    def _wait_after(self, attempts: int, step: _Step) -> float:
        """Backoff before the next attempt, never shorter than the server asked for."""
        backoff = backoff_delay(attempts, self.policy.backoff_initial_s, self.policy.backoff_max_s)
        return max(backoff, step.answer.retry_after_s or 0.0)

    def _exhausted(self, row: Row, step: _Step) -> _Step:
        tries = f"{step.attempts} attempt{'s' if step.attempts != 1 else ''}"
        answer = step.answer
        if answer.environmental or answer.rate_limited:
            # ITSM never refused this row: the way to it failed. Not done, never "failed".
            step.outcome = Outcome(
                Status.PENDING,
                answer.code,
                f"not applied after {tries} ({answer.message}); the next run sends it again",
            )
        elif answer.verdict is Verdict.AMBIGUOUS:
            # Only reached when every read-back found the ticket unchanged.
            step.outcome = Outcome(
                Status.UNKNOWN, answer.code, f"gave up after {tries}: {answer.message}"
            )
        else:
            step.outcome = Outcome(
                Status.FAILED, answer.code, f"not applied, gave up after {tries}: {answer.message}"
            )
        return step

    async def _attempt(self, row: Row, attempt: int, before: str | None) -> _Step:
        self.control.check()
        await self._before_send(row, attempt, before)
        answer, left_at = await self.transport.operate_timed(row)
        verdict = answer.verdict
        if verdict is Verdict.SUCCESS:
            return _Step(answer, attempt, await self._confirm_success(row, answer))
        if verdict is Verdict.REJECTED:
            return _Step(answer, attempt, Outcome(Status.FAILED, answer.code, answer.message))
        if verdict is Verdict.FATAL:
            raise _FatalAnswer(answer, attempt)
        if verdict is Verdict.RETRY:
            return _Step(answer, attempt)
        try:
            return await self._resolve_ambiguous(row, answer, attempt, before, left_at)
        except Stopped:
            raise Stopped(in_doubt=True) from None

    async def _confirm_success(self, row: Row, answer: Answer) -> Outcome:
        if row.action is not Action.UNSUSPEND or not self.policy.confirm_unsuspend:
            return Outcome(Status.SUCCESS, answer.code, "success")
        try:
            status, why = await self.read_status(row.sn)
        except Stopped:
            status, why = None, "the run stopped first"
        if status == "SUSPENDED":
            return Outcome(
                Status.FAILED,
                answer.code,
                "ITSM answered success but the ticket is still SUSPENDED: it was suspended "
                "twice before (ITSM double-suspend bug), so UNSUSPEND cannot resume it; "
                "ask an ITSM administrator to repair the ticket's state",
            )
        if status is None:
            return Outcome(Status.SUCCESS, answer.code, f"success (not confirmed: {why})")
        return Outcome(Status.SUCCESS, answer.code, f"success (ticket now {status})")

    async def _resolve_ambiguous(
        self, row: Row, answer: Answer, attempt: int, before: str | None, left_at: float
    ) -> _Step:
        """Read the ticket back until its end state shows or the request can no longer land.

        "Unchanged" proves nothing while the request may still be running on the server:
        a backend slower than ``--timeout`` applies it later. Only after the gateway's
        backend time (``--server-timeout``) since it left, plus ``--readback-delay``, does
        an unchanged ticket mean the action did not run, and only then is it resent.
        """
        deadline = left_at + self.policy.server_timeout_s + self.policy.readback_delay_s
        pause = self.policy.readback_delay_s
        while True:
            if pause > 0:
                # Let a request that is still running on the server finish before reading.
                await self.control.sleep(pause)
            status, why = await self.read_status(row.sn)
            if status is None:
                return _Step(
                    answer,
                    attempt,
                    Outcome(
                        Status.UNKNOWN,
                        answer.code,
                        f"{answer.message}; the ticket could not be read back ({why}): check "
                        "it in ITSM before running this row again",
                    ),
                )
            judged = judge_readback(row.action, status, before)
            if judged == "reached":
                return _Step(
                    answer,
                    attempt,
                    Outcome(
                        Status.SUCCESS,
                        0,
                        f"success, confirmed by read-back (ticket {status}) after: "
                        f"{answer.message}",
                    ),
                )
            if judged != "unchanged":
                return _Step(
                    answer,
                    attempt,
                    Outcome(
                        Status.UNKNOWN,
                        answer.code,
                        f"{answer.message}; read-back found the ticket {status}, which this "
                        f"{row.action.value} does not explain: check it in ITSM",
                    ),
                )
            left = deadline - time.monotonic()
            if left <= 0:
                return _Step(answer, attempt)  # it can no longer land: safe to send again
            pause = min(left, max(0.2, min(2.0, pause * 2 or 0.5)))

    async def resolve_in_doubt(self, row: Row, before: str | None) -> Outcome | None:
        """Settle a row that was being sent when an earlier run died: None means send it.

        The ticket is read back, never blindly resent: end state reached → success;
        ticket where it was → send again; anything else → unknown. The caller waits until
        the dead run's last request can no longer land before asking.
        """
        status, why = await self.read_status(row.sn)
        if status is None:
            return Outcome(
                Status.UNKNOWN,
                None,
                f"was being sent when an earlier run stopped and could not be read back "
                f"({why}); check the ticket in ITSM, then use --retry-failed",
                finished_at=_now(),
            )
        judged = judge_readback(row.action, status, before)
        if judged == "reached":
            return Outcome(
                Status.SUCCESS,
                0,
                f"success, confirmed by read-back after an interrupted run (ticket {status})",
                finished_at=_now(),
            )
        if judged == "unchanged":
            return None
        return Outcome(
            Status.UNKNOWN,
            None,
            f"was being sent when an earlier run stopped; read-back found the ticket "
            f"{status}, which this {row.action.value} does not explain: check it in ITSM",
            finished_at=_now(),
        )

    async def read_status(self, sn: str) -> tuple[str | None, str]:
        """The ticket's current status, or None and why it could not be read.

        Reads wait at the outage gate like every request, so a read during an outage is
        made once ITSM is back (or the run stops: :class:`Stopped`).
        """
        why = ""
        tries = 0
        while tries < 3:
            answer = await self.transport.read_ticket_status(sn)
            status = _status_of(answer)
            if status is not None:
                return status, ""
            why = answer.message or "no status in the answer"
            if answer.verdict not in (Verdict.RETRY, Verdict.AMBIGUOUS):
                break
            tries += 1
            if self.outage.paused and answer.environmental:
                continue  # the gate holds the next read until ITSM answers again
            if tries < 3:
                await self.control.sleep(min(self.policy.backoff_max_s, 0.5 * 2 ** (tries - 1)))
        return None, why


def judge_readback(action: Action, status: str, before: str | None) -> str:
    """Compare a ticket read back after an unclear answer with what the action does.

    ``reached``: the action's end state is there. ``unchanged``: the ticket is where it
    was, so the action did not run and may be sent again. ``unclear``: anything else.
    """
    if action is Action.UNSUSPEND:
        if status == "SUSPENDED":
            return "unchanged"
        if status in FINAL_TICKET_STATUSES:
            return "unclear"
        return "reached"
    if status == END_STATUS[action]:
        return "reached"
    if before is not None:
        return "unchanged" if status == before else "unclear"
    return "unclear" if status in FINAL_TICKET_STATUSES else "unchanged"

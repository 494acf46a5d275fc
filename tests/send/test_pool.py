"""The executor over an in-memory transport, where only the client side's timing and
decisions matter: backoff, the shared rate-limit pause, read-back before any resend, the
failure brake, the pre-check's fallback, the status table.

The same behaviour end to end, against the stand-in server, is in ``test_safety.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchops.errors import FatalAnswerError
from batchops.itsm.transport import Answer, Verdict
from batchops.model import Action, Outcome, Row, Status
from batchops.send.pool import Executor, FailureBrake, SendPolicy
from batchops.send.precheck import StatusTable, read_statuses

# --------------------------------------------------------------------------- executor, in memory


class FakeTransport:
    """An in-memory ITSM: scripted answers per row, a log of (time, call, sn)."""

    def __init__(
        self,
        operate: Callable[[Row, int], Answer],
        status: Callable[[str, int], str | None] = lambda sn, n: None,
        delay_s: float = 0.0,
    ) -> None:
        self._operate = operate
        self._status = status
        self._delay = delay_s
        self.log: list[tuple[float, str, str]] = []
        self.answered: list[tuple[float, str, Answer]] = []
        self._sends: Counter[str] = Counter()
        self._reads: Counter[str] = Counter()

    async def operate(self, row: Row) -> Answer:
        self.log.append((time.monotonic(), "operate", row.sn))
        self._sends[row.sn] += 1
        await asyncio.sleep(self._delay)
        answer = self._operate(row, self._sends[row.sn])
        self.answered.append((time.monotonic(), row.sn, answer))
        return answer

    async def read_ticket_status(self, sn: str) -> Answer:
        self.log.append((time.monotonic(), "read", sn))
        self._reads[sn] += 1
        status = self._status(sn, self._reads[sn])
        if status is None:
            return Answer(Verdict.RETRY, None, "server unavailable (HTTP 503)", 503)
        return Answer(Verdict.SUCCESS, 0, "success", 200, data={"current_status": status})

    async def read_tickets(self, sns: Any) -> Answer:
        # An ITSM without get_tickets: status reads fall back to one ticket at a time.
        return NO_GET_TICKETS

    def calls(self, kind: str, sn: str | None = None) -> list[float]:
        """When calls of one kind (for one sn) started."""
        return [t for t, k, s in self.log if k == kind and (sn is None or s == sn)]


OK = Answer(Verdict.SUCCESS, 0, "success", 200)
NO_GET_TICKETS = Answer(Verdict.REJECTED, 1306404, "component not found: get_tickets", 200)
LOST = Answer(Verdict.AMBIGUOUS, None, "no answer within 1 s (the action may have run)")


def execute(
    transport: FakeTransport,
    rows: Sequence[Row],
    policy: SendPolicy,
    statuses: dict[str, str] | None = None,
) -> dict[int, Outcome]:
    """Run rows (one chain per sn, file order) through an Executor; outcomes by row index."""
    outcomes: dict[int, Outcome] = {}
    chains: dict[str, list[int]] = {}
    for row in rows:
        chains.setdefault(row.sn, []).append(row.index)

    def record(row: Row, outcome: Outcome) -> None:
        outcomes[row.index] = outcome

    executor = Executor(transport, policy, on_outcome=record, statuses=statuses)
    asyncio.run(executor.run(list(chains.values()), lambda i: rows[i]))
    return outcomes


def row(index: int, sn: str, action: Action = Action.SUSPEND) -> Row:
    """A row processed by admin."""
    return Row(index, sn, "admin", action, "batch")


QUICK = SendPolicy(
    concurrency=2,
    retries=3,
    backoff_initial_s=0.01,
    backoff_max_s=0.02,
    readback_delay_s=0.0,
    # The fake applies nothing late: a lost request can no longer land a moment after it.
    server_timeout_s=0.2,
)


def test_backoff_honours_retry_after() -> None:
    """A RETRY answer's Retry-After is waited in full, even when the backoff is shorter."""
    hinted = Answer(Verdict.RETRY, None, "busy (HTTP 503)", 503, retry_after_s=0.4)

    def answer(r: Row, n: int) -> Answer:
        return hinted if n <= 2 else OK

    fake = FakeTransport(answer)
    outcomes = execute(fake, [row(0, "A")], QUICK)
    assert (outcomes[0].status, outcomes[0].attempts) == (Status.SUCCESS, 3)
    sends = fake.calls("operate")
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert len(gaps) == 2
    assert all(gap >= 0.39 for gap in gaps), gaps


def test_backoff_without_retry_after_is_the_policy_backoff() -> None:
    """With no hint, resends follow the (here tiny) exponential backoff, not a fixed second."""
    bare = Answer(Verdict.RETRY, None, "busy (HTTP 503)", 503)
    fake = FakeTransport(lambda r, n: bare if n <= 2 else OK)
    outcomes = execute(fake, [row(0, "A")], QUICK)
    assert outcomes[0].status is Status.SUCCESS
    sends = fake.calls("operate")
    assert sends[-1] - sends[0] < 0.3


def test_rate_limit_pauses_every_worker() -> None:
    """One rate-limited answer holds back the other workers' next requests too."""
    limited = Answer(
        Verdict.RETRY, 1642902, "rate limited", 429, rate_limited=True, retry_after_s=0.5
    )

    def answer(r: Row, n: int) -> Answer:
        return limited if r.sn == "B" and n == 1 else OK

    fake = FakeTransport(answer, delay_s=0.05)
    rows = [row(i, sn) for i, sn in enumerate("ABCDEF")]
    outcomes = execute(fake, rows, QUICK)
    assert {o.status for o in outcomes.values()} == {Status.SUCCESS}
    (t_limited,) = [t for t, sn, a in fake.answered if a is limited]
    later = [t for t in fake.calls("operate") if t > t_limited]
    assert later
    assert all(t >= t_limited + 0.45 for t in later), [t - t_limited for t in later]


def test_lost_suspend_with_unreadable_ticket_is_never_resent() -> None:
    """SUSPEND answer lost and the ticket cannot be read: unknown, sent exactly once, and
    only once the request could no longer land (reads go on until then)."""
    fake = FakeTransport(lambda r, n: LOST)
    outcomes = execute(fake, [row(0, "A")], QUICK, statuses={"A": "RUNNING"})
    assert outcomes[0].status is Status.UNKNOWN
    assert "could not be read back" in outcomes[0].message
    assert len(fake.calls("operate")) == 1
    reads, sent = fake.calls("read"), fake.calls("operate")[0]
    # Read before the window closed, and again once it had: only then may it end.
    assert reads[0] - sent < QUICK.server_timeout_s <= reads[-1] - sent


@pytest.mark.parametrize(
    ("read_back", "status", "sends"),
    [
        ("SUSPENDED", Status.SUCCESS, 1),
        ("RUNNING", Status.SUCCESS, 2),
        ("FINISHED", Status.UNKNOWN, 1),
    ],
    ids=["reached", "unchanged", "unclear"],
)
def test_lost_suspend_is_read_back_before_any_resend(
    read_back: str, status: Status, sends: int
) -> None:
    """Lost SUSPEND: reached → success; unchanged → one resend, after a read; else unknown."""
    fake = FakeTransport(
        lambda r, n: LOST if n == 1 else OK,
        status=lambda sn, n: read_back,
    )
    outcomes = execute(fake, [row(0, "A")], QUICK, statuses={"A": "RUNNING"})
    assert outcomes[0].status is status
    kinds = [kind for _, kind, _ in fake.log]
    assert kinds[:2] == ["operate", "read"]
    assert kinds.count("operate") == sends
    if read_back == "SUSPENDED":
        assert "confirmed by read-back" in outcomes[0].message


def test_after_an_unknown_row_the_next_suspend_reads_first() -> None:
    """A ticket left unknown is read again before a later SUSPEND row: SUSPENDED → skipped."""
    rows = [row(0, "A"), row(1, "A", Action.UNSUSPEND), row(2, "A")]

    def answer(r: Row, n: int) -> Answer:
        if r.action is Action.SUSPEND:
            return LOST
        return Answer(Verdict.REJECTED, 3900004, "抱歉，该单据不在挂起中，无法操作")

    # The read-backs fail (unknown) until the UNSUSPEND row went out; then the ticket
    # shows SUSPENDED after all.
    def status(sn: str, n: int) -> str | None:
        return "SUSPENDED" if len(fake.calls("operate")) >= 2 else None

    fake = FakeTransport(answer, status=status)
    outcomes = execute(fake, rows, QUICK, statuses={"A": "RUNNING"})
    assert outcomes[0].status is Status.UNKNOWN
    assert outcomes[2].status is Status.SKIPPED
    assert "already SUSPENDED" in outcomes[2].message
    assert len(fake.calls("operate")) == 2


def test_zero_percent_brake_stops_at_the_first_failure() -> None:
    """--max-failures 0% means no failure is acceptable, the same as 0 (not 'off')."""
    assert FailureBrake.parse("0%").tripped(1, 1, 1)
    assert FailureBrake.parse("0").tripped(1, 1, 1)
    assert FailureBrake.parse("off").tripped(1000, 1000, 1000) is None


class RefusingReads:
    """get_tickets refused; get_ticket_status slow, and fatal for one sn."""

    def __init__(self) -> None:
        self.reads: list[str] = []

    async def operate(self, row: Row) -> Answer:
        raise AssertionError("the pre-check never operates")

    async def read_tickets(self, sns: Any) -> Answer:
        return Answer(Verdict.FATAL, 1306403, "ESB: the app has no permission for this component")

    async def read_ticket_status(self, sn: str) -> Answer:
        self.reads.append(sn)
        if sn == "BAD":
            return Answer(Verdict.FATAL, None, "the server answered an HTML page with HTTP 200")
        await asyncio.sleep(0.02)
        return Answer(Verdict.SUCCESS, 0, "success", 200, data={"current_status": "RUNNING"})


def test_precheck_fallback_stops_every_reader_on_a_fatal_answer() -> None:
    """In the one-by-one pre-check, a fatal answer stops all readers, not just the one."""
    transport = RefusingReads()
    sns = ["BAD"] + [f"N{i}" for i in range(200)]

    async def go() -> int:
        with pytest.raises(FatalAnswerError, match="HTML"):
            await read_statuses(transport, sns, concurrency=4)
        at_stop = len(transport.reads)
        await asyncio.sleep(0.2)  # anything still running would go on reading
        return at_stop

    at_stop = asyncio.run(go())
    assert len(transport.reads) == at_stop
    assert at_stop <= 4 + 1


def test_after_an_unknown_row_an_unreadable_ticket_gets_no_suspend() -> None:
    """A ticket left unknown that still cannot be read: a later SUSPEND is not sent at all,
    and its row says so as ``skipped`` (ITSM never refused it), not ``failed``."""
    rows = [row(0, "A"), row(1, "A", Action.UNSUSPEND), row(2, "A")]

    def answer(r: Row, n: int) -> Answer:
        if r.action is Action.SUSPEND:
            return LOST
        return Answer(Verdict.REJECTED, 3900004, "抱歉，该单据不在挂起中，无法操作")

    fake = FakeTransport(answer)  # every read fails
    outcomes = execute(fake, rows, QUICK)
    assert [outcomes[i].status for i in range(3)] == [
        Status.UNKNOWN,
        Status.FAILED,
        Status.SKIPPED,
    ]
    assert outcomes[2].message.startswith("not sent: an earlier row of this ticket ended unknown")
    assert "--retry-failed sends that row and this one again" in outcomes[2].message
    assert outcomes[2].attempts == 0
    assert [r for _, kind, r in fake.log if kind == "operate"] == ["A", "A"]


@settings(max_examples=200, deadline=None)
@given(
    statuses=st.dictionaries(
        st.text(max_size=12),
        st.sampled_from(["RUNNING", "SUSPENDED", "FINISHED", "TERMINATED", "REVOKED"]),
        max_size=40,
    ),
    probes=st.lists(st.text(max_size=12), max_size=20),
)
def test_status_table_answers_as_the_dict_it_was_made_from(
    statuses: dict[str, str], probes: list[str]
) -> None:
    """The pre-check's compact table finds every ticket the dict has, and no other."""
    table = StatusTable(statuses)
    assert len(table) == len(statuses)
    assert dict(table) == statuses
    for sn in [*statuses, *probes]:
        assert table.get(sn) == statuses.get(sn)
        assert (sn in table) == (sn in statuses)

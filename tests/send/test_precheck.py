"""The pre-check's reads: get_tickets in chunks, a few at a time, and the fallback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import pytest

from batchops.errors import FatalAnswerError
from batchops.itsm.answers import CODE_TABLE
from batchops.itsm.transport import Answer, Verdict
from batchops.model import Row
from batchops.send.precheck import PRECHECK_CHUNK, PRECHECK_PARALLEL, read_statuses


class ChunkReads:
    """get_tickets answered by ``answer(call number, sns)``; records calls and overlap."""

    def __init__(self, answer: Callable[[int, list[str]], Answer | None] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.one_by_one: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._answer = answer

    async def operate(self, row: Row) -> Answer:
        raise AssertionError("the pre-check never operates")

    async def read_tickets(self, sns: Iterable[str]) -> Answer:
        wanted = list(sns)
        self.calls.append(wanted)
        number = len(self.calls)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
        finally:
            self.in_flight -= 1
        special = self._answer(number, wanted) if self._answer else None
        if special is not None:
            return special
        items = [{"sn": sn, "current_status": "RUNNING"} for sn in wanted]
        return Answer(Verdict.SUCCESS, 0, "success", 200, data={"items": items})

    async def read_ticket_status(self, sn: str) -> Answer:
        self.one_by_one.append(sn)
        return Answer(Verdict.SUCCESS, 0, "success", 200, data={"current_status": "SUSPENDED"})


def sns(count: int) -> list[str]:
    return [f"NO{i:07d}" for i in range(count)]


def test_many_tickets_are_read_a_chunk_a_call_several_calls_at_a_time() -> None:
    wanted = sns(4 * PRECHECK_CHUNK + 500)
    transport = ChunkReads()
    checked = asyncio.run(read_statuses(transport, wanted, concurrency=20))
    assert len(transport.calls) == 5
    assert all(len(call) <= PRECHECK_CHUNK for call in transport.calls)
    assert sorted(sn for call in transport.calls for sn in call) == wanted  # each sn once
    assert 1 < transport.most_in_flight <= PRECHECK_PARALLEL
    assert checked.reads == 5
    assert checked.method == "get_tickets"
    assert dict(checked.statuses) == dict.fromkeys(wanted, "RUNNING")
    assert transport.one_by_one == []


def test_the_precheck_never_reads_more_chunks_at_once_than_the_run_sends() -> None:
    transport = ChunkReads()
    asyncio.run(read_statuses(transport, sns(3 * PRECHECK_CHUNK), concurrency=1))
    assert transport.most_in_flight == 1
    assert len(transport.calls) == 3


def test_after_a_refused_chunk_no_further_chunk_is_asked_and_the_rest_go_one_by_one() -> None:
    """get_tickets refused (no permission): the tickets it did not answer are read singly,
    and what the chunks before it answered is kept."""
    wanted = sns(5 * PRECHECK_CHUNK)
    refused = Answer(Verdict.FATAL, 1306403, "ESB: the app has no permission for this component")

    def answer(call: int, chunk: list[str]) -> Answer | None:
        return refused if call >= 2 else None

    transport = ChunkReads(answer)
    checked = asyncio.run(read_statuses(transport, wanted, concurrency=1))
    assert len(transport.calls) == 2  # the first answered, the second refused, no more asked
    assert transport.one_by_one == wanted[PRECHECK_CHUNK:]
    assert checked.method == "get_ticket_status"
    assert "no permission" in checked.note
    statuses = dict(checked.statuses)
    assert statuses[wanted[0]] == "RUNNING"
    assert statuses[wanted[-1]] == "SUSPENDED"
    assert len(statuses) == len(wanted)


def test_an_authentication_refusal_of_any_chunk_stops_the_precheck() -> None:
    denied = Answer(Verdict.FATAL, 1306000, "app authentication failed")

    def answer(call: int, chunk: list[str]) -> Answer | None:
        return denied if call == 3 else None

    transport = ChunkReads(answer)
    with pytest.raises(FatalAnswerError, match="authentication failed"):
        asyncio.run(read_statuses(transport, sns(6 * PRECHECK_CHUNK), concurrency=20))
    assert transport.one_by_one == []


FATAL_CODES = sorted(c for c, rule in CODE_TABLE.items() if rule.verdict is Verdict.FATAL)


@pytest.mark.parametrize("code", [*FATAL_CODES, None])
def test_a_fatal_get_tickets_answer_stops_unless_the_table_says_this_api_only(
    code: int | None,
) -> None:
    """The code table's ``this_api_only`` column decides: a refusal of get_tickets alone
    (not granted, not found, switched off for this API) falls back to get_ticket_status;
    every other fatal answer, and one without a code, stops the pre-check at once."""
    refusal = Answer(Verdict.FATAL, code, "refused", 403 if code is None else 200)
    transport = ChunkReads(lambda call, chunk: refusal)
    wanted = sns(3)
    if code is not None and CODE_TABLE[code].this_api_only:
        checked = asyncio.run(read_statuses(transport, wanted, concurrency=1))
        assert checked.method == "get_ticket_status"
        assert transport.one_by_one == wanted
    else:
        with pytest.raises(FatalAnswerError, match="refused"):
            asyncio.run(read_statuses(transport, wanted, concurrency=1))
        assert transport.one_by_one == []


class SlowRefusalAmongMany(ChunkReads):
    """The third chunk is refused late, while others are in flight; single reads of every
    seventh ticket fail (no answer), the rest answer SUSPENDED."""

    async def read_tickets(self, sns: Iterable[str]) -> Answer:
        wanted = list(sns)
        if wanted[0] == sns_of_chunk(2)[0]:
            self.calls.append(wanted)
            await asyncio.sleep(0.05)
            return Answer(Verdict.RETRY, None, "HTTP 503 Service Unavailable", 503)
        return await super().read_tickets(wanted)

    async def read_ticket_status(self, sn: str) -> Answer:
        self.one_by_one.append(sn)
        if int(sn[2:]) % 7 == 0:
            return Answer(Verdict.RETRY, None, "no answer within 1 s", network="timeout")
        return Answer(Verdict.SUCCESS, 0, "success", 200, data={"current_status": "SUSPENDED"})


def sns_of_chunk(k: int) -> list[str]:
    return sns((k + 1) * PRECHECK_CHUNK)[k * PRECHECK_CHUNK :]


def test_every_ticket_is_read_or_named_unreadable_when_a_chunk_fails_midway() -> None:
    """Chunks answered before, during and after a late refusal all count; every ticket
    ends up with a status or among the unreadable, never silently absent."""
    wanted = sns(10 * PRECHECK_CHUNK)
    transport = SlowRefusalAmongMany()
    checked = asyncio.run(read_statuses(transport, wanted, concurrency=20, retries=0))
    statuses = dict(checked.statuses)
    assert set(statuses) | set(checked.unreadable) == set(wanted)
    assert not set(statuses) & set(checked.unreadable)
    assert all(statuses[sn] == "RUNNING" for call in transport.calls[:2] for sn in call)
    # The refused chunk's tickets were read one by one; those that failed are unreadable.
    assert set(sns_of_chunk(2)) <= set(transport.one_by_one)
    assert checked.unreadable["NO0002002"] == "no answer within 1 s"
    assert checked.method == "get_ticket_status"


def test_an_authentication_refusal_does_not_wait_for_the_other_chunks() -> None:
    """The refused chunk stops the others in flight at once instead of after their
    retries (nothing is sent meanwhile, but the person waits)."""
    denied = Answer(Verdict.FATAL, 1306000, "app authentication failed")
    slow = Answer(Verdict.RETRY, None, "HTTP 503", 503)

    def answer(call: int, chunk: list[str]) -> Answer | None:
        return denied if call == 1 else slow  # the others would retry for 3.5 s each

    transport = ChunkReads(answer)
    with pytest.raises(FatalAnswerError, match="authentication failed"):
        asyncio.run(read_statuses(transport, sns(4 * PRECHECK_CHUNK), concurrency=20))
    assert len(transport.calls) == 4  # one call each: no retry of the others was waited for


class OwnWayOfMatching(ChunkReads):
    """get_tickets matches sns regardless of case and lists the ticket under its own
    spelling; get_ticket_status knows "REQ1" (SUSPENDED) by any case, refuses "BUSY" with
    a business error, and does not know "GONE"."""

    async def read_tickets(self, sns: Iterable[str]) -> Answer:
        wanted = list(sns)
        self.calls.append(wanted)
        items = [{"sn": "REQ1", "current_status": "SUSPENDED"}] if "req1" in wanted else []
        items += [{"sn": s, "current_status": "RUNNING"} for s in wanted if s.startswith("NO")]
        return Answer(Verdict.SUCCESS, 0, "success", 200, data={"items": items})

    async def read_ticket_status(self, sn: str) -> Answer:
        self.one_by_one.append(sn)
        if sn.upper() == "REQ1":
            return Answer(Verdict.SUCCESS, 0, "success", 200, data={"current_status": "SUSPENDED"})
        if sn == "BUSY":
            return Answer(Verdict.REJECTED, 3900004, "接口异常，请检查请求参数: 系统繁忙")
        return Answer(Verdict.REJECTED, 3900022, "没有找到对应的单据")


def test_a_ticket_left_out_of_get_tickets_is_absent_only_if_itsm_does_not_know_it() -> None:
    """Left out of the list: asked singly. Its status counts when ITSM gives one; only
    "no such ticket" (3900022) makes it absent; any other refusal leaves it unreadable,
    so no SUSPEND is sent to it blind."""
    transport = OwnWayOfMatching()
    checked = asyncio.run(read_statuses(transport, ["NO1", "req1", "BUSY", "GONE"]))
    assert sorted(transport.one_by_one) == ["BUSY", "GONE", "req1"]
    assert checked.statuses["req1"] == "SUSPENDED"
    assert checked.statuses["NO1"] == "RUNNING"
    assert "GONE" not in checked.statuses and "GONE" not in checked.unreadable
    assert "BUSY" not in checked.statuses
    assert "系统繁忙" in checked.unreadable["BUSY"]
    assert checked.method == "get_tickets"


def test_only_the_tickets_a_suspend_would_go_to_are_proved_absent_singly() -> None:
    """A ticket left out of get_tickets costs a single read only when a SUSPEND would go
    to it: for the other actions ITSM's own "no such ticket" answer is harm enough."""
    transport = OwnWayOfMatching()
    checked = asyncio.run(
        read_statuses(transport, ["NO1", "req1", "BUSY", "GONE"], prove_absent={"req1"})
    )
    assert transport.one_by_one == ["req1"]
    assert checked.statuses["req1"] == "SUSPENDED"
    assert "GONE" not in checked.statuses and "BUSY" not in checked.unreadable


def test_seventy_thousand_distinct_statuses_from_get_tickets_are_all_kept() -> None:
    """A server may answer any status text: 70,000 different ones (more than a 16-bit
    table of status names holds) are each kept for their ticket, never an overflow."""
    wanted = sns(70_000)
    status_of = {sn: f"STATUS-{i}" for i, sn in enumerate(wanted)}

    def answer(number: int, asked: list[str]) -> Answer:
        items = [{"sn": sn, "current_status": status_of[sn]} for sn in asked]
        return Answer(Verdict.SUCCESS, 0, "success", 200, data={"items": items})

    checked = asyncio.run(read_statuses(ChunkReads(answer), wanted, concurrency=20))
    assert len(checked.statuses) == len(wanted)
    assert dict(checked.statuses) == status_of

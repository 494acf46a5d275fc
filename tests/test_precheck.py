"""The pre-check's reads: get_tickets in chunks, a few at a time, and the fallback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import pytest

from batchops.errors import FatalAnswerError
from batchops.model import Row
from batchops.precheck import PRECHECK_CHUNK, PRECHECK_PARALLEL, read_statuses
from batchops.transport import Answer, Verdict


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

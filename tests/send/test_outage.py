"""The outage guard (:mod:`batchops.send.outage`): what closes the gate, what opens it,
and that a long outage stops the run as OUTAGE instead of spending rows."""

from __future__ import annotations

import asyncio

import pytest

from batchops.itsm import Answer, Verdict
from batchops.send import outage
from batchops.send.outage import OutageGuard
from batchops.stops import RunControl, Stop, StopKind, Stopped

REFUSED = Answer(Verdict.RETRY, None, "", network="connection refused", connected=False)
TIMEOUT = Answer(Verdict.AMBIGUOUS, None, "", network="timeout")
BUSY = Answer(Verdict.RETRY, None, "HTTP 503", 503, server_error=True)
REAL = Answer(Verdict.REJECTED, 3900004, "抱歉，lisi无权操作该单据", 200)


async def _down(sn: str) -> Answer:
    return REFUSED


async def _up(sn: str) -> Answer:
    return REAL


def test_one_refused_connection_is_an_outage() -> None:
    """No connection at all is never one ticket's problem: the gate closes at once."""

    async def scenario() -> bool:
        guard = OutageGuard(_up, RunControl(), wait_s=10)
        guard.observe("T1", REFUSED)
        paused = guard.paused
        await guard.close()
        return paused

    assert asyncio.run(scenario())


def test_one_tickets_timeouts_are_not_an_outage_but_several_tickets_are() -> None:
    async def scenario() -> list[bool]:
        guard = OutageGuard(_up, RunControl(), wait_s=10)
        seen = []
        for _ in range(5):
            guard.observe("T1", TIMEOUT)
        seen.append(guard.paused)
        guard.observe("T2", BUSY)
        seen.append(guard.paused)
        guard.observe("T3", TIMEOUT)
        seen.append(guard.paused)
        await guard.close()
        return seen

    assert asyncio.run(scenario()) == [False, False, True]


def test_a_real_answer_between_breaks_the_streak() -> None:
    async def scenario() -> bool:
        guard = OutageGuard(_up, RunControl(), wait_s=10)
        for sn in ("T1", "T2"):
            guard.observe(sn, TIMEOUT)
        guard.observe("T9", REAL)
        guard.observe("T3", TIMEOUT)
        paused = guard.paused
        await guard.close()
        return paused

    assert not asyncio.run(scenario())


def test_the_gate_opens_when_the_server_answers_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outage, "_PROBE_FIRST_S", 0.01)
    notices: list[str] = []

    async def scenario() -> bool:
        guard = OutageGuard(_up, RunControl(), wait_s=10, notice=notices.append)
        guard.observe("T1", REFUSED)
        await asyncio.wait_for(guard.admit(), 5)
        await guard.close()
        return guard.paused

    assert asyncio.run(scenario()) is False
    assert "answers again" in notices[-1]


def test_a_long_outage_stops_the_run_as_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past --outage-wait, the run stops (resumable), and waiting workers leave as Stopped."""
    monkeypatch.setattr(outage, "_PROBE_FIRST_S", 0.01)

    async def scenario() -> Stop | None:
        control = RunControl()
        guard = OutageGuard(_down, control, wait_s=0.05)
        guard.observe("T1", REFUSED)
        with pytest.raises(Stopped):
            await asyncio.wait_for(guard.admit(), 5)
        await guard.close()
        return control.stop

    stop = asyncio.run(scenario())
    assert stop is not None and stop.kind is StopKind.OUTAGE
    assert "--outage-wait" in stop.reason

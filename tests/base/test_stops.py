"""The stop switch (:mod:`batchops.stops`): the first stop wins, every wait ends at it,
and the exit code follows the kind of stop, never a message's wording."""

from __future__ import annotations

import asyncio
import time

import pytest

from batchops.stops import RunControl, Stop, StopKind, Stopped


def test_the_first_stop_requested_is_the_one_reported() -> None:
    control = RunControl()
    control.request_stop(Stop(StopKind.OUTAGE, "first"))
    control.request_stop(Stop(StopKind.INTERRUPTED, "second"))
    assert control.stop is not None and control.stop.reason == "first"
    with pytest.raises(Stopped):
        control.check()


@pytest.mark.parametrize("kind", list(StopKind))
def test_the_exit_code_follows_the_kind(kind: StopKind) -> None:
    """Interrupted is 130; every other stop is 3 (resumable), whatever its reason says."""
    assert kind.exit_code == (130 if kind is StopKind.INTERRUPTED else 3)


def test_a_long_wait_ends_at_the_stop() -> None:
    """A wait of an hour ends (as Stopped) as soon as the switch is thrown."""

    async def scenario() -> float:
        control = RunControl()
        asyncio.get_running_loop().call_later(0.05, control.request_stop, Stop(StopKind.BRAKE, "x"))
        started = time.monotonic()
        with pytest.raises(Stopped):
            await control.sleep(3600)
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 60


def test_work_in_flight_is_cancelled_at_the_stop() -> None:
    cancelled = []

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def scenario() -> None:
        control = RunControl()
        asyncio.get_running_loop().call_later(0.05, control.request_stop, Stop(StopKind.BRAKE, "x"))
        with pytest.raises(Stopped):
            await control.run(forever())

    asyncio.run(scenario())
    assert cancelled == [True]


def test_waiting_for_an_event_returns_when_it_is_set_or_the_time_is_up() -> None:
    async def scenario() -> tuple[bool, bool]:
        control = RunControl()
        event = asyncio.Event()
        timed_out = await control.wait_for(event, 0.01)
        asyncio.get_running_loop().call_later(0.01, event.set)
        return timed_out, await control.wait_for(event, 3600)

    assert asyncio.run(scenario()) == (False, True)

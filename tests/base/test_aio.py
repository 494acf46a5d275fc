"""The one retry loop and the pool pattern (batchops/aio.py)."""

from __future__ import annotations

import asyncio

import pytest

from batchops.aio import Backoff, all_or_none, retrying


def _run(first: int = 1, tries: int = 4, good_at: int | None = None) -> tuple[list[str], int]:
    log: list[str] = []

    async def attempt(number: int) -> int:
        log.append(f"try {number}")
        return number

    async def wait(number: int, result: int) -> None:
        log.append(f"wait after {number}")

    async def go() -> tuple[int, int]:
        return await retrying(
            attempt, again=lambda n: n != good_at, tries=tries, wait=wait, first=first
        )

    result, made = asyncio.run(go())
    assert result == made
    return log, made


def test_tries_until_the_answer_is_good_waiting_between_never_after() -> None:
    assert _run(good_at=2) == (["try 1", "wait after 1", "try 2"], 2)
    log, made = _run(good_at=None)
    assert made == 4 and log[-1] == "try 4" and log.count("wait after 3") == 1


def test_first_goes_on_from_tries_the_caller_made_itself() -> None:
    assert _run(first=2, tries=3) == (["try 2", "wait after 2", "try 3"], 3)
    assert _run(first=3, tries=3) == (["try 3"], 3)


def test_backoff_doubles_up_to_its_ceiling() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 50_000)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_failing_worker_cancels_the_others_and_raises_itself() -> None:
    cancelled: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append("slow")
            raise

    async def bad() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(all_or_none([slow(), bad()]))
    assert cancelled == ["slow"]

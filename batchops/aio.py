"""The two async patterns every part of a run shares: retry with backoff, and a pool.

:func:`retrying` is the one retry loop (sends, read-backs and the pre-check's reads all
use it): try, ask whether to try again, wait, try again, at most ``tries`` times. How
long to wait is :class:`Backoff`'s one formula; whether a wait is made at all (an outage
gate already holds the next try; a server asks for longer) stays with the caller.

:func:`all_or_none` runs a pool of workers in an :class:`asyncio.TaskGroup`: when one
fails, the others are cancelled before the error is raised, so no reader or sender goes
on sending requests after a fatal answer (or after the client is closed).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import TypeVar

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: ``min(initial_s * 2 ** (attempt - 1) + uniform(0, jitter_s), max_s)``.

    The jitter spreads the resends of many workers that failed at the same moment, so
    they do not come back at the same moment either.
    """

    initial_s: float = 0.5
    max_s: float = 10.0
    jitter_s: float = 0.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th try (1 for the first)."""
        try:
            exponential = self.initial_s * 2.0 ** max(0, attempt - 1)
        except OverflowError:
            exponential = self.max_s
        jitter = random.uniform(0.0, self.jitter_s) if self.jitter_s else 0.0
        return max(0.0, min(exponential + jitter, self.max_s))


async def retrying(
    attempt: Callable[[int], Awaitable[R]],
    *,
    again: Callable[[R], bool],
    tries: int,
    wait: Callable[[int, R], Awaitable[None]],
    first: int = 1,
) -> tuple[R, int]:
    """Call ``attempt(n)`` for n = first, first + 1, … until ``again`` says no or n = ``tries``.

    ``wait(n, result)`` runs between tries (never after the last). ``first`` > 1 goes on
    from tries the caller made itself. Returns the last result and its number; whether it
    is good is the caller's to judge.
    """
    number = first - 1
    while True:
        number += 1
        result = await attempt(number)
        if number >= tries or not again(result):
            return result, number
        await wait(number, result)


async def all_or_none(workers: Iterable[Coroutine[object, None, None]]) -> None:
    """Run ``workers`` together; when one fails, cancel the rest, then raise its error.

    The error is raised as itself, not wrapped in an exception group: callers tell a
    fatal answer from a stop by its type.
    """
    try:
        async with asyncio.TaskGroup() as group:
            for worker in workers:
                group.create_task(worker)
    except BaseExceptionGroup as errors:
        raise first_error(errors) from None


def first_error(errors: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first error of a pool, as the caller would have seen it without the group."""
    error: BaseException = errors
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error

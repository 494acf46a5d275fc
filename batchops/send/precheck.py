"""Pre-check: the current status of every ticket, read before anything is sent.

Reading the status of every ticket first (``get_tickets``, 1,000 tickets a call)
lets batchops skip rows whose ticket is already where the action leads. The one that
matters most is SUSPEND on a SUSPENDED ticket: the server accepts it and the ticket can
then never be resumed (docs/itsm.md §4 and §6), so batchops never sends it. The rules
that judge a row from these statuses are in :mod:`batchops.send.tickets`.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial

from batchops.aio import Backoff, all_or_none, retrying
from batchops.errors import FatalAnswerError
from batchops.i18n import _
from batchops.itsm import Answer, Transport, Verdict, refused_this_api_only
from batchops.stops import RunControl

#: get_tickets takes at most this many sns per call.
GET_TICKETS_LIMIT = 10_000
#: The pre-check asks for this many tickets a call, :data:`PRECHECK_PARALLEL` calls at a
#: time, so the server builds one answer while batchops reads the last one, instead of
#: one 10,000-ticket answer read only after all of it was built (5,000 tickets at 20 ms
#: latency: ~140 ms -> ~100 ms; BENCHMARKS.md, "Pre-check in chunks").
PRECHECK_CHUNK = 1_000
PRECHECK_PARALLEL = 8
#: get_ticket_status's answer for an sn ITSM does not know (docs/itsm.md §2).
NO_SUCH_TICKET = 3900022


class StatusTable(Mapping[str, str]):
    """Ticket statuses in two flat arrays: a million tickets cost 9 MB, not a 100 MB dict.

    The keys are the caller's own sn strings (shared, not copied), kept sorted and found
    by binary search; each status is a small code into the few status names there are.
    A run holds its pre-check for all of its sending, which is when memory peaks.
    """

    __slots__ = ("_codes", "_keys", "_names")

    def __init__(self, statuses: Mapping[str, str]) -> None:
        self._keys = sorted(statuses)
        names: dict[str, int] = {}
        self._codes = array("I", (names.setdefault(statuses[k], len(names)) for k in self._keys))
        self._names = tuple(names)

    def __getitem__(self, sn: str) -> str:
        keys = self._keys
        at = bisect_left(keys, sn)
        if at < len(keys) and keys[at] == sn:
            return self._names[self._codes[at]]
        raise KeyError(sn)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)


@dataclass(slots=True)
class Precheck:
    """Ticket statuses read before sending."""

    statuses: Mapping[str, str] = field(default_factory=dict)
    method: str = "get_tickets"
    reads: int = 0
    note: str = ""
    #: The server answered at least one read with success: it took our credentials.
    accepted: bool = False
    #: Tickets whose status could not be read (timeouts, 5xx, refused connections), with
    #: why. Unlike unknown tickets, which are simply absent, these may well exist.
    unreadable: dict[str, str] = field(default_factory=dict)


async def read_statuses(
    transport: Transport,
    sns: Iterable[str],
    *,
    concurrency: int = 20,
    retries: int = 3,
    prove_absent: Collection[str] | None = None,
    control: RunControl | None = None,
) -> Precheck:
    """Read the status of every given ticket; unknown tickets are simply absent.

    ``get_tickets`` first (:data:`PRECHECK_CHUNK` tickets a call, a few at a time); where the
    app may not call it, one ``get_ticket_status`` per ticket. An answer that stops everything
    (authentication, service off) raises :class:`FatalAnswerError` before anything is sent. A
    ticket ``get_tickets`` leaves out is read singly to prove it absent when in ``prove_absent``
    (None: all; the tickets a SUSPEND would go to). ``control``'s stop ends pauses between tries.
    """
    # Keys are the caller's own sn strings and statuses are interned: a million tickets
    # then cost one dict, not a million decoded copies of each sn and of "RUNNING".
    own = {sn: sn for sn in sns}
    wanted = list(own)
    result = Precheck()
    found: dict[str, str] = {}
    chunks = [wanted[i : i + PRECHECK_CHUNK] for i in range(0, len(wanted), PRECHECK_CHUNK)]
    reads = _Reads(retries, control or RunControl())
    answers = await _read_chunks(transport, chunks, concurrency, reads)
    one_by_one: list[str] = []
    for chunk, answer in zip(chunks, answers, strict=True):
        if answer is None:  # not asked: get_tickets had already failed
            one_by_one.extend(chunk)
            continue
        result.reads += 1
        if answer.verdict is Verdict.SUCCESS:
            result.accepted = True
            for item in _items(answer):
                sn, status = item.get("sn"), item.get("current_status")
                if sn and status:
                    key = str(sn)
                    found[own.get(key, key)] = sys.intern(str(status))
            continue
        # get_tickets refused or broken: fall back to one read per ticket.
        if not one_by_one:
            result.method = "get_ticket_status"
            result.note = _unusable(answer)
        one_by_one.extend(chunk)
    asked_singly = set(one_by_one)
    # A ticket get_tickets left out is usually one ITSM does not know, but a list can also
    # be cut short or match sns its own way: only get_ticket_status's "no such ticket"
    # makes it absent, so a SUSPEND never goes to a ticket whose status was not seen.
    one_by_one.extend(
        sn
        for sn in wanted
        if sn not in found
        and sn not in asked_singly
        and (prove_absent is None or sn in prove_absent)
    )
    if one_by_one:
        await _read_one_by_one(transport, one_by_one, result, found, concurrency, reads)
    result.statuses = StatusTable(found)
    return result


async def _read_chunks(
    transport: Transport, chunks: list[list[str]], concurrency: int, reads: _Reads
) -> list[Answer | None]:
    """``get_tickets`` for each chunk, :data:`PRECHECK_PARALLEL` at a time (at most
    ``concurrency``), in chunk order.

    Once one chunk is not answered with success, no further chunk is asked (its answer
    stays None): a refused ``get_tickets`` costs a few calls, not one per chunk. An
    authentication refusal raises :class:`FatalAnswerError` at once.
    """
    answers: list[Answer | None] = [None] * len(chunks)
    feed = iter(range(len(chunks)))
    failed = False

    async def worker() -> None:
        nonlocal failed
        for k in feed:
            if failed:
                return
            answer = await reads.read(partial(transport.read_tickets, chunks[k]))
            if answer.verdict is Verdict.FATAL and not refused_this_api_only(answer):
                # At once: the chunks still in flight are cancelled, not waited for. A
                # refusal of get_tickets alone falls back to get_ticket_status instead.
                raise FatalAnswerError(_stopped_by_server(answer), answer)
            answers[k] = answer
            if answer.verdict is not Verdict.SUCCESS:
                failed = True

    await all_or_none(worker() for __ in range(max(1, min(PRECHECK_PARALLEL, concurrency))))
    return answers


def _items(answer: Answer) -> list[dict[str, object]]:
    data = answer.data
    if isinstance(data, dict):
        items = data.get("items")
    elif isinstance(data, list):
        items = data
    else:
        items = None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


#: The pre-check's pause between reads of one ticket (or chunk): 0.5 s, 1 s, 2 s, ...
_BACKOFF = Backoff(0.5, max_s=float("inf"))


@dataclass(frozen=True, slots=True)
class _Reads:
    """How one read is tried: ``retries`` more times, pausing in the run's stop switch."""

    retries: int
    control: RunControl

    async def read(self, call: Callable[[], Awaitable[Answer]]) -> Answer:
        async def attempt(number: int) -> Answer:
            return await call()

        async def wait(number: int, answer: Answer) -> None:
            await self.control.sleep(answer.retry_after_s or _BACKOFF.delay(number))

        answer, _unused = await retrying(
            attempt,
            again=lambda a: a.verdict in (Verdict.RETRY, Verdict.AMBIGUOUS),
            tries=self.retries + 1,
            wait=wait,
        )
        return answer


async def _read_one_by_one(
    transport: Transport,
    sns: list[str],
    result: Precheck,
    found: dict[str, str],
    concurrency: int,
    reads: _Reads,
) -> None:
    feed = iter(sns)
    # Tickets in a row that could not be read for a reason that is not theirs (no answer,
    # 5xx): past this many, with none read between, the rest would fail alike, so they are
    # marked unreadable at once instead of costing retries each.
    give_up_after = max(20, concurrency)
    failing = 0

    async def worker() -> None:
        nonlocal failing
        for sn in feed:
            answer = await reads.read(partial(transport.read_ticket_status, sn))
            result.reads += 1
            data = answer.data
            if answer.verdict is Verdict.SUCCESS and isinstance(data, dict):
                result.accepted = True
                failing = 0
                status = data.get("current_status")
                if status:
                    found[sn] = sys.intern(str(status))
                else:
                    result.unreadable[sn] = _("no status in the answer")
            elif answer.verdict is Verdict.FATAL:
                raise FatalAnswerError(_stopped_by_server(answer), answer)
            elif answer.verdict is Verdict.REJECTED:
                # Only "no such ticket" proves the ticket absent (and such a ticket cannot
                # be stuck); any other refusal says nothing of its state.
                failing = 0
                if answer.code != NO_SUCH_TICKET:
                    result.unreadable[sn] = answer.message
            else:
                # No answer of ITSM's own (timeout, 5xx): the ticket may exist, in any state.
                result.unreadable[sn] = answer.message
                failing += 1
                if failing >= give_up_after:
                    for rest in feed:
                        result.unreadable[rest] = answer.message

    await all_or_none(worker() for __ in range(max(1, concurrency)))


def _stopped_by_server(answer: Answer) -> str:
    return _("pre-check stopped by the server: {message}").format(message=answer.message)


def _unusable(answer: Answer) -> str:
    return _("get_tickets unusable ({message}); read tickets one by one").format(
        message=answer.message
    )

"""Reading every page of a ``get_tickets`` question, for ``select``.

ITSM pages its ticket list and may answer fewer items a page than asked (a server
capping pages at 100 answers page 1 of 4 for 350 tickets, whatever ``page_size`` said):
every page it says there is, by ``total_page`` or ``count``, is read, one after another,
and the tickets are kept once each by sn (tickets created while paging push items onto
the next page, which then repeats them). A count that moved while the pages were read
is noted for the person.

Each page is tried through :func:`batchops.aio.retrying`; every wait (``--rate``'s turn,
a retry's pause) and every request end at once when the stop switch is thrown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from batchops.aio import Backoff, retrying
from batchops.errors import ConfigError, FatalAnswerError
from batchops.i18n import _
from batchops.itsm import Answer, ItsmClient, Verdict
from batchops.send import GET_TICKETS_LIMIT
from batchops.stops import RateLimit, RunControl, Stop

#: A JSON object as get_tickets takes it.
JsonObject = dict[str, object]

#: Ask before writing more rows than the limit: (rows that match, the limit) -> go on?
ConfirmCount = Callable[[int, int], bool]

#: Between tries of one page: the run's backoff, jitter included.
_BACKOFF = Backoff(0.5, 10.0, jitter_s=1.0)


@dataclass
class PageReader:
    """Reads get_tickets pages one at a time, with retries and the run's rate; every wait
    (the rate's, a retry's) and every request end at once when ``control`` stops."""

    client: ItsmClient
    retries: int
    control: RunControl
    pace: RateLimit | None = None
    requests: int = 0
    pages: int = 0

    async def page(self, filters: JsonObject, page: int) -> Page:
        async def attempt(number: int) -> Answer:
            if self.pace is not None:
                await self.pace.acquire()
            self.control.check()
            self.requests += 1
            return await self.control.run(
                self.client.list_tickets(filters, page, GET_TICKETS_LIMIT)
            )

        async def wait(number: int, answer: Answer) -> None:
            asked = answer.retry_after_s
            await self.control.sleep(asked if asked is not None else _BACKOFF.delay(number))

        # Reading twice changes nothing, so any answer that may pass is worth another try.
        answer, _tries = await retrying(
            attempt,
            again=lambda a: a.verdict in (Verdict.RETRY, Verdict.AMBIGUOUS),
            tries=self.retries + 1,
            wait=wait,
        )
        if answer.verdict is not Verdict.SUCCESS:
            raise FatalAnswerError(
                _("get_tickets failed on page {page}: {why} (nothing was written)").format(
                    page=page, why=answer.message
                )
            )
        self.pages += 1
        return _page_data(answer, page)


@dataclass(frozen=True, slots=True)
class Page:
    """One get_tickets page: its tickets (those with an sn) and what it says of the rest."""

    items: Sequence[Mapping[str, object]]
    #: Tickets that match in all (default: this page's).
    count: int
    #: Pages in all; None when the answer does not say.
    total_page: int | None

    def more(self, page: int, listed: int) -> bool:
        """Whether ITSM says there is more than the ``page`` pages and ``listed`` tickets read.

        By ``total_page`` when the answer has it (never asking past it: a page out of
        range may be an error), else by ``count``. An empty page ends the listing.
        """
        if not self.items:
            return False
        if self.total_page is not None:
            return page < self.total_page
        return listed < self.count


def _page_data(answer: Answer, page: int) -> Page:
    data = answer.data
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise FatalAnswerError(
            _(
                "get_tickets answered page {page} without a list of items; check --base-url "
                "and --gateway"
            ).format(page=page)
        )
    items = [i for i in data["items"] if isinstance(i, dict) and i.get("sn")]
    count = _as_int(data.get("count"), len(items))
    total_page = data.get("total_page")
    return Page(items, count, None if total_page is None else _as_int(total_page, page))


@dataclass
class Found:
    """The tickets listed so far (by sn, first listing kept), and what the listing said."""

    tickets: dict[str, Mapping[str, object]] = field(default_factory=dict)
    expected: int = 0
    repeated: int = 0
    declined: bool = False
    stop: Stop | None = None
    notes: list[str] = field(default_factory=list)

    def add(self, items: Sequence[Mapping[str, object]]) -> int:
        """Keep the tickets not listed yet (by sn); how many were new."""
        fresh = 0
        for item in items:
            sn = str(item["sn"])
            if sn in self.tickets:
                self.repeated += 1
            else:
                self.tickets[sn] = item
                fresh += 1
        return fresh


class CountLimit:
    """More rows than the limit need a yes, asked once (``confirm``); without it, refused."""

    def __init__(self, limit: int, confirm: ConfirmCount | None, found: Found) -> None:
        self._limit, self._confirm, self._found = limit, confirm, found
        self._approved = False

    def allows(self, count: int) -> bool:
        if count <= self._limit or self._approved:
            return True
        if self._confirm is None:
            raise ConfigError(
                _(
                    "{count} tickets match, more than --limit {limit}; nothing was written. "
                    "Narrow the filter, or raise --limit to {count} to write them all"
                ).format(count=count, limit=self._limit)
            )
        self._approved = self._confirm(count, self._limit)
        self._found.declined = not self._approved
        return self._approved


async def collect(
    reader: PageReader, bodies: Iterable[JsonObject], limit: CountLimit, found: Found
) -> None:
    """Every ticket the request ``bodies`` list, into ``found``; stops early when the count
    is over ``limit`` and not confirmed."""
    for filters in bodies:
        first = await reader.page(filters, 1)
        found.expected += first.count
        if not limit.allows(found.expected):
            return
        await _read_pages(reader, filters, first, found)
    limit.allows(len(found.tickets))


async def _read_pages(reader: PageReader, filters: JsonObject, first: Page, found: Found) -> None:
    """Every page of one request body, as many as ITSM says there are (page 1 read)."""
    data, page, listed = first, 1, 0
    while True:
        fresh = found.add(data.items)
        listed += fresh
        if not data.more(page, listed):
            break
        if not fresh:
            raise FatalAnswerError(
                _(
                    "get_tickets answered page {page} with only tickets it had already "
                    "listed; the server does not seem to page (nothing was written)"
                ).format(page=page)
            )
        page += 1
        data = await reader.page(filters, page)
    if data.count != first.count:
        found.notes.append(
            _(
                "the number of matching tickets moved from {before} to {after} while "
                "{pages} pages were read (tickets were created, changed or closed meanwhile): "
                "{listed} listed; select again to see the listing as it is now"
            ).format(before=first.count, after=data.count, pages=page, listed=listed)
        )
    elif listed < data.count:
        found.notes.append(
            _("ITSM counted {count} matching tickets but listed {listed} in {pages} pages").format(
                count=data.count, listed=listed, pages=page
            )
        )


def _as_int(value: object, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default


__all__: Sequence[str] = (
    "ConfirmCount",
    "CountLimit",
    "Found",
    "JsonObject",
    "Page",
    "PageReader",
    "collect",
)

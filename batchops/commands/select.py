"""Select: build a ready-to-review input sheet from ITSM itself, through ``get_tickets``.

A cleanup starts with a question ("every ticket of service 12 still RUNNING and older
than 90 days"). :func:`select_tickets` asks ITSM that question with ``get_tickets``'
filters (docs/itsm.md §5), reads every page, and writes a sheet ``run`` takes
as it is: the four input columns (sn, operator, action_type, action_message) filled
from the options, then context for the person who reviews it (title, service, current
status, creator, created at, ticket link), which ``run`` echoes as extra columns.

Read-only, and careful in the ways the API asks for:

* ``__in`` filters go as JSON lists (a comma-separated string matches nothing), and
  ``sns`` is never sent empty: an empty ``sns`` means *every ticket*. A select without
  any filter is refused unless asked for with ``all_tickets``.
* Pages are read one after another, newest first, and de-duplicated by sn: tickets
  created while paging push items onto the next page, which then repeats them. Reading
  pages concurrently could instead skip an item that moved onto a page already read.
* More rows than ``limit`` need a yes (``confirm``), asked as soon as the first page
  tells the count; without anyone to ask, nothing is written.
"""

from __future__ import annotations

import asyncio
import csv
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from batchops.aio import Backoff
from batchops.errors import ConfigError, FatalAnswerError, InputError
from batchops.itsm import Answer, ItsmClient, Verdict
from batchops.model import MAX_MESSAGE_LENGTH, Action
from batchops.process import main_thread_takes_signals
from batchops.report import Table, write_tables
from batchops.send import GET_TICKETS_LIMIT
from batchops.settings import (
    SELECT_KEYS,
    ClientSettings,
    RunOptions,
    StrPath,
    Values,
    check_setting,
    credentials_for,
    resolve_options,
    target_url,
)
from batchops.sheet import ACTION_ALIASES, FIELD_ALIASES

#: The sheet's columns: what ``run`` reads, then what the reviewer looks at.
INPUT_COLUMNS = ("sn", "operator", "action_type", "action_message")
CONTEXT_COLUMNS = ("title", "service_id", "current_status", "creator", "create_at", "ticket_url")
SHEET_NAME = "Tickets"
DEFAULT_LIMIT = 10_000
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

#: A JSON object as get_tickets takes it.
JsonObject = dict[str, object]

#: Ask before writing more rows than the limit: (rows that match, the limit) -> go on?
ConfirmCount = Callable[[int, int], bool]

#: Between tries of one page: the run's backoff, jitter included.
_BACKOFF = Backoff(0.5, 10.0, jitter_s=1.0)


def parse_time(text: str, *, option: str, end_of_day: bool) -> str:
    """``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM:SS`` as the server's time text.

    A date alone covers its whole day: the start of it for a lower bound, the last
    second of it (``end_of_day``) for an upper one, so both bounds include the day named.
    """
    value = text.strip()
    for pattern, whole_day in ((TIME_FORMAT, False), ("%Y-%m-%d", True)):
        try:
            when = datetime.strptime(value, pattern)
        except ValueError:
            continue
        if whole_day and end_of_day:
            when += timedelta(days=1, seconds=-1)
        return when.strftime(TIME_FORMAT)
    raise ConfigError(
        f"{option} takes a date (2024-06-01) or a time (2024-06-01 18:00:00), not {text!r}"
    )


def parse_ids(text: str, *, option: str) -> tuple[int, ...]:
    """A comma-separated list of integer ids (``12,13``)."""
    ids = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            ids.append(int(part))
        except ValueError:
            raise ConfigError(
                f"{option} takes ids separated by commas (12,13), not {text!r}"
            ) from None
    if not ids:
        raise ConfigError(f"{option} needs at least one id (e.g. {option} 12,13)")
    return tuple(dict.fromkeys(ids))


def parse_statuses(text: str) -> tuple[str, ...]:
    """Ticket statuses (``RUNNING,SUSPENDED``), upper-cased as ITSM writes them."""
    statuses = tuple(dict.fromkeys(p.strip().upper() for p in text.split(",") if p.strip()))
    if not statuses:
        raise ConfigError("--status needs at least one status (e.g. --status RUNNING,SUSPENDED)")
    return statuses


def read_sn_file(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The sns of a text or CSV file: one a line, or the column headed ``sn`` (or an alias).

    Blank lines are skipped and repeats dropped. A file without any sn is refused: sent
    as an empty ``sns`` it would select every ticket in ITSM.
    """
    source = Path(path)
    try:
        text = source.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read --sn-file {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        try:
            text = source.read_bytes().decode("gb18030")
        except UnicodeDecodeError:
            raise InputError(f"--sn-file {source} is not UTF-8 or GB18030 text") from None
    rows = [row for row in csv.reader(text.splitlines()) if any(c.strip() for c in row)]
    column = 0
    if rows:
        aliases = {alias.casefold() for alias in FIELD_ALIASES["sn"]}
        header = [cell.strip().casefold() for cell in rows[0]]
        named = [i for i, cell in enumerate(header) if cell in aliases]
        if named:
            column, rows = named[0], rows[1:]
    sns = [row[column].strip() for row in rows if len(row) > column and row[column].strip()]
    if not sns:
        raise InputError(
            f"--sn-file {source} holds no sn; put one sn a line (or a column headed sn)"
        )
    return tuple(dict.fromkeys(sns))


@dataclass(frozen=True, slots=True)
class TicketQuery:
    """The question asked of ``get_tickets``; times as ``YYYY-MM-DD HH:MM:SS`` text."""

    sns: tuple[str, ...] = ()
    creator: str = ""
    created_after: str = ""
    created_before: str = ""
    ended_after: str = ""
    ended_before: str = ""
    service_ids: tuple[int, ...] = ()
    biz_ids: tuple[int, ...] = ()
    statuses: tuple[str, ...] = ()
    tag: str = ""
    project: str = ""

    def filters(self) -> JsonObject:
        """The non-empty filters as get_tickets takes them (``__in`` ones as lists)."""
        body: JsonObject = {
            "creator": self.creator,
            "create_at__gte": self.created_after,
            "create_at__lte": self.created_before,
            "end_at__gte": self.ended_after,
            "end_at__lte": self.ended_before,
            "service_id__in": list(self.service_ids),
            "bk_biz_id__in": list(self.biz_ids),
            "current_status__in": list(self.statuses),
            "tag": self.tag,
            "project_key": self.project,
        }
        return {key: value for key, value in body.items() if value}

    def is_empty(self) -> bool:
        return not self.sns and not self.filters()

    def bodies(self) -> Iterator[JsonObject]:
        """One request body per chunk of at most 10,000 sns, or one without sns at all."""
        filters = self.filters()
        if not self.sns:
            yield filters
            return
        for start in range(0, len(self.sns), GET_TICKETS_LIMIT):
            yield {**filters, "sns": list(self.sns[start : start + GET_TICKETS_LIMIT])}

    def check(self) -> None:
        """Refuse bounds that cannot both hold."""
        for what, low, high in (
            ("created", self.created_after, self.created_before),
            ("ended", self.ended_after, self.ended_before),
        ):
            if low and high and low > high:
                raise ConfigError(
                    f"--{what}-after {low} is later than --{what}-before {high}: "
                    "no ticket can match"
                )


@dataclass(frozen=True, slots=True)
class TicketFilters:
    """The filters as the command line gives them: raw text, None when unset."""

    status: str | None = None
    service_id: str | None = None
    biz_id: str | None = None
    creator: str | None = None
    created_after: str | None = None
    created_before: str | None = None
    ended_after: str | None = None
    ended_before: str | None = None
    tag: str | None = None
    project: str | None = None
    sn_file: StrPath | None = None

    def query(self) -> TicketQuery:
        """The question these filters ask (each checked; a date alone covers its day)."""

        def when(text: str | None, option: str, end_of_day: bool) -> str:
            return "" if text is None else parse_time(text, option=option, end_of_day=end_of_day)

        service_id, biz_id, status = self.service_id, self.biz_id, self.status
        return TicketQuery(
            sns=read_sn_file(self.sn_file) if self.sn_file else (),
            creator=(self.creator or "").strip(),
            created_after=when(self.created_after, "--created-after", False),
            created_before=when(self.created_before, "--created-before", True),
            ended_after=when(self.ended_after, "--ended-after", False),
            ended_before=when(self.ended_before, "--ended-before", True),
            service_ids=(
                parse_ids(service_id, option="--service-id") if service_id is not None else ()
            ),
            biz_ids=parse_ids(biz_id, option="--biz-id") if biz_id is not None else (),
            statuses=parse_statuses(status) if status is not None else (),
            tag=(self.tag or "").strip(),
            project=(self.project or "").strip(),
        )


@dataclass(frozen=True, slots=True)
class SelectChoices:
    """What fills the sheet's input columns, and how many rows may be written unasked."""

    #: SUSPEND, UNSUSPEND, WITHDRAW or TERMINATE (an alias is fine); blank if unset.
    action: str | None = None
    operator: str | None = None
    message: str | None = None
    #: Ask (``confirm``) before writing more rows than this.
    limit: int = DEFAULT_LIMIT
    #: Allow a select without any filter.
    all_tickets: bool = False


@dataclass(frozen=True, slots=True)
class SheetFill:
    """What fills the input columns of every selected row."""

    action: str = ""
    operator: str = ""
    message: str = ""

    @classmethod
    def checked(cls, action: str | None, operator: str | None, message: str | None) -> SheetFill:
        """Validate the options the way ``run`` will validate the rows they fill."""
        canonical = ""
        if action and action.strip():
            found = ACTION_ALIASES.get(action.strip()) or ACTION_ALIASES.get(action.strip().upper())
            if found is None:
                raise ConfigError(
                    f"--action {action!r} is not an action; use SUSPEND, UNSUSPEND, WITHDRAW "
                    "or TERMINATE"
                )
            canonical = found.value
        text = (message or "").strip()
        if len(text) > MAX_MESSAGE_LENGTH:
            raise ConfigError(
                f"--message is {len(text)} characters; ITSM takes at most {MAX_MESSAGE_LENGTH}"
            )
        if canonical in (Action.SUSPEND.value, Action.TERMINATE.value) and not text:
            raise ConfigError(
                f"--action {canonical} needs --message: ITSM requires a reason for it"
            )
        return cls(canonical, (operator or "").strip(), text)


@dataclass(frozen=True, slots=True)
class SelectSummary:
    """What a select found and wrote."""

    matched: int
    written: int
    path: str | None
    requests: int
    pages: int
    repeated: int
    elapsed_s: float
    declined: bool = False
    counts_by_status: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.declined else 0

    def describe(self) -> str:
        if self.declined:
            return f"{self.matched} tickets match; not confirmed, nothing was written."
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(self.counts_by_status.items()))
        lines = [
            f"{self.written} tickets selected"
            + (f" ({statuses})" if statuses else "")
            + f" in {self.elapsed_s:.1f} s ({self.pages} pages, {self.requests} requests)",
        ]
        if self.repeated:
            lines.append(
                f"  {self.repeated} tickets came twice (tickets were created while paging) "
                "and were kept once"
            )
        if self.path:
            lines.append(f"sheet: {self.path}")
        return "\n".join(lines)


@dataclass
class _Reader:
    """Reads get_tickets pages one at a time, with retries and the run's rate."""

    client: ItsmClient
    retries: int
    rate: float | None
    requests: int = 0
    pages: int = 0
    _last: float = 0.0

    async def page(self, filters: JsonObject, page: int) -> _Page:
        attempt = 0
        while True:
            if self.rate:
                wait = self._last + 1.0 / self.rate - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            self._last = time.monotonic()
            self.requests += 1
            answer = await self.client.list_tickets(filters, page, GET_TICKETS_LIMIT)
            if answer.verdict is Verdict.SUCCESS:
                self.pages += 1
                return _page_data(answer, page)
            if answer.verdict not in (Verdict.RETRY, Verdict.AMBIGUOUS) or attempt >= self.retries:
                raise FatalAnswerError(
                    f"get_tickets failed on page {page}: {answer.message} (nothing was written)"
                )
            attempt += 1
            # Reading twice changes nothing, so any answer that may pass is worth another try.
            await asyncio.sleep(
                answer.retry_after_s
                if answer.retry_after_s is not None
                else _BACKOFF.delay(attempt)
            )


@dataclass(frozen=True, slots=True)
class _Page:
    """One get_tickets page: its tickets (those with an sn) and what it says of the rest."""

    items: Sequence[Mapping[str, object]]
    #: Tickets that match in all (default: this page's).
    count: int
    #: Pages in all (default: this one is the last).
    total_page: int


def _page_data(answer: Answer, page: int) -> _Page:
    data = answer.data
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise FatalAnswerError(
            f"get_tickets answered page {page} without a list of items; check --base-url "
            "and --gateway"
        )
    items = [i for i in data["items"] if isinstance(i, dict) and i.get("sn")]
    count = _as_int(data.get("count"), len(items))
    return _Page(items, count, _as_int(data.get("total_page"), page))


@dataclass
class _Found:
    tickets: dict[str, Mapping[str, object]] = field(default_factory=dict)
    expected: int = 0
    repeated: int = 0
    declined: bool = False


async def _collect(
    reader: _Reader, query: TicketQuery, limit: int, confirm: ConfirmCount | None
) -> _Found:
    found = _Found()
    approved = False

    def within_limit(count: int) -> bool:
        nonlocal approved
        if count <= limit or approved:
            return True
        if confirm is None:
            raise ConfigError(
                f"{count} tickets match, more than --limit {limit}; nothing was written. "
                f"Narrow the filter, or raise --limit to {count} to write them all"
            )
        approved = confirm(count, limit)
        found.declined = not approved
        return approved

    for filters in query.bodies():
        page = 1
        while True:
            data = await reader.page(filters, page)
            items = data.items
            if page == 1:
                found.expected += data.count
                if not within_limit(found.expected):
                    return found
            fresh = 0
            for item in items:
                sn = str(item["sn"])
                if sn in found.tickets:
                    found.repeated += 1
                else:
                    found.tickets[sn] = item
                    fresh += 1
            if len(items) < GET_TICKETS_LIMIT or page >= data.total_page:
                break
            if not fresh:
                raise FatalAnswerError(
                    f"get_tickets answered page {page} with only tickets it had already "
                    "listed; the server does not seem to page (nothing was written)"
                )
            page += 1
    within_limit(len(found.tickets))
    return found


def _as_int(value: object, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _sheet_rows(tickets: Mapping[str, Mapping[str, object]], fill: SheetFill) -> list[list[str]]:
    head = [fill.operator, fill.action, fill.message]
    return [
        [sn, *head, *(_cell(item.get(name)) for name in CONTEXT_COLUMNS)]
        for sn, item in tickets.items()
    ]


def _check_output(output: StrPath) -> Path:
    path = Path(output)
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise ConfigError(f"-o {path}: name the sheet *.csv or *.xlsx")
    folder = path.resolve().parent
    if not folder.is_dir():
        raise ConfigError(f"the sheet's folder {folder} does not exist; create it or change -o")
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"cannot write into {folder}; change -o")
    return path


def _client_settings(options: RunOptions, env: Mapping[str, str]) -> tuple[ClientSettings, Values]:
    """Where ITSM is and who asks, resolved as for ``run``; the merged settings too."""
    values = resolve_options(options, env, keys=SELECT_KEYS).values
    url = target_url(values, hint="--profile")
    client_settings = ClientSettings(
        base_url=url,
        gateway=values.gateway,
        credentials=credentials_for(values, env),
        concurrency=1,
        timeout_s=values.timeout,
        ca_bundle=values.ca_bundle,
        insecure=options.insecure,
    )
    return client_settings, values


def _checked(query: TicketQuery, output: StrPath, choices: SelectChoices) -> tuple[SheetFill, Path]:
    """Refuse, before any request, what cannot give a sheet worth writing."""
    if query.is_empty() and not choices.all_tickets:
        raise ConfigError(
            "a select without a filter lists every ticket in ITSM; give a filter (--status, "
            "--service-id, --creator, --created-before, --sn-file, …) or --all if you mean it"
        )
    query.check()
    check_setting("limit", choices.limit, "flag")
    fill = SheetFill.checked(choices.action, choices.operator, choices.message)
    return fill, _check_output(output)


def select_tickets(
    query: TicketQuery,
    output: StrPath,
    options: RunOptions | None = None,
    *,
    choices: SelectChoices | None = None,
    confirm: ConfirmCount | None = None,
    env: Mapping[str, str] | None = None,
) -> SelectSummary:
    """Read the tickets ``query`` selects and write them as an input sheet to ``output``.

    ``options`` are ``run``'s (:class:`~batchops.settings.records.RunOptions`); a select reads
    the target, ``retries`` and ``rate`` of them, resolved as for ``run`` (flag >
    environment > profile > default). More than ``choices.limit`` rows are written only
    if ``confirm(count, limit)`` says yes; without ``confirm`` that is a
    :class:`ConfigError` and nothing is written.
    """
    started = time.monotonic()
    env = os.environ if env is None else env
    choices = choices or SelectChoices()
    fill, path = _checked(query, output, choices)
    client_settings, values = _client_settings(options or RunOptions(), env)

    async def read() -> tuple[_Found, _Reader]:
        main_thread_takes_signals(asyncio.get_running_loop())  # it may ask a question
        async with ItsmClient(client_settings) as client:
            reader = _Reader(client, max(0, values.retries), values.rate)
            return await _collect(reader, query, choices.limit, confirm), reader

    found, reader = asyncio.run(read())
    written_path: str | None = None
    if not found.declined:
        rows = _sheet_rows(found.tickets, fill)
        table = Table(SHEET_NAME, [*INPUT_COLUMNS, *CONTEXT_COLUMNS], rows)
        written_path = str(write_tables(path, [table]))
    return _summary(found, reader, written_path, time.monotonic() - started)


def _summary(found: _Found, reader: _Reader, path: str | None, elapsed_s: float) -> SelectSummary:
    by_status: dict[str, int] = {}
    for item in found.tickets.values():
        status = _cell(item.get("current_status")) or "(none)"
        by_status[status] = by_status.get(status, 0) + 1
    return SelectSummary(
        matched=max(found.expected, len(found.tickets)),
        written=0 if found.declined else len(found.tickets),
        path=path,
        requests=reader.requests,
        pages=reader.pages,
        repeated=found.repeated,
        elapsed_s=elapsed_s,
        declined=found.declined,
        counts_by_status=by_status,
    )


__all__: Sequence[str] = (
    "CONTEXT_COLUMNS",
    "DEFAULT_LIMIT",
    "INPUT_COLUMNS",
    "SelectChoices",
    "SelectSummary",
    "SheetFill",
    "TicketFilters",
    "TicketQuery",
    "parse_ids",
    "parse_statuses",
    "parse_time",
    "read_sn_file",
    "select_tickets",
)

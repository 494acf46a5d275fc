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
* Every page ITSM says there is is read (its ``count`` and ``total_page``), whatever
  page size it answers with: a server that caps pages at 100 gets asked for page 2, 3,
  and so on. A count that moved while reading is said on stderr.
* Retries go through :func:`batchops.aio.retrying`, and every wait (the rate, a retry's
  pause) through the stop switch: SIGINT or SIGTERM end a select at once (exit 130),
  nothing written.
* More rows than ``limit`` need a yes (``confirm``), asked as soon as the first page
  tells the count; without anyone to ask, nothing is written.
"""

from __future__ import annotations

import asyncio
import csv
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from batchops.errors import ConfigError, InputError
from batchops.exits import Exit
from batchops.i18n import N_, _
from batchops.itsm import client_for
from batchops.model import (
    MAX_MESSAGE_LENGTH,
    TICKET_STATUS_NAMES,
    TICKET_STATUSES,
    Action,
    ticket_status,
)
from batchops.process import RunSignals, main_thread_takes_signals
from batchops.report import Kind, Output, Table, guard_outputs, write_tables
from batchops.send import GET_TICKETS_LIMIT
from batchops.settings import RunOptions, StrPath, check_setting, refused, select_connection
from batchops.sheet import FIELD_ALIASES, action_of
from batchops.stops import RateLimit, RunControl, Stop, Stopped

from .pages import ConfirmCount, CountLimit, Found, JsonObject, PageReader, collect

#: The sheet's columns: what ``run`` reads, then what the reviewer looks at.
INPUT_COLUMNS = ("sn", "operator", "action_type", "action_message")
CONTEXT_COLUMNS = ("title", "service_id", "current_status", "creator", "create_at", "ticket_url")
#: The XLSX sheet's name, for a person (run reads the first visible sheet, whatever its name).
SHEET_NAME = N_("Tickets")
DEFAULT_LIMIT = 10_000
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


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
        _("{option} takes a date (2024-06-01) or a time (2024-06-01 18:00:00), not {text}").format(
            option=option, text=repr(text)
        )
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
                _("{option} takes ids separated by commas (12,13), not {text}").format(
                    option=option, text=repr(text)
                )
            ) from None
    if not ids:
        raise ConfigError(
            _("{option} needs at least one id (e.g. {option} 12,13)").format(option=option)
        )
    return tuple(dict.fromkeys(ids))


def parse_statuses(text: str) -> tuple[str, ...]:
    """Ticket statuses (``RUNNING,SUSPENDED``, ``处理中``, ``running``) as ITSM's codes.

    A word that names no status is refused: asked as it is, it would match no ticket
    and give an empty sheet that looks like an answer. Commas may be full-width (，).
    """
    words = [p.strip() for p in text.replace("，", ",").split(",") if p.strip()]
    for word in words:
        if ticket_status(word) is None:
            raise refused("--status", word, _status_words(), _STATUS_WORDS)
    statuses = tuple(dict.fromkeys(code for word in words if (code := ticket_status(word))))
    if not statuses:
        raise ConfigError(_("--status needs at least one status (e.g. --status RUNNING,SUSPENDED)"))
    return statuses


_STATUS_WORDS = (*TICKET_STATUSES, *TICKET_STATUS_NAMES)


def _status_words() -> str:
    """What ``--status`` takes, in words (every code and every name)."""
    return _("{codes} (any letter case) or ITSM's names ({names})").format(
        codes=", ".join(TICKET_STATUSES), names=_(", ").join(TICKET_STATUS_NAMES)
    )


def read_sn_file(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The sns of a text or CSV file: one a line, or the column headed ``sn`` (or an alias).

    Blank lines are skipped and repeats dropped. A file without any sn is refused: sent
    as an empty ``sns`` it would select every ticket in ITSM.
    """
    source = Path(path)
    try:
        text = source.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputError(
            _("cannot read --sn-file {path}: {why}").format(path=source, why=exc.strerror or exc)
        ) from None
    except UnicodeDecodeError:
        try:
            text = source.read_bytes().decode("gb18030")
        except UnicodeDecodeError:
            raise InputError(
                _("--sn-file {path} is not UTF-8 or GB18030 text").format(path=source)
            ) from None
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
            _("--sn-file {path} holds no sn; put one sn a line (or a column headed sn)").format(
                path=source
            )
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
    #: The file ``sns`` were read from: an input, never written over.
    sn_file: Path | None = None

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
                    _("{after} {low} is later than {before} {high}: no ticket can match").format(
                        after=f"--{what}-after", low=low, before=f"--{what}-before", high=high
                    )
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
            sn_file=Path(self.sn_file) if self.sn_file else None,
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
    #: Replace an existing file at the output path (never a run's input, report or checkpoint).
    force: bool = False


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
            found = action_of(action)  # as run will read the cell: 解挂, ＳＵＳＰＥＮＤ …
            if found is None:
                actions = [a.value for a in Action]
                raise refused("--action", action, ", ".join(actions), actions)
            canonical = found.value
        text = (message or "").strip()
        if len(text) > MAX_MESSAGE_LENGTH:
            raise ConfigError(
                _("--message is {length} characters; ITSM takes at most {most}").format(
                    length=len(text), most=MAX_MESSAGE_LENGTH
                )
            )
        if canonical in (Action.SUSPEND.value, Action.TERMINATE.value) and not text:
            raise ConfigError(
                _("--action {action} needs --message: ITSM requires a reason for it").format(
                    action=canonical
                )
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
    #: What stopped the select before it wrote anything (a signal); None when nothing did.
    stop: Stop | None = None
    #: What the person should know of the listing (a count that moved while reading).
    notes: tuple[str, ...] = ()

    @property
    def exit_code(self) -> Exit:
        if self.stop is not None:
            return self.stop.kind.exit_code
        return Exit.ROWS_FAILED if self.declined else Exit.OK

    def describe(self) -> str:
        if self.stop is not None:
            return _("stopped: {reason}; nothing was written.").format(reason=self.stop.reason)
        if self.declined:
            return _("{count} tickets match; not confirmed, nothing was written.").format(
                count=self.matched
            )
        # ITSM's own status codes (RUNNING …), as --status takes them.
        statuses = _(", ").join(f"{n} {s}" for s, n in sorted(self.counts_by_status.items()))
        selected = (
            _(
                "{count} tickets selected ({statuses}) in {seconds} s "
                "({pages} pages, {requests} requests)"
            )
            if statuses
            else _("{count} tickets selected in {seconds} s ({pages} pages, {requests} requests)")
        )
        lines = [
            selected.format(
                count=self.written,
                statuses=statuses,
                seconds=f"{self.elapsed_s:.1f}",
                pages=self.pages,
                requests=self.requests,
            )
        ]
        if self.repeated:
            lines.append(
                "  "
                + _(
                    "{count} tickets came twice (tickets were created while paging) "
                    "and were kept once"
                ).format(count=self.repeated)
            )
        if self.path:
            lines.append(_("sheet: {path}").format(path=self.path))
        return "\n".join(lines)


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _sheet_rows(tickets: Mapping[str, Mapping[str, object]], fill: SheetFill) -> list[list[str]]:
    head = [fill.operator, fill.action, fill.message]
    return [
        [sn, *head, *(_cell(item.get(name)) for name in CONTEXT_COLUMNS)]
        for sn, item in tickets.items()
    ]


def _checked(query: TicketQuery, output: StrPath, choices: SelectChoices) -> tuple[SheetFill, Path]:
    """Refuse, before any request, what cannot give a sheet worth writing, or where it
    must not be written."""
    if query.is_empty() and not choices.all_tickets:
        raise ConfigError(
            _(
                "a select without a filter lists every ticket in ITSM; give a filter (--status, "
                "--service-id, --creator, --created-before, --sn-file, …) or --all if you mean it"
            )
        )
    query.check()
    check_setting("limit", choices.limit, "flag")
    fill = SheetFill.checked(choices.action, choices.operator, choices.message)
    path = Path(output)
    inputs = {"--sn-file": query.sn_file} if query.sn_file else {}
    guard_outputs(inputs, [Output(_("the sheet (-o)"), path, Kind.SHEET)], force=choices.force)
    return fill, path


def select_tickets(
    query: TicketQuery,
    output: StrPath,
    options: RunOptions | None = None,
    *,
    choices: SelectChoices | None = None,
    confirm: ConfirmCount | None = None,
    env: Mapping[str, str] | None = None,
    handle_signals: bool = False,
) -> SelectSummary:
    """Read the tickets ``query`` selects and write them as an input sheet to ``output``.

    ``options`` are ``run``'s (:class:`~batchops.settings.records.RunOptions`); a select reads
    the target, ``retries`` and ``rate`` of them, resolved as for ``run`` (flag >
    environment > profile > default). More than ``choices.limit`` rows are written only
    if ``confirm(count, limit)`` says yes; without ``confirm`` that is a
    :class:`ConfigError` and nothing is written. With ``handle_signals`` SIGINT and
    SIGTERM stop the select at once, nothing written (its summary says so, exit 130).
    """
    started = time.monotonic()
    env = os.environ if env is None else env
    choices = choices or SelectChoices()
    fill, path = _checked(query, output, choices)
    connection, values = select_connection(options or RunOptions(), env)
    found = Found()

    async def read() -> PageReader:
        main_thread_takes_signals(asyncio.get_running_loop())  # it may ask a question
        control = RunControl()
        signals = RunSignals(control) if handle_signals else None
        try:
            # Pages are read one after another: one connection is all a select uses.
            async with client_for(connection, concurrency=1) as client:
                pace = RateLimit(values.rate, control) if values.rate else None
                reader = PageReader(client, max(0, values.retries), control, pace)
                limit = CountLimit(choices.limit, _asked(confirm, signals), found)
                try:
                    await collect(reader, query.bodies(), limit, found)
                except Stopped:
                    found.stop = control.stop
                return reader
        finally:
            if signals is not None:
                signals.remove()

    reader = asyncio.run(read())
    written_path: str | None = None
    if not found.declined and found.stop is None:
        rows = _sheet_rows(found.tickets, fill)
        table = Table(_(SHEET_NAME), [*INPUT_COLUMNS, *CONTEXT_COLUMNS], rows)
        written_path = str(write_tables(path, [table]))
    return _summary(found, reader, written_path, time.monotonic() - started)


def _asked(confirm: ConfirmCount | None, signals: RunSignals | None) -> ConfirmCount | None:
    """``confirm`` with the stop signals off while it asks: Ctrl-C at a question means no."""
    if confirm is None or signals is None:
        return confirm

    def asked(count: int, limit: int) -> bool:
        signals.remove()
        try:
            return confirm(count, limit)
        finally:
            signals.install()

    return asked


def _summary(found: Found, reader: PageReader, path: str | None, elapsed_s: float) -> SelectSummary:
    by_status: dict[str, int] = {}
    for item in found.tickets.values():
        status = _cell(item.get("current_status")) or "(none)"
        by_status[status] = by_status.get(status, 0) + 1
    return SelectSummary(
        matched=max(found.expected, len(found.tickets)),
        written=0 if found.declined or found.stop else len(found.tickets),
        path=path,
        requests=reader.requests,
        pages=reader.pages,
        repeated=found.repeated,
        elapsed_s=elapsed_s,
        declined=found.declined,
        counts_by_status=by_status,
        stop=found.stop,
        notes=tuple(found.notes),
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

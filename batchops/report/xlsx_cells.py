"""What every XLSX sheet batchops writes has in common, through xlsxwriter's public API.

A workbook that never converts text (``=1+1`` stays the text ``=1+1``, ``007`` keeps its
zeros, no link is made) and streams its rows (constant_memory); text cells that stay text
even when they look like rich-text XML; column widths that follow the content (wide
characters count double); the status colours and the date format; Excel's sheet limits.
Excel keeps at most 32,767 characters in a cell; longer text is cut there.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from numbers import Real
from pathlib import Path
from typing import Any, Protocol

from batchops.errors import InputError
from batchops.i18n import _
from batchops.model import Status

from .atomic import sync

#: Data rows an XLSX sheet holds (1,048,576 rows minus the header) and its column limit.
XLSX_MAX_ROWS = 1_048_575
XLSX_MAX_COLUMNS = 16_384

XLSX_OPTIONS: dict[str, object] = {
    "strings_to_formulas": False,
    "strings_to_numbers": False,
    "strings_to_urls": False,
    # Rows are flushed to disk as soon as the next one starts, so memory stays flat.
    "constant_memory": True,
}

#: Background and font colours per status (Excel's own good/bad/neutral styles first).
STATUS_COLOURS: dict[Status, tuple[str, str]] = {
    Status.SUCCESS: ("#C6EFCE", "#006100"),
    Status.FAILED: ("#FFC7CE", "#9C0006"),
    Status.UNKNOWN: ("#FFEB9C", "#9C5700"),
    Status.INVALID: ("#FCD5B4", "#974706"),
    Status.SKIPPED: ("#D9D9D9", "#404040"),
    Status.PENDING: ("#DDEBF7", "#1F4E78"),
}

#: How date cells show (finished_at, the Summary's start and end): the local time.
DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"
EXCEL_EPOCH = datetime(1899, 12, 30)
DATE_WIDTH = 20

WIDTH_SAMPLE_ROWS = 200
MIN_WIDTH = 6
MAX_WIDTH = 60

#: Excel keeps at most this many UTF-16 units in a cell.
_XLSX_STRMAX = 32_767


class Sheet(Protocol):
    """The part of an xlsxwriter worksheet batchops uses (xlsxwriter ships no types)."""

    def write_string(self, row: int, col: int, string: str, cell_format: object = None) -> int:
        """One text cell."""

    def write_rich_string(self, row: int, col: int, *fragments: object) -> int:
        """One text cell from fragments (and an optional format last)."""

    def write_number(
        self, row: int, col: int, number: float | Real, cell_format: object = None
    ) -> int:
        """One number cell (any real number: int, float, numpy's)."""

    def write_boolean(self, row: int, col: int, boolean: bool) -> int:
        """One TRUE/FALSE cell."""

    def set_column(self, first: int, last: int, width: float) -> int:
        """The width of columns ``first`` to ``last``."""

    def freeze_panes(self, row: int, col: int) -> None:
        """Keep the rows above ``row`` in view."""

    def autofilter(self, first_row: int, first_col: int, last_row: int, last_col: int) -> None:
        """A filter over the range."""

    def insert_chart(self, row: int, col: int, chart: Chart) -> int:
        """A chart anchored at the cell."""

    def get_name(self) -> str:
        """The sheet's name."""

    def set_landscape(self) -> None:
        """Print across the page."""

    def fit_to_pages(self, width: int, height: int) -> None:
        """Print ``width`` pages wide and ``height`` high (0: as many as it takes)."""


class Chart(Protocol):
    """The part of an xlsxwriter chart batchops uses."""

    def add_series(self, options: dict[str, object]) -> None:
        """One series of values."""

    def set_title(self, options: dict[str, object]) -> None:
        """The chart's title."""

    def set_y_axis(self, options: dict[str, object]) -> None:
        """The value axis."""

    def set_legend(self, options: dict[str, object]) -> None:
        """Where the legend goes."""


class Workbook(Protocol):
    """The part of an xlsxwriter workbook batchops uses."""

    def add_format(self, properties: dict[str, object]) -> object:
        """A cell format."""

    def add_worksheet(self, name: str) -> Sheet:
        """A new sheet, after the others."""

    def add_chart(self, options: dict[str, object]) -> Chart:
        """A chart to insert into a sheet."""


@contextmanager
def open_workbook(temp: Path) -> Iterator[Workbook]:
    """An xlsxwriter workbook on ``temp`` (converting nothing, streaming rows); closed and
    synced after the block.

    On an error the workbook is closed quietly so xlsxwriter's own temp files go; the
    caller removes ``temp``.
    """
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(temp), dict(XLSX_OPTIONS))
    try:
        yield workbook
    except BaseException:
        with suppress(Exception):
            workbook.close()
        raise
    workbook.close()
    with temp.open("r+b") as handle:
        sync(handle)


def check_fits_sheet(path: Path, rows: int, columns: int) -> None:
    """Refuse, before anything is written, a table larger than an Excel sheet."""
    if rows > XLSX_MAX_ROWS:
        raise InputError(
            _(
                "cannot write the report {path}: {rows} rows do not fit in an Excel sheet "
                "(at most {limit}); write a .csv report instead"
            ).format(path=path, rows=f"{rows:,}", limit=f"{XLSX_MAX_ROWS:,}")
        )
    if columns > XLSX_MAX_COLUMNS:
        raise InputError(
            _(
                "cannot write the report {path}: {columns} columns do not fit in an Excel "
                "sheet (at most {limit}); write a .csv report instead"
            ).format(path=path, columns=f"{columns:,}", limit=f"{XLSX_MAX_COLUMNS:,}")
        )


@dataclass(frozen=True, slots=True)
class Looks:
    """The Results cells' formats: status colours, date cells, wrapped long messages."""

    status: Mapping[str, object]
    date: object
    wrap: object
    message_width: int


def excel_times(values: Sequence[Any]) -> list[Any]:
    """``finished_at`` texts as Excel date numbers (local time as written, offset dropped);
    a text that is not an ISO time stays text, a blank stays None.

    Rows that finish in the same second share one text, so each distinct text is
    converted once.
    """
    known: dict[str, float | str] = {}
    out: list[Any] = []
    for value in values:
        if not value:
            out.append(None)
            continue
        serial = known.get(value)
        if serial is None:
            try:
                when = datetime.fromisoformat(value).replace(tzinfo=None)
                serial = (when - EXCEL_EPOCH).total_seconds() / 86400.0
            except (TypeError, ValueError):
                serial = str(value)
            known[value] = serial
        out.append(serial)
    return out


def needs_wrap(text: str, width: int) -> bool:
    """Whether a message is too long for its column (wide characters count double)."""
    if "\n" in text:
        return True
    return len(text) > width if text.isascii() else 2 * len(text) > width


def write_text(sheet: Sheet, row: int, col: int, text: str, cell_format: object = None) -> None:
    """One text cell, kept as text whatever it looks like.

    xlsxwriter's constant_memory mode writes a string that starts with ``<r>`` and ends
    with ``</r>`` into the sheet as raw rich-text XML, so a cell ``<r>x</r>`` would come
    out empty (or inject markup). Such a text goes in as a rich string of plain
    fragments, which xlsxwriter escapes like any other text.
    """
    if not (text.startswith("<r>") and text.endswith("</r>")):
        sheet.write_string(row, col, text, cell_format)
        return
    text = _cut_to_cell(text)  # write_rich_string refuses, rather than cuts, longer text
    if not text.endswith("</r>"):
        sheet.write_string(row, col, text, cell_format)
        return
    fragments = [text[0], text[1:-1], text[-1]]
    if cell_format is None:
        sheet.write_rich_string(row, col, *fragments)
    else:
        sheet.write_rich_string(row, col, *fragments, cell_format)


def _cut_to_cell(text: str) -> str:
    """``text`` cut at Excel's cell limit, counted in UTF-16 units as xlsxwriter does."""
    if len(text) <= _XLSX_STRMAX // 2:
        return text
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > _XLSX_STRMAX:
            return text[:index]
    return text


def column_width(header: str, values: Sequence[object]) -> int:
    """A column wide enough for its header and its first rows, within bounds."""
    sample = (str(v) for v in values[:WIDTH_SAMPLE_ROWS] if v is not None)
    widest = max([display_width(header) + 3, *(display_width(s) + 1 for s in sample)])
    return max(MIN_WIDTH, min(MAX_WIDTH, widest))


def display_width(text: str) -> int:
    """Columns ``text`` takes on screen: wide (e.g. Chinese) characters count double."""
    first_line = text.split("\n", 1)[0]
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in first_line)

"""Outcomes in, CSV/XLSX out: the results report a user opens after a run.

This module owns the report file and nothing else: which columns it has and what they
are called, how each cell is written so that opening the file never runs anything, what
the XLSX looks like (bold frozen header, filter, widths, status colours, a Summary
sheet), where the report goes by default, and writing it atomically so that a crash
leaves either the old report or the new one, never half of one.

The report is the input sheet, row for row and cell for cell, with the result columns
(:data:`batchops.model.RESULT_COLUMNS`) appended. Safety rules:

* XLSX: every input cell is written as a string, with xlsxwriter's conversions to
  formulas, numbers and links switched off, so ``=1+1`` stays the text ``=1+1`` and
  ``007`` keeps its zeros. Only ``code``, ``attempts``, ``http_status`` and
  ``elapsed_ms`` are numbers. Excel keeps at most 32,767 characters in a cell; longer
  text is cut there by xlsxwriter.
* CSV: a program that opens a CSV guesses each cell's type, so every text cell
  (headers included) that starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return
  gets a leading ``'``. The file is UTF-8 with a BOM so Excel reads Chinese correctly.

A report that cannot be written raises :class:`batchops.errors.InputError` with a
one-line message naming the path and what to do.
"""

from __future__ import annotations

import csv
import errno
import itertools
import json
import math
import numbers
import os
import re
import sys
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

import pandas as pd

from batchops.errors import InputError
from batchops.model import RESULT_COLUMNS, OutcomeTable, Status
from batchops.outputs import temp_removed_on_signal

ReportFormat = Literal["csv", "xlsx"]

#: Result columns written as numbers (blank where the outcome has none).
NUMERIC_RESULT_COLUMNS = frozenset({"code", "attempts", "http_status", "elapsed_ms"})

#: First characters that make a spreadsheet treat a CSV cell as a formula (OWASP).
CSV_FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_STARTS = tuple("\n" + prefix for prefix in CSV_FORMULA_PREFIXES)

#: Data rows an XLSX sheet holds (1,048,576 rows minus the header) and its column limit.
XLSX_MAX_ROWS = 1_048_575
XLSX_MAX_COLUMNS = 16_384

RESULTS_SHEET = "Results"
SUMMARY_SHEET = "Summary"

_XLSX_OPTIONS: dict[str, object] = {
    "strings_to_formulas": False,
    "strings_to_numbers": False,
    "strings_to_urls": False,
    # Rows are flushed to disk as soon as the next one starts, so memory stays flat.
    "constant_memory": True,
}

# Background and font colours per status (Excel's own good/bad/neutral styles first).
_STATUS_COLOURS: dict[Status, tuple[str, str]] = {
    Status.SUCCESS: ("#C6EFCE", "#006100"),
    Status.FAILED: ("#FFC7CE", "#9C0006"),
    Status.UNKNOWN: ("#FFEB9C", "#9C5700"),
    Status.INVALID: ("#FCD5B4", "#974706"),
    Status.SKIPPED: ("#D9D9D9", "#404040"),
    Status.PENDING: ("#DDEBF7", "#1F4E78"),
}

#: How date cells show (finished_at, the Summary's start and end): the local time.
DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"
_EXCEL_EPOCH = datetime(1899, 12, 30)
_DATE_WIDTH = 20

_WIDTH_SAMPLE_ROWS = 200
_MIN_WIDTH = 6
_MAX_WIDTH = 60

_REPORT_STEM = re.compile(r"^(?P<base>.*)\.report(?:-(?P<generation>\d+))?$", re.IGNORECASE)
_EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"})


def result_column_names(input_columns: Sequence[str]) -> list[str]:
    """Names of the result columns for an input with these columns, in RESULT_COLUMNS order.

    A result column whose name an input column already has (case-insensitive, trimmed)
    is called ``result_<name>``; should that be taken too, ``result_`` is prefixed again,
    so every header of the report is distinct.
    """
    taken = {str(column).strip().casefold() for column in input_columns}
    names: list[str] = []
    for name in RESULT_COLUMNS:
        while name.casefold() in taken:
            name = f"result_{name}"
        taken.add(name.casefold())
        names.append(name)
    return names


def default_report_path(source: Path) -> Path:
    """Where the report of ``source`` goes unless the user says otherwise.

    Beside the input, in its format: ``tickets.csv`` gives ``tickets.report.csv`` and
    ``x.xlsx`` (or ``.xls``) gives ``x.report.xlsx``. The input is never the report: a
    report fed back in (``tickets.report.csv``) gives ``tickets.report-2.csv``, that one
    ``tickets.report-3.csv``, and so on.
    """
    suffix = ".xlsx" if source.suffix.lower() in _EXCEL_SUFFIXES else ".csv"
    match = _REPORT_STEM.match(source.stem)
    if match:
        base, generation = match["base"], int(match["generation"] or 1)
    else:
        base, generation = source.stem, 1
    while True:
        label = ".report" if generation == 1 else f".report-{generation}"
        candidate = source.with_name(f"{base}{label}{suffix}")
        # Case-insensitively, as Windows and macOS compare names.
        if candidate.name.casefold() != source.name.casefold():
            return candidate
        generation += 1


def default_plan_path(source: Path) -> Path:
    """Where ``batchops plan`` writes unless told: ``tickets.plan.csv`` / ``x.plan.xlsx``.

    Never the run's report: a plan written over ``tickets.report.csv`` would replace a
    run's real outcomes with "pending" (and under ``--sandbox`` nothing could rebuild it).
    """
    suffix = ".xlsx" if source.suffix.lower() in _EXCEL_SUFFIXES else ".csv"
    candidate = source.with_name(f"{source.stem}.plan{suffix}")
    if candidate.name.casefold() == source.name.casefold():
        candidate = source.with_name(f"{source.stem}.plan-2{suffix}")
    return candidate


@dataclass(frozen=True, slots=True)
class SummarySheet:
    """The Summary sheet of a run's XLSX report.

    ``facts`` are key/value rows (a ``datetime`` becomes a date cell); ``by_action`` is
    the table of rows per action and status, drawn as a stacked column chart beside it;
    ``failures`` are the top failure reasons as (reason, rows, one example sn);
    ``settings`` the run's settings, never a secret.
    """

    facts: Sequence[tuple[str, object]]
    by_action: Mapping[str, Mapping[str, int]]
    failures: Sequence[tuple[str, int, str]] = ()
    settings: Mapping[str, object] = field(default_factory=dict)


def write_report(
    frame: pd.DataFrame,
    outcomes: OutcomeTable,
    path: Path,
    *,
    fmt: ReportFormat | None = None,
    summary: SummarySheet | Mapping[str, object] | None = None,
    sheet_name: str | None = None,
) -> Path:
    """Write the input rows and their outcomes to ``path`` atomically; return ``path``.

    ``frame`` holds the input's own columns with every cell as text (``""`` when empty),
    in input order; row ``i`` of it belongs to outcome ``i``. ``fmt`` defaults to the
    suffix of ``path``. ``summary`` becomes a second sheet "Summary" in an XLSX report (a
    :class:`SummarySheet`, or plain key/value rows); a CSV report has no room for it and
    leaves it out. ``sheet_name`` names the XLSX results sheet (the input's sheet, so the
    same ``--sheet`` reads the report back), "Results" by default.
    """
    if len(outcomes) != len(frame):
        raise ValueError(f"{len(frame)} input rows but {len(outcomes)} outcomes")
    fmt = fmt or _format_of(path)
    headers = [str(column) for column in frame.columns]
    result_names = result_column_names(headers)
    if fmt == "csv":
        with _atomic_file(path) as temp:
            _write_csv(temp, frame, headers, result_names, outcomes)
    elif fmt == "xlsx":
        _check_fits_sheet(path, len(frame), len(headers) + len(result_names))
        with _atomic_file(path) as temp:
            _write_xlsx(temp, frame, headers, result_names, outcomes, summary, sheet_name)
    else:
        raise ValueError(f"unknown report format {fmt!r}; expected 'csv' or 'xlsx'")
    return path


# --- CSV ------------------------------------------------------------------------------


#: Rows formatted at a time: a million-row report never has all its cells in memory twice.
_CSV_CHUNK_ROWS = 50_000


def _write_csv(
    temp: Path,
    frame: pd.DataFrame,
    headers: list[str],
    result_names: list[str],
    outcomes: OutcomeTable,
) -> None:
    rows = len(frame)
    with temp.open("w", encoding="utf-8-sig", newline="") as handle:
        # CRLF as RFC 4180 says; it also makes the writer quote a cell holding a bare
        # "\r", which a "\n" terminator would leave bare and so split the row in Excel.
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow([_guard_text(h) for h in headers] + result_names)
        for start in range(0, rows, _CSV_CHUNK_ROWS):
            stop = min(start + _CSV_CHUNK_ROWS, rows)
            results = outcomes.columns(start, stop)
            columns = [
                _guard_cells(_as_text(frame.iloc[start:stop, position]).tolist())
                for position in range(len(headers))
            ]
            for name in RESULT_COLUMNS:
                # Numbers go out as Python writes them (None as an empty cell).
                values = results[name]
                columns.append(values if name in NUMERIC_RESULT_COLUMNS else _guard_cells(values))
            writer.writerows(zip(*columns, strict=True))
        _sync(handle)


def _guard_cells(values: list[Any]) -> list[Any]:
    """Prefix ``'`` to every cell a spreadsheet would read as a formula."""
    try:
        # A few scans in C over the joined cells; a hit may come from a line inside a
        # cell, and then the cells are looked at one by one.
        joined = "\n" + "\n".join(values)
        suspicious = any(start in joined for start in _FORMULA_STARTS)
    except TypeError:  # a cell that is not text (None)
        suspicious = True
    if not suspicious:
        return values
    return [
        "'" + v if isinstance(v, str) and v.startswith(CSV_FORMULA_PREFIXES) else v for v in values
    ]


def _as_text(column: pd.Series[Any]) -> pd.Series[Any]:
    """The column as strings on a fresh 0..n-1 index (the caller promises text already)."""
    column = column.reset_index(drop=True)
    if isinstance(column.dtype, pd.StringDtype):
        return column.fillna("")
    return column.fillna("").astype("str")


def _guard_text(text: str) -> str:
    return "'" + text if text.startswith(CSV_FORMULA_PREFIXES) else text


# --- XLSX -----------------------------------------------------------------------------


def _check_fits_sheet(path: Path, rows: int, columns: int) -> None:
    if rows > XLSX_MAX_ROWS:
        raise InputError(
            f"cannot write the report {path}: {rows:,} rows do not fit in an Excel sheet "
            f"(at most {XLSX_MAX_ROWS:,}); write a .csv report instead"
        )
    if columns > XLSX_MAX_COLUMNS:
        raise InputError(
            f"cannot write the report {path}: {columns:,} columns do not fit in an Excel "
            f"sheet (at most {XLSX_MAX_COLUMNS:,}); write a .csv report instead"
        )


def _write_xlsx(
    temp: Path,
    frame: pd.DataFrame,
    headers: list[str],
    result_names: list[str],
    outcomes: OutcomeTable,
    summary: SummarySheet | Mapping[str, object] | None,
    sheet_name: str | None,
) -> None:
    inputs = [_as_text(frame.iloc[:, position]).tolist() for position in range(len(headers))]
    results = outcomes.columns()
    # xlsxwriter refuses NaN and infinity (or writes them as formulas): leave them blank.
    results["elapsed_ms"] = [
        v if isinstance(v, float) and math.isfinite(v) else None for v in results["elapsed_ms"]
    ]
    import xlsxwriter.format  # only XLSX reports pay for importing it

    book = _Book(headers, result_names, inputs, results, summary, _results_sheet_name(sheet_name))
    fast = callable(getattr(xlsxwriter.format.Format, "_get_xf_index", None))
    if fast:
        try:
            _write_xlsx_book(temp, book, fast=True)
            return
        except _SpliceUnsupported:
            pass  # an xlsxwriter whose output we do not recognise: write it the slow way
    _write_xlsx_book(temp, book, fast=False)


@dataclass(frozen=True, slots=True)
class _Book:
    """What goes into an XLSX report, before any of it is written."""

    headers: list[str]
    result_names: list[str]
    inputs: list[list[str]]
    results: dict[str, list[Any]]
    summary: SummarySheet | Mapping[str, object] | None
    sheet_name: str


def _results_sheet_name(name: str | None) -> str:
    """The input's sheet name where Excel takes it as a sheet name, else "Results"."""
    if not name or len(name) > 31 or any(c in name for c in "[]:*?/\\"):
        return RESULTS_SHEET
    if name.startswith("'") or name.endswith("'") or name.casefold() == "history":
        return RESULTS_SHEET
    return name


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
                serial = (when - _EXCEL_EPOCH).total_seconds() / 86400.0
            except (TypeError, ValueError):
                serial = str(value)
            known[value] = serial
        out.append(serial)
    return out


def _needs_wrap(text: str, width: int) -> bool:
    """Whether a message is too long for its column (wide characters count double)."""
    if "\n" in text:
        return True
    return len(text) > width if text.isascii() else 2 * len(text) > width


def _write_xlsx_book(temp: Path, book: _Book, *, fast: bool) -> None:
    """The workbook: xlsxwriter writes it all, or (``fast``) all but the Results cells.

    In the fast way xlsxwriter writes the styles, widths, frozen header, filter and the
    Summary sheet, with an empty Results sheet; :func:`_write_xlsx_rows` then puts the
    cells in, encoded exactly as xlsxwriter encodes them (a few times faster).
    """
    import xlsxwriter

    results = book.results
    rows = len(results["status"])
    names = book.headers + book.result_names
    width = len(names)
    workbook = xlsxwriter.Workbook(str(temp), dict(_XLSX_OPTIONS))
    try:
        bold = workbook.add_format({"bold": True})
        status_formats = {
            status.value: workbook.add_format({"bg_color": bg, "font_color": fg})
            for status, (bg, fg) in _STATUS_COLOURS.items()
        }
        sheet = workbook.add_worksheet(book.sheet_name)
        all_columns = [*book.inputs, *(results[name] for name in RESULT_COLUMNS)]
        widths = [
            _DATE_WIDTH if col == width - 1 else _column_width(header, values)
            for col, (header, values) in enumerate(zip(names, all_columns, strict=True))
        ]
        for col, column_width in enumerate(widths):
            sheet.set_column(col, col, column_width)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, rows, width - 1)
        looks = _Looks(
            status=status_formats,
            date=workbook.add_format({"num_format": DATE_FORMAT}),
            wrap=workbook.add_format({"text_wrap": True, "valign": "top"}),
            message_width=widths[len(book.inputs) + RESULT_COLUMNS.index("message")],
        )
        results = {**results, "finished_at": excel_times(results["finished_at"])}
        header_style, styles = "", None
        if fast:
            # Formats count as used (and get a style index) once a cell asks for them.
            header_style = f' s="{bold._get_xf_index()}"'
            styles = looks.styles()
        else:
            for col, header in enumerate(names):
                sheet.write_string(0, col, header, bold)
            _write_xlsx_rows_one_by_one(sheet, book.inputs, results, looks)
        if book.summary is not None:
            summary_name = SUMMARY_SHEET
            if book.sheet_name.casefold() == SUMMARY_SHEET.casefold():
                summary_name = f"{SUMMARY_SHEET} (batchops)"
            summary_sheet = workbook.add_worksheet(summary_name)
            if isinstance(book.summary, SummarySheet):
                _write_run_summary(workbook, summary_sheet, book.summary, bold, looks)
            else:
                _write_summary(summary_sheet, book.summary, bold)
    except BaseException:
        # Close quietly so xlsxwriter's own temp files go; the caller removes ours.
        with suppress(Exception):
            workbook.close()
        raise
    workbook.close()
    if styles is not None:
        _write_xlsx_rows(temp, names, header_style, book.inputs, results, styles)
    with temp.open("r+b") as handle:
        _sync(handle)


@dataclass(frozen=True, slots=True)
class _Looks:
    """The Results cells' formats: status colours, date cells, wrapped long messages."""

    status: Mapping[str, Any]
    date: Any
    wrap: Any
    message_width: int

    def styles(self) -> _Styles:
        """The same formats as the ``s="…"`` attributes of directly written cells."""
        return _Styles(
            {name: f' s="{fmt._get_xf_index()}"' for name, fmt in self.status.items()},
            f' s="{self.date._get_xf_index()}"',
            f' s="{self.wrap._get_xf_index()}"',
            self.message_width,
        )


@dataclass(frozen=True, slots=True)
class _Styles:
    status: Mapping[str, str]
    date: str
    wrap: str
    message_width: int


def _write_xlsx_rows_one_by_one(
    sheet: Any,
    inputs: list[list[str]],
    results: dict[str, list[object]],
    looks: _Looks,
) -> None:
    """Write the data rows through xlsxwriter, strictly in order (constant_memory)."""
    write_string = sheet.write_string
    write_number = sheet.write_number
    first_result = len(inputs)
    kinds = [_kind(name) for name in RESULT_COLUMNS]
    result_columns = [results[name] for name in RESULT_COLUMNS]
    # An input without columns still has rows: one empty tuple of input cells each.
    rows = zip(*inputs, strict=True) if inputs else itertools.repeat((), len(result_columns[0]))
    for row, (cells, outcome) in enumerate(
        zip(rows, zip(*result_columns, strict=True), strict=True), start=1
    ):
        for col, text in enumerate(cells):
            if text:
                write_string(row, col, text)
        for col, (kind, value) in enumerate(zip(kinds, outcome, strict=True), start=first_result):
            if value is None or value == "":
                continue
            if kind == "number":
                write_number(row, col, value)
            elif kind == "status":
                write_string(row, col, value, looks.status.get(str(value)))
            elif kind == "time" and isinstance(value, float):
                write_number(row, col, value, looks.date)
            elif kind == "message" and _needs_wrap(str(value), looks.message_width):
                write_string(row, col, str(value), looks.wrap)
            else:
                write_string(row, col, str(value))


def _kind(name: str) -> str:
    """How a result column's cells are written."""
    if name in NUMERIC_RESULT_COLUMNS:
        return "number"
    return {"status": "status", "finished_at": "time", "message": "message"}.get(name, "text")


# --- XLSX cells, encoded directly -----------------------------------------------------------
#
# xlsxwriter spends ~5 µs per cell in Python; a report of 100,000 rows has over a million
# cells. Here the Results sheet's cells are encoded a column at a time and streamed into
# the workbook xlsxwriter wrote, byte for byte as xlsxwriter's constant_memory mode writes
# them: inline strings, a literal ``_xHHHH_`` with its underscore escaped, control
# characters as ``_xHHHH_``, ``&<>`` as entities, ``xml:space="preserve"`` for leading
# or trailing blanks, text cut at 32,767 UTF-16 units, numbers as ``{:.16G}``. One
# deliberate difference: xlsxwriter writes a text that starts with ``<r>`` and ends with
# ``</r>`` as raw rich-text XML (so a cell "<r>x</r>" came out empty); here it is text.


class _SpliceUnsupported(Exception):
    """xlsxwriter's sheet XML is not what the direct cell writer expects."""


_SHEET_XML = "xl/worksheets/sheet1.xml"
_XLSX_STRMAX = 32_767
_XLSX_CHUNK_ROWS = 20_000
_OOXML_LITERAL = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_OOXML_CONTROL = re.compile(r"([\x00-\x08\x0b-\x1f])")
_LEADING_BLANK = re.compile(r"^\s")
_TRAILING_BLANK = re.compile(r"\s$")
#: A text that none of these touch is written as it is.
_NEEDS_ENCODING = re.compile(r"[&<>\x00-\x08\x0b-\x1f]|_x[0-9a-fA-F]{4}_|^\s|\s$")
_PRESERVE = ' xml:space="preserve"'


def _xlsx_text(text: str) -> tuple[str, bool]:
    """A text cell's XML content and whether it keeps its blanks, as xlsxwriter has it."""
    if len(text) > _XLSX_STRMAX // 2:
        units = 0
        for index, char in enumerate(text):
            units += 2 if ord(char) > 0xFFFF else 1
            if units > _XLSX_STRMAX:
                text = text[:index]
                break
    text = _OOXML_LITERAL.sub(r"_x005F\1", text)
    text = _OOXML_CONTROL.sub(lambda match: f"_x{ord(match.group(1)):04X}_", text)
    preserve = bool(_LEADING_BLANK.search(text) or _TRAILING_BLANK.search(text))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text, preserve


def _text_cells(
    letter: str,
    row_numbers: Sequence[str],
    values: Sequence[Any],
    styles: Mapping[str, str] | None = None,
    wrap: tuple[str, int] | None = None,
) -> list[str]:
    """One column's text cells for these rows ("" where a cell is empty); ``styles`` gives
    the style attribute per text (status colours), ``wrap`` the style and column width
    for texts too long for their column."""
    needs_work = _NEEDS_ENCODING.search
    limit = _XLSX_STRMAX // 2
    # Texts shorter than half the column fit whatever their characters: no closer look.
    short = wrap[1] // 2 if wrap is not None else limit
    cells: list[str] = []
    append = cells.append
    for number, value in zip(row_numbers, values, strict=True):
        if value is None or value == "":
            append("")
            continue
        text = str(value)
        style = styles.get(text, "") if styles else ""
        if wrap is not None and (len(text) > short or "\n" in text) and _needs_wrap(text, wrap[1]):
            style = wrap[0]
        if len(text) <= limit and not needs_work(text):
            append(f'<c r="{letter}{number}"{style} t="inlineStr"><is><t>{text}</t></is></c>')
        else:
            text, keep = _xlsx_text(text)
            space = _PRESERVE if keep else ""
            append(
                f'<c r="{letter}{number}"{style} t="inlineStr"><is><t{space}>{text}</t></is></c>'
            )
    return cells


def _number_cells(
    letter: str, row_numbers: Sequence[str], values: Sequence[Any], style: str = ""
) -> list[str]:
    return [
        "" if value is None else f'<c r="{letter}{number}"{style}><v>{value:.16G}</v></c>'
        for number, value in zip(row_numbers, values, strict=True)
    ]


def _time_cells(
    letter: str, row_numbers: Sequence[str], values: Sequence[Any], style: str
) -> list[str]:
    """Date numbers with the date style; a text that was no time stays a text cell.

    Rows finishing in the same second share a number: each is formatted once.
    """
    shown: dict[float, str] = {}
    cells = []
    for number, value in zip(row_numbers, values, strict=True):
        if value is None:
            cells.append("")
        elif isinstance(value, float):
            text = shown.get(value)
            if text is None:
                text = shown[value] = f"{style}><v>{value:.16G}</v></c>"
            cells.append(f'<c r="{letter}{number}"{text}')
        else:
            cells.extend(_text_cells(letter, [number], [value]))
    return cells


def _sheet_rows_xml(
    names: Sequence[str],
    header_style: str,
    inputs: list[list[str]],
    results: dict[str, list[Any]],
    styles: _Styles,
) -> Iterator[str]:
    """The ``<row>`` elements of the Results sheet, a chunk of rows at a time."""
    letters = _letters(len(names))
    yield _header_row_xml(letters, names, header_style)
    total = len(results["status"])
    first_result = len(inputs)
    for start in range(0, total, _XLSX_CHUNK_ROWS):
        stop = min(start + _XLSX_CHUNK_ROWS, total)
        numbers = [str(n) for n in range(start + 2, stop + 2)]
        columns = [
            _text_cells(letters[col], numbers, values[start:stop])
            for col, values in enumerate(inputs)
        ]
        for offset, name in enumerate(RESULT_COLUMNS):
            letter = letters[first_result + offset]
            values = results[name][start:stop]
            kind = _kind(name)
            if kind == "number":
                columns.append(_number_cells(letter, numbers, values))
            elif kind == "time":
                columns.append(_time_cells(letter, numbers, values, styles.date))
            elif kind == "status":
                columns.append(_text_cells(letter, numbers, values, styles.status))
            elif kind == "message":
                wrap = (styles.wrap, styles.message_width)
                columns.append(_text_cells(letter, numbers, values, wrap=wrap))
            else:
                columns.append(_text_cells(letter, numbers, values))
        yield _rows_xml(numbers, columns)


def _letters(width: int) -> list[str]:
    from xlsxwriter.utility import xl_col_to_name

    return [xl_col_to_name(col) for col in range(width)]


def _header_row_xml(letters: Sequence[str], names: Sequence[str], style: str) -> str:
    header = []
    for letter, name in zip(letters, names, strict=True):
        text, keep = _xlsx_text(name)
        space = _PRESERVE if keep else ""
        header.append(f'<c r="{letter}1"{style} t="inlineStr"><is><t{space}>{text}</t></is></c>')
    return f'<row r="1">{"".join(header)}</row>'


def _rows_xml(numbers: Sequence[str], columns: Sequence[Sequence[str]]) -> str:
    """``<row>`` elements from the cells of each column (xlsxwriter skips empty rows)."""
    rows = []
    for number, cells in zip(numbers, zip(*columns, strict=True), strict=True):
        body = "".join(cells)
        if body:
            rows.append(f'<row r="{number}">{body}</row>')
    return "".join(rows)


def _write_xlsx_rows(
    temp: Path,
    names: Sequence[str],
    header_style: str,
    inputs: list[list[str]],
    results: dict[str, list[Any]],
    styles: _Styles,
) -> None:
    """Put the Results cells into the workbook at ``temp`` (its sheet has no cells yet)."""
    rows = len(results["status"])
    # Zip64 only where a sheet this big needs it (a conservative bound on its size).
    big = (rows + 1) * len(names) * 80 + sum(len(v) * 8 for column in inputs for v in column)
    chunks = _sheet_rows_xml(names, header_style, inputs, results, styles)
    _splice_sheets(temp, {_SHEET_XML: (rows + 1, len(names), chunks, big > 2**31)})


def _splice_sheets(temp: Path, sheets: Mapping[str, tuple[int, int, Iterable[str], bool]]) -> None:
    """Stream rows into sheets of the workbook at ``temp`` that xlsxwriter wrote without
    cells: sheet XML member → (rows, columns, ``<row>`` XML chunks, needs Zip64)."""
    with zipfile.ZipFile(temp) as book:
        infos = book.infolist()
        members = {info.filename: book.read(info) for info in infos}
    parts: dict[str, tuple[str, str]] = {}
    for member, (rows, width, _, _) in sheets.items():
        xml = members.get(member, b"").decode("utf-8")
        dimension = re.findall(r'<dimension ref="[^"]*"/>', xml)
        if xml.count("<sheetData/>") != 1 or len(dimension) != 1:
            raise _SpliceUnsupported(member)
        last = _letters(max(width, 1))[-1] + str(max(rows, 1))
        ref = "A1" if last == "A1" else f"A1:{last}"
        head, tail = xml.split("<sheetData/>")
        parts[member] = (head.replace(dimension[0], f'<dimension ref="{ref}"/>'), tail)
    with zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED) as book:
        for info in infos:
            if info.filename not in sheets:
                book.writestr(info, members[info.filename])
                continue
            head, tail = parts[info.filename]
            _, _, chunks, big = sheets[info.filename]
            entry = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = info.external_attr
            with book.open(entry, "w", force_zip64=big) as sheet:
                sheet.write(head.encode("utf-8") + b"<sheetData>")
                for chunk in chunks:
                    sheet.write(chunk.encode("utf-8"))
                sheet.write(b"</sheetData>" + tail.encode("utf-8"))


def _write_summary(sheet: Any, summary: Mapping[str, object], bold: object) -> None:
    """Key/value rows; a mapping or a list of pairs becomes a titled block of rows."""
    keys = [str(k) for k in summary]
    for value in summary.values():
        if isinstance(value, Mapping):
            keys += [f"  {k}" for k in value]
    sheet.set_column(
        0, 0, min(_MAX_WIDTH, max([_MIN_WIDTH * 2, *(_display_width(k) + 2 for k in keys)]))
    )
    sheet.set_column(1, 1, 40)
    row = 0
    for key, value in summary.items():
        sheet.write_string(row, 0, str(key), bold)
        pairs: list[tuple[object, object]] | None = None
        if isinstance(value, Mapping):
            pairs = list(value.items())
        elif isinstance(value, list) and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            pairs = list(value)
        if pairs is None:
            _write_summary_value(sheet, row, value)
            row += 1
            continue
        row += 1
        for sub_key, sub_value in pairs:
            sheet.write_string(row, 0, f"  {sub_key}")
            _write_summary_value(sheet, row, sub_value)
            row += 1
        row += 1


def _write_run_summary(
    workbook: Any, sheet: Any, summary: SummarySheet, bold: object, looks: _Looks
) -> None:
    """Facts, the action × status table with its chart, failure reasons, settings."""
    statuses = [
        s.value for s in Status if any(per.get(s.value) for per in summary.by_action.values())
    ]
    actions = sorted(summary.by_action)
    keys = [k for k, _ in summary.facts] + actions + [f"  {k}" for k in summary.settings]
    keys += [reason for reason, _, _ in summary.failures]
    sheet.set_column(
        0, 0, min(_MAX_WIDTH, max([_MIN_WIDTH * 2, *(_display_width(k) + 2 for k in keys)]))
    )
    sheet.set_column(1, 1, _DATE_WIDTH + 2)
    sheet.set_column(2, max(2, len(statuses) + 1), 11)
    row = 0
    for key, value in summary.facts:
        sheet.write_string(row, 0, key, bold)
        _write_summary_value(sheet, row, value, looks.date)
        row += 1
    row += 1
    sheet.write_string(row, 0, "rows per action and status", bold)
    row += 1
    header_row = row
    sheet.write_string(row, 0, "action", bold)
    for col, status in enumerate([*statuses, "total"], start=1):
        sheet.write_string(row, col, status, looks.status.get(status, bold))
    totals = dict.fromkeys(statuses, 0)
    for action in actions:
        row += 1
        per = summary.by_action[action]
        sheet.write_string(row, 0, action)
        for col, status in enumerate(statuses, start=1):
            sheet.write_number(row, col, per.get(status, 0))
            totals[status] += per.get(status, 0)
        sheet.write_number(row, len(statuses) + 1, sum(per.get(s, 0) for s in statuses))
    row += 1
    sheet.write_string(row, 0, "total", bold)
    for col, status in enumerate(statuses, start=1):
        sheet.write_number(row, col, totals[status], bold)
    sheet.write_number(row, len(statuses) + 1, sum(totals.values()), bold)
    if actions and statuses:
        _insert_chart(workbook, sheet, header_row, len(actions), statuses, len(statuses) + 3)
    row += 2
    sheet.write_string(row, 0, "top failure reasons", bold)
    row += 1
    for col, title in enumerate(("reason", "rows", "example sn")):
        sheet.write_string(row, col, title, bold)
    for reason, count, example in summary.failures or [("none", 0, "")]:
        row += 1
        sheet.write_string(row, 0, reason, looks.wrap)
        sheet.write_number(row, 1, count)
        if example:
            sheet.write_string(row, 2, example)
    row += 2
    sheet.write_string(row, 0, "settings", bold)
    for key, value in summary.settings.items():
        row += 1
        sheet.write_string(row, 0, f"  {key}")
        _write_summary_value(sheet, row, value, looks.date)


def _insert_chart(
    workbook: Any, sheet: Any, header_row: int, actions: int, statuses: list[str], column: int
) -> None:
    """A native stacked column chart of the action × status table, beside the facts."""
    chart = workbook.add_chart({"type": "column", "subtype": "stacked"})
    name = sheet.get_name()
    first, last = header_row + 1, header_row + actions
    colours = {s.value: c for s, c in _STATUS_COLOURS.items()}
    for col, status in enumerate(statuses, start=1):
        background, line = colours[status]
        chart.add_series(
            {
                "name": [name, header_row, col],
                "categories": [name, first, 0, last, 0],
                "values": [name, first, col, last, col],
                "fill": {"color": background},
                "border": {"color": line},
            }
        )
    chart.set_title({"name": "Rows per action and status"})
    chart.set_y_axis({"name": "rows", "major_gridlines": {"visible": True}})
    chart.set_legend({"position": "bottom"})
    sheet.insert_chart(0, column, chart)


def _write_summary_value(sheet: Any, row: int, value: object, date_format: object = None) -> None:
    if value is None:
        return
    if isinstance(value, datetime):
        serial = (value.replace(tzinfo=None) - _EXCEL_EPOCH).total_seconds() / 86400.0
        sheet.write_number(row, 1, serial, date_format)
    elif isinstance(value, bool):
        sheet.write_boolean(row, 1, value)
    elif isinstance(value, numbers.Real):
        if math.isfinite(value):
            sheet.write_number(row, 1, value)
        elif value == value:  # infinity as text; NaN stays blank
            sheet.write_string(row, 1, str(value))
    elif isinstance(value, Mapping | list | tuple):
        sheet.write_string(row, 1, json.dumps(value, ensure_ascii=False, default=str))
    else:
        sheet.write_string(row, 1, str(value))


def _column_width(header: str, values: Sequence[object]) -> int:
    sample = (str(v) for v in values[:_WIDTH_SAMPLE_ROWS] if v is not None)
    widest = max([_display_width(header) + 3, *(_display_width(s) + 1 for s in sample)])
    return max(_MIN_WIDTH, min(_MAX_WIDTH, widest))


def _display_width(text: str) -> int:
    """Columns ``text`` takes on screen: wide (e.g. Chinese) characters count double."""
    first_line = text.split("\n", 1)[0]
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in first_line)


# --- files ----------------------------------------------------------------------------


def _format_of(path: Path) -> ReportFormat:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".xlsx":
        return "xlsx"
    raise InputError(
        f"cannot tell the report format of {path}: name the report file *.csv or *.xlsx"
    )


@contextmanager
def _atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temp file beside ``path``; after the block, move it onto ``path``.

    The block writes (and syncs) the temp file. On any error the temp file is removed
    and ``path`` is left as it was; file-system errors become :class:`InputError`.
    """
    with temp_removed_on_signal(path) as guard:
        try:
            fd = guard.create(path)
        except OSError as exc:
            raise _unwritable(path, exc) from exc
        os.close(fd)
        temp = guard.path
        assert temp is not None
        try:
            yield temp
            os.chmod(temp, _new_file_mode(path))
            os.replace(temp, path)
            guard.renamed = True
        except BaseException as exc:
            with suppress(OSError):
                temp.unlink()
            if isinstance(exc, (OSError, *_xlsxwriter_errors())):
                raise _unwritable(path, exc) from exc
            raise
    _sync_directory(path.parent)


def _xlsxwriter_errors() -> tuple[type[Exception], type[Exception]] | tuple[()]:
    """xlsxwriter's file errors (FileCreateError, FileSizeError), if it was imported at all."""
    module = sys.modules.get("xlsxwriter.exceptions")
    if module is None:
        return ()
    return (module.FileCreateError, module.FileSizeError)


def _unwritable(path: Path, exc: BaseException) -> InputError:
    errors = _xlsxwriter_errors()
    if errors and isinstance(exc, errors[1]):
        return InputError(f"cannot write the report {path}: too big for XLSX; write a .csv")
    if errors and isinstance(exc, errors[0]) and exc.args and isinstance(exc.args[0], OSError):
        exc = exc.args[0]
    code = exc.errno if isinstance(exc, OSError) else None
    folder = path.parent
    hints: dict[int | None, str] = {
        errno.ENOENT: f"the folder {folder} does not exist; create it or choose another path",
        errno.ENOTDIR: f"{folder} is not a folder; choose another report path",
        errno.EACCES: (
            f"permission denied; choose a folder you can write to, or close {path.name} "
            "if another program has it open"
        ),
        errno.EISDIR: "that is a folder; give a file name ending in .csv or .xlsx",
        errno.ENOSPC: "the disk is full; free some space or write the report elsewhere",
        errno.EROFS: "the file system is read-only; choose another report path",
    }
    hints[errno.EPERM] = hints[errno.EACCES]
    reason = hints.get(code) or f"{_one_line(exc)}; check the path and try again"
    return InputError(f"cannot write the report {path}: {reason}")


def _one_line(exc: BaseException) -> str:
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return " ".join(text.split()) or type(exc).__name__


def _new_file_mode(path: Path) -> int:
    """The mode a plain ``open(path, "w")`` would give (mkstemp makes files 0600)."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def _sync(handle: IO[Any]) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _sync_directory(folder: Path) -> None:
    """Make the rename durable; not every platform can open a folder, which is fine."""
    if os.name != "posix":
        return
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


ATTENTION = (Status.FAILED, Status.UNKNOWN, Status.INVALID)


def write_failures(frame: pd.DataFrame, outcomes: OutcomeTable, path: Path) -> Path:
    """Write only the rows that need a person's attention (failed, unknown, invalid).

    It is a report of those rows — the input's columns, then the result columns — so it
    reads back as input: fix the rows and run it again.
    """
    keep = outcomes.rows_with(*ATTENTION).tolist()
    subset = OutcomeTable(len(keep))
    for position, index in enumerate(keep):
        subset.set(position, outcomes.get(index))
    return write_report(frame.iloc[keep].reset_index(drop=True), subset, path)


# --- plain sheets ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Table:
    """A sheet of text cells without result columns (what ``select`` and ``undo`` write)."""

    name: str
    header: Sequence[str]
    rows: Sequence[Sequence[str]]


def write_tables(path: Path, tables: Sequence[Table], *, fmt: ReportFormat | None = None) -> Path:
    """Write text-only sheets to ``path`` atomically, under the report's safety rules.

    XLSX: one worksheet per table, every cell a string (never a formula, number or link),
    bold frozen header with a filter. CSV holds one table only (UTF-8 with BOM, cells that
    look like formulas quoted); a caller with more writes them to files of their own.
    """
    fmt = fmt or _format_of(path)
    if fmt == "csv":
        if len(tables) != 1:
            raise ValueError(f"a CSV file holds one table, not {len(tables)}")
        with _atomic_file(path) as temp:
            _write_csv_table(temp, tables[0])
    else:
        for table in tables:
            _check_fits_sheet(path, len(table.rows), len(table.header))
        with _atomic_file(path) as temp:
            _write_xlsx_tables(temp, tables)
    return path


def _write_csv_table(temp: Path, table: Table) -> None:
    with temp.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(_guard_cells(list(table.header)))
        writer.writerows(_guard_cells(list(row)) for row in table.rows)
        _sync(handle)


def _write_xlsx_tables(temp: Path, tables: Sequence[Table]) -> None:
    import xlsxwriter.format

    if callable(getattr(xlsxwriter.format.Format, "_get_xf_index", None)):
        try:
            _write_xlsx_tables_book(temp, tables, fast=True)
            return
        except _SpliceUnsupported:
            pass
    _write_xlsx_tables_book(temp, tables, fast=False)


def _write_xlsx_tables_book(temp: Path, tables: Sequence[Table], *, fast: bool) -> None:
    """Like :func:`_write_xlsx_book`: xlsxwriter writes all, or all but the cells."""
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(temp), dict(_XLSX_OPTIONS))
    header_style = ""
    try:
        bold = workbook.add_format({"bold": True})
        for table in tables:
            sheet = workbook.add_worksheet(table.name)
            width = len(table.header)
            for col, header in enumerate(table.header):
                sample = [row[col] for row in table.rows[:_WIDTH_SAMPLE_ROWS]]
                sheet.set_column(col, col, _column_width(header, sample))
            sheet.freeze_panes(1, 0)
            if width:
                sheet.autofilter(0, 0, len(table.rows), width - 1)
            if fast:
                continue
            for col, header in enumerate(table.header):
                sheet.write_string(0, col, header, bold)
            write_string = sheet.write_string
            for number, row in enumerate(table.rows, start=1):
                for col, text in enumerate(row):
                    if text:
                        write_string(number, col, text)
        if fast:
            header_style = f' s="{bold._get_xf_index()}"'
    except BaseException:
        with suppress(Exception):
            workbook.close()
        raise
    workbook.close()
    if fast:
        _splice_sheets(
            temp,
            {
                f"xl/worksheets/sheet{number}.xml": (
                    len(table.rows) + 1,
                    len(table.header),
                    _table_rows_xml(table, header_style),
                    sum(len(c) * 8 + 40 for row in table.rows for c in row) > 2**31,
                )
                for number, table in enumerate(tables, start=1)
            },
        )
    with temp.open("r+b") as handle:
        _sync(handle)


def _table_rows_xml(table: Table, header_style: str) -> Iterator[str]:
    letters = _letters(len(table.header))
    yield _header_row_xml(letters, table.header, header_style)
    for start in range(0, len(table.rows), _XLSX_CHUNK_ROWS):
        chunk = table.rows[start : start + _XLSX_CHUNK_ROWS]
        numbers = [str(n) for n in range(start + 2, start + 2 + len(chunk))]
        columns = [
            _text_cells(letter, numbers, [row[col] for row in chunk])
            for col, letter in enumerate(letters)
        ]
        yield _rows_xml(numbers, columns)

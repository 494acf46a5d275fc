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
from collections.abc import Iterator, Mapping, Sequence
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
    book = _Book(headers, result_names, inputs, results, summary, _results_sheet_name(sheet_name))
    _write_xlsx_book(temp, book)


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


def _write_xlsx_book(temp: Path, book: _Book) -> None:
    """The workbook, through xlsxwriter's public API: Results sheet, then Summary."""
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
        for col, header in enumerate(names):
            _write_text(sheet, 0, col, header, bold)
        _write_xlsx_rows(sheet, book.inputs, results, looks)
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
    with temp.open("r+b") as handle:
        _sync(handle)


@dataclass(frozen=True, slots=True)
class _Looks:
    """The Results cells' formats: status colours, date cells, wrapped long messages."""

    status: Mapping[str, Any]
    date: Any
    wrap: Any
    message_width: int


def _write_xlsx_rows(
    sheet: Any,
    inputs: list[list[str]],
    results: dict[str, list[object]],
    looks: _Looks,
) -> None:
    """Write the data rows through xlsxwriter, strictly in order (constant_memory).

    xlsxwriter spends a few µs per cell (a 100,000-row report takes seconds); the loop
    binds the writers once and skips empty cells, and that is all the speed it asks for.
    """
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
                if text.startswith("<r>"):
                    _write_text(sheet, row, col, text)
                else:
                    write_string(row, col, text)
        for col, (kind, value) in enumerate(zip(kinds, outcome, strict=True), start=first_result):
            if value is None or value == "":
                continue
            if kind == "number":
                write_number(row, col, value)
            elif kind == "status":
                _write_text(sheet, row, col, str(value), looks.status.get(str(value)))
            elif kind == "time" and isinstance(value, float):
                write_number(row, col, value, looks.date)
            elif kind == "message" and _needs_wrap(str(value), looks.message_width):
                _write_text(sheet, row, col, str(value), looks.wrap)
            else:
                _write_text(sheet, row, col, str(value))


def _kind(name: str) -> str:
    """How a result column's cells are written."""
    if name in NUMERIC_RESULT_COLUMNS:
        return "number"
    return {"status": "status", "finished_at": "time", "message": "message"}.get(name, "text")


#: Excel keeps at most this many UTF-16 units in a cell.
_XLSX_STRMAX = 32_767


def _write_text(sheet: Any, row: int, col: int, text: str, cell_format: object = None) -> None:
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
    """One sheet per table through xlsxwriter: bold frozen header, filter, text cells."""
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(temp), dict(_XLSX_OPTIONS))
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
            for col, header in enumerate(table.header):
                _write_text(sheet, 0, col, header, bold)
            write_string = sheet.write_string
            for number, row in enumerate(table.rows, start=1):
                for col, text in enumerate(row):
                    if text:
                        if text.startswith("<r>"):
                            _write_text(sheet, number, col, text)
                        else:
                            write_string(number, col, text)
    except BaseException:
        with suppress(Exception):
            workbook.close()
        raise
    workbook.close()
    with temp.open("r+b") as handle:
        _sync(handle)

"""The XLSX report: the Results sheet (then the Summary sheet) through xlsxwriter's
public API, rows streamed in order.

Every input cell is written as a string, so ``=1+1`` stays the text ``=1+1`` and ``007``
keeps its zeros; only ``code``, ``attempts``, ``http_status`` and ``elapsed_ms`` are
numbers and ``finished_at`` a date cell. The header is bold, frozen and filtered, the
widths follow the content, status cells are coloured by status and long messages wrap.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from batchops.model import RESULT_COLUMNS, OutcomeTable

from .columns import NUMERIC_RESULT_COLUMNS, text_column
from .summary_sheet import SummarySheet, add_summary_sheet
from .xlsx_cells import (
    DATE_FORMAT,
    DATE_WIDTH,
    STATUS_COLOURS,
    Looks,
    Sheet,
    column_width,
    excel_times,
    needs_wrap,
    open_workbook,
    write_text,
)

RESULTS_SHEET = "Results"


def write_xlsx_report(
    temp: Path,
    frame: pd.DataFrame,
    headers: list[str],
    result_names: list[str],
    outcomes: OutcomeTable,
    summary: SummarySheet | Mapping[str, object] | None,
    sheet_name: str | None,
) -> None:
    """The input's rows with their result columns, then the Summary sheet if any."""
    inputs = [text_column(frame.iloc[:, position]).tolist() for position in range(len(headers))]
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


def _write_xlsx_book(temp: Path, book: _Book) -> None:
    """The workbook, through xlsxwriter's public API: Results sheet, then Summary."""
    names = book.headers + book.result_names
    with open_workbook(temp) as workbook:
        bold = workbook.add_format({"bold": True})
        status_formats = {
            status.value: workbook.add_format({"bg_color": bg, "font_color": fg})
            for status, (bg, fg) in STATUS_COLOURS.items()
        }
        sheet = workbook.add_worksheet(book.sheet_name)
        widths = _set_up_results_sheet(sheet, book, names)
        looks = Looks(
            status=status_formats,
            date=workbook.add_format({"num_format": DATE_FORMAT}),
            wrap=workbook.add_format({"text_wrap": True, "valign": "top"}),
            message_width=widths[len(book.inputs) + RESULT_COLUMNS.index("message")],
        )
        results = {**book.results, "finished_at": excel_times(book.results["finished_at"])}
        for col, header in enumerate(names):
            write_text(sheet, 0, col, header, bold)
        _write_xlsx_rows(sheet, book.inputs, results, looks)
        if book.summary is not None:
            add_summary_sheet(workbook, book.sheet_name, book.summary, bold, looks)


def _set_up_results_sheet(sheet: Sheet, book: _Book, names: list[str]) -> list[int]:
    """Column widths (finished_at as wide as a date), frozen header, filter; the widths."""
    results = book.results
    width = len(names)
    all_columns = [*book.inputs, *(results[name] for name in RESULT_COLUMNS)]
    widths = [
        DATE_WIDTH if col == width - 1 else column_width(header, values)
        for col, (header, values) in enumerate(zip(names, all_columns, strict=True))
    ]
    for col, one_width in enumerate(widths):
        sheet.set_column(col, col, one_width)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, len(results["status"]), width - 1)
    return widths


def _write_xlsx_rows(
    sheet: Sheet,
    inputs: list[list[str]],
    results: dict[str, list[object]],
    looks: Looks,
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
                    write_text(sheet, row, col, text)
                else:
                    write_string(row, col, text)
        for col, (kind, value) in enumerate(zip(kinds, outcome, strict=True), start=first_result):
            if value is None or value == "":
                continue
            if kind == "number":
                write_number(row, col, value)
            elif kind == "status":
                write_text(sheet, row, col, str(value), looks.status.get(str(value)))
            elif kind == "time" and isinstance(value, float):
                write_number(row, col, value, looks.date)
            elif kind == "message" and needs_wrap(str(value), looks.message_width):
                write_text(sheet, row, col, str(value), looks.wrap)
            else:
                write_text(sheet, row, col, str(value))


def _kind(name: str) -> str:
    """How a result column's cells are written."""
    if name in NUMERIC_RESULT_COLUMNS:
        return "number"
    return {"status": "status", "finished_at": "time", "message": "message"}.get(name, "text")

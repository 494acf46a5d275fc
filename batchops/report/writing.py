"""Outcomes in, CSV/XLSX out: the results report a user opens after a run.

This module is the report's public face: :func:`write_report` (the report),
:func:`write_failures` (only the rows that need a person) and, re-exported, every name
callers use. The work is done in modules of their own:

* :mod:`batchops.report.columns` — which columns the report has and what they are called;
* :mod:`batchops.report.paths` — where the report goes by default, what a suffix means;
* :mod:`batchops.report.csv_file` — the CSV, with cells that look like formulas guarded;
* :mod:`batchops.report.xlsx` — the XLSX Results sheet, over :mod:`batchops.report.xlsx_cells`
  (what every sheet shares) and :mod:`batchops.report.summary_sheet` (the Summary sheet);
* :mod:`batchops.report.tables` — plain text sheets (``select``, ``undo``);
* :mod:`batchops.report.atomic` — the atomic write, and the error when it cannot be done.

The report is the input sheet, row for row and cell for cell, with the result columns
(:data:`batchops.model.RESULT_COLUMNS`) appended. Opening it never runs anything: XLSX
cells are written as strings with xlsxwriter's conversions switched off, CSV cells that a
spreadsheet would read as a formula get a leading ``'``. A crash leaves either the old
report or the new one, never half of one. A report that cannot be written raises
:class:`batchops.errors.InputError` with a one-line message naming the path and what to
do.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from batchops.model import OutcomeTable, Status
from batchops.sheet import SourceBook

from .atomic import atomic_file
from .book import write_book_report
from .columns import NUMERIC_RESULT_COLUMNS, result_column_names
from .csv_file import CSV_FORMULA_PREFIXES, write_csv_report
from .paths import ReportFormat, default_plan_path, default_report_path, format_of
from .summary_sheet import SUMMARY_SHEET, SummarySheet
from .tables import Table, write_tables
from .xlsx import RESULTS_SHEET, write_xlsx_report
from .xlsx_cells import DATE_FORMAT, XLSX_MAX_COLUMNS, XLSX_MAX_ROWS, check_fits_sheet, excel_times

__all__ = [
    "ATTENTION",
    "CSV_FORMULA_PREFIXES",
    "DATE_FORMAT",
    "NUMERIC_RESULT_COLUMNS",
    "RESULTS_SHEET",
    "SUMMARY_SHEET",
    "XLSX_MAX_COLUMNS",
    "XLSX_MAX_ROWS",
    "ReportFormat",
    "SummarySheet",
    "Table",
    "default_plan_path",
    "default_report_path",
    "excel_times",
    "result_column_names",
    "write_failures",
    "write_report",
    "write_tables",
]

#: The outcomes that need a person's attention: what the failures file holds.
ATTENTION = (Status.FAILED, Status.UNKNOWN, Status.INVALID)


def write_report(
    frame: pd.DataFrame,
    outcomes: OutcomeTable,
    path: Path,
    *,
    fmt: ReportFormat | None = None,
    summary: SummarySheet | Mapping[str, object] | None = None,
    sheet_name: str | None = None,
    book: SourceBook | None = None,
) -> Path:
    """Write the input rows and their outcomes to ``path`` atomically; return ``path``.

    ``frame`` holds the input's own columns with every cell as text (``""`` when empty),
    in input order; row ``i`` of it belongs to outcome ``i``. ``fmt`` defaults to the
    suffix of ``path``. ``summary`` becomes a second sheet "Summary" in an XLSX report (a
    :class:`SummarySheet`, or plain key/value rows); a CSV report has no room for it and
    leaves it out. ``sheet_name`` names the XLSX results sheet (the input's sheet, so the
    same ``--sheet`` reads the report back), "Results" by default.

    ``book``, an XLSX input's workbook, makes an XLSX report that workbook itself with
    the result columns added to its sheet and the Summary after its sheets
    (:mod:`batchops.report.book`); a workbook whose package cannot be followed gets the
    plain report.
    """
    if len(outcomes) != len(frame):
        raise ValueError(f"{len(frame)} input rows but {len(outcomes)} outcomes")
    fmt = fmt or format_of(path)
    headers = [str(column) for column in frame.columns]
    result_names = result_column_names(headers)
    if fmt == "csv":
        with atomic_file(path) as temp:
            write_csv_report(temp, frame, headers, result_names, outcomes)
    elif fmt == "xlsx":
        check_fits_sheet(path, len(frame), len(headers) + len(result_names))
        if book is not None and _write_into_book(path, book, result_names, outcomes, summary):
            return path
        with atomic_file(path) as temp:
            write_xlsx_report(temp, frame, headers, result_names, outcomes, summary, sheet_name)
    else:
        raise ValueError(f"unknown report format {fmt!r}; expected 'csv' or 'xlsx'")
    return path


def _write_into_book(
    path: Path,
    book: SourceBook,
    result_names: list[str],
    outcomes: OutcomeTable,
    summary: SummarySheet | Mapping[str, object] | None,
) -> bool:
    """The report as the input's workbook with the results; False (nothing written) when
    its package is not one this can follow, for the plain report to be written instead."""
    try:
        with atomic_file(path) as temp:
            write_book_report(temp, book, list(book.lines), result_names, outcomes, summary)
    except (ValueError, KeyError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError):
        return False
    return True


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

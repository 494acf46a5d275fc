"""The CSV report, and the guard that keeps a spreadsheet from running its cells.

A program that opens a CSV guesses each cell's type, so every text cell (headers
included) that starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a
leading ``'``. The file is UTF-8 with a BOM so Excel reads Chinese correctly, with CRLF
line ends. The writers here fill the temp file :func:`batchops.report.atomic.atomic_file`
hands them.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from batchops.model import RESULT_COLUMNS, OutcomeTable

from .atomic import sync
from .columns import NUMERIC_RESULT_COLUMNS, text_column

#: First characters that make a spreadsheet treat a CSV cell as a formula (OWASP).
CSV_FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_STARTS = tuple("\n" + prefix for prefix in CSV_FORMULA_PREFIXES)

#: Rows formatted at a time: a million-row report never has all its cells in memory twice.
_CSV_CHUNK_ROWS = 50_000


def write_csv_report(
    temp: Path,
    frame: pd.DataFrame,
    headers: list[str],
    result_names: list[str],
    outcomes: OutcomeTable,
) -> None:
    """The input's rows with their result columns, a chunk of rows at a time."""
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
                guard_cells(text_column(frame.iloc[start:stop, position]).tolist())
                for position in range(len(headers))
            ]
            for name in RESULT_COLUMNS:
                # Numbers go out as Python writes them (None as an empty cell).
                values = results[name]
                columns.append(values if name in NUMERIC_RESULT_COLUMNS else guard_cells(values))
            writer.writerows(zip(*columns, strict=True))
        sync(handle)


def write_csv_table(temp: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A sheet of text cells without result columns, under the same guard."""
    with temp.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(guard_cells(list(header)))
        writer.writerows(guard_cells(list(row)) for row in rows)
        sync(handle)


def guard_cells(values: list[Any]) -> list[Any]:
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


def _guard_text(text: str) -> str:
    return "'" + text if text.startswith(CSV_FORMULA_PREFIXES) else text

"""Report test data and read-back: input frames and outcome tables as the pipeline hands
them to the report, and the CSV/XLSX as a spreadsheet shows it again."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd

from batchops.model import Outcome, OutcomeTable, Status

#: Cells a spreadsheet would run (or read as a number) unless they are kept as text.
DANGEROUS = ["=1+1", "@SUM(A1)", "+cmd", "-2+3", "\tTAB", "\rCR", '=HYPERLINK("http://x","y")']


def make_frame(columns: dict[str, Sequence[str]]) -> pd.DataFrame:
    """An input frame as the loader hands it over: every cell text."""
    return pd.DataFrame({name: list(values) for name, values in columns.items()}, dtype="str")


def make_outcomes(outcomes: Sequence[Outcome | None]) -> OutcomeTable:
    """An outcome table; ``None`` leaves that row pending."""
    table = OutcomeTable(len(outcomes))
    for index, outcome in enumerate(outcomes):
        if outcome is not None:
            table.set(index, outcome)
    return table


def ok(**fields: Any) -> Outcome:
    """A typical successful outcome, fields overridable."""
    values: dict[str, Any] = {
        "status": Status.SUCCESS,
        "code": 0,
        "message": "success",
        "attempts": 1,
        "http_status": 200,
        "request_id": "req-1",
        "elapsed_ms": 12.3,
        "finished_at": "2024-05-01T10:00:00+08:00",
    }
    values.update(fields)
    return Outcome(**values)


def read_csv_rows(path: Path) -> list[list[str]]:
    """The CSV as Excel-like readers see it (BOM stripped), every cell text."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def sheet_rows(path: Path, sheet: str = "Results") -> list[list[object]]:
    """Cell values of one sheet as Excel shows them, opened with openpyxl.

    OOXML writes control characters as ``_xHHHH_`` (``\\r`` is ``_x000D_``); Excel decodes
    them, openpyxl does not, so decode here.
    """
    book = openpyxl.load_workbook(path)
    try:
        return [
            [ooxml_unescape(v) if isinstance(v, str) else v for v in row]
            for row in book[sheet].iter_rows(values_only=True)
        ]
    finally:
        book.close()


def ooxml_unescape(text: str) -> str:
    """Undo the ``_xHHHH_`` escapes of OOXML strings."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m[1], 16)), text)


#: Texts that are awkward in an XLSX cell: each must come back from the cell as written.
AWKWARD = [
    "plain",
    "",
    " leading",
    "trailing ",
    "a&b<c>d\"e'",
    "line\nbreak",
    "ends\n",
    "\x00\x01control\x1f",
    "_x0041_ looks escaped",
    "批量终止工单",
    "😀 emoji",
    "=1+1",
    "\u3000ideographic space",
    "y" * 40_000,
    "😀" * 20_000,
]


def cut_to_cell(text: str) -> str:
    """``text`` as Excel keeps it: at most 32,767 UTF-16 units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > 32_767:
            return text[:index]
    return text

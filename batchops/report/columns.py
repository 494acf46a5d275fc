"""The report's columns: what the result columns are called beside an input's own (in
the language in use), which of them are numbers, and an input column as the text the
writers put in cells.

The report is the input sheet, row for row and cell for cell, with the result columns
(:data:`batchops.model.RESULT_COLUMNS`) appended; both writers (:mod:`batchops.report.csv_file`
and :mod:`batchops.report.xlsx`) take their column rules from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from batchops.i18n import Language, current
from batchops.model import RESULT_HEADERS, RESULT_PREFIXES

#: Result columns written as numbers (blank where the outcome has none).
NUMERIC_RESULT_COLUMNS = frozenset({"code", "attempts", "http_status", "elapsed_ms"})


def result_column_names(input_columns: Sequence[str], lang: Language | None = None) -> list[str]:
    """Headers of the result columns for an input with these columns, in RESULT_COLUMNS
    order, in ``lang`` (default: the language in use; :data:`batchops.model.RESULT_HEADERS`).

    A result header that an input column already has (case-insensitive, trimmed) gets
    ``result_`` (``结果_`` in Chinese) before it; should that be taken too, the prefix is
    put again, so every header of the report is distinct.
    """
    lang = lang or current()
    prefix = RESULT_PREFIXES[lang]
    taken = {str(column).strip().casefold() for column in input_columns}
    names: list[str] = []
    for name in RESULT_HEADERS[lang]:
        while name.casefold() in taken:
            name = f"{prefix}{name}"
        taken.add(name.casefold())
        names.append(name)
    return names


def text_column(column: pd.Series[Any]) -> pd.Series[Any]:
    """The column as strings on a fresh 0..n-1 index (the caller promises text already)."""
    column = column.reset_index(drop=True)
    if isinstance(column.dtype, pd.StringDtype):
        return column.fillna("")
    return column.fillna("").astype("str")

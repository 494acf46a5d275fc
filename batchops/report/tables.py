"""Plain sheets of text cells without result columns (what ``select`` and ``undo`` write),
under the report's safety rules and its atomic write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_file
from .csv_file import write_csv_table
from .paths import ReportFormat, format_of
from .xlsx_cells import WIDTH_SAMPLE_ROWS, check_fits_sheet, column_width, open_workbook, write_text


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
    fmt = fmt or format_of(path)
    if fmt == "csv":
        if len(tables) != 1:
            raise ValueError(f"a CSV file holds one table, not {len(tables)}")
        with atomic_file(path) as temp:
            write_csv_table(temp, tables[0].header, tables[0].rows)
    else:
        for table in tables:
            check_fits_sheet(path, len(table.rows), len(table.header))
        with atomic_file(path) as temp:
            _write_xlsx_tables(temp, tables)
    return path


def _write_xlsx_tables(temp: Path, tables: Sequence[Table]) -> None:
    """One sheet per table through xlsxwriter: bold frozen header, filter, text cells."""
    with open_workbook(temp) as workbook:
        bold = workbook.add_format({"bold": True})
        for table in tables:
            sheet = workbook.add_worksheet(table.name)
            width = len(table.header)
            for col, header in enumerate(table.header):
                sample = [row[col] for row in table.rows[:WIDTH_SAMPLE_ROWS]]
                sheet.set_column(col, col, column_width(header, sample))
            sheet.freeze_panes(1, 0)
            if width:
                sheet.autofilter(0, 0, len(table.rows), width - 1)
            for col, header in enumerate(table.header):
                write_text(sheet, 0, col, header, bold)
            write_string = sheet.write_string
            for number, row in enumerate(table.rows, start=1):
                for col, text in enumerate(row):
                    if text:
                        if text.startswith("<r>"):
                            write_text(sheet, number, col, text)
                        else:
                            write_string(number, col, text)

"""The input file's cells as text: reading CSV and Excel files, no meaning given to them yet.

It owns everything between a path and the grid of cells :mod:`batchops.sheet.loading` works on:

* which files are accepted (``.csv``, ``.xlsx``, ``.xlsm``, ``.xls``) and the one-line
  errors for a missing, empty, corrupt or mis-named file;
* CSV text in UTF-8, UTF-8 with BOM or GB18030/GBK (detected, with a plausibility check
  on a guessed GB18030), or in a given encoding;
* Excel workbooks (with python-calamine): the sheet to read, and every cell as the text a
  person sees in it; on request, which of its rows are hidden or filtered out (read by
  :mod:`batchops.sheet.hidden`, which calamine cannot tell);
* the header row alone (:func:`read_header`), read without the rest of a large file.

Every cell stays *text*, exactly as in the file; blank lines are counted so that row
numbers in messages match the sheet. Finding the columns is :mod:`batchops.sheet.columns`'s job.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import pandas as pd

from batchops.errors import InputError
from batchops.i18n import _

from .hidden import hidden_rows

__all__ = [
    "SPREADSHEET_EXTENSIONS",
    "Cells",
    "cell_text",
    "empty_message",
    "hidden_rows",
    "read_cells",
    "read_header",
    "show",
]

SPREADSHEET_EXTENSIONS: Final = frozenset({".xlsx", ".xlsm", ".xls"})
_SAMPLE_BYTES: Final = 1 << 16
_MAX_EXACT_FLOAT: Final = 1e15


@dataclass(frozen=True, slots=True)
class Cells:
    """Every cell of the input's sheet as text, header row first, and where it came from."""

    raw: pd.DataFrame
    fmt: Literal["csv", "xlsx"]
    #: The CSV encoding used (None for a workbook).
    encoding: str | None
    #: The worksheet read (None for CSV).
    sheet: str | None
    #: The header's row number in the sheet (blank lines or rows above it counted).
    header_row: int
    #: The numbers of the sheet's rows hidden or filtered out in Excel (when asked for).
    hidden: frozenset[int] = frozenset()
    #: The sheet's column (0-based) of the table's first column (a workbook's table may
    #: start right of column A; CSV: 0).
    first_column: int = 0


def read_cells(
    source: Path, *, sheet: str | None, encoding: str | None, find_hidden: bool = False
) -> Cells:
    """Read ``source`` (CSV or Excel) as text; InputError for anything that makes it unusable.

    ``sheet`` picks a worksheet of a workbook (default: the first visible one);
    ``encoding`` overrides CSV encoding detection. With ``find_hidden``, a workbook's
    hidden and filtered-out rows are found too (a CSV file has none).
    """
    suffix = source.suffix.lower()
    _check_path(source, suffix)
    if suffix == ".csv":
        if sheet is not None:
            raise InputError(
                _("{path} is a CSV file, which has no sheets; drop the sheet option").format(
                    path=source
                )
            )
        raw, encoding_used, header_row = _read_csv(source, encoding)
        return Cells(raw, "csv", encoding_used, None, header_row)
    if encoding is not None:
        raise InputError(
            _(
                "{path} is an Excel workbook, which has no text encoding; drop the encoding option"
            ).format(path=source)
        )
    raw, sheet_used, header_row, first_column = _read_workbook(source, sheet)
    hidden = hidden_rows(source, sheet_used) if find_hidden else frozenset()
    return Cells(raw, "xlsx", None, sheet_used, header_row, hidden, first_column)


def read_header(source: Path) -> list[str]:
    """The header row of a CSV or Excel file (its first row that is not blank) as text,
    read without the rest of the file; [] when there is none or it cannot be read."""
    suffix = source.suffix.lower()
    try:
        if suffix == ".csv":
            return _csv_header(_sample(source))
        if suffix in SPREADSHEET_EXTENSIONS:
            return _workbook_header(source)
    except InputError:
        pass
    return []


def _check_path(source: Path, suffix: str) -> None:
    """Refuse a path that is not an existing file of a kind batchops reads."""
    if suffix != ".csv" and suffix not in SPREADSHEET_EXTENSIONS:
        shown = f"'{source.suffix}'" if source.suffix else _("no extension")
        raise InputError(
            _("{path} has {suffix}; batchops reads .csv and .xlsx files (also .xlsm, .xls)").format(
                path=source, suffix=shown
            )
        )
    if not source.exists():
        raise InputError(_("input file {path} does not exist; check the path").format(path=source))
    if not source.is_file():
        raise InputError(
            _("{path} is not a file; pass the CSV or Excel file itself").format(path=source)
        )


def show(text: str, limit: int = 40) -> str:
    """A cell or header shown inside a one-line message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _one_line(text: str) -> str:
    return show(text, 200)


def empty_message(source: Path | str) -> str:
    return _(
        "{path} is empty; it needs a header row (sn, operator, action_type, "
        "action_message) and at least one data row"
    ).format(path=source)


# --------------------------------------------------------------------------- CSV


def _leading_blank_lines(sample: bytes) -> int:
    """Empty lines before the header: skipped when reading, counted in row numbers."""
    pos = len(codecs.BOM_UTF8) if sample.startswith(codecs.BOM_UTF8) else 0
    count = 0
    while True:
        if sample.startswith(b"\r\n", pos):
            pos += 2
        elif sample.startswith(b"\n", pos):
            pos += 1
        else:
            return count
        count += 1


def _read_csv(source: Path, encoding: str | None) -> tuple[pd.DataFrame, str, int]:
    """All cells of a CSV file as text, header row included, the encoding used, and the
    header's row number (blank lines before it counted)."""
    sample = _sample(source)
    leading = _leading_blank_lines(sample)
    candidates = _encoding_candidates(sample) if encoding is None else [_known(encoding)]
    for enc in candidates:
        raw = _parse_csv(source, enc, leading)
        if raw is None:
            continue  # the sample decoded but a later byte did not: re-read with the next
        if encoding is None and enc == "gb18030":
            _check_plausible_chinese(source)
        if len(raw.columns) and len(raw):
            first = raw.iloc[0, 0]
            if isinstance(first, str) and first.startswith("\ufeff"):
                raw.iloc[0, 0] = first.lstrip("\ufeff")
        return raw, enc, leading + 1

    if encoding is not None:
        raise InputError(
            _(
                "{path} cannot be decoded as {encoding}; pass the right --encoding, "
                "or re-save it as 'CSV UTF-8'"
            ).format(path=source, encoding=encoding)
        )
    raise InputError(
        _(
            "{path} is not UTF-8 or GB18030 text; re-save it as 'CSV UTF-8' or pass --encoding"
        ).format(path=source)
    )


def _sample(source: Path) -> bytes:
    """The first bytes of a CSV file; InputError when it is unreadable, empty or a zip."""
    try:
        with source.open("rb") as handle:
            sample = handle.read(_SAMPLE_BYTES)
    except OSError as exc:
        raise InputError(_unreadable(source, exc)) from None
    if not sample:
        raise InputError(empty_message(source))
    if sample.startswith(b"PK\x03\x04"):
        raise InputError(
            _("{path} is an Excel workbook (zip data), not CSV text; rename it to .xlsx").format(
                path=source
            )
        )
    return sample


def _unreadable(source: Path, exc: OSError) -> str:
    return _("cannot read {path}: {error}; check the file").format(
        path=source, error=exc.strerror or exc
    )


def _known(encoding: str) -> str:
    """The encoding the user gave, if Python knows it."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(
            _("unknown encoding '{encoding}'; use e.g. utf-8, utf-8-sig or gb18030").format(
                encoding=encoding
            )
        ) from None
    return encoding


def _parse_csv(source: Path, enc: str, leading: int) -> pd.DataFrame | None:
    """The file's cells decoded as ``enc``; None when a byte does not decode."""
    try:
        return pd.read_csv(
            source,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding=enc,
            # Blank lines are kept (as blank rows, dropped later) so that row numbers
            # in messages match what a spreadsheet shows.
            skip_blank_lines=False,
            skiprows=leading or None,
        )
    except UnicodeDecodeError:
        return None
    except pd.errors.EmptyDataError:
        raise InputError(empty_message(source)) from None
    except pd.errors.ParserError as exc:
        raise InputError(_parser_message(source, exc)) from None
    except OSError as exc:
        raise InputError(_unreadable(source, exc)) from None
    except ValueError as exc:  # anything else the parser rejects
        raise InputError(_parser_message(source, exc)) from None


#: How much of a file the GB18030 plausibility check reads, and how many of its
#: non-ASCII characters it weighs.
_PLAUSIBILITY_BYTES: Final = 1 << 20
_PLAUSIBILITY_CHARS: Final = 5000


def _check_plausible_chinese(source: Path) -> None:
    """Refuse a guessed GB18030 decoding that is most likely garbage.

    GB18030 decodes nearly any bytes, so a Latin-1 (Windows-1252) file "decodes" too:
    ``José`` becomes ``Jos`` plus a rare CJK character, and that text would be sent. Real
    Chinese text is overwhelmingly in GB2312's common set; Latin-1 read as GB18030 is
    overwhelmingly outside it. When most non-ASCII characters are outside, ask for
    ``--encoding`` rather than guess.
    """
    try:
        with source.open("rb") as handle:
            head = handle.read(_PLAUSIBILITY_BYTES)
    except OSError:
        return
    text = head.decode("gb18030", errors="ignore")
    wide = [c for c in text if ord(c) > 0x7F][:_PLAUSIBILITY_CHARS]
    if not wide:
        return
    rare = 0
    for char in wide:
        try:
            char.encode("gb2312")
        except UnicodeEncodeError:
            rare += 1
    if rare * 2 > len(wide):
        sample = "".join(wide[:6])
        raise InputError(
            _(
                "{path} is not UTF-8, and read as GB18030 it gives unlikely text ({sample}…); "
                "it may be Latin-1/Windows-1252: pass --encoding cp1252 (or the right one), or "
                "--encoding gb18030 if the text really is Chinese"
            ).format(path=source, sample=sample)
        )


def _encoding_candidates(sample: bytes) -> list[str]:
    """Encodings to try, best first, judged from the first bytes of the file."""
    if sample.startswith(codecs.BOM_UTF8):
        return ["utf-8-sig"]  # GB18030 would turn the BOM into a garbled first header
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        # Not final unless the sample is the whole file: it may end inside a character.
        decoder.decode(sample, final=len(sample) < _SAMPLE_BYTES)
    except UnicodeDecodeError:
        return ["gb18030"]
    return ["utf-8", "gb18030"]


def _csv_header(sample: bytes) -> list[str]:
    """The first row that is not blank in the first bytes of a CSV file."""
    for enc in _encoding_candidates(sample):
        try:
            # Not final: the sample may end inside a character.
            text = codecs.getincrementaldecoder(enc)().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        for row in csv.reader(io.StringIO(text)):
            if any(cell.strip() for cell in row):
                return row
        return []
    return []


def _parser_message(source: Path, exc: Exception) -> str:
    text = str(exc)
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if fields:
        expected, line, saw = fields.groups()
        return _(
            "{path}: line {line} has {saw} fields but the first line has {expected}; "
            "quote values that contain commas, or fix that line"
        ).format(path=source, line=line, saw=saw, expected=expected)
    if "EOF inside string" in text:
        return _('{path} ends inside a quoted value; close the quote (") that is left open').format(
            path=source
        )
    return _("{path} is not valid CSV ({error}); re-save it as 'CSV UTF-8'").format(
        path=source, error=_one_line(text)
    )


# --------------------------------------------------------------------------- workbooks


def _read_workbook(source: Path, sheet: str | None) -> tuple[pd.DataFrame, str, int, int]:
    """All cells of one worksheet as text, header row included, the sheet's name, the
    header's row number (empty rows above the table counted) and the table's first column.

    A merged cell's value is every row's it covers (:func:`_fill_merged`)."""
    import python_calamine as calamine

    try:
        with calamine.CalamineWorkbook.from_path(str(source)) as book:
            names = [str(n) for n in book.sheet_names]
            if sheet is None:
                sheet = _first_visible_sheet(book, names)
                if sheet is None:
                    raise InputError(
                        _("{path} has no worksheet; save a sheet with the rows").format(path=source)
                    )
            elif sheet not in names:
                shown = ", ".join(f"'{n}'" for n in names) or _("none")
                raise InputError(
                    _("{path} has no sheet named '{sheet}'; its sheets are: {sheets}").format(
                        path=source, sheet=sheet, sheets=shown
                    )
                )
            chosen = book.get_sheet_by_name(sheet)
            rows = chosen.to_python(skip_empty_area=True)
            start = chosen.start
            try:
                merged = chosen.merged_cell_ranges
            except (AttributeError, calamine.CalamineError, ValueError):
                merged = None  # a format (or a version) that cannot tell: as before
            _fill_merged(rows, start, merged)
    except InputError:
        raise
    except calamine.PasswordError:
        raise InputError(
            _(
                "{path} is password-protected; remove the password in Excel and save it again"
            ).format(path=source)
        ) from None
    except (calamine.CalamineError, OSError, ValueError) as exc:
        raise InputError(
            _(
                "{path} is not a readable Excel workbook ({error}); "
                "open it in Excel and save it again as .xlsx, or export it as CSV"
            ).format(path=source, error=_one_line(str(exc)))
        ) from None

    if not rows:
        where = _("{path} (sheet '{sheet}')").format(path=source, sheet=sheet)
        raise InputError(empty_message(where))
    width = max(len(r) for r in rows)
    data: dict[int, list[str]] = {}
    for j in range(width):
        data[j] = [cell_text(r[j]) if j < len(r) else "" for r in rows]
    header_row = int(start[0]) + 1 if start else 1
    first_column = int(start[1]) if start else 0
    return pd.DataFrame(data, dtype=str), sheet, header_row, first_column


def _fill_merged(rows: list[list[Any]], start: object, merged: object) -> None:
    """Give the rows a merged cell covers below its first its value, as Excel shows it.

    Excel keeps a merged cell's value in its top-left cell only; a person sees it over
    every row of the range (a merged reason beside three tickets is their reason). Only
    down its first column: the columns to its right have headers of their own. A range
    that begins in the header row (a two-row header) is no row's value.
    """
    if not merged or not rows or not isinstance(start, tuple):
        return
    top, left = int(start[0]), int(start[1])
    for (first_row, first_col), (last_row, _last_col) in merged:  # type: ignore[attr-defined]
        row, col = int(first_row) - top, int(first_col) - left
        if row < 1 or col < 0 or row >= len(rows):
            continue
        value = rows[row][col] if col < len(rows[row]) else ""
        for below in range(row + 1, min(int(last_row) - top, len(rows) - 1) + 1):
            cells = rows[below]
            if len(cells) <= col:
                cells.extend([""] * (col + 1 - len(cells)))
            cells[col] = value


def _workbook_header(source: Path) -> list[str]:
    """The first row that is not blank of the workbook's first visible sheet."""
    import python_calamine as calamine

    try:
        with calamine.CalamineWorkbook.from_path(str(source)) as book:
            sheet = _first_visible_sheet(book, [str(n) for n in book.sheet_names])
            if sheet is None:
                return []
            for row in book.get_sheet_by_name(sheet).iter_rows():
                cells = [cell_text(value) for value in row]
                if any(cell.strip() for cell in cells):
                    return cells
    except (calamine.CalamineError, OSError, ValueError):
        pass
    return []


def _first_visible_sheet(book: object, names: list[str]) -> str | None:
    """The first visible worksheet, else the first sheet at all."""
    import python_calamine as calamine

    for meta in getattr(book, "sheets_metadata", ()):
        if (
            meta.visible == calamine.SheetVisibleEnum.Visible
            and meta.typ == calamine.SheetTypeEnum.WorkSheet
        ):
            return str(meta.name)
    return names[0] if names else None


def cell_text(value: object) -> str:
    """One workbook cell as the text a person sees (and a CSV export would hold)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < _MAX_EXACT_FLOAT:
            return str(int(value))
        return repr(value)  # a lossy long number stays scientific and is flagged later
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)

"""Files in, validated rows out: the public face of loading the user's input sheet.

It owns :func:`load_batch`, the :class:`Batch` it returns, and the content fingerprint
that ties a checkpoint to its input. The steps are modules of their own:
:mod:`batchops.sheet.reading` reads the cells of a CSV or Excel file as text,
:mod:`batchops.sheet.columns` finds the header, the data rows and the fields' columns (and
the result columns of an earlier report used as input), and :mod:`batchops.sheet.validation`
checks every row, vectorised, and says in one line why a row cannot be sent.

Rows hidden or filtered out in an XLSX sheet (:mod:`batchops.sheet.hidden`) are *left
out* unless ``include_hidden``: they are never sent, and they are no part of the checks
across rows, as if they were not in the sheet; everything else about them is loaded as
for any row, so that the rows (and the checkpoint that knows them) are the same whether
they are left out or not.

It does no network I/O and knows nothing of the server beyond the rules of
``operate_ticket`` a row must satisfy. Every file-level problem raises
:class:`~batchops.errors.InputError`; a bad row is never an exception, only a reason in
:attr:`Batch.invalid`. Rows are named to users as the rows of the sheet they see:
:meth:`Batch.row_number` counts the blank rows and lines that loading drops, so row 7 in a
message is row 7 in Excel.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from batchops.errors import InputError
from batchops.i18n import _
from batchops.model import Action, Row

from .columns import FIELD_ALIASES, Table, map_columns, table_from_cells, unguard
from .reading import Cells, read_cells
from .validation import ACTION_ALIASES, StrArray, validate

__all__ = [
    "ACTION_ALIASES",
    "DONE_BEFORE",
    "FIELD_ALIASES",
    "Batch",
    "load_batch",
    "previous_done",
    "status_word",
    "status_words",
]

_FINGERPRINT_TAG: Final = b"batchops-frame-v1\0"

#: What a footer row (a total under the tickets, not a ticket) says in one of its cells.
FOOTER_WORDS: Final = frozenset(
    {
        "合计",
        "总计",
        "小计",
        "合計",
        "總計",
        "小計",
        "total",
        "totals",
        "grand total",
        "subtotal",
        "sum",
    }
)


@dataclass(frozen=True, slots=True)
class SourceBook:
    """Where an XLSX input's rows are in its workbook: what the report needs to come back
    as the same workbook with the result columns added."""

    path: Path
    sheet: str
    #: The header's row number in the sheet (1-based).
    header_row: int
    #: The sheet column (0-based) of the first result column: an earlier report's own,
    #: else the one right after the table.
    result_column: int
    #: Whether the input is an earlier report (its Summary sheet is replaced, not added).
    is_report: bool
    #: Each data row's number in the sheet (the report's row ``i`` goes there).
    lines: tuple[int, ...]


@dataclass(eq=False)
class Batch:
    """A loaded input: the file's own cells plus one validated value per row and field.

    The arrays all have one entry per data row, in input order. A row is valid exactly
    when ``invalid[i] == ""``; only valid rows may be sent, with ``message[i]`` as the
    ``action_message``.
    """

    source: Path
    fmt: Literal["csv", "xlsx"]
    encoding: str | None
    sheet: str | None
    frame: pd.DataFrame
    columns: dict[str, str]
    sn: StrArray
    operator: StrArray
    action: StrArray
    message: StrArray
    invalid: StrArray
    previous_status: StrArray | None
    fingerprint: str
    #: When the input is an earlier batchops report: its result columns, by canonical name.
    previous_results: pd.DataFrame | None = None
    #: Rows whose cells were changed before sending, and how (for the report's message):
    #: an sn trimmed of invisible characters copied from a web page.
    notes: dict[int, str] = field(default_factory=dict)
    #: Each data row's number in the sheet as the user sees it (blank rows counted).
    lines: npt.NDArray[np.int64] | None = None
    #: Rows hidden or filtered out in the sheet that are not sent, and footer rows (a
    #: total under the tickets); None: no row is.
    left_out: npt.NDArray[np.bool_] | None = None
    #: Rows whose blank message was filled with the default text, which depends on the
    #: language and the profile: a checkpoint knows such a row by its blank cell.
    defaulted: npt.NDArray[np.bool_] | None = None
    #: Which of the left-out rows are footer rows (:data:`FOOTER_WORDS`, no action).
    footer: npt.NDArray[np.bool_] | None = None
    #: An XLSX input's workbook, which the report is written into (None for CSV).
    book: SourceBook | None = None

    def __len__(self) -> int:
        return len(self.sn)

    def row_number(self, index: int) -> int:
        """Data row ``index`` as the sheet's row number (header row 1, blank rows counted)."""
        return int(self.lines[index]) if self.lines is not None else index + 2

    def row(self, index: int) -> Row:
        """The row to send for data row ``index``; ValueError when that row is invalid."""
        reason = str(self.invalid[index])
        if reason:
            raise ValueError(f"row {self.row_number(index)} is invalid: {reason}")
        return Row(
            index=index,
            sn=str(self.sn[index]),
            operator=str(self.operator[index]),
            action=Action(str(self.action[index])),
            message=str(self.message[index]),
        )

    def valid_indices(self) -> npt.NDArray[np.int64]:
        """Indices of the rows that may be sent (valid, not left out), in input order."""
        valid = self.invalid == ""
        if self.left_out is not None:
            valid &= ~self.left_out
        return np.flatnonzero(valid).astype(np.int64)

    def invalid_count(self) -> int:
        return int(np.count_nonzero(self.invalid != ""))

    def left_out_count(self) -> int:
        """How many rows hidden in the sheet are not sent (footer rows not counted)."""
        if self.left_out is None:
            return 0
        hidden = self.left_out if self.footer is None else self.left_out & ~self.footer
        return int(np.count_nonzero(hidden))


#: An earlier report's statuses of rows that were applied, judged done, or may have
#: been applied: a row with one of them keeps it, whatever today's rules say.
DONE_BEFORE: Final = ("success", "skipped", "unknown")


def status_word(cell: object) -> str:
    """An earlier report's status cell as the word it is matched as: full-width letters
    made plain (NFKC), trimmed, lower case."""
    return unicodedata.normalize("NFKC", str(cell)).strip().lower()


def status_words(status: pd.Series) -> pd.Series:
    """:func:`status_word` of every cell of a status column."""
    return status.map(status_word)


def previous_done(status: pd.Series) -> npt.NDArray[np.bool_]:
    """Which rows an earlier report's status column says are done or may have landed."""
    return np.asarray(status_words(status).isin(DONE_BEFORE), dtype=bool)


def load_batch(
    path: Path | str,
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    include_hidden: bool = False,
    default_message: str | None = None,
) -> Batch:
    """Read ``path`` (CSV or Excel), find its columns and validate every row.

    ``sheet`` picks a worksheet of a workbook (default: the first visible one);
    ``encoding`` overrides CSV encoding detection. Rows hidden or filtered out in a
    workbook are left out (:attr:`Batch.left_out`) unless ``include_hidden``.
    ``default_message`` is a profile's template for blank messages (``{action}``: the
    action; default: ``batchops: {action}`` in the language in use). Raises
    :class:`InputError` with a one-line message for anything that makes the whole file
    unusable.
    """
    source = Path(path)
    cells = read_cells(source, sheet=sheet, encoding=encoding, find_hidden=not include_hidden)
    where = _where(source, cells.sheet)
    table = table_from_cells(cells.raw, where, cells.header_row)
    frame = table.frame
    previous_status: StrArray | None = None
    applied = None
    if table.previous is not None:
        previous_status = table.previous["status"].str.strip().to_numpy(dtype=object)
        applied = previous_done(table.previous["status"])
        if cells.fmt == "csv":
            frame = unguard(frame)
    columns = map_columns(table.headers, [str(c) for c in frame.columns], where)
    _check_has_rows(frame, where)
    footer = _footer_rows(frame, columns)
    left_out = _left_out(table.lines, cells.hidden, footer)
    rows = validate(frame, columns, table.lines, applied, left_out, default_message)
    return Batch(
        source=source,
        fmt=cells.fmt,
        encoding=cells.encoding,
        sheet=cells.sheet,
        frame=frame,
        columns=columns,
        sn=rows.sn,
        operator=rows.operator,
        action=rows.action,
        message=rows.message,
        invalid=rows.invalid,
        previous_status=previous_status,
        fingerprint=_fingerprint(frame),
        previous_results=table.previous,
        notes=rows.notes,
        lines=table.lines,
        left_out=left_out,
        defaulted=rows.defaulted,
        footer=footer,
        book=_source_book(source, cells, table),
    )


def _check_has_rows(frame: pd.DataFrame, where: Path | str) -> None:
    if len(frame) == 0:
        raise InputError(
            _("{where} has a header but no data rows; add at least one row to operate on").format(
                where=where
            )
        )


def _where(source: Path, sheet: str | None) -> Path | str:
    """The input as messages name it: the file, and the sheet of a workbook."""
    if sheet is None:
        return source
    return _("{path} (sheet '{sheet}')").format(path=source, sheet=sheet)


def _source_book(source: Path, cells: Cells, table: Table) -> SourceBook | None:
    """The workbook the report is written into: an ``.xlsx`` input's (an ``.xlsm`` keeps
    macros an ``.xlsx`` may not hold, an ``.xls`` is no zip package)."""
    if cells.fmt != "xlsx" or cells.sheet is None or source.suffix.lower() != ".xlsx":
        return None
    return SourceBook(
        source,
        cells.sheet,
        cells.header_row,
        cells.first_column + table.result_at,
        table.previous is not None,
        tuple(table.lines.tolist()),
    )


def _footer_rows(frame: pd.DataFrame, columns: dict[str, str]) -> npt.NDArray[np.bool_] | None:
    """Rows without an action with a cell that says total (合计, 总计, Total, …): a footer
    under the tickets, which is no ticket; None when there is none."""
    blank_action = (frame[columns["action_type"]].str.strip() == "").to_numpy(dtype=bool)
    if not blank_action.any():
        return None
    footer = np.zeros(len(frame), dtype=bool)
    candidates = np.flatnonzero(blank_action)
    for name in frame.columns:
        cells = frame[name].iloc[candidates].str.strip().str.rstrip(":：").str.casefold()
        footer[candidates] |= cells.isin(FOOTER_WORDS).to_numpy(dtype=bool)
    return footer if footer.any() else None


def _left_out(
    lines: npt.NDArray[np.int64],
    hidden: frozenset[int],
    footer: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.bool_] | None:
    """Which data rows (by their sheet row numbers) are hidden, or are a footer; None when
    none is."""
    mask = footer
    if hidden:
        found = np.isin(lines, np.fromiter(hidden, dtype=np.int64, count=len(hidden)))
        mask = found if mask is None else mask | found
    return mask if mask is not None and mask.any() else None


# --------------------------------------------------------------------------- fingerprint


def _fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of the header and every cell, length-prefixed so no two inputs collide."""
    digest = hashlib.sha256(_FINGERPRINT_TAG)
    digest.update(np.array(frame.shape, dtype="<i8").tobytes())
    for name in frame.columns:
        header = str(name).encode("utf-8", "surrogatepass")
        digest.update(np.array([len(header)], dtype="<i8").tobytes())
        digest.update(header)
        column = frame[name]
        text = "".join(column.tolist()).encode("utf-8", "surrogatepass")
        lengths = column.str.len().to_numpy(dtype="<i8")
        digest.update(lengths.tobytes())
        digest.update(np.array([len(text)], dtype="<i8").tobytes())
        digest.update(text)
    return digest.hexdigest()

"""The input's table: which cells are the header and the data, and which column is which field.

It owns the step from the grid of cells :mod:`batchops.sheet.reading` reads to a frame whose
columns :mod:`batchops.sheet.validation` can check:

* the header row, unnamed empty columns and all-blank rows dropped (their sheet row
  numbers kept, so messages name the rows a person sees);
* recognising an earlier batchops report used as input (or, by its header alone, a file
  that must not be written over: :func:`is_report`), removing its result columns and the
  quote its CSV puts before formula-like cells;
* finding the ``sn``, ``operator``, ``action_type`` and ``action_message`` columns by
  header, with their English and Chinese aliases, and the one-line error for a missing
  or doubled one.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from batchops.errors import InputError
from batchops.i18n import _, ngettext
from batchops.model import RESULT_COLUMNS, RESULT_HEADERS, RESULT_PREFIXES

from .reading import empty_message, read_header, show

__all__ = [
    "FIELD_ALIASES",
    "Table",
    "header_key",
    "is_report",
    "map_columns",
    "table_from_cells",
    "unguard",
]

#: Accepted headers per canonical field, canonical name first: the English names and the
#: words Chinese ITSM sheets use (``工单号`` is the most common sn header there). Matching
#: is case-insensitive, full-width letters count as plain ones (NFKC), surrounding blanks
#: are ignored, and inner blanks and hyphens count as ``_``.
FIELD_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "sn": ("sn", "ticket", "ticket_sn", "工单号", "工单编号", "单号", "单据号", "单据编号"),
    "operator": ("operator", "处理人", "操作人"),
    "action_type": ("action_type", "action", "操作类型", "操作"),
    "action_message": ("action_message", "message", "原因", "操作原因", "备注", "操作备注"),
}
_REQUIRED_FIELDS: Final = ("sn", "operator", "action_type")


@dataclass(frozen=True, slots=True)
class Table:
    """The input's data rows under their headers, and what was taken out of them."""

    frame: pd.DataFrame
    #: The headers as written (before ``Unnamed: <n>`` / ``.1`` naming), result columns off.
    headers: list[str]
    #: The result columns of the earlier report this input is (None for a plain input).
    previous: pd.DataFrame | None
    #: Each data row's number in the sheet as the user sees it (blank rows counted).
    lines: npt.NDArray[np.int64]
    #: Where (a column of the cells read) the result columns are, or would go: an earlier
    #: report's own, else right after the last column.
    result_at: int = 0


def table_from_cells(raw: pd.DataFrame, where: Path | str, header_row: int = 1) -> Table:
    """Turn header-row-first cells into the input frame, its headers as written, and the
    result columns of the earlier report it is (None for a plain input).

    Unnamed empty columns and all-blank rows are dropped; an unnamed column with data is
    called ``Unnamed: <n>`` and a repeated header gets a ``.1``, ``.2`` suffix in the
    frame (as pandas does); result columns of an earlier report are removed.
    """
    if raw.shape[1] == 0 or raw.shape[0] == 0:
        raise InputError(empty_message(where))
    header = [str(h) for h in raw.iloc[0].tolist()]
    body = raw.iloc[1:].reset_index(drop=True)

    keep: list[int] = []
    names: list[str] = []
    for j, name in enumerate(header):
        column = body.iloc[:, j]
        if not name.strip():
            if not _nonblank(column).any():
                continue  # an empty, unnamed column: formatting or a trailing comma
            name = f"Unnamed: {j}"
        keep.append(j)
        names.append(name)
    if not keep:
        raise InputError(empty_message(where))

    n_result = len(RESULT_COLUMNS)
    status_pos: int | None = None
    if len(names) > n_result and _is_result_tail(names[-n_result:]):
        status_pos = keep[-n_result]
        keep, names = keep[:-n_result], names[:-n_result]

    frame = body.iloc[:, keep]
    frame.columns = pd.Index(_unique(names), dtype=object)
    filled = _filled_rows(frame)
    lines = (np.flatnonzero(filled) + header_row + 1).astype(np.int64)
    if not filled.all():
        frame = frame.loc[filled]
    frame = frame.reset_index(drop=True)
    if status_pos is not None:
        previous = body.iloc[:, status_pos : status_pos + n_result].loc[filled]
        previous = previous.reset_index(drop=True)
        previous.columns = pd.Index(list(RESULT_COLUMNS), dtype=object)
        return Table(frame, names, previous, lines, status_pos)
    return Table(frame, names, None, lines, raw.shape[1])


def is_report(path: Path) -> bool:
    """Whether the CSV or Excel file at ``path`` is a batchops report: its header ends in
    the result columns (read from the header alone; False for any other file)."""
    names = [name for name in read_header(path) if name.strip()]
    n_result = len(RESULT_COLUMNS)
    return len(names) > n_result and _is_result_tail(names[-n_result:])


def _is_result_tail(names: Sequence[str]) -> bool:
    """Whether ``names`` are the result headers, each in any language batchops writes
    (a report written under Chinese is read under English too, and the reverse), with
    or without the prefixes a clash with an input column puts before them."""
    return all(
        _unprefixed(header_text(name)) in accepted
        for name, accepted in zip(names, _RESULT_HEADERS, strict=True)
    )


def _unprefixed(key: str) -> str:
    while key.startswith(_RESULT_PREFIXES):
        key = key[len(next(p for p in _RESULT_PREFIXES if key.startswith(p))) :]
    return key


def _unique(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        candidate, k = name, 0
        while candidate in seen:
            k += 1
            candidate = f"{name}.{k}"
        seen.add(candidate)
        out.append(candidate)
    return out


_GUARDED = r"^'[=+\-@\t\r]"


def unguard(frame: pd.DataFrame) -> pd.DataFrame:
    """Undo the quote a CSV report puts before cells that spreadsheets run as formulas.

    Only for files recognised as batchops reports: there the quote is ours, and sending
    ``'-- stop`` instead of ``-- stop`` to ITSM would change the user's text.
    """
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        guarded = column.str.contains(_GUARDED, regex=True)
        if guarded.any():
            out[name] = column.where(~guarded, column.str.slice(1))
    return out


def header_text(name: str) -> str:
    """A header as it is compared: full-width letters and blanks made plain (NFKC: a
    Chinese input method's ``ｓｎ`` is ``sn``), trimmed, in one letter case."""
    return unicodedata.normalize("NFKC", name).strip().casefold()


def header_key(name: str) -> str:
    """A header as it is matched against the aliases."""
    return re.sub(r"[\s\-]+", "_", header_text(name))


#: Per result column (RESULT_COLUMNS order): its headers in every language, as matched.
_RESULT_HEADERS: Final = tuple(
    frozenset(header_text(headers[i]) for headers in RESULT_HEADERS.values())
    for i in range(len(RESULT_COLUMNS))
)
_RESULT_PREFIXES: Final = tuple(header_text(prefix) for prefix in RESULT_PREFIXES.values())


_ALIAS_LOOKUP: Final[dict[str, tuple[str, bool]]] = {
    header_key(alias): (field, i == 0)
    for field, aliases in FIELD_ALIASES.items()
    for i, alias in enumerate(aliases)
}


def map_columns(names: list[str], labels: list[str], where: Path | str) -> dict[str, str]:
    """Canonical field -> frame column label, matching the headers as written (``names``)
    by name and alias; InputError when a field is ambiguous or a required one is missing.
    """
    canonical: dict[str, list[int]] = {}
    aliased: dict[str, list[int]] = {}
    for j, name in enumerate(names):
        hit = _ALIAS_LOOKUP.get(header_key(name))
        if hit is None:
            continue
        field, is_canonical = hit
        (canonical if is_canonical else aliased).setdefault(field, []).append(j)

    columns: dict[str, str] = {}
    missing: list[str] = []
    for field in FIELD_ALIASES:
        chosen = canonical.get(field) or aliased.get(field) or []
        if len(chosen) > 1:
            shown = functools.reduce(
                lambda first, second: _("{first} and {second}").format(first=first, second=second),
                [f"'{show(names[j])}' ({_column_letter(j)})" for j in chosen],
            )
            raise InputError(
                _(
                    "{where}: columns {shown} both map to {field}; rename or delete one of them"
                ).format(where=where, shown=shown, field=field)
            )
        if chosen:
            columns[field] = labels[chosen[0]]
        elif field in _REQUIRED_FIELDS:
            missing.append(field)

    if missing:
        raise InputError(_missing_message(missing, names, where))
    return columns


def _missing_message(missing: list[str], names: list[str], where: Path | str) -> str:
    wanted = "; ".join(
        _("{field} (accepted headers: {headers})").format(
            field=field, headers=", ".join(FIELD_ALIASES[field])
        )
        for field in missing
    )
    found = ", ".join(f"'{show(n)}'" for n in names) or _("none")
    message = ngettext(
        "{where} is missing the column {wanted}; columns found: {found}",
        "{where} is missing the columns {wanted}; columns found: {found}",
        len(missing),
    ).format(where=where, wanted=wanted, found=found)
    if len(names) == 1 and re.search(r"[;\t|]", names[0]):
        hint = _("the file seems to use another separator than ',', save it as CSV again")
        return _("{message}; {hint}").format(message=message, hint=hint)
    return message


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return _("column {letter}").format(letter=letters)


def _filled_rows(frame: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """True for rows with at least one non-blank cell.

    Each column is only checked on the rows that are still blank so far, so the cost is
    about one pass over the first column rather than one per column.
    """
    blank = np.ones(len(frame), dtype=bool)
    for name in frame.columns:
        candidates = np.flatnonzero(blank)
        if candidates.size == 0:
            break
        blank[candidates] = ~_nonblank(frame[name].iloc[candidates])
    return ~blank


def _nonblank(column: pd.Series) -> npt.NDArray[np.bool_]:
    return (column.str.strip() != "").to_numpy(dtype=bool)

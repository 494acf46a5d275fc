"""Files in, validated rows out: the only module that reads the user's input sheet.

It owns everything between a path and a :class:`Batch`:

* reading CSV (UTF-8, UTF-8 with BOM, GB18030/GBK, detected; or a given encoding) and
  Excel workbooks (with python-calamine), every cell as *text* exactly as in the file;
* finding the ``sn``, ``operator``, ``action_type`` and ``action_message`` columns by
  header, with their English and Chinese aliases;
* recognising an earlier batchops report used as input, and removing its result columns;
* checking every row, vectorised, and saying in one line why a row cannot be sent;
* the content fingerprint that ties a checkpoint to its input.

It does no network I/O and knows nothing of the server beyond the rules of
``operate_ticket`` a row must satisfy. Every file-level problem raises
:class:`~batchops.errors.InputError`; a bad row is never an exception, only a reason in
:attr:`Batch.invalid`. Rows are named to users as the rows of the sheet they see:
:meth:`Batch.row_number` counts the blank rows and lines that loading drops, so row 7 in a
message is row 7 in Excel.
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from batchops.errors import InputError
from batchops.model import MAX_MESSAGE_LENGTH, RESULT_COLUMNS, Action, Row

__all__ = [
    "ACTION_ALIASES",
    "FIELD_ALIASES",
    "Batch",
    "default_message",
    "load_batch",
]

StrArray = npt.NDArray[np.object_]

#: Accepted headers per canonical field, canonical name first. Matching is case-insensitive
#: and ignores surrounding blanks; inner blanks and hyphens count as ``_``.
FIELD_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "sn": ("sn", "ticket", "ticket_sn", "单号", "单据号"),
    "operator": ("operator", "处理人", "操作人"),
    "action_type": ("action_type", "action", "操作类型", "操作"),
    "action_message": ("action_message", "message", "备注", "操作备注", "原因"),
}
_REQUIRED_FIELDS: Final = ("sn", "operator", "action_type")

#: Accepted action spellings (after trimming and upper-casing) -> the action sent.
ACTION_ALIASES: Final[dict[str, Action]] = {
    **{a.value: a for a in Action},
    "挂起": Action.SUSPEND,
    "恢复": Action.UNSUSPEND,
    "取消挂起": Action.UNSUSPEND,
    "撤单": Action.WITHDRAW,
    "撤销": Action.WITHDRAW,
    "终止": Action.TERMINATE,
}
_ACTION_NAMES: Final[dict[str, str]] = {k: v.value for k, v in ACTION_ALIASES.items()}
_ACCEPTED_ACTIONS: Final = (
    "use SUSPEND, UNSUSPEND, WITHDRAW or TERMINATE (or 挂起, 恢复/取消挂起, 撤单/撤销, 终止)"
)

#: Actions for which the server rejects a blank ``action_message``, and the ones for which
#: batchops sends a default instead (the server rejects a missing message for every action).
_NEEDS_MESSAGE: Final = (Action.SUSPEND, Action.TERMINATE)
_DEFAULTED: Final = (Action.UNSUSPEND, Action.WITHDRAW)

_SPREADSHEET_EXTENSIONS: Final = frozenset({".xlsx", ".xlsm", ".xls"})
_SAMPLE_BYTES: Final = 1 << 16
_MAX_EXACT_FLOAT: Final = 1e15
# Excel's number rendering of a long numeric sn: 1.23457E+17, or 12345.0 after a float trip.
_MANGLED_SN: Final = r"[+-]?\d+(?:\.\d+)?[eE][+-]?\d+|\d+\.0+"
_SCIENTIFIC_SN: Final = r"[+-]?\d+(?:\.\d+)?[eE][+-]?\d+"
_FINGERPRINT_TAG: Final = b"batchops-frame-v1\0"


def default_message(action: Action) -> str:
    """The message sent for UNSUSPEND/WITHDRAW rows whose message cell is blank."""
    return f"batchops: {action.value}"


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
        """Indices of the valid rows, in input order."""
        return np.flatnonzero(self.invalid == "").astype(np.int64)

    def invalid_count(self) -> int:
        return int(np.count_nonzero(self.invalid != ""))


def load_batch(path: Path | str, *, sheet: str | None = None, encoding: str | None = None) -> Batch:
    """Read ``path`` (CSV or Excel), find its columns and validate every row.

    ``sheet`` picks a worksheet of a workbook (default: the first visible one);
    ``encoding`` overrides CSV encoding detection. Raises :class:`InputError` with a
    one-line message for anything that makes the whole file unusable.
    """
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix != ".csv" and suffix not in _SPREADSHEET_EXTENSIONS:
        shown = f"'{source.suffix}'" if source.suffix else "no extension"
        raise InputError(
            f"{source} has {shown}; batchops reads .csv and .xlsx files (also .xlsm, .xls)"
        )
    if not source.exists():
        raise InputError(f"input file {source} does not exist; check the path")
    if not source.is_file():
        raise InputError(f"{source} is not a file; pass the CSV or Excel file itself")

    fmt: Literal["csv", "xlsx"]
    if suffix == ".csv":
        if sheet is not None:
            raise InputError(f"{source} is a CSV file, which has no sheets; drop the sheet option")
        fmt, sheet_used = "csv", None
        raw, encoding_used, header_row = _read_csv(source, encoding)
    else:
        if encoding is not None:
            raise InputError(
                f"{source} is an Excel workbook, which has no text encoding; "
                "drop the encoding option"
            )
        fmt, encoding_used = "xlsx", None
        raw, sheet_used, header_row = _read_workbook(source, sheet)

    where = source if sheet_used is None else f"{source} (sheet '{sheet_used}')"
    frame, headers, previous, lines = _frame_from_raw(raw, where, header_row)
    previous_status: StrArray | None = None
    if previous is not None:
        previous_status = previous["status"].str.strip().to_numpy(dtype=object)
        if fmt == "csv":
            frame = _unguard(frame)
    columns = _map_columns(headers, [str(c) for c in frame.columns], where)
    if len(frame) == 0:
        raise InputError(
            f"{where} has a header but no data rows; add at least one row to operate on"
        )
    sn, operator, action, message, invalid, notes = _validate(frame, columns, lines)
    return Batch(
        source=source,
        fmt=fmt,
        encoding=encoding_used,
        sheet=sheet_used,
        frame=frame,
        columns=columns,
        sn=sn,
        operator=operator,
        action=action,
        message=message,
        invalid=invalid,
        previous_status=previous_status,
        fingerprint=_fingerprint(frame),
        previous_results=previous,
        notes=notes,
        lines=lines,
    )


_GUARDED = r"^'[=+\-@\t\r]"


def _unguard(frame: pd.DataFrame) -> pd.DataFrame:
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


# --------------------------------------------------------------------------- reading


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
    try:
        with source.open("rb") as handle:
            sample = handle.read(_SAMPLE_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}; check the file") from None
    if not sample:
        raise InputError(_empty_message(source))
    if sample.startswith(b"PK\x03\x04"):
        raise InputError(
            f"{source} is an Excel workbook (zip data), not CSV text; rename it to .xlsx"
        )

    leading = _leading_blank_lines(sample)
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise InputError(
                f"unknown encoding '{encoding}'; use e.g. utf-8, utf-8-sig or gb18030"
            ) from None
        candidates = [encoding]
    else:
        candidates = _encoding_candidates(sample)

    for enc in candidates:
        try:
            raw = pd.read_csv(
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
            continue  # the sample decoded but a later byte did not: re-read with the next
        except pd.errors.EmptyDataError:
            raise InputError(_empty_message(source)) from None
        except pd.errors.ParserError as exc:
            raise InputError(_parser_message(source, exc)) from None
        except OSError as exc:
            raise InputError(
                f"cannot read {source}: {exc.strerror or exc}; check the file"
            ) from None
        except ValueError as exc:  # anything else the parser rejects
            raise InputError(_parser_message(source, exc)) from None
        if encoding is None and enc == "gb18030":
            _check_plausible_chinese(source)
        if len(raw.columns) and len(raw):
            first = raw.iloc[0, 0]
            if isinstance(first, str) and first.startswith("\ufeff"):
                raw.iloc[0, 0] = first.lstrip("\ufeff")
        return raw, enc, leading + 1

    if encoding is not None:
        raise InputError(
            f"{source} cannot be decoded as {encoding}; pass the right --encoding, "
            "or re-save it as 'CSV UTF-8'"
        )
    raise InputError(
        f"{source} is not UTF-8 or GB18030 text; re-save it as 'CSV UTF-8' or pass --encoding"
    )


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
            f"{source} is not UTF-8, and read as GB18030 it gives unlikely text ({sample}…); "
            "it may be Latin-1/Windows-1252: pass --encoding cp1252 (or the right one), or "
            "--encoding gb18030 if the text really is Chinese"
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


def _parser_message(source: Path, exc: Exception) -> str:
    text = str(exc)
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if fields:
        expected, line, saw = fields.groups()
        return (
            f"{source}: line {line} has {saw} fields but the first line has {expected}; "
            "quote values that contain commas, or fix that line"
        )
    if "EOF inside string" in text:
        return f'{source} ends inside a quoted value; close the quote (") that is left open'
    return f"{source} is not valid CSV ({_one_line(text)}); re-save it as 'CSV UTF-8'"


def _empty_message(source: Path | str) -> str:
    return (
        f"{source} is empty; it needs a header row (sn, operator, action_type, "
        "action_message) and at least one data row"
    )


def _read_workbook(source: Path, sheet: str | None) -> tuple[pd.DataFrame, str, int]:
    """All cells of one worksheet as text, header row included, the sheet's name, and the
    header's row number (empty rows above the table counted)."""
    import python_calamine as calamine

    try:
        with calamine.CalamineWorkbook.from_path(str(source)) as book:
            names = [str(n) for n in book.sheet_names]
            if sheet is None:
                sheet = _first_visible_sheet(book, names)
                if sheet is None:
                    raise InputError(f"{source} has no worksheet; save a sheet with the rows")
            elif sheet not in names:
                shown = ", ".join(f"'{n}'" for n in names) or "none"
                raise InputError(f"{source} has no sheet named '{sheet}'; its sheets are: {shown}")
            chosen = book.get_sheet_by_name(sheet)
            rows = chosen.to_python(skip_empty_area=True)
            start = chosen.start
    except InputError:
        raise
    except calamine.PasswordError:
        raise InputError(
            f"{source} is password-protected; remove the password in Excel and save it again"
        ) from None
    except (calamine.CalamineError, OSError, ValueError) as exc:
        raise InputError(
            f"{source} is not a readable Excel workbook ({_one_line(str(exc))}); "
            "open it in Excel and save it again as .xlsx, or export it as CSV"
        ) from None

    if not rows:
        raise InputError(_empty_message(f"{source} (sheet '{sheet}')"))
    width = max(len(r) for r in rows)
    data: dict[int, list[str]] = {}
    for j in range(width):
        data[j] = [_cell_text(r[j]) if j < len(r) else "" for r in rows]
    header_row = int(start[0]) + 1 if start else 1
    return pd.DataFrame(data, dtype=str), sheet, header_row


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


def _cell_text(value: object) -> str:
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


# --------------------------------------------------------------------------- columns


def _frame_from_raw(
    raw: pd.DataFrame, where: Path | str, header_row: int = 1
) -> tuple[pd.DataFrame, list[str], pd.DataFrame | None, npt.NDArray[np.int64]]:
    """Turn header-row-first cells into the input frame, its headers as written, and the
    result columns of the earlier report it is (None for a plain input).

    Unnamed empty columns and all-blank rows are dropped; an unnamed column with data is
    called ``Unnamed: <n>`` and a repeated header gets a ``.1``, ``.2`` suffix in the
    frame (as pandas does); result columns of an earlier report are removed.
    """
    if raw.shape[1] == 0 or raw.shape[0] == 0:
        raise InputError(_empty_message(where))
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
        raise InputError(_empty_message(where))

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
        return frame, names, previous, lines
    return frame, names, None, lines


def _is_result_tail(names: Sequence[str]) -> bool:
    for name, expected in zip(names, RESULT_COLUMNS, strict=True):
        key = name.strip().lower()
        if key != expected and key != f"result_{expected}":
            return False
    return True


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


def _header_key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


_ALIAS_LOOKUP: Final[dict[str, tuple[str, bool]]] = {
    _header_key(alias): (field, i == 0)
    for field, aliases in FIELD_ALIASES.items()
    for i, alias in enumerate(aliases)
}


def _map_columns(names: list[str], labels: list[str], where: Path | str) -> dict[str, str]:
    """Canonical field -> frame column label, matching the headers as written (``names``)
    by name and alias; InputError when a field is ambiguous or a required one is missing.
    """
    canonical: dict[str, list[int]] = {}
    aliased: dict[str, list[int]] = {}
    for j, name in enumerate(names):
        hit = _ALIAS_LOOKUP.get(_header_key(name))
        if hit is None:
            continue
        field, is_canonical = hit
        (canonical if is_canonical else aliased).setdefault(field, []).append(j)

    columns: dict[str, str] = {}
    missing: list[str] = []
    for field in FIELD_ALIASES:
        chosen = canonical.get(field) or aliased.get(field) or []
        if len(chosen) > 1:
            shown = " and ".join(f"'{_show(names[j])}' ({_column_letter(j)})" for j in chosen)
            raise InputError(
                f"{where}: columns {shown} both map to {field}; rename or delete one of them"
            )
        if chosen:
            columns[field] = labels[chosen[0]]
        elif field in _REQUIRED_FIELDS:
            missing.append(field)

    if missing:
        wanted = "; ".join(
            f"{field} (accepted headers: {', '.join(FIELD_ALIASES[field])})" for field in missing
        )
        found = ", ".join(f"'{_show(n)}'" for n in names) or "none"
        hint = ""
        if len(names) == 1 and re.search(r"[;\t|]", names[0]):
            hint = "; the file seems to use another separator than ',', save it as CSV again"
        noun = "column" if len(missing) == 1 else "columns"
        raise InputError(f"{where} is missing the {noun} {wanted}; columns found: {found}{hint}")
    return columns


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return f"column {letters}"


def _show(text: str, limit: int = 40) -> str:
    """A cell or header shown inside a one-line message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _one_line(text: str) -> str:
    return _show(text, 200)


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


# --------------------------------------------------------------------------- rows


#: Invisible characters a copy from a web page or chat leaves around an sn: trimmed at
#: the ends (the report says so), refused inside. Plain blanks are trimmed silently.
_INVISIBLE: Final = "\u200b\u200c\u200d\u2060\ufeff\u00a0\u202f\u2007\u3000\u180e"


def _plain(text: str) -> bool:
    """Printable ASCII with no inner blank: nearly every sn, and nothing to look into."""
    return text.isascii() and text.isprintable() and " " not in text.strip(" ")


def _suspect_sns(cells: list[str]) -> list[int]:
    """Rows whose sn cell may hold a hidden character, cheaply: one C-level test over all
    cells joined decides for a whole file of plain sns (1M rows: ~20 ms, where a regex
    per cell took 0.65 s); only otherwise is each cell tested."""
    joined = "".join(cells)
    if joined.isascii() and joined.isprintable() and " " not in joined:
        return []
    return [i for i, text in enumerate(cells) if not _plain(text)]


_CHARACTER_NAMES: Final = {
    "\t": "a tab",
    "\n": "a line break",
    "\r": "a line break",
    "\x00": "a NUL character",
    " ": "a blank",
}


def _shown_char(char: str) -> str:
    """A character as a person can recognise it: 'a tab', 'zero width space (U+200B)'."""
    if char in _CHARACTER_NAMES:
        return _CHARACTER_NAMES[char]
    name = unicodedata.name(char, "").lower() or "a control character"
    return f"{name} (U+{ord(char):04X})"


def _unfit_in_sn(char: str) -> bool:
    """Blanks, control, format (zero-width) and separator characters: no ticket number
    holds them, and sent as they are they come back as "ticket not found"."""
    return char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp", "Co")


def _clean_sns(raw: pd.Series, sn: StrArray) -> tuple[dict[int, str], dict[int, str]]:
    """Trim invisible characters at the ends of the sns in ``sn`` (in place); return the
    reasons of the sns that hold an unfit character inside, and the notes of the trimmed
    ones, both by row."""
    reasons: dict[int, str] = {}
    notes: dict[int, str] = {}
    for index in _suspect_sns(raw.tolist()):
        text = str(raw.iloc[index])
        core = text
        while True:
            shorter = core.strip().strip(_INVISIBLE)
            if shorter == core:
                break
            core = shorter
        if not core:
            continue  # blank: flagged as such
        inner = [c for c in core if _unfit_in_sn(c)]
        if inner:
            what = ", ".join(dict.fromkeys(_shown_char(c) for c in inner))
            reasons[index] = (
                f"sn {core.encode('unicode_escape').decode('ascii')!r} holds {what}; a ticket "
                "number has none, so type the sn again (copying from a web page or chat "
                "brings hidden characters along)"
            )
            continue
        removed = text.replace(core, "", 1)
        hidden = sorted({c for c in removed if c in _INVISIBLE}, key=ord)
        if hidden:
            codes = ", ".join(f"U+{ord(c):04X}" for c in hidden)
            notes[index] = f"sn trimmed of invisible characters at its ends ({codes})"
        sn[index] = core
    return reasons, notes


def _validate(
    frame: pd.DataFrame, columns: dict[str, str], lines: npt.NDArray[np.int64]
) -> tuple[StrArray, StrArray, StrArray, StrArray, StrArray, dict[int, str]]:
    """Stripped sn/operator, canonical action, message to send, the invalid reasons and
    the notes of rows whose sn was trimmed."""
    n = len(frame)
    sn_s = frame[columns["sn"]].str.strip()
    operator_s = frame[columns["operator"]].str.strip()
    action_raw = frame[columns["action_type"]].str.strip()
    action_s = action_raw.map(_ACTION_NAMES)
    unmatched = action_s.isna() & (action_raw != "")
    if unmatched.any():  # only other spellings pay for upper-casing
        action_s[unmatched] = action_raw[unmatched].str.upper().map(_ACTION_NAMES)
    action_s = action_s.fillna("")
    has_message = "action_message" in columns
    if has_message:
        message_s = frame[columns["action_message"]].str.strip()
    else:
        message_s = pd.Series(np.full(n, "", dtype=object), dtype=object)

    sn = sn_s.to_numpy(dtype=object)
    operator = operator_s.to_numpy(dtype=object)
    action = action_s.to_numpy(dtype=object)
    message = message_s.to_numpy(dtype=object).copy()  # defaults are written in below
    lengths = message_s.str.len().to_numpy(dtype=np.int64)

    invalid: StrArray = np.full(n, "", dtype=object)
    open_ = np.ones(n, dtype=bool)  # rows with no reason yet

    def flag(mask: npt.NDArray[np.bool_], reason: str | StrArray) -> None:
        """Give ``reason`` to the rows of ``mask`` that have none yet (first problem wins).

        ``reason`` is one text for all of them, or one text per True entry of ``mask``.
        """
        hit = mask & open_
        if not hit.any():
            return
        invalid[hit] = reason if isinstance(reason, str) else reason[open_[mask]]
        open_[hit] = False

    def named(field: str) -> str:
        header = columns[field]
        return field if _header_key(header) == field else f"{field} (column '{_show(header)}')"

    sn_reasons, notes = _clean_sns(frame[columns["sn"]], sn)
    if notes:
        sn_s = pd.Series(sn, index=sn_s.index, dtype=object)
    flag(sn == "", f"{named('sn')} is blank; fill in the ticket number")
    if sn_reasons:
        unfit = np.zeros(n, dtype=bool)
        unfit[list(sn_reasons)] = True
        flag(unfit, np.array([sn_reasons[i] for i in sorted(sn_reasons)], dtype=object))
    flag(operator == "", f"{named('operator')} is blank; fill in who performs the action")
    raw = action_raw.to_numpy(dtype=object)
    flag(raw == "", f"{named('action_type')} is blank; {_ACCEPTED_ACTIONS}")
    unknown = (action == "") & (raw != "")
    if unknown.any():
        shown = action_raw[unknown].map(_show)
        reasons = "action_type '" + shown + f"' is not recognised; {_ACCEPTED_ACTIONS}"
        flag(unknown, reasons.to_numpy(dtype=object))

    blank_message = lengths == 0
    for act in _NEEDS_MESSAGE:
        if has_message:
            reason = (
                f"{named('action_message')} is blank; the server requires a reason for {act.value}"
            )
        else:
            reason = (
                f"there is no action_message column; the server requires a reason for "
                f"{act.value} (add a column {', '.join(FIELD_ALIASES['action_message'])})"
            )
        flag((action == act.value) & blank_message, reason)

    too_long = lengths > MAX_MESSAGE_LENGTH
    if too_long.any():
        counts = pd.Series(lengths[too_long]).astype(str)
        flag(
            too_long,
            (
                "action_message is "
                + counts
                + f" characters; shorten it to at most {MAX_MESSAGE_LENGTH}"
            ).to_numpy(dtype=object),
        )

    mangled = sn_s.str.fullmatch(_MANGLED_SN).to_numpy(dtype=bool)
    if mangled.any():
        hits = sn_s[mangled]
        scientific = hits.str.fullmatch(_SCIENTIFIC_SN).to_numpy(dtype=bool)
        how = np.where(
            scientific,
            "' was turned into a number by Excel (scientific notation)",
            "' has a trailing .0 added by Excel",
        )
        reasons = (
            "sn '"
            + hits.map(_show).to_numpy(dtype=object)
            + how.astype(object)
            + "; format the sn column as Text and re-export the file"
        )
        flag(mangled, reasons)

    _flag_repeats(sn, action, open_, invalid, lines)

    for act in _DEFAULTED:
        message[(action == act.value) & blank_message] = default_message(act)
    return sn, operator, action, message, invalid, notes


def _flag_repeats(
    sn: StrArray,
    action: StrArray,
    open_: npt.NDArray[np.bool_],
    invalid: StrArray,
    lines: npt.NDArray[np.int64],
) -> None:
    """Flag rows whose action equals the previous otherwise-valid row's for the same sn.

    The reason names the first row of the run, which is the one that will be sent.
    """
    rows = np.flatnonzero(open_)
    if rows.size < 2:
        return
    # Sort the candidate rows by sn, keeping file order within one sn; a repeat is then a
    # neighbour with the same sn and the same action.
    codes, _ = pd.factorize(pd.Series(sn[rows], dtype=object), sort=False)
    order = np.argsort(codes, kind="stable")
    group = codes[order]
    acts = action[rows][order]
    repeat = np.zeros(rows.size, dtype=bool)
    repeat[1:] = (group[1:] == group[:-1]) & (acts[1:] == acts[:-1])
    if not repeat.any():
        return
    # The first row of each run: the last non-repeat at or before each position. A group
    # always starts with a non-repeat, so this never reaches into the previous sn.
    positions = np.arange(rows.size)
    run_start = np.maximum.accumulate(np.where(repeat, 0, positions))
    hit = rows[order[repeat]]
    first_row = lines[rows[order[run_start[repeat]]]].astype(str).astype(object)
    repeated = acts[repeat]
    note = np.where(
        repeated == Action.SUSPEND.value,
        " (a second SUSPEND of a suspended ticket leaves it stuck in SUSPENDED)",
        "",
    ).astype(object)
    invalid[hit] = (
        "repeats "
        + repeated
        + " of row "
        + first_row
        + " for the same sn"
        + note
        + "; remove the duplicate row"
    )
    open_[hit] = False


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

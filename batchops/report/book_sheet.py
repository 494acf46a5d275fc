"""The input's sheet with the result columns added, rewritten as a stream of its XML.

Every row that is no data row, and every cell of a data row left of the result columns,
is copied byte for byte: the sheet's styles, dates, formulas, merged ranges, dropdowns,
frozen panes and everything after its cells stay as they were. Only three things change:
the header row and each data row get the result cells (where an earlier report's result
columns were, or right after the table; a cell already there is replaced), the column
widths of the result columns are set, and the sheet's dimension covers them.

The result cells are written as xlsxwriter writes them: text as inline strings (never a
formula, a number or a link), numbers as numbers, ``finished_at`` as a date cell. Speed:
a row's XML is only split into cells when it holds a cell at or right of the result
columns; the rest of the sheet passes through in chunks (BENCHMARKS.md, issue 23).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Final

_CHUNK: Final = 1 << 20
_ROW_START: Final = re.compile(rb"<([A-Za-z_][\w.-]*:)?row\b")
_CELL_START: Final = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c\b([^>]*)>")
_CELL_REF: Final = re.compile(rb'\br\s*=\s*["\']([A-Za-z]+)')
_ROW_NUMBER: Final = re.compile(rb'\br\s*=\s*["\'](\d+)')
_DATA_END: Final = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?sheetData>")
_SPANS: Final = re.compile(rb'\s+spans\s*=\s*("[^"]*"|\'[^\']*\')')
_DIMENSION: Final = re.compile(rb'(<(?:[A-Za-z_][\w.-]*:)?dimension\b[^>]*\bref=")([^"]*)(")')
_COL: Final = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?col\b([^>]*?)/?>")
_ILLEGAL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|_(?=x[0-9A-Fa-f]{4}_)")
_CELL_MAX: Final = 32_767


@dataclass(frozen=True, slots=True)
class SheetPlan:
    """Where the result cells go and what they are.

    ``cells(index, row)`` gives data row ``index``'s result cells as XML for sheet row
    ``row``; ``header`` the header's, for the header row.
    """

    header_row: int
    first: int
    width: int
    rows: dict[int, int]
    header: Callable[[int], bytes]
    cells: Callable[[int, int], bytes]
    widths: Sequence[float]


def rewrite_sheet(source: IO[bytes], write: Callable[[bytes], object], plan: SheetPlan) -> None:
    """Copy the sheet part ``source`` to ``write`` with the result columns added."""
    pieces = _pieces(source)
    head = b""
    for piece in pieces:
        head += piece
        at = re.search(rb"<(?:[A-Za-z_][\w.-]*:)?sheetData\b[^>]*?(/?)>", head)
        if at is not None:
            break
    else:
        raise ValueError("the sheet has no sheetData element")
    if re.search(rb"<[A-Za-z_][\w.-]*:worksheet\b", head):
        # Its cells would need the prefix too; such a sheet gets the plain report.
        raise ValueError("the sheet's elements carry a namespace prefix")
    write(_patched_head(head[: at.start()], plan))
    tag = at[0]
    if at[1]:  # no rows at all: <sheetData/>
        prefix = re.match(rb"<([A-Za-z_][\w.-]*:)?", tag)
        name = (prefix[1] or b"") if prefix else b""
        write(tag[:-2].rstrip() + b">")
        write(b"".join(_missing_rows(plan, sorted([plan.header_row, *plan.rows]), 0, None)))
        write(b"</" + name + b"sheetData>")
        rest = head[at.end() :]
    else:
        write(tag)
        rest = _rewrite_rows(head[at.end() :], pieces, write, plan)
    write(rest)
    for piece in pieces:
        write(piece)


def _pieces(source: IO[bytes]) -> Iterator[bytes]:
    while chunk := source.read(_CHUNK):
        yield chunk


def _rewrite_rows(
    buffer: bytes, pieces: Iterator[bytes], write: Callable[[bytes], object], plan: SheetPlan
) -> bytes:
    """The rows, rewritten where they are the header or a data row; what follows them.

    The buffer is walked by position (a slice per row would copy the rest of a chunk
    for every row); what is done is written once per chunk.
    """
    wanted = sorted([plan.header_row, *plan.rows])
    position = 0  # the next wanted row not yet written
    last = 0  # the number of the last row seen (a row without ``r`` follows it)
    at = 0
    out: list[bytes] = []
    # Where the rows end, looked for once per chunk (not once per row: that is quadratic).
    done = _DATA_END.search(buffer)
    while True:
        start = _ROW_START.search(buffer, at)
        if done is not None and (start is None or done.start() < start.start()):
            out.append(buffer[at : done.start()])
            out.extend(_missing_rows(plan, wanted, position, None))
            write(b"".join(out))
            return buffer[done.start() :]
        row = _row_at(buffer, start) if start is not None else None
        if start is None or row is None:
            write(b"".join(out))
            out = []
            more = next(pieces, None)
            if more is None:
                raise ValueError("the sheet's rows end before </sheetData>")
            buffer, at = buffer[at:] + more, 0
            done = _DATA_END.search(buffer)
            continue
        tag_end, row_end, closed, end_name = row
        number = _ROW_NUMBER.search(buffer, start.end(), tag_end)
        last = int(number[1]) if number else last + 1
        before = _missing_rows(plan, wanted, position, last)
        position += len(before)
        out.append(buffer[at : start.start()])
        out.extend(before)
        if position < len(wanted) and wanted[position] == last:
            position += 1
            whole = buffer[start.start() : row_end]
            out.append(_with_results(whole, tag_end - start.start(), closed, end_name, last, plan))
        else:
            out.append(buffer[start.start() : row_end])
        at = row_end


def _row_at(buffer: bytes, start: re.Match[bytes]) -> tuple[int, int, bool, bytes] | None:
    """Where the row that starts at ``start`` has its tag's ``>`` and its end, whether it
    is one tag, and its closing tag; None when the buffer ends inside it."""
    end_name = b"</" + (start[1] or b"") + b"row>"
    tag_end = buffer.find(b">", start.end())
    if tag_end < 0:
        return None
    closed = buffer[tag_end - 1 : tag_end] == b"/"
    if closed:
        return tag_end, tag_end + 1, True, end_name
    row_end = buffer.find(end_name, tag_end)
    if row_end < 0:
        return None
    return tag_end, row_end + len(end_name), False, end_name


def _missing_rows(
    plan: SheetPlan, wanted: list[int], position: int, before: int | None
) -> list[bytes]:
    """Rows the result cells need that the sheet does not have (a row whose only value
    is a merged cell's, say), up to row ``before``."""
    out: list[bytes] = []
    while position < len(wanted) and (before is None or wanted[position] < before):
        number = wanted[position]
        cells = (
            plan.header(number)
            if number == plan.header_row
            else plan.cells(plan.rows[number], number)
        )
        out.append(b'<row r="%d">%s</row>' % (number, cells))
        position += 1
    return out


def _with_results(
    row: bytes, tag_length: int, closed: bool, end_name: bytes, number: int, plan: SheetPlan
) -> bytes:
    """One row with its result cells in place (a cell already in their columns goes)."""
    ours = (
        plan.header(number) if number == plan.header_row else plan.cells(plan.rows[number], number)
    )
    tag = _SPANS.sub(b"", row[: tag_length + 1])
    if closed:
        return tag[:-2].rstrip() + b">" + ours + end_name
    inner = row[tag_length + 1 : len(row) - len(end_name)]
    starts = list(_CELL_START.finditer(inner))
    columns: list[int] = []
    column = -1
    for cell in starts:
        ref = _CELL_REF.search(cell[1])
        column = _column_index(ref[1]) if ref else column + 1
        columns.append(column)
    if not columns or columns[-1] < plan.first:
        return tag + inner + ours + end_name
    left, right = b"", b""
    for i, cell in enumerate(starts):
        piece = inner[cell.start() : starts[i + 1].start() if i + 1 < len(starts) else len(inner)]
        if columns[i] < plan.first:
            left += piece
        elif columns[i] >= plan.first + plan.width:
            right += piece
    return tag + inner[: starts[0].start()] + left + ours + right + end_name


def _patched_head(head: bytes, plan: SheetPlan) -> bytes:
    """The part before the rows with the dimension and the result columns' widths."""
    last_column = plan.first + plan.width - 1
    last_row = max([plan.header_row, *plan.rows])

    def dimension(match: re.Match[bytes]) -> bytes:
        ref = match[2].decode("ascii", "replace")
        found = re.fullmatch(r"([A-Za-z]+)(\d+)(?::([A-Za-z]+)(\d+))?", ref)
        if found is None:
            return match[0]
        first_col, first_row = found[1], int(found[2])
        end_col = _column_index((found[3] or found[1]).encode())
        end_row = int(found[4] or found[2])
        end = column_letters(max(end_col, last_column))
        new = f"{first_col}{first_row}:{end}{max(end_row, last_row)}"
        return match[1] + new.encode() + match[3]

    head = _DIMENSION.sub(dimension, head, count=1)
    ours = [
        b'<col min="%d" max="%d" width="%s" customWidth="1"/>'
        % (c + 1, c + 1, repr(float(w)).encode())
        for c, w in zip(range(plan.first, last_column + 1), plan.widths, strict=True)
    ]
    cols = re.search(
        rb"<([A-Za-z_][\w.-]*:)?cols\b[^>]*>(.*?)</(?:[A-Za-z_][\w.-]*:)?cols>", head, re.S
    )
    if cols is None:
        at = len(head)
        return head[:at] + b"<cols>" + b"".join(ours) + b"</cols>"
    prefix = cols[1] or b""
    if prefix:
        ours = [b"<" + prefix + o[1:] for o in ours]
    kept = _clipped(cols[2], plan.first + 1, last_column + 1)
    entries = sorted(kept + [(plan.first + 1 + i, o) for i, o in enumerate(ours)])
    body = b"".join(entry for _min, entry in entries)
    return head[: cols.start(2)] + body + head[cols.end(2) :]


def _clipped(body: bytes, low: int, high: int) -> list[tuple[int, bytes]]:
    """The sheet's column entries, cut so that none covers columns ``low``–``high``."""
    out: list[tuple[int, bytes]] = []
    for col in _COL.finditer(body):
        attributes = col[1]
        lo = re.search(rb'\bmin\s*=\s*"(\d+)"', attributes)
        hi = re.search(rb'\bmax\s*=\s*"(\d+)"', attributes)
        if lo is None or hi is None:
            continue
        first, last = int(lo[1]), int(hi[1])
        for a, b in ((first, min(last, low - 1)), (max(first, high + 1), last)):
            if a <= b:
                entry = col[0].replace(lo[0], b'min="%d"' % a, 1).replace(hi[0], b'max="%d"' % b, 1)
                out.append((a, entry))
    return out


def _column_index(letters: bytes) -> int:
    """``A`` → 0, ``AB`` → 27."""
    index = 0
    for char in letters.upper():
        index = index * 26 + char - 64
    return index - 1


def column_letters(index: int) -> str:
    """0 → ``A``, 27 → ``AB``."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def text_cell(ref: str, text: str, style: int | None = None) -> str:
    """An inline-string cell that stays text whatever it says (cut at Excel's limit)."""
    if len(text) > _CELL_MAX:
        text = text[:_CELL_MAX]
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if _ILLEGAL.search(escaped):
        escaped = _ILLEGAL.sub(lambda m: f"_x{ord(m[0]):04X}_", escaped)
    space = ' xml:space="preserve"' if text != text.strip() or "\n" in text else ""
    s = f' s="{style}"' if style is not None else ""
    return f'<c r="{ref}"{s} t="inlineStr"><is><t{space}>{escaped}</t></is></c>'


def number_cell(ref: str, value: float, style: int | None = None) -> str:
    """A number cell (a date is a number with a date style)."""
    s = f' s="{style}"' if style is not None else ""
    shown = repr(value) if isinstance(value, float) and not value.is_integer() else str(int(value))
    return f'<c r="{ref}"{s}><v>{shown}</v></c>'

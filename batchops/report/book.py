"""The XLSX report of an XLSX input: the input's own workbook with the result columns
added and the Summary sheet after its sheets.

Every part of the input's package is copied as it is (its other sheets, hidden or not,
in their order; drawings, defined names, the theme) but four: the sheet the rows came
from gets the result columns (:mod:`batchops.report.book_sheet`), the styles get the
report's formats appended (:mod:`batchops.report.book_styles`), and the workbook, its
relationships and the content types name the Summary sheet. The report's own cells and
the Summary are drawn by xlsxwriter into a workbook of their own first (the same
formats, the same Summary as a plain report's), and taken from there: no private API of
any library is used, and the input's cells are never read into objects, so a
100,000-row workbook takes about as long as the plain report (BENCHMARKS.md, issue 23).

When the input is an earlier report, its Summary sheet is replaced rather than a second
one added. A package this module cannot follow raises ValueError (or a zip or XML
error); :mod:`batchops.report.writing` then writes the plain report instead.
"""

from __future__ import annotations

import math
import posixpath
import re
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape, unescape
from pathlib import Path
from typing import Any, Final

from batchops.model import RESULT_COLUMNS, OutcomeTable
from batchops.sheet import SourceBook, sheet_part, workbook_part

from .atomic import sync
from .book_sheet import SheetPlan, column_letters, number_cell, rewrite_sheet, text_cell
from .book_styles import merge_styles
from .columns import NUMERIC_RESULT_COLUMNS
from .summary_sheet import SUMMARY_SHEET, SummarySheet, add_summary_sheet
from .xlsx_cells import (
    DATE_FORMAT,
    DATE_WIDTH,
    STATUS_COLOURS,
    Looks,
    column_width,
    excel_times,
    needs_wrap,
    open_workbook,
)

_WORKSHEET: Final = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"
_STYLES: Final = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles"
_R: Final = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_TYPES: Final = {
    "worksheets": "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml",
    "drawings": "application/vnd.openxmlformats-officedocument.drawing+xml",
    "charts": "application/vnd.openxmlformats-officedocument.drawingml.chart+xml",
}
#: A results sheet this large (uncompressed) is written with Zip64 sizes.
_ZIP64_FROM: Final = 512 << 20
#: The marker cells of the side workbook's second sheet: the formats, by column.
_MARKERS: Final = ("bold", "date", "wrap", *(s.value for s in STATUS_COLOURS))


@dataclass(frozen=True, slots=True)
class _Side:
    """What xlsxwriter drew: its styles part, the style of each marker, the Summary's
    parts (name in the side package -> bytes)."""

    styles: bytes
    markers: dict[str, int]
    summary: dict[str, bytes]


def write_book_report(
    temp: Path,
    book: SourceBook,
    lines: list[int],
    result_names: list[str],
    outcomes: OutcomeTable,
    summary: SummarySheet | Mapping[str, object] | None,
) -> None:
    """Write to ``temp`` the input workbook with the results of its rows (data row ``i``
    is sheet row ``lines[i]``) and the Summary sheet."""
    results = outcomes.columns()
    results["elapsed_ms"] = [
        v if isinstance(v, float) and math.isfinite(v) else None for v in results["elapsed_ms"]
    ]
    results["finished_at"] = excel_times(results["finished_at"])
    with zipfile.ZipFile(book.path) as source:
        part = sheet_part(source, book.sheet)
        workbook = workbook_part(source)
        rels = _rels_name(workbook)
        sheets = _sheets(source.read(workbook))
        replaced = _replaced_summary(book, sheets, source.read(rels), workbook)
        taken = {name.casefold() for name, _rid in sheets if name != replaced}
        name = _free_name(taken)
        with tempfile.TemporaryDirectory(prefix="batchops-") as folder:
            side = _side_workbook(Path(folder) / "side.xlsx", summary, name)
        styles = _styles_name(source, workbook, rels)
        merged, base = merge_styles(source.read(styles), side.styles)
        styles_of = {key: index + base for key, index in side.markers.items()}
        plan = _plan(book, lines, result_names, results, styles_of)
        changed: dict[str, bytes] = {styles: merged}
        added: dict[str, bytes] = {}
        if side.summary:
            _place_summary(source, side, base, workbook, rels, replaced, name, changed, added)
        _write_package(temp, source, part, plan, changed, added)
    with temp.open("r+b") as handle:
        sync(handle)


def _plan(
    book: SourceBook,
    lines: list[int],
    result_names: list[str],
    results: dict[str, list[Any]],
    styles: dict[str, int],
) -> SheetPlan:
    """Where the result cells go, their widths and how each is written."""
    first = book.result_column
    letters = [column_letters(first + j) for j in range(len(RESULT_COLUMNS))]
    columns = [results[name] for name in RESULT_COLUMNS]
    widths = [
        DATE_WIDTH if name == "finished_at" else column_width(header, results[name])
        for name, header in zip(RESULT_COLUMNS, result_names, strict=True)
    ]
    message_width = int(widths[RESULT_COLUMNS.index("message")])

    def header(row: int) -> bytes:
        return "".join(
            text_cell(f"{letter}{row}", name, styles["bold"])
            for letter, name in zip(letters, result_names, strict=True)
        ).encode("utf-8")

    def cells(index: int, row: int) -> bytes:
        out: list[str] = []
        for letter, name, column in zip(letters, RESULT_COLUMNS, columns, strict=True):
            value = column[index]
            if value is None or value == "":
                continue
            ref = f"{letter}{row}"
            if name in NUMERIC_RESULT_COLUMNS:
                out.append(number_cell(ref, value))
            elif name == "status":
                out.append(text_cell(ref, str(value), styles.get(str(value))))
            elif name == "finished_at" and isinstance(value, float):
                out.append(number_cell(ref, value, styles["date"]))
            elif name == "message" and needs_wrap(str(value), message_width):
                out.append(text_cell(ref, str(value), styles["wrap"]))
            else:
                out.append(text_cell(ref, str(value)))
        return "".join(out).encode("utf-8")

    rows = {int(line): index for index, line in enumerate(lines)}
    return SheetPlan(book.header_row, first, len(RESULT_COLUMNS), rows, header, cells, widths)


def _side_workbook(
    path: Path, summary: SummarySheet | Mapping[str, object] | None, name: str
) -> _Side:
    """The report's formats and Summary sheet, drawn by xlsxwriter in a workbook of
    their own: its first sheet the Summary (when there is one), then one marker cell in
    each format, whose style numbers say which ``xf`` each format became."""
    with open_workbook(path) as workbook:
        bold = workbook.add_format({"bold": True})
        looks = Looks(
            status={
                status.value: workbook.add_format({"bg_color": bg, "font_color": fg})
                for status, (bg, fg) in STATUS_COLOURS.items()
            },
            date=workbook.add_format({"num_format": DATE_FORMAT}),
            wrap=workbook.add_format({"text_wrap": True, "valign": "top"}),
            message_width=60,
        )
        if summary is not None:
            add_summary_sheet(workbook, "", summary, bold, looks, name=name)
        markers = workbook.add_worksheet("markers")
        formats = {"bold": bold, "date": looks.date, "wrap": looks.wrap, **looks.status}
        for col, key in enumerate(_MARKERS):
            markers.write_string(0, col, key, formats[key])
    with zipfile.ZipFile(path) as side:
        marker_part = (
            "xl/worksheets/sheet2.xml" if summary is not None else "xl/worksheets/sheet1.xml"
        )
        styles = {
            _column(m[1]): int(m[2])
            for m in re.finditer(rb'<c r="([A-Z]+)1" s="(\d+)"', side.read(marker_part))
        }
        parts: dict[str, bytes] = {}
        if summary is not None:
            for part in side.namelist():
                if part.startswith(("xl/drawings/", "xl/charts/")) or part in (
                    "xl/worksheets/sheet1.xml",
                    "xl/worksheets/_rels/sheet1.xml.rels",
                ):
                    parts[part] = side.read(part)
        return _Side(
            side.read("xl/styles.xml"), {k: styles[i] for i, k in enumerate(_MARKERS)}, parts
        )


def _column(letters: bytes) -> int:
    index = 0
    for char in letters:
        index = index * 26 + char - 64
    return index - 1


def _rels_name(part: str) -> str:
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", f"{name}.rels")


def _sheets(workbook: bytes) -> list[tuple[str, str]]:
    """The workbook's sheets in order: (name, relationship id)."""
    out: list[tuple[str, str]] = []
    for tag in re.finditer(rb"<(?:[A-Za-z_][\w.-]*:)?sheet\b([^>]*)/?>", workbook):
        name = re.search(rb'\bname\s*=\s*"([^"]*)"', tag[1])
        rid = re.search(rb'\b[\w.-]+:id\s*=\s*"([^"]*)"', tag[1])
        if name and rid:
            out.append((unescape(name[1].decode("utf-8")), rid[1].decode("utf-8")))
    return out


def _relationships(rels: bytes) -> dict[str, tuple[str, str]]:
    """Id -> (type, target) of a relationships part."""
    out: dict[str, tuple[str, str]] = {}
    for tag in re.finditer(rb"<(?:[A-Za-z_][\w.-]*:)?Relationship\b([^>]*)/?>", rels):
        values = dict(re.findall(rb'([\w:]+)\s*=\s*"([^"]*)"', tag[1]))
        out[values.get(b"Id", b"").decode()] = (
            values.get(b"Type", b"").decode(),
            unescape(values.get(b"Target", b"").decode("utf-8")),
        )
    return out


def _target(base_part: str, target: str) -> str:
    if target.startswith("/"):
        return posixpath.normpath(target.lstrip("/"))
    return posixpath.normpath(posixpath.join(posixpath.dirname(base_part), target))


def _replaced_summary(
    book: SourceBook, sheets: list[tuple[str, str]], rels: bytes, workbook: str
) -> str | None:
    """The Summary sheet of the earlier report this input is, which the new one replaces."""
    if not book.is_report:
        return None
    kinds = _relationships(rels)
    for name, rid in sheets:
        if (
            name.casefold() == SUMMARY_SHEET.casefold()
            and kinds.get(rid, ("", ""))[0] == _WORKSHEET
        ):
            return name
    return None


def _free_name(taken: set[str]) -> str:
    """The Summary sheet's name: "Summary", unless a sheet of the input has it."""
    name, k = SUMMARY_SHEET, 1
    while name.casefold() in taken:
        k += 1
        name = f"{SUMMARY_SHEET} ({k})"
    return name


def _styles_name(source: zipfile.ZipFile, workbook: str, rels: str) -> str:
    for kind, target in _relationships(source.read(rels)).values():
        if kind == _STYLES:
            return _target(workbook, target)
    raise ValueError("the workbook has no styles part")


def _place_summary(
    source: zipfile.ZipFile,
    side: _Side,
    base: int,
    workbook: str,
    rels: str,
    replaced: str | None,
    name: str,
    changed: dict[str, bytes],
    added: dict[str, bytes],
) -> None:
    """The Summary's parts under names the input does not use, and the workbook, its
    relationships and the content types told of them (or the old Summary's part
    replaced by it)."""
    names = {n.lower() for n in source.namelist()}

    def free(folder: str, stem: str) -> str:
        k = 1
        while f"xl/{folder}/{stem}{k}.xml".lower() in names:
            k += 1
        names.add(f"xl/{folder}/{stem}{k}.xml".lower())
        return f"xl/{folder}/{stem}{k}.xml"

    sheet_xml = re.sub(
        rb'(<c\b[^>]*?\bs=")(\d+)"',
        lambda m: m[1] + str(int(m[2]) + base).encode() + b'"',
        side.summary["xl/worksheets/sheet1.xml"],
    )
    # Two selected tabs would be a group, where an edit lands on both sheets.
    sheet_xml = sheet_xml.replace(b' tabSelected="1"', b"")
    workbook_xml = source.read(workbook)
    if replaced is not None:
        rid = dict(_sheets(workbook_xml))[replaced]
        sheet_name = _target(workbook, _relationships(source.read(rels))[rid][1])
    else:
        sheet_name = free("worksheets", "sheet")
    moves: dict[str, str] = {"xl/worksheets/sheet1.xml": sheet_name}
    for part in side.summary:
        if part.startswith("xl/drawings/drawing"):
            moves[part] = free("drawings", "drawing")
        elif part.startswith("xl/charts/chart"):
            moves[part] = free("charts", "chart")
    for old, new in moves.items():
        if old != "xl/worksheets/sheet1.xml":
            added[new] = side.summary[old]
        rels_old = _rels_name(old)
        if rels_old in side.summary:
            added[_rels_name(new)] = _retarget(side.summary[rels_old], moves)
    if replaced is None:
        added[sheet_name] = sheet_xml
    else:
        changed[sheet_name] = sheet_xml
        if _rels_name(sheet_name) in added and _rels_name(sheet_name) in source.namelist():
            changed[_rels_name(sheet_name)] = added.pop(_rels_name(sheet_name))
    new_parts = [p for p in added if not p.endswith(".rels")]
    if replaced is None:
        rid = _new_id(source.read(rels))
        changed[workbook] = _with_sheet(workbook_xml, name, rid)
        changed[rels] = _with_relationship(source.read(rels), rid, "/" + sheet_name)
    changed["[Content_Types].xml"] = _with_types(source.read("[Content_Types].xml"), new_parts)


def _retarget(rels: bytes, moves: dict[str, str]) -> bytes:
    """A side relationships part with its targets at their new names (absolute)."""
    for old, new in moves.items():
        relative = "../" + old.split("/", 1)[1].split("/", 1)[0] + "/" + posixpath.basename(old)
        rels = rels.replace(f'Target="{relative}"'.encode(), f'Target="/{new}"'.encode())
    return rels


def _new_id(rels: bytes) -> str:
    used = set(_relationships(rels))
    k = 1
    while f"rIdBatchops{k}" in used:
        k += 1
    return f"rIdBatchops{k}"


def _with_sheet(workbook: bytes, name: str, rid: str) -> bytes:
    """The workbook part with one more sheet at the end."""
    close = re.search(rb"</([A-Za-z_][\w.-]*:)?sheets>", workbook)
    if close is None:
        raise ValueError("the workbook lists no sheets")
    prefix = close[1] or b""
    ids = [int(i) for i in re.findall(rb'\bsheetId\s*=\s*"(\d+)"', workbook)]
    bound = re.search(rb'xmlns:([\w.-]+)\s*=\s*"' + re.escape(_R.encode()) + b'"', workbook)
    r = bound[1] if bound else b"r"
    declare = b"" if bound else b' xmlns:r="' + _R.encode() + b'"'
    tag = b'<%ssheet name="%s" sheetId="%d"%s %s:id="%s"/>' % (
        prefix,
        escape(name, quote=True).encode("utf-8"),
        max([0, *ids]) + 1,
        declare,
        r,
        rid.encode(),
    )
    return workbook[: close.start()] + tag + workbook[close.start() :]


def _with_relationship(rels: bytes, rid: str, target: str) -> bytes:
    close = rels.rfind(b"</")
    tag = f'<Relationship Id="{rid}" Type="{_WORKSHEET}" Target="{target}"/>'.encode()
    return rels[:close] + tag + rels[close:]


def _with_types(types: bytes, parts: list[str]) -> bytes:
    close = types.rfind(b"</")
    overrides = b"".join(
        f'<Override PartName="/{part}" ContentType="{_TYPES[part.split("/")[1]]}"/>'.encode()
        for part in parts
    )
    return types[:close] + overrides + types[close:]


def _write_package(
    temp: Path,
    source: zipfile.ZipFile,
    part: str,
    plan: SheetPlan,
    changed: dict[str, bytes],
    added: dict[str, bytes],
) -> None:
    """The report's package: the input's parts in their order, changed where told, the
    results sheet rewritten as a stream, then the added parts."""
    with zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as out:
        for info in source.infolist():
            name = info.filename
            if name == part:
                # Zip64 only where the part may pass 2 GB: some readers balk at it otherwise.
                large = info.file_size > _ZIP64_FROM
                with source.open(info) as stream, out.open(name, "w", force_zip64=large) as sink:
                    rewrite_sheet(stream, sink.write, plan)
            elif name in changed:
                out.writestr(name, changed.pop(name))
            else:
                out.writestr(info, source.read(info))
        for name, data in {**changed, **added}.items():
            out.writestr(name, data)

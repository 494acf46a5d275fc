"""The report written into the input's own workbook: the styles merged by position, the
sheet rewritten row by row, and the plain report when the package cannot be followed."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path

import openpyxl

from batchops.model import RESULT_COLUMNS, Outcome, OutcomeTable, Status
from batchops.report.book import write_book_report
from batchops.report.book_sheet import SheetPlan, rewrite_sheet, text_cell
from batchops.report.book_styles import merge_styles
from batchops.report.writing import write_report
from batchops.sheet import load_batch

ORIGINAL = (
    b'<styleSheet xmlns="x"><numFmts count="1"><numFmt numFmtId="170" formatCode="0.0"/>'
    b'</numFmts><fonts count="1"><font><sz val="11"/></font></fonts><fills count="2"><fill>'
    b'<patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    b'</fills><borders count="1"><border/></borders><cellXfs count="2"><xf fontId="0"/>'
    b'<xf numFmtId="170" fontId="0"/></cellXfs></styleSheet>'
)
OURS = (
    b'<styleSheet xmlns="x"><numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy"/>'
    b'</numFmts><fonts count="2"><font><sz val="11"/></font><font><b/></font></fonts>'
    b'<fills count="1"><fill><patternFill patternType="none"/></fill></fills><borders '
    b'count="1"><border/></borders><cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" '
    b'borderId="0" xfId="0"/><xf numFmtId="164" fontId="1" fillId="0" borderId="0" xfId="0"/>'
    b"</cellXfs></styleSheet>"
)


def test_our_formats_are_appended_and_the_inputs_keep_their_numbers() -> None:
    merged, base = merge_styles(ORIGINAL, OURS)
    text = merged.decode()
    assert base == 2
    assert text.startswith('<styleSheet xmlns="x"><numFmts count="2"><numFmt numFmtId="170"')
    assert '<numFmt numFmtId="171" formatCode="yyyy"/>' in text  # 164 was free of ours only
    assert '<fonts count="3">' in text and '<cellXfs count="4">' in text
    assert '<xf numFmtId="171" fontId="2" fillId="2" borderId="1" xfId="0"/>' in text
    assert text.index('<xf numFmtId="170" fontId="0"/>') < text.index('numFmtId="171" fontId')


def _plan(rows: dict[int, int]) -> SheetPlan:
    return SheetPlan(
        header_row=1,
        first=2,
        width=2,
        rows=rows,
        header=lambda row: f'<c r="C{row}"/><c r="D{row}"/>'.encode(),
        cells=lambda index, row: text_cell(f"C{row}", f"r{index}").encode(),
        widths=[10.0, 12.0],
    )


def test_rows_get_their_cells_in_column_order_and_missing_rows_are_made() -> None:
    sheet = (
        b'<worksheet><dimension ref="A1:B3"/><sheetData><row r="1" spans="1:2"><c r="A1"/>'
        b'</row><row r="2"><c r="A2"/><c r="C2" s="4"/><c r="F2"><v>1</v></c></row>'
        b'<row r="5"><c r="A5"/></row></sheetData><mergeCells count="0"/></worksheet>'
    )
    out = io.BytesIO()
    rewrite_sheet(io.BytesIO(sheet), out.write, _plan({2: 0, 3: 1}))
    text = out.getvalue().decode()
    assert '<dimension ref="A1:D3"/>' in text
    assert '<cols><col min="3" max="3" width="10.0" customWidth="1"/>' in text
    assert '<row r="1"><c r="A1"/><c r="C1"/><c r="D1"/></row>' in text
    # The stale C2 goes, F2 (right of the results) stays after them.
    assert '<row r="2"><c r="A2"/><c r="C2" t="inlineStr"><is><t>r0</t></is></c><c r="F2">' in text
    assert '<row r="3"><c r="C3" t="inlineStr"><is><t>r1</t></is></c></row><row r="5">' in text
    assert text.endswith('</sheetData><mergeCells count="0"/></worksheet>')


def test_text_cells_stay_text_whatever_they_say() -> None:
    cell = text_cell("A1", " <b>&_x0041_\x01 ")
    assert cell == (
        '<c r="A1" t="inlineStr"><is><t xml:space="preserve"> &lt;b&gt;&amp;_x005F_x0041_'
        "_x0001_ </t></is></c>"
    )


def _outcomes(n: int) -> OutcomeTable:
    outcomes = OutcomeTable(n)
    for i in range(n):
        outcomes.set(i, Outcome(Status.SUCCESS, 0, "ok", 1, 200, "r", 1.0, "2025-01-01T12:00:00"))
    return outcomes


def test_the_report_is_the_input_workbook(tmp_path: Path) -> None:
    src = tmp_path / "in.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["sn", "operator", "action_type", "action_message"])
    sheet.append(["S1", "admin", "SUSPEND", "x"])
    book.create_sheet("notes")["A1"] = "kept"
    book.save(src)
    batch = load_batch(src)
    assert batch.book is not None
    write_book_report(
        tmp_path / "out.xlsx", batch.book, [2], list(RESULT_COLUMNS), _outcomes(1), None
    )
    out = openpyxl.load_workbook(tmp_path / "out.xlsx")
    assert out.sheetnames == ["Sheet", "notes"]
    assert out["Sheet"]["E2"].value == "success" and out["notes"]["A1"].value == "kept"


def test_a_package_it_cannot_follow_gets_the_plain_report(tmp_path: Path) -> None:
    src = tmp_path / "in.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["sn", "operator", "action_type", "action_message"])
    sheet.append(["S1", "admin", "SUSPEND", "x"])
    book.save(src)
    batch = load_batch(src)
    # The styles part gone: the workbook cannot take the report's formats.
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(broken, "w") as new:
        for info in old.infolist():
            if info.filename != "xl/styles.xml":
                new.writestr(info, old.read(info))
    assert batch.book is not None
    moved = dataclasses.replace(batch.book, path=broken)
    path = write_report(batch.frame, _outcomes(1), tmp_path / "r.xlsx", book=moved)
    assert openpyxl.load_workbook(path).worksheets[0]["E2"].value == "success"

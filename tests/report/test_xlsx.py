"""Tests of batchops.report.xlsx: the XLSX Results sheet (text stays text, numbers,
header, widths, colours, row order) and the plain Summary sheet beside it."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from batchops.model import RESULT_COLUMNS, Outcome, OutcomeTable, Status
from batchops.report.writing import result_column_names, write_report

from ..report_sheets import DANGEROUS, make_frame, make_outcomes, ok, sheet_rows


def test_xlsx_never_holds_a_formula(tmp_path: Path) -> None:
    """Inputs and messages that look like formulas are written as plain text cells."""
    frame = make_frame({"sn": [f"NO{i}" for i in range(len(DANGEROUS))], "note": DANGEROUS})
    outcomes = make_outcomes([ok(message=text) for text in DANGEROUS])
    path = write_report(frame, outcomes, tmp_path / "r.xlsx")

    book = openpyxl.load_workbook(path)
    cells = [cell for row in book["Results"].iter_rows() for cell in row]
    book.close()
    assert all(cell.data_type != "f" for cell in cells)
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml
    rows = sheet_rows(path)
    notes = [row[1] for row in rows[1:]]
    messages = [row[2 + RESULT_COLUMNS.index("message")] for row in rows[1:]]
    assert notes == DANGEROUS
    assert messages == DANGEROUS


def test_xlsx_keeps_input_text_exactly(tmp_path: Path) -> None:
    """Leading zeros, Chinese, number- and date-like text and URLs stay the same strings."""
    texts = ["007", "批量终止工单", "  spaced  ", "1e5", "TRUE", "2024-01-01", "http://example.com"]
    frame = make_frame({"sn": texts, "empty": [""] * len(texts)})
    path = write_report(frame, make_outcomes([ok()] * len(texts)), tmp_path / "r.xlsx")

    book = openpyxl.load_workbook(path)
    sheet = book["Results"]
    column_a = [sheet.cell(row=r, column=1) for r in range(2, len(texts) + 2)]
    column_b = [sheet.cell(row=r, column=2).value for r in range(2, len(texts) + 2)]
    book.close()
    assert [cell.value for cell in column_a] == texts
    assert all(cell.data_type == "s" and cell.hyperlink is None for cell in column_a)
    assert column_b == [None] * len(texts)


def test_xlsx_result_numbers_are_numbers_and_blanks_are_blank(tmp_path: Path) -> None:
    """code, attempts, http_status and elapsed_ms are numeric cells; missing ones are empty."""
    frame = make_frame({"sn": ["A", "B"]})
    outcomes = make_outcomes(
        [
            ok(code=3900001, attempts=3, http_status=200, elapsed_ms=45.67),
            Outcome(Status.UNKNOWN, code=None, attempts=2, http_status=None, elapsed_ms=None),
        ]
    )
    rows = sheet_rows(write_report(frame, outcomes, tmp_path / "r.xlsx"))
    header = rows[0]
    first = dict(zip(header, rows[1], strict=True))
    second = dict(zip(header, rows[2], strict=True))
    assert first["code"] == 3900001 and isinstance(first["code"], int)
    assert first["attempts"] == 3
    assert first["http_status"] == 200
    assert first["elapsed_ms"] == pytest.approx(45.7)
    assert (second["code"], second["http_status"], second["elapsed_ms"]) == (None, None, None)
    assert second["attempts"] == 2
    assert second["status"] == "unknown"


def test_xlsx_header_is_bold_frozen_filtered_and_renamed(tmp_path: Path) -> None:
    """Row 1 holds the input headers then the result headers, bold, frozen, with a filter."""
    frame = make_frame({"sn": ["A", "B", "C"], "message": ["m1", "m2", "m3"]})
    path = write_report(frame, make_outcomes([ok(), None, ok()]), tmp_path / "r.xlsx")

    book = openpyxl.load_workbook(path)
    sheet = book["Results"]
    header = [cell.value for cell in sheet[1]]
    bold = [cell.font.b for cell in sheet[1]]
    widths = [sheet.column_dimensions[cell.column_letter].width for cell in sheet[1]]
    freeze, filter_ref = sheet.freeze_panes, sheet.auto_filter.ref
    book.close()
    assert header == ["sn", "message", *result_column_names(["sn", "message"])]
    assert "result_message" in header
    assert all(bold)
    assert freeze == "A2"
    assert filter_ref == "A1:J4"
    assert all(w is not None and 6 <= w <= 61 for w in widths)


def test_xlsx_column_widths_follow_content(tmp_path: Path) -> None:
    """A column of long Chinese text is wider than a short one, and no column is absurd."""
    frame = make_frame(
        {"sn": ["1"], "reason": ["因为业务调整需要批量终止这些工单"], "x": ["y" * 500]}
    )
    path = write_report(frame, make_outcomes([ok()]), tmp_path / "r.xlsx")

    book = openpyxl.load_workbook(path)
    dims = book["Results"].column_dimensions
    widths = {letter: dims[letter].width for letter in "ABC"}
    book.close()
    assert widths["B"] > widths["A"]
    assert widths["B"] >= 32  # 16 wide characters
    assert widths["C"] <= 61  # capped at 60 characters; xlsxwriter rounds to whole pixels


def test_xlsx_status_cells_are_coloured_by_status(tmp_path: Path) -> None:
    """success green, failed red, unknown yellow, invalid orange, skipped grey, pending blue."""
    statuses = [Status.SUCCESS, Status.FAILED, Status.UNKNOWN, Status.INVALID, Status.SKIPPED]
    frame = make_frame({"sn": [s.value for s in statuses] + ["pending"]})
    outcomes = make_outcomes([Outcome(s) for s in statuses] + [None])
    path = write_report(frame, outcomes, tmp_path / "r.xlsx")

    book = openpyxl.load_workbook(path)
    sheet = book["Results"]
    column = 2 + RESULT_COLUMNS.index("status")
    fills = {}
    for row in range(2, len(statuses) + 3):
        cell = sheet.cell(row=row, column=column)
        fills[cell.value] = cell.fill.fgColor.rgb if cell.fill.fill_type == "solid" else None
    book.close()
    assert fills["success"] == "FFC6EFCE"
    assert fills["failed"] == "FFFFC7CE"
    assert fills["unknown"] == "FFFFEB9C"
    assert fills["invalid"] == "FFFCD5B4"
    assert fills["skipped"] == "FFD9D9D9"
    assert fills["pending"] == "FFDDEBF7"


def test_xlsx_summary_sheet_holds_key_value_rows(tmp_path: Path) -> None:
    """A summary becomes a second sheet "Summary": key/value rows, numbers as numbers, and
    a mapping as a titled block of indented rows."""
    frame = make_frame({"sn": ["A"]})
    summary = {
        "total_rows": np.int64(1),
        "elapsed_s": 1.5,
        "stopped_reason": "=cmd",
        "report": None,
        "counts": {"success": 1, "失败": 0},
    }
    path = write_report(frame, make_outcomes([ok()]), tmp_path / "r.xlsx", summary=summary)

    book = openpyxl.load_workbook(path)
    names = book.sheetnames
    book.close()
    assert names == ["Results", "Summary"]
    assert sheet_rows(path, "Summary") == [
        ["total_rows", 1],
        ["elapsed_s", 1.5],
        ["stopped_reason", "=cmd"],
        ["report", None],
        ["counts", None],
        ["  success", 1],
        ["  失败", 0],
    ]


def test_xlsx_without_summary_has_one_sheet(tmp_path: Path) -> None:
    """No summary, no Summary sheet."""
    path = write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), tmp_path / "r.xlsx")
    book = openpyxl.load_workbook(path)
    names = book.sheetnames
    book.close()
    assert names == ["Results"]


def test_xlsx_rows_follow_input_order_even_with_a_shuffled_index(tmp_path: Path) -> None:
    """Row i of the frame (by position, not index label) sits beside outcome i."""
    frame = make_frame({"sn": ["first", "second", "third"]})
    frame.index = pd.Index([7, 3, 5])
    outcomes = make_outcomes([ok(request_id=f"r{i}") for i in range(3)])
    rows = sheet_rows(write_report(frame, outcomes, tmp_path / "r.xlsx"))
    request_id = 1 + RESULT_COLUMNS.index("request_id")
    assert [(row[0], row[request_id]) for row in rows[1:]] == [
        ("first", "r0"),
        ("second", "r1"),
        ("third", "r2"),
    ]


def test_xlsx_with_no_rows_or_no_input_columns(tmp_path: Path) -> None:
    """An empty input gives a header-only sheet; an input without columns still gets rows."""
    empty = write_report(make_frame({"sn": []}), OutcomeTable(0), tmp_path / "empty.xlsx")
    assert sheet_rows(empty) == [["sn", *RESULT_COLUMNS]]

    bare = write_report(
        pd.DataFrame(index=range(2)), make_outcomes([ok(), None]), tmp_path / "b.xlsx"
    )
    rows = sheet_rows(bare)
    assert rows[0] == list(RESULT_COLUMNS)
    assert [row[0] for row in rows[1:]] == ["success", "pending"]


def test_infinite_elapsed_time_does_not_stop_the_report(tmp_path: Path) -> None:
    """A non-finite number is left blank in XLSX rather than raising or becoming a formula."""
    outcomes = make_outcomes([ok(elapsed_ms=float("inf"))])
    path = write_report(make_frame({"sn": ["A"]}), outcomes, tmp_path / "r.xlsx")
    assert sheet_rows(path)[1][1 + RESULT_COLUMNS.index("elapsed_ms")] is None

"""Tests of batchops.report: the CSV/XLSX results report, its safety and its atomic write."""

from __future__ import annotations

import csv
import errno
import io
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest
import xlsxwriter
from hypothesis import given, settings
from hypothesis import strategies as st
from xlsxwriter.exceptions import FileCreateError

from batchops import report
from batchops.errors import InputError
from batchops.model import RESULT_COLUMNS, Outcome, OutcomeTable, Status
from batchops.report import default_report_path, result_column_names, write_report

from .helpers import write_csv

DANGEROUS = ["=1+1", "@SUM(A1)", "+cmd", "-2+3", "\tTAB", "\rCR", '=HYPERLINK("http://x","y")']


def make_frame(columns: dict[str, Sequence[str]]) -> pd.DataFrame:
    """An input frame as the loader hands it over: every cell text."""
    return pd.DataFrame({name: list(values) for name, values in columns.items()}, dtype="str")


def make_outcomes(outcomes: Sequence[Outcome | None]) -> OutcomeTable:
    """An outcome table; ``None`` leaves that row pending."""
    table = OutcomeTable(len(outcomes))
    for index, outcome in enumerate(outcomes):
        if outcome is not None:
            table.set(index, outcome)
    return table


def ok(**fields: Any) -> Outcome:
    """A typical successful outcome, fields overridable."""
    values: dict[str, Any] = {
        "status": Status.SUCCESS,
        "code": 0,
        "message": "success",
        "attempts": 1,
        "http_status": 200,
        "request_id": "req-1",
        "elapsed_ms": 12.3,
        "finished_at": "2024-05-01T10:00:00+08:00",
    }
    values.update(fields)
    return Outcome(**values)


def read_csv_rows(path: Path) -> list[list[str]]:
    """The CSV as Excel-like readers see it (BOM stripped), every cell text."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def sheet_rows(path: Path, sheet: str = "Results") -> list[list[object]]:
    """Cell values of one sheet as Excel shows them, opened with openpyxl.

    OOXML writes control characters as ``_xHHHH_`` (``\\r`` is ``_x000D_``); Excel decodes
    them, openpyxl does not, so decode here.
    """
    book = openpyxl.load_workbook(path)
    try:
        return [
            [ooxml_unescape(v) if isinstance(v, str) else v for v in row]
            for row in book[sheet].iter_rows(values_only=True)
        ]
    finally:
        book.close()


def ooxml_unescape(text: str) -> str:
    """Undo the ``_xHHHH_`` escapes of OOXML strings."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m[1], 16)), text)


# --- result_column_names ---------------------------------------------------------------


def test_result_column_names_without_collision_are_the_model_names() -> None:
    """Input columns that share no name with a result column leave the names as they are."""
    assert result_column_names(["sn", "operator", "action"]) == list(RESULT_COLUMNS)


def test_result_column_names_rename_on_trimmed_case_insensitive_collision() -> None:
    """`` Message `` and ``STATUS`` in the input push the result columns to ``result_*``."""
    names = result_column_names(["sn", " Message ", "STATUS"])
    assert names[RESULT_COLUMNS.index("message")] == "result_message"
    assert names[RESULT_COLUMNS.index("status")] == "result_status"
    assert names[RESULT_COLUMNS.index("code")] == "code"


def test_result_column_names_stay_distinct_when_result_name_is_taken_too() -> None:
    """An input with ``message`` and ``result_message`` still gets a distinct result header."""
    inputs = ["message", "result_message"]
    names = result_column_names(inputs)
    headers = [h.casefold() for h in inputs + names]
    assert len(set(headers)) == len(headers)
    assert names[RESULT_COLUMNS.index("message")] == "result_result_message"


# --- default_report_path ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("tickets.csv", "tickets.report.csv"),
        ("x.xlsx", "x.report.xlsx"),
        ("old.xls", "old.report.xlsx"),
        ("data.CSV", "data.report.csv"),
        ("list.txt", "list.report.csv"),
        ("tickets.report.csv", "tickets.report-2.csv"),
        ("tickets.report-2.csv", "tickets.report-3.csv"),
        ("T.REPORT.CSV", "T.report-2.csv"),
        ("x.report.xls", "x.report.xlsx"),
        ("my.tickets.v2.csv", "my.tickets.v2.report.csv"),
    ],
)
def test_default_report_path(tmp_path: Path, source: str, expected: str) -> None:
    """The report sits beside the input, in its format, and never on the input itself."""
    assert default_report_path(tmp_path / source) == tmp_path / expected


@settings(max_examples=200)
@given(
    stem=st.text(
        st.characters(exclude_categories=("Cs",), exclude_characters="/\x00"),
        min_size=1,
        max_size=30,
    ),
    suffix=st.sampled_from([".csv", ".xlsx", ".CSV", ".report.csv", ".Report.XLSX", ""]),
)
def test_default_report_path_never_names_the_input(stem: str, suffix: str) -> None:
    """Whatever the input is called, the default report is another file beside it."""
    source = Path("/data") / f"{stem}{suffix}"
    target = default_report_path(source)
    assert target.parent == source.parent
    assert target.name.casefold() != source.name.casefold()
    assert target.suffix in (".csv", ".xlsx")


# --- XLSX -------------------------------------------------------------------------------


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


def test_xlsx_too_many_rows_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More rows than a sheet holds fails before writing anything, pointing at CSV."""
    monkeypatch.setattr(report, "XLSX_MAX_ROWS", 2)
    frame = make_frame({"sn": ["A", "B", "C"]})
    with pytest.raises(InputError, match=r"\.csv"):
        write_report(frame, make_outcomes([None] * 3), tmp_path / "r.xlsx")
    assert list(tmp_path.iterdir()) == []


# --- CSV --------------------------------------------------------------------------------


def test_csv_starts_with_bom_and_round_trips_chinese(tmp_path: Path) -> None:
    """UTF-8 with BOM, so Excel shows Chinese; reading it back gives the same text."""
    frame = make_frame({"工单号": ["NO001"], "备注": ["批量终止，原因：测试"]})
    path = write_report(frame, make_outcomes([ok(message="单据已终止")]), tmp_path / "r.csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = read_csv_rows(path)
    assert rows[0][:2] == ["工单号", "备注"]
    assert rows[1][:2] == ["NO001", "批量终止，原因：测试"]
    assert rows[1][2 + RESULT_COLUMNS.index("message")] == "单据已终止"


def test_csv_guards_cells_a_spreadsheet_would_run(tmp_path: Path) -> None:
    """Input and result text starting with = + - @ tab or CR gets a leading quote; others not."""
    safe = ["a=b", "NO-1", "", "'already"]
    frame = make_frame(
        {"sn": [f"NO{i}" for i in range(len(DANGEROUS + safe))], "note": DANGEROUS + safe}
    )
    outcomes = make_outcomes([ok(message=text) for text in DANGEROUS + safe])
    rows = read_csv_rows(write_report(frame, outcomes, tmp_path / "r.csv"))
    notes = [row[1] for row in rows[1:]]
    messages = [row[2 + RESULT_COLUMNS.index("message")] for row in rows[1:]]
    expected = ["'" + text for text in DANGEROUS] + safe
    assert notes == expected
    assert messages == expected


def test_csv_guards_a_dangerous_header(tmp_path: Path) -> None:
    """A header is a cell too: ``=cmd`` as a column name is written ``'=cmd``."""
    rows = read_csv_rows(
        write_report(make_frame({"=cmd": ["x"]}), make_outcomes([ok()]), tmp_path / "r.csv")
    )
    assert rows[0][0] == "'=cmd"


def test_csv_renames_colliding_result_columns(tmp_path: Path) -> None:
    """An input ``message`` column keeps its name and text; the outcome goes to result_message."""
    frame = make_frame({"sn": ["A"], "message": ["please stop"]})
    rows = read_csv_rows(
        write_report(frame, make_outcomes([ok(message="done")]), tmp_path / "r.csv")
    )
    header = rows[0]
    assert header == ["sn", "message", *result_column_names(["sn", "message"])]
    record = dict(zip(header, rows[1], strict=True))
    assert record["message"] == "please stop"
    assert record["result_message"] == "done"


def test_csv_keeps_row_order_and_count(tmp_path: Path) -> None:
    """One line per input row, in input position order, outcome i beside row i."""
    count = 1000
    frame = make_frame({"sn": [f"NO{i:05d}" for i in range(count)]})
    frame.index = pd.Index(range(count))[::-1]  # labels must not reorder anything
    outcomes = make_outcomes([ok(request_id=f"r{i}") for i in range(count)])
    rows = read_csv_rows(write_report(frame, outcomes, tmp_path / "r.csv"))
    request_id = 1 + RESULT_COLUMNS.index("request_id")
    assert len(rows) == count + 1
    assert [(row[0], row[request_id]) for row in rows[1:]] == [
        (f"NO{i:05d}", f"r{i}") for i in range(count)
    ]


def test_csv_numbers_and_blanks(tmp_path: Path) -> None:
    """Numeric results are plain numbers; missing ones and pending rows are empty cells."""
    frame = make_frame({"sn": ["A", "B"]})
    outcomes = make_outcomes([ok(code=3900001, elapsed_ms=5.0), None])
    rows = read_csv_rows(write_report(frame, outcomes, tmp_path / "r.csv"))
    first = dict(zip(rows[0], rows[1], strict=True))
    second = dict(zip(rows[0], rows[2], strict=True))
    assert (first["code"], first["attempts"], first["http_status"]) == ("3900001", "1", "200")
    assert first["elapsed_ms"] == "5.0"
    assert second == {
        "sn": "B",
        "status": "pending",
        "code": "",
        "message": "",
        "attempts": "0",
        "http_status": "",
        "request_id": "",
        "elapsed_ms": "",
        "finished_at": "",
    }


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12),
        min_size=1,
        max_size=5,
    )
)
def test_csv_round_trips_any_text(texts: list[str]) -> None:
    """Any cell text comes back unchanged once the guard quote is taken off; rows stay rows."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = write_report(
            make_frame({"t": texts}), make_outcomes([None] * len(texts)), Path(folder) / "r.csv"
        )
        rows = read_csv_rows(path)
    assert len(rows) == len(texts) + 1
    back = [row[0] for row in rows[1:]]
    unguarded = [
        cell[1:] if original.startswith(report.CSV_FORMULA_PREFIXES) else cell
        for cell, original in zip(back, texts, strict=True)
    ]
    assert unguarded == texts


# --- format choice and arguments --------------------------------------------------------


def test_unknown_suffix_needs_an_explicit_format(tmp_path: Path) -> None:
    """``r.txt`` alone is refused with a hint; with fmt="csv" it is written as CSV."""
    frame, outcomes = make_frame({"sn": ["A"]}), make_outcomes([ok()])
    with pytest.raises(InputError, match=r"\*\.csv or \*\.xlsx"):
        write_report(frame, outcomes, tmp_path / "r.txt")
    path = write_report(frame, outcomes, tmp_path / "r.txt", fmt="csv")
    assert read_csv_rows(path)[1][0] == "A"


def test_explicit_xlsx_format_wins_over_suffix(tmp_path: Path) -> None:
    """fmt="xlsx" writes a workbook whatever the file is called."""
    path = write_report(
        make_frame({"sn": ["A"]}), make_outcomes([ok()]), tmp_path / "r.out", fmt="xlsx"
    )
    assert zipfile.is_zipfile(path)


def test_outcomes_must_match_the_rows() -> None:
    """A frame and an outcome table of different lengths is a programming error."""
    with pytest.raises(ValueError, match="2 input rows but 1 outcomes"):
        write_report(make_frame({"sn": ["A", "B"]}), OutcomeTable(1), Path("unused.csv"))


# --- atomic write and errors ------------------------------------------------------------


def test_csv_failure_mid_write_keeps_the_old_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that dies halfway leaves the previous report byte for byte and no temp file."""
    target = tmp_path / "r.csv"
    frame = make_frame({"sn": ["A", "B"]})
    write_report(frame, make_outcomes([ok(), ok()]), target)
    before = target.read_bytes()

    real_writer = csv.writer

    class BrokenWriter:
        """Writes the header and half a row, then fails."""

        def __init__(self, handle: io.TextIOBase, **kwargs: Any) -> None:
            self._inner = real_writer(handle, **kwargs)
            self._handle = handle

        def writerow(self, row: Sequence[str]) -> None:
            self._inner.writerow(row)

        def writerows(self, rows: Any) -> None:
            self._handle.write("A,")
            raise RuntimeError("disk on fire")

    monkeypatch.setattr(report.csv, "writer", BrokenWriter)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_report(frame, make_outcomes([None, None]), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]


def test_xlsx_failure_on_close_is_an_input_error_and_keeps_the_old_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk while saving the workbook: InputError, old report intact, no temp file."""
    target = tmp_path / "r.xlsx"
    frame = make_frame({"sn": ["A"]})
    write_report(frame, make_outcomes([ok()]), target)
    before = target.read_bytes()
    real_close = xlsxwriter.Workbook.close

    def full_disk_close(self: Any) -> None:
        real_close(self)
        raise FileCreateError(OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(xlsxwriter.Workbook, "close", full_disk_close)
    with pytest.raises(InputError, match="disk is full") as caught:
        write_report(frame, make_outcomes([None]), target)
    assert str(target) in str(caught.value)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.xlsx"]


def test_xlsx_failure_mid_rows_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while writing rows removes the half-written workbook and propagates."""

    def broken_rows(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(report, "_write_xlsx_rows", broken_rows)
    with pytest.raises(RuntimeError, match="boom"):
        write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), tmp_path / "r.xlsx")
    assert list(tmp_path.iterdir()) == []


def test_replace_refused_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The target locked by another program (EACCES on rename) gives a one-line InputError."""
    target = tmp_path / "r.csv"
    target.write_text("old report")

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(report.os, "replace", refuse)
    with pytest.raises(InputError) as caught:
        write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), target)
    message = str(caught.value)
    assert str(target) in message and "permission denied" in message and "\n" not in message
    assert target.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]


def test_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    """A report in a folder that does not exist names the path and says to create it."""
    target = tmp_path / "nope" / "r.csv"
    with pytest.raises(InputError) as caught:
        write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), target)
    message = str(caught.value)
    assert str(target) in message and "does not exist" in message and "\n" not in message


def test_target_that_is_a_folder_is_an_input_error(tmp_path: Path) -> None:
    """A report path naming a folder fails cleanly and leaves no temp file."""
    (tmp_path / "r.csv").mkdir()
    with pytest.raises(InputError, match="folder"):
        write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), tmp_path / "r.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores modes")
def test_read_only_folder_is_an_input_error(tmp_path: Path) -> None:
    """A folder the user may not write in gives an InputError that says so."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(InputError, match="permission denied"):
            write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), folder / "r.csv")
    finally:
        folder.chmod(0o700)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_report_gets_ordinary_file_permissions(tmp_path: Path) -> None:
    """A new report is readable like any file the user creates; a rewrite keeps its mode."""
    umask = os.umask(0o022)
    os.umask(umask)
    fresh = write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), tmp_path / "r.csv")
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask

    fresh.chmod(0o640)
    write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), fresh)
    assert fresh.stat().st_mode & 0o777 == 0o640


def test_xlsx_workbook_switches_off_conversions_and_streams_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workbook refuses string conversions and streams rows (constant_memory).

    Cells go through ``write_string`` today, which never converts; the options are the
    safety net should a later change use ``write``/``write_row``, and constant_memory is
    what keeps memory flat for a million rows.
    """
    seen: list[dict[str, object]] = []
    real_init = xlsxwriter.Workbook.__init__

    def spy_init(self: Any, filename: Any, options: dict[str, object] | None = None) -> None:
        seen.append(dict(options or {}))
        real_init(self, filename, options)

    monkeypatch.setattr(xlsxwriter.Workbook, "__init__", spy_init)
    write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), tmp_path / "r.xlsx")
    assert seen and all(
        seen[0].get(key) is value
        for key, value in [
            ("strings_to_formulas", False),
            ("strings_to_numbers", False),
            ("strings_to_urls", False),
            ("constant_memory", True),
        ]
    )


def test_duplicate_and_non_text_headers_are_kept(tmp_path: Path) -> None:
    """Two input columns with one name, or a numeric header, come out as they went in."""
    frame = pd.DataFrame([["a", "b", "c"]], columns=["sn", "sn", 7], dtype="str")
    outcomes = make_outcomes([ok()])
    csv_rows = read_csv_rows(write_report(frame, outcomes, tmp_path / "r.csv"))
    xlsx_rows = sheet_rows(write_report(frame, outcomes, tmp_path / "r.xlsx"))
    for rows in (csv_rows, xlsx_rows):
        assert rows[0][:4] == ["sn", "sn", "7", "status"]
        assert rows[1][:4] == ["a", "b", "c", "success"]


def test_infinite_elapsed_time_does_not_stop_the_report(tmp_path: Path) -> None:
    """A non-finite number is left blank in XLSX rather than raising or becoming a formula."""
    outcomes = make_outcomes([ok(elapsed_ms=float("inf"))])
    path = write_report(make_frame({"sn": ["A"]}), outcomes, tmp_path / "r.xlsx")
    assert sheet_rows(path)[1][1 + RESULT_COLUMNS.index("elapsed_ms")] is None


# --- awkward XLSX cells ------------------------------------------------------------------

AWKWARD = [
    "plain",
    "",
    " leading",
    "trailing ",
    "a&b<c>d\"e'",
    "line\nbreak",
    "ends\n",
    "\x00\x01control\x1f",
    "_x0041_ looks escaped",
    "批量终止工单",
    "😀 emoji",
    "=1+1",
    "\u3000ideographic space",
    "y" * 40_000,
    "😀" * 20_000,
]


def cut_to_cell(text: str) -> str:
    """``text`` as Excel keeps it: at most 32,767 UTF-16 units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > 32_767:
            return text[:index]
    return text


def test_awkward_xlsx_cells_come_back_as_written(tmp_path: Path) -> None:
    """Blanks, entities, line breaks, control characters, ``_xHHHH_`` look-alikes, wide and
    over-long texts come back from the XLSX as written (cut at Excel's cell limit)."""
    frame = make_frame({"sn": AWKWARD, "note": list(reversed(AWKWARD))})
    outcomes = make_outcomes([ok(request_id=text) for text in AWKWARD])
    rows = sheet_rows(write_report(frame, outcomes, tmp_path / "a.xlsx"))
    want = [cut_to_cell(text) or None for text in AWKWARD]
    assert [row[0] for row in rows[1:]] == want
    assert [row[1] for row in rows[1:]] == list(reversed(want))
    request_id = rows[0].index("request_id")
    assert [row[request_id] for row in rows[1:]] == want


def test_xlsx_text_that_looks_like_rich_text_xml_stays_text(tmp_path: Path) -> None:
    """xlsxwriter writes a cell "<r>…</r>" as raw XML (losing or injecting text); not here."""
    texts = ["<r>x</r>", "<r><t>injected</t></r>"]
    path = write_report(make_frame({"sn": texts}), make_outcomes([ok(), ok()]), tmp_path / "r.xlsx")
    assert [row[0] for row in sheet_rows(path)[1:]] == texts


@settings(max_examples=200, deadline=None)
@given(
    ids=st.lists(
        st.one_of(
            st.text(max_size=50),
            st.uuids().map(str),
            st.uuids().map(lambda u: u.hex),
            st.just("abc\x00"),
        ),
        min_size=1,
        max_size=12,
    ),
    start=st.integers(0, 12),
)
def test_outcome_table_gives_back_every_request_id(ids: list[str], start: int) -> None:
    """Request ids are kept as fixed-width bytes where they fit; any text comes back as
    it went in, row by row and a chunk at a time."""
    table = OutcomeTable(len(ids))
    for index, request_id in enumerate(ids):
        table.set(index, Outcome(Status.SUCCESS, 0, "success", 1, 200, "old-id-" + "x" * 40))
        table.set(index, Outcome(Status.SUCCESS, 0, "success", 1, 200, request_id))
    assert [table.get(i).request_id for i in range(len(ids))] == ids
    assert table.columns()["request_id"] == ids
    assert table.columns(start, len(ids))["request_id"] == ids[start:]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_reports_longer_than_one_chunk_keep_every_row_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """Reports are formatted a chunk of rows at a time: across chunk borders every row
    keeps its own input cells and its own outcome."""
    monkeypatch.setattr(report, "_CSV_CHUNK_ROWS", 3)
    rows = 10
    frame = make_frame({"sn": [f"NO{i}" for i in range(rows)]})
    outcomes = make_outcomes(
        [ok(request_id=f"req-{i}", attempts=i + 1, elapsed_ms=float(i)) for i in range(rows)]
    )
    path = write_report(frame, outcomes, tmp_path / f"r{suffix}")
    table = read_csv_rows(path) if suffix == ".csv" else sheet_rows(path)
    at = [table[0].index(name) for name in ("sn", "request_id", "attempts")]
    got = [[str(r[i]) for i in at] for r in table[1:]]
    assert got == [[f"NO{i}", f"req-{i}", str(i + 1)] for i in range(rows)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_while_writing_leaves_no_temp_file(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGTERM or Ctrl-C while the report's temp file is being written: the temp file is
    removed, the report is not half-written, exit 130 with a line on stderr."""
    rows = [[f"SIG{i:06d}", "admin", "SUSPEND", "x" * 40] for i in range(60_000)]
    src = write_csv(tmp_path / "big.csv", rows)
    out = tmp_path / "big.plan.xlsx"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BK_", "BATCHOPS_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchops", "plan", str(src), "-o", str(out)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".big.plan.xlsx.*.tmp")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the report was never written"
            time.sleep(0.002)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert f"interrupted by {sig.name} while writing {out}" in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv"]

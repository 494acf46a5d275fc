"""Tests of batchops.sheet.hidden and of what loading does with its answer: the rows a
person hid in an XLSX sheet (by hand, with an autofilter, in a collapsed group) are found
in real workbooks, left out of the batch, and sent with ``include_hidden``."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchops.checkpoint.resume import row_keys
from batchops.model import RESULT_COLUMNS, OutcomeTable, Status
from batchops.sheet import hidden as hidden_module
from batchops.sheet.hidden import hidden_rows
from batchops.sheet.loading import load_batch
from batchops.sheet.selection import (
    LEFT_OUT_MESSAGE,
    left_out_note,
    mark_invalid,
    mark_left_out,
    select_rows,
)

from ..helpers import HEADER, PROPERTY, input_error, xlsx_with_hidden_rows

ROWS = [[f"H{i}", "admin", "SUSPEND", "m"] for i in range(8)]


def test_rows_hidden_by_hand_are_found(tmp_path: Path) -> None:
    """Rows hidden with Excel's 'Hide' are named by their sheet row numbers (header 1)."""
    src = xlsx_with_hidden_rows(tmp_path / "t.xlsx", ROWS, hidden=[1, 4, 7])
    assert hidden_rows(src, "Tickets") == {3, 6, 9}


def test_rows_filtered_out_by_an_autofilter_are_found(tmp_path: Path) -> None:
    """An autofilter that keeps only SUSPEND rows: every other row is hidden."""
    rows = [[f"F{i}", "admin", ("SUSPEND", "TERMINATE", "WITHDRAW")[i % 3], "m"] for i in range(9)]
    src = xlsx_with_hidden_rows(tmp_path / "t.xlsx", rows, keep_only=(2, ["SUSPEND"]))
    assert openpyxl.load_workbook(src)["Tickets"].auto_filter.ref
    assert hidden_rows(src, "Tickets") == {i + 2 for i in range(9) if i % 3}


def test_rows_in_a_collapsed_group_are_found(tmp_path: Path) -> None:
    """Rows folded away in a collapsed outline group are hidden rows too."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in [["sn", "operator", "action_type", "action_message"], *ROWS]:
        sheet.append(row)
    sheet.row_dimensions.group(4, 6, outline_level=1, hidden=True)
    book.save(tmp_path / "t.xlsx")
    assert hidden_rows(tmp_path / "t.xlsx", sheet.title) == {4, 5, 6}


def test_the_named_sheet_is_read_and_no_other(tmp_path: Path) -> None:
    """Each sheet's own hidden rows, found by the sheet's name (escaped in the workbook's
    XML: '&', Chinese) through the workbook's relationships."""
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    first.title = "R&D 运维"
    second = book.create_sheet("Other <2>")
    for sheet in (first, second):
        for row in ROWS:
            sheet.append(row)
    first.row_dimensions[2].hidden = True
    second.row_dimensions[5].hidden = True
    second.row_dimensions[6].hidden = True
    book.move_sheet(second, offset=-1)  # the second part is now listed first
    book.save(tmp_path / "t.xlsx")
    assert hidden_rows(tmp_path / "t.xlsx", "R&D 运维") == {2}
    assert hidden_rows(tmp_path / "t.xlsx", "Other <2>") == {5, 6}


def test_hidden_columns_and_filter_buttons_are_no_hidden_rows(tmp_path: Path) -> None:
    """A hidden column and an autofilter whose button is hidden hide no row."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in ROWS:
        sheet.append(row)
    sheet.column_dimensions["B"].hidden = True
    sheet.auto_filter.ref = "A1:D8"
    sheet.auto_filter.add_filter_column(0, ["H1"], blank=False)
    sheet.auto_filter.filterColumn[0].hiddenButton = True
    book.save(tmp_path / "t.xlsx")
    assert b"hidden" in zipfile.ZipFile(tmp_path / "t.xlsx").read("xl/worksheets/sheet1.xml")
    assert hidden_rows(tmp_path / "t.xlsx", sheet.title) == frozenset()


_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="{workbook}" Type="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships/officeDocument"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<x:workbook xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<x:sheets><x:sheet name="Data" sheetId="1" r:id="rId7"/></x:sheets></x:workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId7" Target="{sheet}" Type="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships/worksheet"/></Relationships>'
)
#: Written the way a few tools write it: prefixed tags, single quotes, rows without their
#: number (``r`` is optional), ``true`` for 1, a ``>`` inside an attribute value.
_SHEET = (
    "<?xml version='1.0' encoding='UTF-8'?>"
    "<x:worksheet xmlns:x='http://schemas.openxmlformats.org/spreadsheetml/2006/main'>"
    "<x:cols><x:col min='2' max='2' hidden='1'/></x:cols><x:sheetData>"
    "<x:row><x:c t='inlineStr'><x:is><x:t>sn hidden=\"1\"</x:t></x:is></x:c></x:row>"
    "<x:row hidden = 'true' x:note='a>b'/>"
    "<x:row r='5'/>"
    "<x:row spans='1:4'   hidden='1'/>"
    "<x:row hidden='0'/><x:row hidden=\"false\"/>"
    '<x:row r=\'12\' hidden="1" spans=""></x:row><x:row r="" hidden=\'\'/>'
    "</x:sheetData></x:worksheet>"
)


def _package(path: Path, *, workbook: str, sheet_target: str, sheet_part: str) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("_rels/.rels", _ROOT_RELS.format(workbook=workbook))
        folder, name = workbook.lstrip("/").rsplit("/", 1)
        book.writestr(workbook.lstrip("/"), _WORKBOOK)
        book.writestr(f"{folder}/_rels/{name}.rels", _WORKBOOK_RELS.format(sheet=sheet_target))
        book.writestr(sheet_part, _SHEET)
    return path


def test_a_sheet_written_by_another_tool(tmp_path: Path) -> None:
    """Prefixed tags, single quotes, rows without their number, ``true``, a part found
    through an absolute target and a workbook that is not xl/workbook.xml, part names in
    another letter case: rows 2, 6 and 12 are hidden, nothing else (not the column, not
    the cell text that reads like an attribute)."""
    src = _package(
        tmp_path / "t.xlsx",
        workbook="/book/main.xml",
        sheet_target="/Book/Sheets/Data.XML",
        sheet_part="book/sheets/data.xml",
    )
    assert hidden_rows(src, "Data") == {2, 6, 12}


@PROPERTY
@given(chunk=st.integers(min_value=1, max_value=80))
def test_a_tag_cut_by_a_chunk_boundary_is_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Property: whatever the chunk size, the part is read as a whole would be."""
    src = _package(
        tmp_path / "t.xlsx",
        workbook="xl/workbook.xml",
        sheet_target="worksheets/sheet1.xml",
        sheet_part="xl/worksheets/sheet1.xml",
    )
    monkeypatch.setattr(hidden_module, "_CHUNK_BYTES", chunk)
    assert hidden_rows(src, "Data") == {2, 6, 12}


def test_a_workbook_without_zip_parts_has_no_hidden_rows(tmp_path: Path) -> None:
    """An .xls file (no ZIP package) cannot say: none found, nothing refused."""
    src = tmp_path / "t.xls"
    src.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    assert hidden_rows(src, "Sheet1") == frozenset()


def test_a_workbook_that_cannot_be_followed_is_refused_naming_include_hidden(
    tmp_path: Path,
) -> None:
    """When the relationships are missing, batchops cannot tell which rows are hidden:
    one line that says so and names --include-hidden, not a guess that none are."""
    src = tmp_path / "t.xlsx"
    with zipfile.ZipFile(src, "w") as book:
        book.writestr("xl/workbook.xml", _WORKBOOK)
    input_error(lambda: hidden_rows(src, "Data"), "cannot tell which rows", "--include-hidden")


# --------------------------------------------------------------------------- loading


def test_hidden_rows_are_left_out_of_the_batch(tmp_path: Path) -> None:
    """Hidden rows are neither sent nor invalid (even with a blank operator); with
    include_hidden they are rows like any other."""
    rows = [list(r) for r in ROWS[:4]]
    rows[1][1] = ""  # hidden and invalid: left out all the same
    src = xlsx_with_hidden_rows(tmp_path / "t.xlsx", rows, hidden=[1, 2])
    batch = load_batch(src)
    assert batch.left_out is not None and batch.left_out.tolist() == [False, True, True, False]
    assert batch.valid_indices().tolist() == [0, 3]
    assert batch.invalid.tolist() == ["", "", "", ""]
    assert batch.left_out_count() == 2

    every = load_batch(src, include_hidden=True)
    assert every.left_out is None and every.left_out_count() == 0
    assert every.valid_indices().tolist() == [0, 2, 3]
    assert "operator is blank" in every.invalid[1]


def test_a_visible_row_does_not_repeat_a_hidden_one(tmp_path: Path) -> None:
    """A hidden row takes no part in the checks across rows: the visible SUSPEND after a
    hidden SUSPEND of the same ticket is sent (with include_hidden it repeats it), and a
    hidden spelling of an sn in other letter case refuses nothing."""
    rows = [
        ["R1", "admin", "SUSPEND", "m"],
        ["R1", "admin", "SUSPEND", "m"],
        ["r2", "admin", "SUSPEND", "m"],
        ["R2", "admin", "SUSPEND", "m"],
    ]
    src = xlsx_with_hidden_rows(tmp_path / "t.xlsx", rows, hidden=[0, 2])
    assert load_batch(src).invalid.tolist() == ["", "", "", ""]
    every = load_batch(src, include_hidden=True)
    assert "repeats SUSPEND of row 2" in every.invalid[1]
    assert "other letter case" in every.invalid[3]


def test_rows_are_the_same_whether_hidden_ones_are_left_out(tmp_path: Path) -> None:
    """What each row would send (and so the checkpoint's record of it) does not depend on
    include_hidden; only which rows go does. A left-out row carries no note."""
    rows = [
        ["\u200bH1", "admin", "UNSUSPEND", ""],
        ["H2 ", "\u200badmin", "SUSPEND", "m\u200b"],
        ["H3", "admin", "WITHDRAW", ""],
    ]
    src = xlsx_with_hidden_rows(tmp_path / "t.xlsx", rows, hidden=[0, 1])
    left, every = load_batch(src), load_batch(src, include_hidden=True)
    for name in ("sn", "operator", "action", "message"):
        assert getattr(left, name).tolist() == getattr(every, name).tolist()
    assert row_keys(left) == row_keys(every)
    assert left.fingerprint == every.fingerprint
    assert left.notes == {} and set(every.notes) == {0, 1}


def test_a_csv_has_no_hidden_rows(tmp_path: Path) -> None:
    """The option changes nothing for a CSV file."""
    src = tmp_path / "t.csv"
    src.write_text("sn,operator,action_type,action_message\nC1,admin,SUSPEND,m\n")
    assert load_batch(src).left_out is None


# --------------------------------------------------------------------------- selection


def test_left_out_rows_are_skipped_never_sent(tmp_path: Path) -> None:
    """A left-out row is 'skipped' with a message saying why; it is not among the rows a
    run may send, and the summary's line counts it."""
    src = xlsx_with_hidden_rows(tmp_path / "t.xlsx", ROWS[:3], hidden=[1])
    batch = load_batch(src)
    outcomes = OutcomeTable(len(batch))
    mark_invalid(batch, outcomes)
    assert mark_left_out(batch, outcomes) == 1
    assert outcomes.get(1).status is Status.SKIPPED
    assert outcomes.get(1).message == LEFT_OUT_MESSAGE
    assert "--include-hidden" in LEFT_OUT_MESSAGE
    assert select_rows(batch, outcomes, None).tolist() == [True, False, True]
    assert outcomes.counts()[Status.SKIPPED.value] == 1
    assert left_out_note(1).startswith("1 row hidden or filtered out in the sheet: left out")
    assert left_out_note(0) == ""


def test_a_hidden_row_of_a_report_fed_back_keeps_a_done_result(tmp_path: Path) -> None:
    """In a report fed back, a hidden row that was done keeps its result (success stays
    success); one that was not done is skipped, not sent, and not counted failed."""
    header = [*HEADER, *RESULT_COLUMNS]
    done = ["D1", "admin", "SUSPEND", "m", "success", "0", "ok", "1", "200", "r", "5", "t"]
    failed = ["F1", "admin", "SUSPEND", "m", "failed", "3900004", "no", "1", "200", "r", "5", "t"]
    again = ["A1", "admin", "SUSPEND", "m", "failed", "3900004", "no", "1", "200", "r", "5", "t"]
    src = xlsx_with_hidden_rows(
        tmp_path / "t.xlsx", [done, failed, again], hidden=[0, 1], header=header
    )
    batch = load_batch(src)
    outcomes = OutcomeTable(len(batch))
    mark_invalid(batch, outcomes)
    mark_left_out(batch, outcomes)
    sendable = select_rows(batch, outcomes, ("failed",))
    assert sendable.tolist() == [False, False, True]
    assert outcomes.get(0).status is Status.SUCCESS and outcomes.get(0).message == "ok"
    assert outcomes.get(1).status is Status.SKIPPED
    assert outcomes.counts()[Status.FAILED.value] == 0

"""Tests of batchops.sheet.loading: a file in, a Batch out (its rows, row numbers and fingerprint),
and the errors of a file with nothing to send."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xlsxwriter

from batchops.model import Action, Row
from batchops.sheet.loading import load_batch

from ..helpers import HEADER, input_error, load_one, write_csv, write_xlsx


def test_valid_rows_are_stripped_and_become_rows(tmp_path: Path) -> None:
    """Cells are stripped for sending, echoed untouched in the frame, and Row objects come out."""
    batch = load_one(
        tmp_path,
        [[" NO1 ", " alice ", " SUSPEND ", " why "], ["NO2", "bob", "TERMINATE", "done"]],
    )
    assert len(batch) == 2
    assert batch.fmt == "csv" and batch.sheet is None and batch.encoding == "utf-8"
    assert list(batch.frame.columns) == HEADER
    assert batch.frame.iloc[0].tolist() == [" NO1 ", " alice ", " SUSPEND ", " why "]
    assert batch.columns == {f: f for f in HEADER}
    assert batch.row(0) == Row(0, "NO1", "alice", Action.SUSPEND, "why")
    assert batch.row(1) == Row(1, "NO2", "bob", Action.TERMINATE, "done")
    assert batch.invalid_count() == 0
    assert batch.valid_indices().tolist() == [0, 1]
    assert batch.valid_indices().dtype == np.int64
    assert batch.previous_status is None
    for array in (batch.sn, batch.operator, batch.action, batch.message, batch.invalid):
        assert array.dtype == object and len(array) == 2


def test_row_raises_for_invalid_row(tmp_path: Path) -> None:
    """Batch.row refuses an invalid row, naming its spreadsheet row and the reason."""
    batch = load_one(tmp_path, [["NO1", "", "SUSPEND", "x"], ["NO2", "a", "SUSPEND", "x"]])
    with pytest.raises(ValueError, match=r"row 2 is invalid: operator is blank"):
        batch.row(0)
    assert batch.valid_indices().tolist() == [1]
    assert batch.invalid_count() == 1


def test_fingerprint_is_stable_across_loads_and_formats(tmp_path: Path) -> None:
    """The same content gives the same fingerprint, whatever the encoding or file format."""
    rows = [["S1", "张三", "SUSPEND", "m"], ["007", "u", "UNSUSPEND", ""]]
    utf8 = load_batch(write_csv(tmp_path / "a.csv", rows))
    again = load_batch(tmp_path / "a.csv")
    gb = load_batch(write_csv(tmp_path / "b.csv", rows, encoding="gb18030"))
    xlsx = load_batch(write_xlsx(tmp_path / "c.xlsx", rows))
    assert len(utf8.fingerprint) == 64 and int(utf8.fingerprint, 16) >= 0
    assert utf8.fingerprint == again.fingerprint == gb.fingerprint == xlsx.fingerprint


@pytest.mark.parametrize(
    ("header", "rows"),
    [
        (HEADER, [["S1", "u", "SUSPEND", "m!"], ["S2", "u", "UNSUSPEND", ""]]),  # one cell
        (HEADER, [["S2", "u", "UNSUSPEND", ""], ["S1", "u", "SUSPEND", "m"]]),  # order
        (
            ["sn", "operator", "action_type", "备注"],
            [["S1", "u", "SUSPEND", "m"], ["S2", "u", "UNSUSPEND", ""]],
        ),
        (HEADER, [["S1", "u", "SUSPEND", "m"], ["S2", "u", "UNSUSPEND", " "]]),  # blank
        (HEADER, [["S1", "uS", "USPEND", "m"], ["S2", "u", "UNSUSPEND", ""]]),  # boundary
        (HEADER, [["S1", "u", "SUSPEND", "m"]]),  # a row fewer
    ],
)
def test_fingerprint_is_sensitive(tmp_path: Path, header: list[str], rows: list[list[str]]) -> None:
    """Any change of header, cell, cell boundary or row order changes the fingerprint."""
    base = load_one(tmp_path, [["S1", "u", "SUSPEND", "m"], ["S2", "u", "UNSUSPEND", ""]])
    other = load_batch(write_csv(tmp_path / "other.csv", rows, header=header))
    assert other.fingerprint != base.fingerprint


@pytest.mark.parametrize(
    "content", ["", "\n\n", "sn,operator,action_type\n", "sn,operator,action_type\n,,\n , ,\n"]
)
def test_no_data_rows_csv(tmp_path: Path, content: str) -> None:
    """An empty file or a header without data rows is refused."""
    path = tmp_path / "empty.csv"
    path.write_text(content, encoding="utf-8")
    text = input_error(lambda: load_batch(path), str(path))
    assert "is empty" in text or "no data rows" in text


def test_no_data_rows_xlsx(tmp_path: Path) -> None:
    """A workbook with only a header, or an empty sheet, is refused."""
    header_only = write_xlsx(tmp_path / "h.xlsx", [])
    input_error(lambda: load_batch(header_only), "has a header but no data rows")
    empty = tmp_path / "e.xlsx"
    book = xlsxwriter.Workbook(str(empty))
    book.add_worksheet("Blank")
    book.close()
    input_error(lambda: load_batch(empty), "(sheet 'Blank') is empty")


def test_two_hundred_thousand_rows(tmp_path: Path) -> None:
    """A 200k-row CSV loads, validates and flags a repeat deep inside it."""
    n = 200_000
    lines = ["sn,operator,action_type,action_message,extra"]
    lines += [f"NO{i:08d},user{i % 97},SUSPEND,reason {i},x" for i in range(n - 1)]
    lines.append(f"NO{n - 2:08d},user,SUSPEND,again,x")
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    batch = load_batch(path)
    assert len(batch) == n
    assert batch.sn[0] == "NO00000000" and batch.sn[-1] == f"NO{n - 2:08d}"
    assert batch.invalid_count() == 1
    assert batch.invalid[-1].startswith(f"repeats SUSPEND of row {n} for the same sn")
    assert batch.valid_indices().size == n - 1


def test_row_numbers_count_blank_lines_like_a_spreadsheet(tmp_path: Path) -> None:
    """Blank lines before the header and between rows are dropped from the batch but
    counted in row numbers, so 'row 7' in a message is row 7 in Excel."""
    path = tmp_path / "blank.csv"
    path.write_text(
        "\n"  # row 1
        "sn,operator,action_type,action_message\n"  # row 2: the header
        "A1,op,SUSPEND,x\n"  # row 3
        "\n"  # row 4
        "\n"  # row 5
        'B1,op,SUSPEND,"two\nlines"\n'  # row 6 (one row, two lines)
        ",,,\n"  # row 7: blank cells
        "A1,op,SUSPEND,again\n",  # row 8: repeats row 3
        encoding="utf-8",
    )
    batch = load_batch(path)
    assert batch.sn.tolist() == ["A1", "B1", "A1"]
    assert [batch.row_number(i) for i in range(len(batch))] == [3, 6, 8]
    assert "repeats SUSPEND of row 3" in batch.invalid[2]
    with pytest.raises(ValueError, match="row 8 is invalid"):
        batch.row(2)


def test_row_numbers_in_a_workbook_count_empty_rows_above_and_between(tmp_path: Path) -> None:
    """A table that starts on row 3 of its sheet, with an empty row inside: the rows are
    numbered as Excel numbers them."""
    path = tmp_path / "offset.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Sheet1")
    sheet.write_row(2, 1, HEADER)  # B3
    sheet.write_row(3, 1, ["A1", "op", "SUSPEND", "x"])  # row 4
    sheet.write_row(5, 1, ["A1", "op", "SUSPEND", "y"])  # row 6, after an empty row 5
    book.close()
    batch = load_batch(path)
    assert [batch.row_number(i) for i in range(len(batch))] == [4, 6]
    assert "repeats SUSPEND of row 4" in batch.invalid[1]

"""Tests of batchops.report.csv_file: the CSV report, its BOM, and the formula guard."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchops.model import RESULT_COLUMNS
from batchops.report import csv_file as report_csv
from batchops.report.writing import result_column_names, write_report

from ..report_sheets import DANGEROUS, make_frame, make_outcomes, ok, read_csv_rows, sheet_rows


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
        cell[1:] if original.startswith(report_csv.CSV_FORMULA_PREFIXES) else cell
        for cell, original in zip(back, texts, strict=True)
    ]
    assert unguarded == texts


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_reports_longer_than_one_chunk_keep_every_row_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """Reports are formatted a chunk of rows at a time: across chunk borders every row
    keeps its own input cells and its own outcome."""
    monkeypatch.setattr(report_csv, "_CSV_CHUNK_ROWS", 3)
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

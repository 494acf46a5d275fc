"""Tests of batchops.report.columns: the result columns' names beside an input's own."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from batchops.i18n import using
from batchops.model import RESULT_COLUMNS, RESULT_HEADERS
from batchops.report.writing import result_column_names, write_report

from ..report_sheets import make_outcomes, ok, read_csv_rows, sheet_rows


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


def test_duplicate_and_non_text_headers_are_kept(tmp_path: Path) -> None:
    """Two input columns with one name, or a numeric header, come out as they went in."""
    frame = pd.DataFrame([["a", "b", "c"]], columns=["sn", "sn", 7], dtype="str")
    outcomes = make_outcomes([ok()])
    csv_rows = read_csv_rows(write_report(frame, outcomes, tmp_path / "r.csv"))
    xlsx_rows = sheet_rows(write_report(frame, outcomes, tmp_path / "r.xlsx"))
    for rows in (csv_rows, xlsx_rows):
        assert rows[0][:4] == ["sn", "sn", "7", "status"]
        assert rows[1][:4] == ["a", "b", "c", "success"]


def test_result_headers_in_chinese_and_their_clash_prefix() -> None:
    """Under zh the result headers are Chinese (the table in batchops.model), and one an
    input column already has gets 结果_ before it; English stays the program's names."""
    with using("zh"):
        names = result_column_names(["工单号", "状态", "结果_状态"])
    assert names[0] == "结果_结果_状态"
    assert names[1:] == list(RESULT_HEADERS["zh"][1:])
    assert result_column_names(["sn"], "en") == list(RESULT_COLUMNS)
    assert len(set(RESULT_HEADERS["zh"])) == len(RESULT_COLUMNS)

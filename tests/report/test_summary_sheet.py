"""The XLSX report people look at: date cells, colours, wrapped messages, the results
sheet's name and the Summary sheet with its chart, read back with openpyxl."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from batchops.model import RESULT_COLUMNS, Outcome, OutcomeTable, Status
from batchops.report.writing import DATE_FORMAT, SummarySheet, excel_times, write_report
from batchops.run.summary import format_duration, summary_sheet, top_failures

from ..report_sheets import make_frame, make_outcomes, ok, read_csv_rows


def results_sheet(path: Path, name: str = "Results") -> Any:
    return openpyxl.load_workbook(path)[name]


def column(name: str) -> int:
    """1-based column of a result column after one input column."""
    return 2 + RESULT_COLUMNS.index(name)


def test_finished_at_is_a_date_cell_in_xlsx_and_text_in_csv(tmp_path: Path) -> None:
    """finished_at shows as a local date and time; a text that is no time stays text."""
    frame = make_frame({"sn": ["A", "B", "C"]})
    outcomes = make_outcomes(
        [ok(finished_at="2024-05-01T10:00:07+08:00"), ok(finished_at="not a time"), None]
    )
    sheet = results_sheet(write_report(frame, outcomes, tmp_path / "r.xlsx"))
    first, second, third = (sheet.cell(row, column("finished_at")) for row in (2, 3, 4))
    assert first.value == datetime(2024, 5, 1, 10, 0, 7)
    assert first.is_date and first.number_format == DATE_FORMAT
    assert (second.value, second.data_type) == ("not a time", "s")
    assert third.value is None
    rows = read_csv_rows(write_report(frame, outcomes, tmp_path / "r.csv"))
    assert rows[1][column("finished_at") - 1] == "2024-05-01T10:00:07+08:00"


def test_excel_times_convert_each_distinct_text_once() -> None:
    """Blank stays None; same text, same number."""
    times = excel_times(["2024-01-01T00:00:00", "", "2024-01-01T00:00:00", "x"])
    assert times[0] == times[2] == pytest.approx(45292.0)
    assert times[1] is None and times[3] == "x"


def test_long_messages_wrap_and_short_ones_do_not(tmp_path: Path) -> None:
    """A message longer than its column (or with a line break) wraps; a short one does not."""
    frame = make_frame({"sn": ["A", "B", "C", "D"]})
    messages = ["short", "x" * 300, "抱歉，" * 40, "two\nlines"]
    outcomes = make_outcomes([ok(message=m) for m in messages])
    sheet = results_sheet(write_report(frame, outcomes, tmp_path / "r.xlsx"))
    wrapped = [bool(sheet.cell(r, column("message")).alignment.wrap_text) for r in range(2, 6)]
    assert wrapped == [False, True, True, True]
    assert sheet.cell(3, column("message")).value == "x" * 300


def test_results_sheet_keeps_the_input_sheet_name(tmp_path: Path) -> None:
    """The input's sheet name names the results (so --sheet reads the report back); a
    name Excel refuses falls back to Results, and Summary never clashes."""
    frame = make_frame({"sn": ["A"]})
    named = write_report(frame, make_outcomes([ok()]), tmp_path / "a.xlsx", sheet_name="工单")
    assert openpyxl.load_workbook(named).sheetnames == ["工单"]
    odd = write_report(frame, make_outcomes([ok()]), tmp_path / "b.xlsx", sheet_name="a/b")
    assert openpyxl.load_workbook(odd).sheetnames == ["Results"]
    clash = write_report(
        frame, make_outcomes([ok()]), tmp_path / "c.xlsx", sheet_name="Summary", summary={"x": 1}
    )
    assert openpyxl.load_workbook(clash).sheetnames == ["Summary", "Summary (batchops)"]


def _run_summary() -> SummarySheet:
    outcomes = OutcomeTable(5)
    outcomes.set(0, ok())
    outcomes.set(1, Outcome(Status.FAILED, 3900004, "抱歉，单据已关闭，无法操作"))
    outcomes.set(2, Outcome(Status.FAILED, 3900004, "抱歉，单据已关闭，无法操作"))
    outcomes.set(3, Outcome(Status.UNKNOWN, None, "lost"))
    failures = top_failures(outcomes, ["S0", "S1", "S2", "S3", "S4"])
    assert failures == [("[3900004] 抱歉，单据已关闭，无法操作", 2, "S1"), ("lost", 1, "S3")]
    return summary_sheet(
        outcomes.counts(),
        {"SUSPEND": {"success": 1, "failed": 2}, "TERMINATE": {"unknown": 1, "pending": 1}},
        failures,
        {"target": "https://paas.example.com", "profile": "prod", "app_code": "ops"},
        125.0,
        "",
        1,
        ended=datetime(2026, 11, 28, 10, 2, 5),
    )


def test_summary_sheet_has_times_table_chart_and_reasons(tmp_path: Path) -> None:
    """Started/ended as date cells, duration and rate, target and profile, the action ×
    status table with a native stacked column chart, reasons with an example sn."""
    frame = make_frame({"sn": ["S0", "S1", "S2", "S3", "S4"]})
    path = write_report(
        frame, make_outcomes([ok()] * 5), tmp_path / "r.xlsx", summary=_run_summary()
    )
    sheet = openpyxl.load_workbook(path)["Summary"]
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    facts = {r[0]: r[1] for r in cells if r[0]}
    assert facts["started"] == datetime(2026, 11, 28, 10, 0, 0)
    assert facts["ended"] == datetime(2026, 11, 28, 10, 2, 5)
    assert sheet["B3"].number_format == DATE_FORMAT
    assert facts["duration (s)"] == 125.0 and facts["duration"] == "2 min 05 s"
    assert facts["rate (rows/s)"] == pytest.approx(0.0)  # 4 of 5 rows done in 125 s
    assert (facts["target"], facts["profile"]) == ("https://paas.example.com", "prod")

    at = next(i for i, r in enumerate(cells) if r[0] == "action")
    header = [c for c in cells[at] if c is not None]
    assert header == ["action", "success", "failed", "unknown", "pending", "total"]
    assert cells[at + 1][:6] == ["SUSPEND", 1, 2, 0, 0, 3]
    assert cells[at + 2][:6] == ["TERMINATE", 0, 0, 1, 1, 2]
    assert cells[at + 3][:6] == ["total", 1, 2, 1, 1, 5]

    reasons = next(i for i, r in enumerate(cells) if r[0] == "reason")
    assert cells[reasons][:3] == ["reason", "rows", "example sn"]
    assert cells[reasons + 1][:3] == ["[3900004] 抱歉，单据已关闭，无法操作", 2, "S1"]
    assert cells[reasons + 2][:3] == ["lost", 1, "S3"]
    assert facts["  app_code"] == "ops"

    (chart,) = sheet._charts
    assert chart.tagname == "barChart" and chart.grouping == "stacked"
    assert len(chart.series) == 4


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(4.24, "4.2 s"), (59.9, "59.9 s"), (187, "3 min 07 s"), (3725, "1 h 02 min")],
)
def test_durations_read_as_people_say_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_plain_tables_keep_every_cell_as_text(tmp_path: Path) -> None:
    """select's and undo's sheets: every sheet, awkward texts included, comes back as
    written; every cell is text."""
    from batchops.report.writing import Table, write_tables

    from ..report_sheets import AWKWARD, cut_to_cell, sheet_rows

    rows = [[text, str(i), "", "=1+1"] for i, text in enumerate(AWKWARD)]
    tables = [Table("One", ["a", "b", "c", "d"], rows), Table("Two", ["x"], [["y"], ["z"]])]
    path = write_tables(tmp_path / "tables.xlsx", tables)
    for table in tables:
        want = [list(table.header)] + [[cut_to_cell(c) or None for c in row] for row in table.rows]
        assert sheet_rows(path, table.name) == want
    book = openpyxl.load_workbook(path)
    assert all(c.data_type == "s" for row in book["One"].iter_rows() for c in row if c.value)


def test_failure_reasons_are_grouped_by_cause_without_the_operator_or_sn() -> None:
    """One cause for three operators, one row's own message kept as it is."""
    outcomes = OutcomeTable(5)
    for i, who in enumerate(["lisi", "wangwu", "zhaoliu"]):
        outcomes.set(i, Outcome(Status.FAILED, 3900001, f"抱歉，{who}无权操作该单据"))
    outcomes.set(3, Outcome(Status.FAILED, 3900001, "单据 NO4 不存在"))
    outcomes.set(4, Outcome(Status.FAILED, 3900002, "单据 NO5 不存在"))
    operators = ["lisi", "wangwu", "zhaoliu", "admin", "admin"]
    failures = top_failures(outcomes, ["NO1", "NO2", "NO3", "NO4", "NO5"], operators=operators)
    assert failures == [
        ("[3900001] 抱歉，<operator>无权操作该单据", 3, "NO1"),
        ("[3900001] 单据 NO4 不存在", 1, "NO4"),
        ("[3900002] 单据 NO5 不存在", 1, "NO5"),
    ]


def test_the_summary_sheet_prints_one_page_wide(tmp_path: Path) -> None:
    path = write_report(
        make_frame({"sn": ["S0", "S1", "S2", "S3", "S4"]}),
        make_outcomes([ok()] * 5),
        tmp_path / "r.xlsx",
        summary=_run_summary(),
    )
    sheet = openpyxl.load_workbook(path)["Summary"]
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    assert sheet.page_setup.fitToWidth in (None, 1) and sheet.page_setup.fitToHeight == 0
    assert sheet.page_setup.orientation == "landscape"

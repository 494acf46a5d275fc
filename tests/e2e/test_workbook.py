"""A handed-over workbook comes back as it came, plus results (issue 23), end to end
through the CLI against the stand-in: its other sheets (hidden too), styles, widths,
dates, dropdown, frozen pane and merged cells are kept; a merged reason is every covered
row's reason; a total row under the tickets is left out; failure reasons are grouped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
from openpyxl.styles import Border, Font, PatternFill, Side
from openpyxl.worksheet.datavalidation import DataValidation

from batchops.model import RESULT_COLUMNS
from batchops.sandbox import SandboxThread

from ..helpers import FAST, creds_env, run_cli, running, seed

HEADER = ["sn", "operator", "action_type", "原因", "创建日期"]


def _handover(path: Path, rows: list[tuple[str, str]]) -> Path:
    """The workbook an ops team hands over: styled header, widths, a date column, a
    dropdown fed by a hidden 字典 sheet, an instructions sheet, a frozen pane, a reason
    merged over rows 2–4, and a 合计 row under the tickets."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "单据"
    sheet.append(HEADER)
    for i, (sn, operator) in enumerate(rows):
        reason = "节前冻结" if i == 0 else ("系统升级" if i >= 3 else None)
        sheet.append([sn, operator, "SUSPEND", reason, dt.datetime(2024, 5, i + 1, 9, 30)])
    sheet.append(["合计", None, None, None, None])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="FFFF00")
        cell.border = Border(bottom=Side(style="thin"))
    for row in range(2, len(rows) + 2):
        sheet.cell(row, 5).number_format = "yyyy-mm-dd hh:mm"
    sheet.column_dimensions["A"].width = 25
    sheet.column_dimensions["D"].width = 30
    dropdown = DataValidation(type="list", formula1="字典!$A$1:$A$4", allow_blank=True)
    sheet.add_data_validation(dropdown)
    dropdown.add("C2:C200")
    sheet.freeze_panes = "B2"
    sheet.merge_cells("D2:D4")
    words = book.create_sheet("字典")
    for action in ("SUSPEND", "UNSUSPEND", "WITHDRAW", "TERMINATE"):
        words.append([action])
    words.sheet_state = "hidden"
    book.create_sheet("填写说明")["A1"] = "每行一个单据；原因可合并单元格"
    book.save(path)
    return path


def test_the_workbook_comes_back_whole_with_results(itsm: SandboxThread, tmp_path: Path) -> None:
    sns = [f"WB{i}" for i in range(6)]
    seed(itsm, *[running(sn) for sn in sns])
    # Two rows name operators who are not the tickets' processors: one cause, two rows.
    rows = [(sn, "admin") for sn in sns[:4]] + [(sns[4], "lisi"), (sns[5], "wangwu")]
    src = _handover(tmp_path / "freeze.xlsx", rows)

    out = run_cli(["run", str(src), *FAST], creds_env(itsm.url))

    assert out.exit_code == 1, out.stdout + out.stderr  # the two wrong operators fail
    sent = {op.sn: op.message for op in itsm.state.stats.operations}
    assert set(sent) == set(sns)  # the 合计 row is no ticket: never sent
    assert [sent[sn] for sn in sns[:3]] == ["节前冻结"] * 3  # the merged reason, all three
    assert sent[sns[3]] == "系统升级"

    report = openpyxl.load_workbook(tmp_path / "freeze.report.xlsx")
    assert report.sheetnames == ["单据", "字典", "填写说明", "Summary"]
    assert [s.sheet_state for s in report.worksheets] == ["visible", "hidden", "visible", "visible"]
    assert report["填写说明"]["A1"].value == "每行一个单据；原因可合并单元格"
    sheet = report["单据"]
    header = [c.value for c in sheet[1]]
    assert header == [*HEADER, *RESULT_COLUMNS]
    assert sheet["A1"].font.b and sheet["A1"].fill.fgColor.rgb == "00FFFF00"
    assert sheet["A1"].border.bottom.style == "thin"
    assert sheet.column_dimensions["A"].width == 25 and sheet.column_dimensions["D"].width == 30
    assert (
        isinstance(sheet["E2"].value, dt.datetime)
        and sheet["E2"].number_format == "yyyy-mm-dd hh:mm"
    )
    assert [str(r) for r in sheet.merged_cells.ranges] == ["D2:D4"]
    assert sheet.freeze_panes == "B2"
    validations = sheet.data_validations.dataValidation
    assert [(v.type, v.formula1, str(v.sqref)) for v in validations] == [
        ("list", "字典!$A$1:$A$4", "C2:C200")
    ]
    status = {sheet.cell(r, 1).value: sheet.cell(r, 6).value for r in range(2, 9)}
    assert status == {
        **dict.fromkeys(sns[:4], "success"),
        sns[4]: "failed",
        sns[5]: "failed",
        "合计": "skipped",
    }
    assert isinstance(sheet.cell(2, 13).value, dt.datetime)  # finished_at is a date cell

    summary = report["Summary"]
    assert summary.sheet_properties.pageSetUpPr.fitToPage
    assert summary.page_setup.fitToWidth in (None, 1) and summary.page_setup.fitToHeight == 0
    assert summary.page_setup.orientation == "landscape"
    cells = [[c.value for c in row] for row in summary.iter_rows()]
    grouped = [row for row in cells if row[0] and "无权操作该单据" in str(row[0])]
    assert len(grouped) == 1 and grouped[0][1] == 2, cells
    assert "<operator>" in str(grouped[0][0])


def test_a_report_fed_back_keeps_the_workbook_and_one_summary(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """The report run again (its failed rows fixed in place) is the same workbook again:
    its result columns are overwritten, not added twice, and its Summary replaced."""
    sns = [f"WF{i}" for i in range(6)]
    seed(itsm, *[running(sn) for sn in sns])
    rows = [(sn, "admin") for sn in sns[:4]] + [(sns[4], "lisi"), (sns[5], "wangwu")]
    src = _handover(tmp_path / "freeze.xlsx", rows)
    assert run_cli(["run", str(src), *FAST], creds_env(itsm.url)).exit_code == 1
    first = tmp_path / "freeze.report.xlsx"
    book = openpyxl.load_workbook(first)
    for row in (6, 7):
        book["单据"].cell(row, 2).value = "admin"
    book.save(first)

    out = run_cli(
        ["run", str(first), *FAST, "-o", str(tmp_path / "again.xlsx")], creds_env(itsm.url)
    )

    assert out.exit_code == 0, out.stdout + out.stderr
    again = openpyxl.load_workbook(tmp_path / "again.xlsx")
    assert again.sheetnames == ["单据", "字典", "填写说明", "Summary"]
    sheet = again["单据"]
    assert [c.value for c in sheet[1]] == [*HEADER, *RESULT_COLUMNS]
    assert [sheet.cell(r, 6).value for r in range(2, 8)] == ["success"] * 6
    assert [str(r) for r in sheet.merged_cells.ranges] == ["D2:D4"]

"""The words Chinese ITSM sheets use, end to end through the CLI against the stand-in:
their headers and actions, the messages written into tickets, the report's result
headers in the user's language, and a report fed back in the other language."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from batchops.model import RESULT_HEADERS
from batchops.sandbox import SandboxThread

from ..helpers import APP_CODE, SECRET, cli, read_report, run_cli, seed, ticket, write_csv
from ..helpers import write_xlsx as write_workbook

CHINESE_HEADER = ["工单号", "处理人", "操作类型", "原因"]


def _sent(server: SandboxThread) -> dict[str, tuple[str, str]]:
    """What the stand-in applied, per sn: the action and the message it keeps."""
    return {op.sn: (op.action, op.message) for op in server.state.stats.operations if op.applied}


def _chinese_sheet(itsm: SandboxThread, path: Path) -> Path:
    seed(
        itsm,
        ticket("T1", "SUSPENDED", previous="RUNNING"),
        ticket("T2"),
        ticket("T3"),
        ticket("T4"),
        ticket("T5"),
    )
    rows = [
        ["T1", "admin", "解挂", ""],
        ["T2", "admin", "撤回", ""],
        ["T3", "admin", "暂停", "维护窗口"],
        ["T4", "admin", "ＳＵＳＰＥＮＤ", "维护窗口"],
        ["T5", "admin", "关单", "结束"],
    ]
    return write_csv(path, rows, header=CHINESE_HEADER)


def test_chinese_headers_and_words_send_the_actions_meant(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """工单号/处理人/操作类型/原因 with 解挂, 撤回, 暂停 and full-width ＳＵＳＰＥＮＤ send
    UNSUSPEND, WITHDRAW, SUSPEND, SUSPEND; the ambiguous 关单 is refused naming the choices;
    under zh blank messages land in the tickets in Chinese and the report's result headers
    are Chinese while the status values stay English."""
    src = _chinese_sheet(itsm, tmp_path / "工单.csv")
    out = cli(itsm, src, "--lang", "zh")
    assert out.exit_code == 1, out.stderr  # one invalid row
    assert _sent(itsm) == {
        "T1": ("UNSUSPEND", "批量操作：解挂"),
        "T2": ("WITHDRAW", "批量操作：撤回"),
        "T3": ("SUSPEND", "维护窗口"),
        "T4": ("SUSPEND", "维护窗口"),
    }
    rows = read_report(tmp_path / "工单.report.csv")
    assert list(rows[0])[4:] == list(RESULT_HEADERS["zh"])
    assert [row["状态"] for row in rows] == ["success"] * 4 + ["invalid"]
    reason = rows[4]["结果说明"]
    assert "关单" in reason and "WITHDRAW" in reason and "TERMINATE" in reason
    assert "歧义" in reason


def test_blank_messages_are_english_under_english(itsm: SandboxThread, tmp_path: Path) -> None:
    """The same sheet under en: the tickets get `batchops: UNSUSPEND` / `batchops: WITHDRAW`,
    and the ambiguous word's reason is English."""
    src = _chinese_sheet(itsm, tmp_path / "tickets.csv")
    out = cli(itsm, src, "--lang", "en")
    assert out.exit_code == 1, out.stderr
    sent = _sent(itsm)
    assert sent["T1"] == ("UNSUSPEND", "batchops: UNSUSPEND")
    assert sent["T2"] == ("WITHDRAW", "batchops: WITHDRAW")
    rows = read_report(tmp_path / "tickets.report.csv")
    assert rows[4]["status"] == "invalid"
    assert rows[4]["message"].startswith("action_type '关单' could mean WITHDRAW (撤回)")


def _profile(path: Path, url: str, template: str) -> Path:
    path.write_text(
        "\n".join(
            [
                "[profiles.ops]",
                f'base_url = "{url}"',
                f'app_code = "{APP_CODE}"',
                'username = "admin"',
                f"default_message = {json.dumps(template, ensure_ascii=False)}",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return path


def test_a_profile_sets_the_message_written_into_tickets(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A profile's default_message, with {action} in the user's language, is what the
    ticket keeps for a blank message; the wording of the language is not used then."""
    seed(itsm, ticket("P1"), ticket("P2", "SUSPENDED", previous="RUNNING"))
    src = write_csv(
        tmp_path / "p.csv",
        [["P1", "admin", "撤回", ""], ["P2", "admin", "解挂", " "]],
        header=CHINESE_HEADER,
    )
    cfg = _profile(tmp_path / "batchops.toml", itsm.url, "运维批量处理：{action}")
    args = ["run", str(src), "--readback-delay", "0", "--yes", "--lang", "zh"]
    out = run_cli([*args, "--config", str(cfg), "--profile", "ops"], {"BK_APP_SECRET": SECRET})
    assert out.exit_code == 0, out.stderr
    assert _sent(itsm) == {
        "P1": ("WITHDRAW", "运维批量处理：撤回"),
        "P2": ("UNSUSPEND", "运维批量处理：解挂"),
    }


@pytest.mark.parametrize(
    ("template", "said"),
    [
        ("   ", "it is blank"),
        ("closed by {operator}", "{operator}"),
        ("x" * 250 + "{action}", "255"),
    ],
)
def test_a_template_unfit_for_tickets_is_refused_before_sending(
    itsm: SandboxThread, tmp_path: Path, template: str, said: str
) -> None:
    """A blank template, one with another field, one too long filled in: exit 2, one
    line naming the profile's key, nothing sent."""
    seed(itsm, ticket("P1"))
    src = write_csv(tmp_path / "p.csv", [["P1", "admin", "WITHDRAW", ""]])
    cfg = _profile(tmp_path / "batchops.toml", itsm.url, template)
    out = run_cli(
        ["run", str(src), "--yes", "--config", str(cfg), "--profile", "ops"],
        {"BK_APP_SECRET": SECRET},
    )
    assert out.exit_code == 2
    assert "default_message" in out.stderr and said in out.stderr
    assert itsm.state.stats.operations == []


def _failing_workbook(itsm: SandboxThread, path: Path) -> Path:
    seed(itsm, ticket("W1"), ticket("W2"), ticket("W3"), ticket("W4"))
    rows = [
        ["W1", "admin", "暂停", "冻结"],
        ["W2", "lisi", "暂停", "冻结"],  # lisi may not: failed
        ["W3", "admin", "关单", "冻结"],  # ambiguous: invalid
        ["W4", "lisi", "撤回", ""],  # failed
    ]
    if path.suffix == ".xlsx":
        return write_workbook(path, rows, header=CHINESE_HEADER)
    return write_csv(path, rows, header=CHINESE_HEADER)


@pytest.mark.parametrize(
    ("written", "read", "suffix"), [("zh", "en", ".xlsx"), ("en", "zh", ".csv")]
)
def test_a_report_fed_back_in_the_other_language_sends_exactly_its_failed_rows(
    itsm: SandboxThread, tmp_path: Path, written: str, read: str, suffix: str
) -> None:
    """A report written in one language is recognised in the other: `--only failed`
    sends its failed rows and nothing else."""
    src = _failing_workbook(itsm, tmp_path / f"freeze{suffix}")
    first = cli(itsm, src, "--lang", written)
    assert first.exit_code == 1, first.stderr
    report = tmp_path / f"freeze.report{suffix}"
    itsm.call(itsm.state.reset_stats)

    again = cli(itsm, report, "--only", "failed", "--lang", read)
    assert again.exit_code == 1, again.stderr  # they fail again: lisi still may not
    sent = sorted(op.sn for op in itsm.state.stats.operations)
    assert sent == ["W2", "W4"]


def test_a_chinese_xlsx_report_has_chinese_headers_and_summary(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """Under zh the XLSX report's result headers and its Summary sheet's labels are
    Chinese; the status values in both stay English."""
    src = _failing_workbook(itsm, tmp_path / "freeze.xlsx")
    out = cli(itsm, src, "--lang", "zh")
    assert out.exit_code == 1, out.stderr
    book = openpyxl.load_workbook(tmp_path / "freeze.report.xlsx", read_only=True)
    try:
        results = next(iter(book.worksheets))
        header = [cell.value for cell in next(results.iter_rows(max_row=1))]
        assert header == [*CHINESE_HEADER, *RESULT_HEADERS["zh"]]
        statuses = [row[4] for row in results.iter_rows(min_row=2, values_only=True)]
        assert statuses == ["success", "failed", "invalid", "failed"]
        summary = [
            value
            for row in book["Summary"].iter_rows(values_only=True)
            for value in row
            if isinstance(value, str)
        ]
    finally:
        book.close()
    for label in ("各操作、各状态的行数", "操作", "合计", "主要失败原因", "原因", "示例单号"):
        assert label in summary, (label, summary)
    assert "failed" in summary and "success" in summary
    assert "rows per action and status" not in summary

"""A run, its advice, ``plan``, ``status`` and notifications in the user's language, end to end.

Under ``--lang zh`` what batchops says of a run (advice, stop reasons and their fixes,
``plan``'s note, ``status``, a notification) is Chinese, the printed next command still
runs as printed, and the machine words stay English: the report's status values (under
their header in the language, 状态 under zh), so a
report written under either language fed back with ``--only failed`` sends exactly its
failed rows. The same run under ``--lang en`` says it in English.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from batchops.sandbox import SandboxThread

from ..helpers import (
    FAST,
    by_result_name,
    cli,
    creds_env,
    read_report,
    report_of,
    run_cli,
    seed,
    ticket,
    write_csv,
)
from ..run.test_notify import Receiver

CJK = re.compile(r"[\u4e00-\u9fff]")
REFUSED = "抱歉，mallory无权操作该单据"
#: The English sentences of the advice after rows failed; none may be left under zh.
ENGLISH_ADVICE = (
    "failed (top reasons",
    "once their cause is fixed",
    "resend them with",
    "rows not done",
    "fix this first",
    "nothing left to do",
)


def _refused_and_invalid(itsm: SandboxThread, folder: Path, prefix: str) -> Path:
    """Two good rows, one ITSM refuses (mallory is no processor), two invalid rows."""
    folder.mkdir()
    seed(itsm, *(ticket(f"{prefix}{i}") for i in range(3)))
    return write_csv(
        folder / "t.csv",
        [
            [f"{prefix}0", "admin", "SUSPEND", "x"],
            [f"{prefix}1", "admin", "SUSPEND", "x"],
            [f"{prefix}2", "mallory", "SUSPEND", "x"],
            [f"{prefix}3", "admin", "FROB", "x"],
            ["", "admin", "SUSPEND", "x"],
        ],
    )


def _statuses(rows: list[dict[str, str]], lang: str) -> list[str]:
    """The report's status values, read under its status header in ``lang`` (状态 under
    zh): the header is for people, the values are machine words."""
    return [by_result_name(row, lang)["status"] for row in rows]


def _advice_command(stderr: str, lead: str) -> list[str]:
    """The command printed after ``lead`` on a line of the advice, as a shell splits it."""
    (line,) = [line for line in stderr.splitlines() if line.startswith(lead)]
    return shlex.split(line.removeprefix(lead))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_refused_and_invalid_rows_are_advised_in_the_language_and_the_report_keeps_its_words(
    itsm: SandboxThread, tmp_path: Path, lang: str
) -> None:
    """A run with a refused and two invalid rows exits 1 under either language. Under zh
    its advice is Chinese (the counts, the reason ITSM gave, how to resend), no English
    sentence of the advice is left, and the command it prints is the real one with
    --retry-failed; under en the same advice is English, with no Chinese but ITSM's own
    words. The report's status values are the same English words in both."""
    src = _refused_and_invalid(itsm, tmp_path / lang, f"R{lang.upper()}")
    out = cli(itsm, src, "--lang", lang)
    assert out.exit_code == 1, out.stdout + out.stderr
    assert _statuses(report_of(src), lang) == [
        "success",
        "success",
        "failed",
        "invalid",
        "invalid",
    ]
    if lang == "zh":
        assert f"1 行失败（主要原因：1 × [3900004] {REFUSED}）" in out.stderr
        words = _advice_command(out.stderr, "原因处理后，用以下命令重新发送：")
        for english in ENGLISH_ADVICE:
            assert english not in out.stderr
        undo = run_cli(["undo", str(src.with_name("t.report.csv")), "--lang", "zh"])
        assert undo.exit_code == 0, undo.stdout + undo.stderr
        assert "（2 行：2 UNSUSPEND）" in undo.stdout and "下一步：batchops plan " in undo.stdout
        assert "undo sheet" not in undo.stdout and "next:" not in undo.stdout
    else:
        assert f"1 failed (top reasons: 1 × [3900004] {REFUSED})" in out.stderr
        words = _advice_command(out.stderr, "once their cause is fixed, resend them with: ")
        # ITSM's own words and the Chinese action words an invalid row may use are quoted.
        said = re.sub(r"\(or [^)]*\)", "", out.stderr.replace(REFUSED, ""))
        assert not CJK.search(said), said
    assert words == ["batchops", "run", str(src), *FAST, "--lang", lang, "--retry-failed"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_report_written_in_either_language_fed_back_with_only_failed_sends_its_failed_rows(
    itsm: SandboxThread, tmp_path: Path, lang: str
) -> None:
    """The report a zh (or en) run wrote, fed back with --only failed under the other
    language, sends exactly its failed row once the cause is fixed: the status values
    the report holds are the same whatever language wrote it."""
    prefix = f"F{lang.upper()}"
    src = _refused_and_invalid(itsm, tmp_path / lang, prefix)
    assert cli(itsm, src, "--lang", lang).exit_code == 1
    itsm.call(lambda: itsm.state.tickets[f"{prefix}2"].processors.append("mallory"))
    sent_before = len(itsm.state.stats.operations)
    other = "en" if lang == "zh" else "zh"
    again_path = src.with_name("again.csv")
    report = src.with_name("t.report.csv")
    out = run_cli(
        ["run", str(report), *FAST, "--only", "failed", "-o", str(again_path), "--lang", other],
        creds_env(itsm.url),
    )
    sent = itsm.state.stats.operations[sent_before:]
    assert [(op.sn, op.action, op.applied) for op in sent] == [(f"{prefix}2", "SUSPEND", True)]
    again = read_report(again_path)
    assert _statuses(again, other) == ["success", "success", "success", "invalid", "invalid"]
    assert out.exit_code == 1, out.stdout + out.stderr  # the invalid rows stay invalid


def test_an_unreachable_itsm_is_a_chinese_stop_whose_printed_command_finishes_the_work(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """ITSM down before the start, under zh: exit 3, the reason and its fix in Chinese,
    and "继续…请运行：" followed by the command that, run as printed once ITSM is back,
    sends every row (exit 0). Meanwhile ``status --lang zh`` tells the stop in Chinese
    while its JSON keeps the machine words."""
    seed(itsm, *(ticket(f"UZ{i}") for i in range(4)))
    src = write_csv(tmp_path / "t.csv", [[f"UZ{i}", "admin", "SUSPEND", "x"] for i in range(4)])
    itsm.go_down()
    try:
        first = cli(itsm, src, "--lang", "zh")
    finally:
        itsm.come_back()
    assert first.exit_code == 3, first.stdout + first.stderr
    assert "连不上 ITSM" in first.stderr and "未发送任何操作" in first.stderr
    assert "请先处理：请检查 --base-url（协议、主机、端口）和 --gateway" in first.stderr
    for english in ("cannot reach ITSM", "nothing was sent", "to continue", "run: "):
        assert english not in first.stderr

    checkpoint = tmp_path / ".batchops" / "t.checkpoint.db"
    status = run_cli(["status", str(checkpoint), "--lang", "zh"])
    assert status.exit_code == 0, status.stderr
    assert f"断点文件：{checkpoint}" in status.stdout
    assert "状态：已停止" in status.stdout and "已停止：连不上 ITSM" in status.stdout
    assert "4 pending" in status.stdout  # the status value, as --only takes it
    for english in ("checkpoint:", "state:", "rows:", "stopped:", "last run"):
        assert english not in status.stdout
    as_json = json.loads(run_cli(["status", str(checkpoint), "--json", "--lang", "zh"]).stdout)
    assert as_json["state"] == "stopped" and as_json["counts"]["pending"] == 4

    words = _advice_command(first.stderr, "继续（还有 4 行未完成），请运行：")
    assert words[:3] == ["batchops", "run", str(src)] and "--lang" in words
    again = run_cli(words[1:], creds_env(itsm.url))
    assert again.exit_code == 0, again.stdout + again.stderr
    assert _statuses(report_of(src), "zh") == ["success"] * 4


def test_plan_under_zh_says_its_note_in_chinese_and_keeps_the_status_values(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """``plan --lang zh``: what the plan did (nothing sent, tickets read, the target) is
    Chinese; the plan's report keeps pending and invalid as they are."""
    src = _refused_and_invalid(itsm, tmp_path / "plan", "PZ")
    out = run_cli(["plan", str(src), "--lang", "zh"], creds_env(itsm.url))
    assert out.exit_code == 1, out.stdout + out.stderr  # invalid rows
    assert "仅预演，未发送任何操作；预检：用 " in out.stdout
    assert "读取了 3 张单据；目标：" in out.stdout and "BATCHOPS_BASE_URL）" in out.stdout
    assert "plan only" not in out.stdout and "tickets read with" not in out.stdout
    plan = read_report(src.with_name("t.plan.csv"))
    assert _statuses(plan, "zh") == ["pending", "pending", "pending", "invalid", "invalid"]


def test_a_notification_under_zh_is_chinese(itsm: SandboxThread, tmp_path: Path) -> None:
    """The run with a refused row, told through json:// under zh: title and body in
    Chinese (the status values and ITSM's reason as they are), no English label left."""
    src = _refused_and_invalid(itsm, tmp_path / "n", "NZ")
    with Receiver() as receiver:
        out = cli(itsm, src, "--lang", "zh", "--notify", receiver.url())
        assert out.exit_code == 1, out.stdout + out.stderr
    (message,) = receiver.received
    assert message["title"] == "batchops：t.csv 需要处理（退出码 1）"
    body = message["message"]
    assert f"输入文件：{src.resolve()}" in body and "退出码：1（" in body
    assert "行数：5（2 success，1 failed，2 invalid）" in body
    assert f"主要失败原因：\n  1 × [3900004] {REFUSED}（例如 NZ2）" in body
    assert f"结果报告：{src.with_name('t.report.csv').resolve()}" in body
    for english in ("input:", "host:", "rows:", "elapsed:", "top failure", "report:", "e.g."):
        assert english not in body


def test_select_under_zh_says_what_it_wrote_in_chinese(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """``select --lang zh``: how many tickets were selected and where the sheet is, in
    Chinese; ITSM's status codes as they are."""
    server = stand_in([ticket(f"SZ{i}") for i in range(3)])
    sheet = tmp_path / "s.csv"
    out = run_cli(
        ["select", "--status", "RUNNING", "-o", str(sheet), "--lang", "zh"],
        creds_env(server.url),
    )
    assert out.exit_code == 0, out.stdout + out.stderr
    assert "选出 3 张单据（3 RUNNING），耗时 " in out.stdout
    assert f"表格：{sheet}" in out.stdout
    assert "tickets selected" not in out.stdout and "sheet:" not in out.stdout

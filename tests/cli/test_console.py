"""The one printer (:mod:`batchops.cli.console`): what it escapes, what it leaves alone,
JSON that stays JSON, the guarded streams of a command, and the bar's notices."""

from __future__ import annotations

import io
import json
import re
import sys

import pytest

from batchops import i18n
from batchops.cli.console import (
    BarProgress,
    JsonLog,
    LineProgress,
    format_problems,
    format_summary,
    guarded_output,
    json_text,
    raw_stream,
    shown,
)
from batchops.exits import Exit
from batchops.model import RunSummary, Status


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("\x1b]52;c;aGk=\x1b\\", "\\x1b]52;c;aGk=\\x1b\\"),
        ("a\rb\x7fc\x00", "a\\x0db\\x7fc\\x00"),
        ("\x9b2J", "\\x9b2J"),  # C1: the 8-bit CSI
        ("abc\u202edef\u2066", "abc\\u202edef\\u2066"),  # bidi override and isolate
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("line\u2028sep", "line\\u2028sep"),
        ("tag\U000e0041", "tag\\U000e0041"),  # invisible tag characters
        ("lone \udcff", "lone \\udcff"),  # a file name's undecodable byte
    ],
)
def test_what_a_terminal_acts_on_is_shown_as_a_visible_escape(text: str, expected: str) -> None:
    """C0 (but tab and line feed), DEL, C1, format, separator and lone surrogate
    characters are escaped, each one alone."""
    assert shown(text) == expected


def test_chinese_emoji_spaces_tabs_and_line_feeds_are_left_as_they_are() -> None:
    """Readable text is not garbled: Chinese, full-width and no-break spaces, emoji,
    accents, tabs, line feeds and backslashes are written as they are."""
    text = "工单 SN-001 已挂起\u3000（原因：节假日）\t✅ café\u00a0ok\nC:\\tmp\\x.csv"
    assert shown(text) == text
    assert shown(shown("\x1b[31m红\x1b[0m")) == shown("\x1b[31m红\x1b[0m") == "\\x1b[31m红\\x1b[0m"


def test_json_text_escapes_the_json_way_parses_back_and_keeps_chinese() -> None:
    """JSON for the terminal: every character :func:`shown` escapes is a JSON escape, so
    the line parses back to the very value; Chinese stays readable."""
    value = {"message": "拒绝\x1b]0;t\x07\x9b\u202e\u2028\U000e0041\x7f", "n": 1}
    text = json_text(value)
    assert json.loads(text) == value
    assert "拒绝" in text
    assert all(char not in text for char in "\x1b\x07\x9b\u202e\u2028\U000e0041\x7f")
    assert "\\u009b" in text and "\\u202e" in text and "\\udb40\\udc41" in text
    assert json.loads(json_text(value, indent=2)) == value


def test_a_json_log_line_is_one_safe_line() -> None:
    """--log-json: one line per event, parsed back exactly, nothing raw in it."""
    stream = io.StringIO()
    JsonLog(stream)("row_failed", {"message": "a\u202eb\r\nc\x1b"})
    line = stream.getvalue()
    assert line.count("\n") == 1 and shown(line) == line
    assert json.loads(line)["message"] == "a\u202eb\r\nc\x1b"


def test_a_command_s_streams_escape_what_anyone_writes_and_are_put_back() -> None:
    """Inside :func:`guarded_output`, a write to sys.stdout or sys.stderr from anywhere
    (print, a library) is escaped; the bar's own stream is the one behind; afterwards the
    streams are the ones from before."""
    out, err = io.StringIO(), io.StringIO()
    before = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        with guarded_output():
            print("out \x1b]0;x\x07 中文")
            sys.stderr.write("err \x9b\n")
            assert raw_stream(sys.stderr) is err
            with pytest.raises(TypeError):
                sys.stdout.write(b"bytes")  # type: ignore[arg-type]
        assert (sys.stdout, sys.stderr) == (out, err)
    finally:
        sys.stdout, sys.stderr = before
    assert out.getvalue() == "out \\x1b]0;x\\x07 中文\n"
    assert err.getvalue() == "err \\x9b\n"


@pytest.mark.parametrize("sink", [BarProgress, LineProgress])
def test_progress_notices_are_escaped_with_and_without_a_bar(sink: type) -> None:
    """A notice written above the bar (or as a progress line) is escaped; the bar is
    drawn by tqdm as it is."""
    stream = io.StringIO()
    progress = sink(stream)
    progress.start(2)
    progress.write("batchops: server said \x1b]52;c;aGk=\x07")
    progress.close()
    text = stream.getvalue()
    assert "server said \\x1b]52;c;aGk=\\x07" in text
    assert "\x1b" not in text and "\x07" not in text


def _stopped_summary() -> RunSummary:
    counts = {"success": 6, "failed": 1, "invalid": 0, "skipped": 2, "unknown": 0, "pending": 3}
    return RunSummary(
        counts,
        12,
        9,
        1.25,
        "t.report.csv",
        Exit.STOPPED,
        stopped_reason="ITSM unreachable",
        failures_path="t.todo.csv",
        report_error="disk full",
        rows_sent=9,
    )


def test_the_summary_reads_as_chinese_under_zh_and_as_before_under_en() -> None:
    """The counts are said per status in the language (Chinese: 成功 6 行); statuses with
    no row are left out in both; problems go to their own lines."""
    summary = _stopped_summary()
    with i18n.using("zh"):
        chinese = format_summary(summary).splitlines()
        problems = format_problems(summary)
    assert chinese == [
        "共 12 行：成功 6 行，失败 1 行，跳过 2 行，未发送 3 行",
        "耗时 1.2 秒，7 行/秒，共 9 个请求",
        "结果报告：t.report.csv",
        "待处理行：t.todo.csv",
    ]
    assert problems == ["已停止：ITSM unreachable", "错误：disk full"]
    with i18n.using("en"):
        english = format_summary(summary).splitlines()
        assert format_problems(summary) == ["stopped: ITSM unreachable", "Error: disk full"]
    assert english == [
        "12 rows: 6 success, 1 failed, 2 skipped, 3 pending",
        "elapsed 1.2 s, 7 rows/s, 9 requests",
        "report: t.report.csv",
        "failures: t.todo.csv",
    ]


def test_a_progress_line_is_said_in_the_language() -> None:
    stream = io.StringIO()
    with i18n.using("zh"):
        progress = LineProgress(stream, interval_s=0.0)
        progress.start(4)
        progress.advance(Status.SUCCESS)
        progress.advance(Status.FAILED)
    line = stream.getvalue().splitlines()[-1]
    assert re.fullmatch(
        r"进度（\d\d:\d\d:\d\d）：2/4 行（50%）成功 1 失败 1，"
        r"\d+ 行/秒，预计还需 .+（约 [\d:]+ 完成）",
        line,
    ), line


def test_progress_lines_without_a_terminal_carry_the_time_and_an_eta() -> None:
    """A log read afterwards: each progress line says when it was written, and when the
    run should end (a duration and the clock time); before any row is done, ETA unknown."""
    stream = io.StringIO()
    progress = LineProgress(stream, interval_s=0.0)
    progress.start(4)
    progress.advance(Status.SUCCESS)
    progress.advance(Status.FAILED)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    clock = r"\d\d:\d\d:\d\d"
    pattern = (
        rf"progress at {clock}: 2/4 rows \(50%\) ok=1 failed=1, \d+ rows/s, "
        rf"ETA .+ \(about {clock}\)"
    )
    assert re.fullmatch(pattern, lines[1]), lines[1]


def test_lines_written_aside_of_the_bar_start_on_a_line_of_their_own() -> None:
    """The canary's lines and question, shown while the bar is up, are not written into
    the bar's line: it is cleared first (\\r, blanks, \\r) and drawn again below them."""
    stream = io.StringIO()
    progress = BarProgress(stream)
    progress.start(10)
    with progress.aside():
        stream.write("Canary: 1 rows sent first:\n")
    progress.close()
    before, _sep, after = stream.getvalue().partition("Canary:")
    assert re.search(r"\r *\r$", before), before
    assert "row/s" in after  # the bar again, below the lines

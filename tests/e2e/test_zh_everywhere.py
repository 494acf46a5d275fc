"""Under ``LANG=zh_CN.UTF-8`` no line batchops prints is an English sentence, end to end.

A Chinese ops engineer's session, through the CLI against the stand-in: a run with a
refused and invalid rows (with ``-v``), ``plan``, ``status`` (and ``--json``, whose keys
stay English), ``undo``, ``select`` with a misspelt or empty ``--status``, usage errors,
a file that is no checkpoint, ``config show``, a wrong secret, ``--strict``, the
``sandbox`` banner and an XLSX report's Summary sheet. Every line of stdout and stderr is
held to :func:`english`: a line may mix Chinese with commands, paths, option names,
numbers, codes and machine words (status values stay English in every language), but no
run of three English words may be left outside them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import openpyxl

from batchops.sandbox import SandboxThread

from ..helpers import (
    FAST,
    creds_env,
    host_env,
    run_cli,
    seed,
    ticket,
    write_csv,
    write_xlsx,
)

ZH = {"LANG": "zh_CN.UTF-8"}
_CJK = "\u3000-\u303f\u3400-\u9fff\uff00-\uffef"
#: What is no prose for a person: code, quoted text (names, cells, ITSM's own words), a
#: command line, URLs, option names, paths and file names, key=value fields, codes and
#: variable names in capitals, identifiers with underscores.
_NOT_PROSE = [
    re.compile(pattern)
    for pattern in (
        r"`[^`]*`",
        r"'[^']*'",
        r'"[^"]*"',
        r"“[^”]*”",
        r"‘[^’]*’",
        # A command: batchops, its command, then tokens that are no plain words.
        rf"\bbatchops (?:run|plan|select|status|undo|report|config|sandbox)"
        rf"(?: (?:[^\s{_CJK}]*[-./=:,\d{{}}][^\s{_CJK}]*|[A-Z_]+))*",
        r"\b[a-z][a-z0-9+.-]*://\S+",
        r"(?<![\w-])--?[A-Za-z][\w-]*",
        r"\S*[/\\]\S*",
        r"\b[\w.-]+\.(?:csv|xlsx|db|toml|json|txt|bak)\b",
        r"\b\w+=\S*",
        r"\b[A-Z][A-Z0-9_]+\b",
        r"\b[A-Za-z]+_\w+\b",
    )
]
#: Words that stay English in every language (status values, choices, column names).
_MACHINE = re.compile(
    r"\b(?:success|failed|invalid|skipped|unknown|pending|esb|apigw|problems|always|none|"
    r"zh|en|sn|operator|app code|app secret)\b"
)
_SENTENCE = re.compile(r"\b[A-Za-z]+(?:[ ,]+[A-Za-z]+){2,}\b")


def english(line: str) -> str | None:
    """The English words of ``line`` that make a sentence (three or more in a row, outside
    commands, paths, options, quotes, codes and machine words), or None."""
    for pattern in _NOT_PROSE:
        line = pattern.sub("\0", line)
    line = _MACHINE.sub("\0", line)
    found = _SENTENCE.search(line)
    return found.group(0) if found else None


def english_lines(*texts: str) -> list[str]:
    """Every line of ``texts`` that holds an English sentence."""
    return [line for text in texts for line in text.splitlines() if english(line)]


def test_the_classifier_tells_a_sentence_from_commands_paths_and_machine_words() -> None:
    """The check itself can fail: English prose is caught, also beside Chinese; what is
    meant to stay English is not."""
    for prose in (
        "stopped: the report could not be written",
        "错误：tickets.csv 不是 batchops 断点文件（file is not a database）",
        "batchops sandbox: ITSM stand-in listening on http://127.0.0.1:8765",
        "  user: bk_username accepted (app is whitelisted); tickets seeded: 7",
    ):
        assert english(prose), prose
    for fine in (
        "原因处理后，用以下命令重新发送：batchops run t.report.csv --only failed,unknown",
        "继续（还有 7 行未完成），请运行：batchops run t.csv --base-url http://x:1 --yes",
        "错误：--only 只接受 success, failed, invalid, skipped, unknown, pending，不接受 'x'",
        "  1 × [3900004] 抱歉，mallory无权操作该单据（例如 NO1）",
        "batchops: 2026-12-07T21:47:12+00:00 operate_ticket sn=NO1 action=SUSPEND http=200",
        "  app_code         batchops-sandbox                         [环境变量 BK_APP_CODE]",
        "撤销表格：t.report.undo.csv（2 行：2 UNSUSPEND）",
    ):
        assert english(fine) is None, fine


def _session_sheet(itsm: SandboxThread, folder: Path) -> Path:
    """Two good rows, one ITSM refuses (mallory is no processor), two invalid rows."""
    seed(itsm, *(ticket(f"ZE{i}") for i in range(3)))
    return write_csv(
        folder / "t.csv",
        [
            ["ZE0", "admin", "SUSPEND", "x"],
            ["ZE1", "admin", "SUSPEND", "x"],
            ["ZE2", "mallory", "SUSPEND", "x"],
            ["ZE3", "admin", "FROB", "x"],
            ["", "admin", "SUSPEND", "x"],
        ],
    )


def test_a_chinese_session_prints_no_english_sentence(itsm: SandboxThread, tmp_path: Path) -> None:
    """run (refused and invalid rows, -v), plan, status, status --json, undo, select (its
    XLSX sheet named in Chinese) and select with a misspelt and an empty --status, usage
    errors (a bad number, a missing file), a file that is no checkpoint and config show:
    each exits as in English, and no line is an English sentence. The machine words
    stayed: the status JSON's keys and state."""
    src = _session_sheet(itsm, tmp_path)
    env = creds_env(itsm.url, **ZH)
    checkpoint = str(tmp_path / ".batchops" / "t.checkpoint.db")
    runs = {
        "run": (["run", str(src), *FAST, "-v"], 1),
        "plan": (["plan", str(src)], 1),
        "status": (["status", checkpoint], 0),
        "undo": (["undo", str(tmp_path / "t.report.csv")], 0),
        "select": (["select", "--status", "处理中", "-o", str(tmp_path / "s.xlsx")], 0),
        "select misspelt": (["select", "--status", "RUNNNING", "-o", "s.csv"], 2),
        "select empty": (["select", "--status", ",", "-o", "s.csv"], 2),
        "bad number": (["run", str(src), "--concurrency", "x"], 2),
        "no such file": (
            ["select", "--sn-file", "nope.txt", "--status", "RUNNING", "-o", "x.csv"],
            2,
        ),
        "bad brake": (["run", str(src), *FAST, "--max-failures", "lots"], 2),
        "no checkpoint": (["status", str(src)], 2),
        "config show": (["config", "show"], 0),
        "select help": (["select", "--help"], 0),
    }
    said: dict[str, str] = {}
    for name, (args, code) in runs.items():
        out = run_cli(args, env)
        assert out.exit_code == code, (name, out.stdout, out.stderr)
        said[name] = out.stdout + out.stderr
        assert re.search(f"[{_CJK}]", said[name]), (name, said[name])
    leftover = {name: english_lines(text) for name, text in said.items()}
    assert not any(leftover.values()), leftover
    # Words English alone would not show as a sentence.
    assert "tickets)" not in said["run"]  # -v: a read of many tickets
    assert "文件 'nope.txt' 不存在" in said["no such file"]  # click's word for a path
    assert "[必填]" in said["select help"] and "required" not in said["select help"]
    setting_lines = [line for line in said["config show"].splitlines() if line.startswith("  ")]
    assert setting_lines and all(re.search(f"[{_CJK}]", line) for line in setting_lines)
    assert "[环境变量 BK_APP_CODE]" in said["config show"]
    assert openpyxl.load_workbook(tmp_path / "s.xlsx").sheetnames == ["单据"]
    # The machine interface is the same in every language.
    status = json.loads(run_cli(["status", checkpoint, "--json"], env).stdout)
    assert status["state"] == "finished"
    assert status["counts"] == {
        "success": 2,
        "failed": 1,
        "invalid": 2,
        "skipped": 0,
        "unknown": 0,
        "pending": 0,
    }


def test_a_wrong_secret_and_strict_are_told_in_chinese(itsm: SandboxThread, tmp_path: Path) -> None:
    """A wrong secret stops the run (exit 3) with the stop reason and the credentials it
    used, each source said in Chinese; --strict refuses (exit 2) naming the report's
    column as its Chinese header says it."""
    src = _session_sheet(itsm, tmp_path)
    wrong = run_cli(["run", str(src), *FAST], creds_env(itsm.url, secret="wrong", **ZH))
    assert wrong.exit_code == 3, wrong.stdout + wrong.stderr
    assert not english_lines(wrong.stdout, wrong.stderr), wrong.stderr
    assert "来自 环境变量 BK_APP_CODE" in wrong.stderr and "env BK_" not in wrong.stderr
    strict = run_cli(["run", str(src), *FAST, "--strict"], creds_env(itsm.url, **ZH))
    assert strict.exit_code == 2, strict.stdout + strict.stderr
    assert not english_lines(strict.stdout, strict.stderr), strict.stderr
    assert "“结果说明”列" in strict.stderr


def test_the_sandbox_banner_is_chinese(tmp_path: Path) -> None:
    """``batchops sandbox`` says where it listens and how to authenticate in Chinese."""
    env = {**host_env(), **ZH}
    env.pop("LC_ALL", None)
    with subprocess.Popen(
        [sys.executable, "-m", "batchops.sandbox", "--port", "0", "--generate", "ZB:2"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdout is not None
        try:
            banner = [proc.stdout.readline() for _line in range(6)]
        finally:
            proc.terminate()
    text = "".join(banner)
    assert "http://127.0.0.1:" in banner[0] and "监听" in banner[0], text
    assert "预置单据：2 张" in text, text
    assert not english_lines(text), text


def test_the_summary_sheet_labels_are_chinese(tmp_path: Path) -> None:
    """An XLSX report's Summary sheet under zh: every label in its first column is Chinese
    (but the actions, which stay the words the sheet was written with); the sheet keeps
    its name, by which a fed-back report's Summary is found and replaced."""
    src = write_xlsx(tmp_path / "t.xlsx", [["ZS1", "admin", "SUSPEND", "x"]])
    out = run_cli(["run", str(src), "--sandbox", *FAST], ZH)
    assert out.exit_code == 0, out.stdout + out.stderr
    book = openpyxl.load_workbook(tmp_path / "t.report.xlsx")
    assert book.sheetnames[-1] == "Summary"
    labels = [
        str(row[0]).strip()
        for row in book["Summary"].iter_rows(values_only=True)
        if row[0] not in (None, "")
    ]
    english_labels = [
        label for label in labels if not re.search(f"[{_CJK}]", label) and label != "SUSPEND"
    ]
    assert labels and not english_labels, english_labels

"""A run's closing summary in the user's language, its machine words unchanged.

The summary a person reads (stdout) is Chinese under zh; ``--summary-json``'s keys and
the status values in it, and the exit code, are the same in both languages.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ..helpers import FAST, run_cli

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "tickets.csv"

#: The sample's outcome against the stand-in, as each language says it.
SAID = {
    "zh": ("共 9 行：成功 6 行，失败 1 行，无效 2 行", "结果报告：", "耗时 "),
    "en": ("9 rows: 6 success, 1 failed, 2 invalid", "report: ", "elapsed "),
}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_summary_is_said_in_the_language_and_the_json_stays_english(
    tmp_path: Path, lang: str
) -> None:
    src = tmp_path / "tickets.csv"
    shutil.copy(SAMPLE, src)
    summary_json = tmp_path / "summary.json"
    out = run_cli(
        ["run", str(src), "--sandbox", *FAST, "--summary-json", str(summary_json)],
        env={"BATCHOPS_LANG": lang, "LANG": "C.UTF-8"},
    )
    assert out.exit_code == 1, out.stderr
    counts, report, elapsed = SAID[lang]
    lines = out.stdout.splitlines()
    assert counts in lines
    assert any(line.startswith(report) and line.endswith("tickets.report.csv") for line in lines)
    assert any(line.startswith(elapsed) for line in lines)
    data = json.loads(summary_json.read_text(encoding="utf-8"))
    assert data["exit_code"] == 1
    assert data["counts"] == {
        "success": 6,
        "failed": 1,
        "invalid": 2,
        "skipped": 0,
        "unknown": 0,
        "pending": 0,
    }
    assert {"total_rows", "requests", "elapsed_s", "counts_by_action"} <= set(data)


def test_a_usage_error_under_zh_sends_nothing_and_exits_2(tmp_path: Path) -> None:
    """``--lang zh`` with an unknown option: click's words in Chinese, exit 2, no report."""
    src = tmp_path / "tickets.csv"
    shutil.copy(SAMPLE, src)
    out = run_cli(["run", str(src), "--sandbox", "--lang", "zh", "--bogus"])
    assert out.exit_code == 2
    assert "'--bogus'" in out.stderr and "错误" in out.stderr and "Error" not in out.stderr
    assert not (tmp_path / "tickets.report.csv").exists()

"""``batchops plan`` (:func:`batchops.commands.plan.plan`) against the stand-in: every row
judged from the tickets' live statuses, nothing sent, the report written beside the input.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from batchops.commands.plan import plan
from batchops.errors import FatalAnswerError
from batchops.sandbox import SandboxThread
from batchops.settings import Files, PlanConfig, RunOptions, plan_config

from ..helpers import creds_env, read_report, running, seed, write_csv

ROWS = [
    ["R1", "admin", "SUSPEND", "freeze"],  # RUNNING: would be suspended
    ["S1", "admin", "SUSPEND", "freeze"],  # already SUSPENDED: skipped
    ["R1", "admin", "UNSUSPEND", "thaw"],  # after the row above: would be resumed
    ["", "admin", "SUSPEND", "freeze"],  # invalid
]


def _config(src: Path, env: dict[str, str]) -> PlanConfig:
    """The plan's settings as the CLI resolves them from this environment alone."""
    said: list[str] = []
    config = plan_config(src, RunOptions(), files=Files(), say=said.append, env=env)
    assert said == []
    return config


def test_plan_judges_every_row_by_its_tickets_live_status_and_sends_nothing(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """Rows are pending with what they would do, skipped with why, or invalid; each
    ticket's rows are judged in file order; the stand-in sees reads but no operation."""
    seed(itsm, running("R1"), running("S1", status="SUSPENDED"))
    src = write_csv(tmp_path / "t.csv", ROWS)
    summary = plan(_config(src, creds_env(itsm.url)))
    report = read_report(tmp_path / "t.plan.csv")
    assert summary.report_path == str(tmp_path / "t.plan.csv")
    assert [r["status"] for r in report] == ["pending", "skipped", "pending", "invalid"]
    assert "SUSPENDED" in report[1]["message"]
    assert "not pre-checked" not in report[0]["message"]
    assert summary.counts["pending"] == 2 and summary.counts["invalid"] == 1
    assert summary.exit_code == 1  # an invalid row
    assert summary.sent_requests > 0
    assert summary.note.startswith("plan only, nothing sent; pre-check: 2 tickets read with")
    assert itsm.state.stats.operations_total == 0
    assert not (tmp_path / "t.report.csv").exists()


def test_plan_without_a_target_reads_nothing_and_says_so(tmp_path: Path) -> None:
    """No --base-url: no request at all, every valid row pending with "not pre-checked",
    and the summary JSON written where asked."""
    src = write_csv(tmp_path / "t.csv", ROWS[:3])
    config = _config(src, {})
    config = PlanConfig(
        config.input_path,
        Files(summary_json=tmp_path / "s.json"),
        config.connection,
        config.settings,
    )
    summary = plan(config)
    report = read_report(tmp_path / "t.plan.csv")
    assert [r["status"] for r in report] == ["pending"] * 3
    assert all("(not pre-checked: not run (no --base-url))" in r["message"] for r in report)
    assert (summary.sent_requests, summary.exit_code) == (0, 0)
    assert summary.note.endswith("target: none")
    assert json.loads((tmp_path / "s.json").read_text())["exit_code"] == 0


def test_plan_with_no_precheck_reads_no_ticket(itsm: SandboxThread, tmp_path: Path) -> None:
    """--no-precheck with a target: the stand-in is not asked anything."""
    seed(itsm, running("S1", status="SUSPENDED"))
    src = write_csv(tmp_path / "t.csv", ROWS[1:2])
    env = creds_env(itsm.url)
    settings = plan_config(src, RunOptions(), files=Files(), say=print, env=env, precheck=False)
    summary = plan(settings)
    assert read_report(tmp_path / "t.plan.csv")[0]["status"] == "pending"
    assert summary.sent_requests == 0 and sum(itsm.state.stats.requests.values()) == 0
    assert "pre-check: skipped (--no-precheck)" in summary.note


def test_plan_against_an_unreachable_target_stops_before_writing(tmp_path: Path) -> None:
    """A target nobody listens on: a FatalAnswerError naming the address and what to
    check, and no report."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    src = write_csv(tmp_path / "t.csv", ROWS[:1])
    with pytest.raises(
        FatalAnswerError, match=f"cannot reach ITSM at {re.escape(url)}.*--base-url"
    ):
        plan(_config(src, creds_env(url)))
    assert not (tmp_path / "t.plan.csv").exists()

"""What the sheet shows is what is sent, end to end over loopback: rows hidden or filtered
out in an XLSX are left out (and sent with --include-hidden, through resumes and reports
fed back), and hidden or control characters in an operator or a message never reach ITSM."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import Counter
from pathlib import Path

import openpyxl
from aiohttp import web

from batchops.sandbox import SandboxThread

from ..helpers import (
    FAST,
    HEADER,
    LoopbackServer,
    applied_suspends,
    creds_env,
    envelope,
    report_of,
    rows_for,
    run_cli,
    running,
    seed,
    write_csv,
    xlsx_with_hidden_rows,
)


def _report(path: Path) -> list[dict[str, object]]:
    """An XLSX report's data rows as dicts."""
    sheet = openpyxl.load_workbook(path).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip([str(h) for h in rows[0]], row, strict=True)) for row in rows[1:]]


def _operated(server: SandboxThread) -> list[str]:
    return [op.sn for op in server.state.stats.operations]


# --------------------------------------------------------------------------- hidden rows


def test_hidden_rows_are_not_sent_and_the_summary_says_so(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """Three of eight rows hidden by hand: none of them is sent (the stand-in's log has
    only the five others), each is 'skipped' in the report saying why, the exit code is
    0, and the summary counts them. The same command again sends nothing; with
    --include-hidden the same checkpoint sends just the three: every ticket once."""
    sns = [f"HR{i}" for i in range(8)]
    seed(itsm, *[running(sn) for sn in sns])
    src = xlsx_with_hidden_rows(tmp_path / "t.xlsx", rows_for(sns), hidden=[1, 2, 5])

    out = run_cli(["run", str(src), *FAST], creds_env(itsm.url))
    assert out.exit_code == 0, out.stdout + out.stderr
    assert sorted(_operated(itsm)) == ["HR0", "HR3", "HR4", "HR6", "HR7"]
    assert "3 rows hidden or filtered out in the sheet: left out" in out.stdout
    assert "--include-hidden" in out.stdout
    report = _report(tmp_path / "t.report.xlsx")
    assert [r["status"] for r in report] == [
        "success",
        "skipped",
        "skipped",
        "success",
        "success",
        "skipped",
        "success",
        "success",
    ]
    assert "hidden in the sheet" in str(report[1]["message"])

    same = run_cli(["run", str(src), *FAST], creds_env(itsm.url))
    assert same.exit_code == 0, same.stdout + same.stderr
    assert len(_operated(itsm)) == 5

    every = run_cli(["run", str(src), *FAST, "--include-hidden"], creds_env(itsm.url))
    assert every.exit_code == 0, every.stdout + every.stderr
    assert applied_suspends(itsm) == Counter(sns)
    assert itsm.state.stats.double_suspends == 0
    assert {r["status"] for r in _report(tmp_path / "t.report.xlsx")} == {"success"}


def test_rows_filtered_out_by_an_autofilter_are_not_sent(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """An autofilter on a 'team' column that keeps only 'ops': the other teams' rows are
    not sent; the same sheet with --include-hidden (no checkpoint before) sends all."""
    sns = [f"AF{i}" for i in range(9)]
    seed(itsm, *[running(sn) for sn in sns])
    teams = ["ops", "db", "web"]
    rows = [[*row, teams[i % 3]] for i, row in enumerate(rows_for(sns))]
    header = [*HEADER, "team"]
    src = xlsx_with_hidden_rows(tmp_path / "f.xlsx", rows, keep_only=(4, ["ops"]), header=header)

    out = run_cli(["run", str(src), *FAST, "--no-checkpoint"], creds_env(itsm.url))
    assert out.exit_code == 0, out.stdout + out.stderr
    assert sorted(_operated(itsm)) == ["AF0", "AF3", "AF6"]
    assert "6 rows hidden or filtered out in the sheet: left out" in out.stdout

    other = [f"AG{i}" for i in range(9)]
    seed(itsm, *[running(sn) for sn in other])
    rows = [[*row, teams[i % 3]] for i, row in enumerate(rows_for(other))]
    copy = xlsx_with_hidden_rows(tmp_path / "g.xlsx", rows, keep_only=(4, ["ops"]), header=header)
    itsm.call(itsm.state.reset_stats)
    every = run_cli(["run", str(copy), *FAST, "--include-hidden"], creds_env(itsm.url))
    assert every.exit_code == 0, every.stdout + every.stderr
    assert sorted(_operated(itsm)) == sorted(other)
    assert "hidden" not in every.stdout


def test_a_report_fed_back_does_not_send_the_rows_that_were_hidden(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """The report shows every row, the hidden ones 'skipped' (and still hidden: the
    report is the input's workbook); fed back as input it sends none of them (skipped is
    done), unless asked for with --only skipped --include-hidden (and --fresh: the first
    run fed back has recorded them as done in its checkpoint)."""
    sns = [f"FB{i}" for i in range(4)]
    seed(itsm, *[running(sn) for sn in sns])
    src = xlsx_with_hidden_rows(tmp_path / "t.xlsx", rows_for(sns), hidden=[0, 3])
    assert run_cli(["run", str(src), *FAST], creds_env(itsm.url)).exit_code == 0
    assert sorted(_operated(itsm)) == ["FB1", "FB2"]

    report = tmp_path / "t.report.xlsx"
    fed = run_cli(["run", str(report), *FAST, "-o", str(tmp_path / "r2.xlsx")], creds_env(itsm.url))
    assert fed.exit_code == 0, fed.stdout + fed.stderr
    assert sorted(_operated(itsm)) == ["FB1", "FB2"]

    asked = run_cli(
        [
            "run",
            str(report),
            *FAST,
            "--only",
            "skipped",
            "--include-hidden",
            "--fresh",
            "-o",
            str(tmp_path / "r3.xlsx"),
        ],
        creds_env(itsm.url),
    )
    assert asked.exit_code == 0, asked.stdout + asked.stderr
    assert applied_suspends(itsm) == Counter(sns)


def test_retry_failed_does_not_send_a_hidden_row_of_a_failed_ticket(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A ticket's visible row fails and its later row is hidden: --retry-failed resends
    the failed row only; the hidden one stays unsent, and 'skipped' in the checkpoint."""
    seed(itsm, running("RF1", processor="zhang"))
    rows = [["RF1", "admin", "SUSPEND", "m"], ["RF1", "zhang", "TERMINATE", "m"]]
    src = xlsx_with_hidden_rows(tmp_path / "t.xlsx", rows, hidden=[1])
    first = run_cli(["run", str(src), *FAST], creds_env(itsm.url))
    assert first.exit_code == 1, first.stdout + first.stderr
    retry = run_cli(["run", str(src), *FAST, "--retry-failed"], creds_env(itsm.url))
    assert retry.exit_code == 1, retry.stdout + retry.stderr
    assert [op.action for op in itsm.state.stats.operations] == ["SUSPEND", "SUSPEND"]
    with contextlib.closing(sqlite3.connect(tmp_path / ".batchops" / "t.checkpoint.db")) as db:
        assert db.execute("SELECT status FROM rows WHERE idx=1").fetchone() == ("skipped",)


def test_plan_leaves_hidden_rows_out_too(tmp_path: Path) -> None:
    """plan judges the rows a run would send: hidden ones are 'skipped' and counted, all
    are 'pending' with --include-hidden."""
    src = xlsx_with_hidden_rows(tmp_path / "t.xlsx", rows_for(["P1", "P2", "P3"]), hidden=[1])
    out = run_cli(["plan", str(src)])
    assert out.exit_code == 0, out.stdout + out.stderr
    assert "1 row hidden or filtered out in the sheet: left out" in out.stdout
    statuses = [r["status"] for r in _report(tmp_path / "t.plan.xlsx")]
    assert statuses == ["pending", "skipped", "pending"]
    every = run_cli(["plan", str(src), "--include-hidden", "-o", str(tmp_path / "all.xlsx")])
    assert every.exit_code == 0, every.stdout + every.stderr
    assert {r["status"] for r in _report(tmp_path / "all.xlsx")} == {"pending"}


# --------------------------------------------------------------------------- characters


def test_hidden_and_control_characters_in_an_operator_never_reach_itsm(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A zero-width space or a NUL inside an operator: invalid, not sent. Zero-width
    characters at its ends: trimmed, sent as the plain name (the stand-in's permission
    check sees 'admin'), and the report says so."""
    seed(itsm, *[running(f"OP{i}") for i in range(4)])
    rows = [
        ["OP0", "ad\u200bmin", "SUSPEND", "m"],
        ["OP1", "adm\x00in", "SUSPEND", "m"],
        ["OP2", "\u200badmin\ufeff", "SUSPEND", "m"],
        ["OP3", "admin", "SUSPEND", "m"],
    ]
    src = write_csv(tmp_path / "t.csv", rows)
    out = run_cli(["run", str(src), *FAST], creds_env(itsm.url))
    assert out.exit_code == 1, out.stdout + out.stderr
    assert sorted((op.sn, op.operator, op.applied) for op in itsm.state.stats.operations) == [
        ("OP2", "admin", True),
        ("OP3", "admin", True),
    ]
    report = report_of(src)
    assert [r["status"] for r in report] == ["invalid", "invalid", "success", "success"]
    assert "zero width space (U+200B) at position 3" in report[0]["message"]
    assert "NUL character at position 4" in report[1]["message"]
    assert "operator trimmed of invisible characters" in report[2]["message"]


def test_the_message_itsm_receives_has_no_control_character(tmp_path: Path) -> None:
    """NUL, or an ESC sequence that retitles a terminal, in a message: invalid, never
    sent. Invisible ends are trimmed; tabs and line breaks go as written. The server
    records every body it receives."""
    received: list[dict[str, str]] = []

    def handler(request: web.Request, body: bytes) -> web.Response:
        if "get_tickets" in request.path:
            sns = json.loads(body)["sns"]
            items = [{"sn": sn, "current_status": "RUNNING"} for sn in sns]
            return envelope(data={"items": items})
        if "operate_ticket" in request.path:
            received.append(json.loads(body))
            return envelope(data=None)
        return web.Response(status=404)

    rows = [
        ["M1", "admin", "SUSPEND", "stop\x00now"],
        ["M2", "admin", "SUSPEND", "x \x1b]0;owned\x07 y"],
        ["M3", "admin", "SUSPEND", "\u200bplain\u200b"],
        ["M4", "admin", "SUSPEND", "line one\nline\ttwo"],
    ]
    src = write_csv(tmp_path / "t.csv", rows)
    with LoopbackServer(handler) as server:
        out = run_cli(["run", str(src), *FAST], creds_env(server.url))
        bodies = b"".join(r[3] for r in server.requests)
    assert out.exit_code == 1, out.stdout + out.stderr
    assert sorted((r["sn"], r["action_message"]) for r in received) == [
        ("M3", "plain"),
        ("M4", "line one\nline\ttwo"),
    ]
    assert b"\\u0000" not in bodies and b"\\u001b" not in bodies and b"\\u200b" not in bodies
    report = report_of(src)
    assert [r["status"] for r in report] == ["invalid", "invalid", "success", "success"]
    assert "escape character (ESC, U+001B) at position 3" in report[1]["message"]

"""End to end: the real CLI against the stand-in ITSM server over loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter

from batchops.sandbox import Faults, SandboxThread, Ticket

from ..helpers import (
    SECRET,
    creds_env,
    read_report,
    run_cli,
    running,
    seed,
    write_csv,
)


def test_run_success_exit_0_and_report_beside_input(itsm: SandboxThread, tmp_path: Path) -> None:
    """Every row succeeds: exit 0, report beside the input, tickets really changed."""
    seed(itsm, running("NO1"), running("NO2"), running("NO3"))
    src = write_csv(
        tmp_path / "t.csv",
        [
            ["NO1", "admin", "SUSPEND", "wait"],
            ["NO2", "admin", "TERMINATE", "dup"],
            ["NO3", "admin", "WITHDRAW", ""],
        ],
    )
    out = run_cli(["run", str(src)], creds_env(itsm.url))
    assert out.exit_code == 0, out.stdout + out.stderr
    report = read_report(tmp_path / "t.report.csv")
    assert [r["status"] for r in report] == ["success"] * 3
    assert [r["code"] for r in report] == ["0"] * 3
    assert itsm.state.tickets["NO1"].status == "SUSPENDED"
    assert itsm.state.tickets["NO2"].status == "TERMINATED"
    assert itsm.state.tickets["NO3"].status == "REVOKED"
    assert "3 rows: 3 success" in out.stdout
    assert "report:" in out.stdout


def test_business_failure_shows_inner_reason_and_exit_1(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A rejected row is failed with the API code and the inner Chinese reason."""
    seed(itsm, running("NO1", processor="zhangsan"), running("NO2"))
    src = write_csv(
        tmp_path / "t.csv",
        [["NO1", "lisi", "TERMINATE", "not mine"], ["NO2", "admin", "SUSPEND", "x"]],
    )
    out = run_cli(["run", str(src), "--max-failures", "off"], creds_env(itsm.url))
    assert out.exit_code == 1
    first, second = read_report(tmp_path / "t.report.csv")
    assert first["status"] == "failed"
    assert first["code"] == "3900004"
    assert first["message"] == "抱歉，lisi无权操作该单据"
    assert "ErrorDetail" not in first["message"]
    assert second["status"] == "success"


def test_unknown_ticket_is_failed_with_3900022(itsm: SandboxThread, tmp_path: Path) -> None:
    """A ticket the server does not know is failed with code 3900022."""
    src = write_csv(tmp_path / "t.csv", [["NOPE", "admin", "SUSPEND", "x"]])
    out = run_cli(["run", str(src)], creds_env(itsm.url))
    assert out.exit_code == 1
    (row,) = read_report(tmp_path / "t.report.csv")
    assert (row["status"], row["code"]) == ("failed", "3900022")
    assert "没有找到对应的单据" in row["message"]


def test_invalid_rows_never_sent(itsm: SandboxThread, tmp_path: Path) -> None:
    """Every kind of invalid row is reported invalid and none of them reaches the server."""
    seed(itsm, running("NO1"), running("NO9"))
    rows = [
        ["", "admin", "SUSPEND", "blank sn"],
        ["NO1", "", "SUSPEND", "blank operator"],
        ["NO1", "admin", "EXPLODE", "unknown action"],
        ["NO1", "admin", "SUSPEND", ""],
        ["NO1", "admin", "TERMINATE", "   "],
        ["NO1", "admin", "SUSPEND", "x" * 256],
        ["1.23457E+17", "admin", "SUSPEND", "excel"],
        ["20241101123.0", "admin", "SUSPEND", "excel .0"],
        ["NO9", "admin", "SUSPEND", "first"],
        ["NO9", "admin", "SUSPEND", "repeat"],
    ]
    src = write_csv(tmp_path / "t.csv", rows)
    out = run_cli(["run", str(src)], creds_env(itsm.url))
    assert out.exit_code == 1
    report = read_report(tmp_path / "t.report.csv")
    statuses = [r["status"] for r in report]
    assert statuses == ["invalid"] * 8 + ["success", "invalid"]
    assert all(r["message"] for r in report if r["status"] == "invalid")
    sent = {(op.sn, op.action) for op in itsm.state.stats.operations}
    assert sent == {("NO9", "SUSPEND")}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"])
def test_encodings_and_chinese_aliases(itsm: SandboxThread, tmp_path: Path, encoding: str) -> None:
    """Chinese headers and actions in every supported encoding run and report readably."""
    seed(itsm, running("单1"), running("单2"))
    src = write_csv(
        tmp_path / "t.csv",
        [["单1", "admin", "挂起", "等待回复"], ["单2", "admin", "终止", "重复"]],
        header=["单号", "处理人", "操作类型", "备注"],
        encoding=encoding,
    )
    out = run_cli(["run", str(src)], creds_env(itsm.url))
    assert out.exit_code == 0, out.stderr
    raw = (tmp_path / "t.report.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    report = read_report(tmp_path / "t.report.csv")
    assert report[0]["单号"] == "单1"
    assert report[0]["备注"] == "等待回复"
    assert itsm.state.tickets["单1"].status == "SUSPENDED"
    assert itsm.state.tickets["单2"].status == "TERMINATED"


def test_xlsx_round_trip_keeps_text_and_has_no_formulas(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """XLSX in, XLSX out: same columns and text, result columns added, no formula cells."""
    seed(itsm, running("00123"), running("NO2"))
    src = tmp_path / "t.xlsx"
    book = xlsxwriter.Workbook(str(src))
    sheet = book.add_worksheet("Tickets")
    for r, row in enumerate(
        [
            ["ticket", "operator", "action", "message", "note"],
            ["00123", "admin", "suspend", "wait", '=HYPERLINK("http://x")'],
            ["NO2", "admin", "terminate", "dup", "@SUM(A1)"],
        ]
    ):
        for c, value in enumerate(row):
            sheet.write_string(r, c, value)
    book.close()
    out = run_cli(["run", str(src)], creds_env(itsm.url))
    assert out.exit_code == 0, out.stderr
    report = openpyxl.load_workbook(tmp_path / "t.report.xlsx")
    ws = report.worksheets[0]
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows[0][:5] == ["ticket", "operator", "action", "message", "note"]
    assert "status" in rows[0]
    assert rows[1][0] == "00123"
    assert rows[1][4] == '=HYPERLINK("http://x")'
    for row in ws.iter_rows():
        for cell in row:
            assert cell.data_type != "f", cell.coordinate
    status_col = rows[0].index("status")
    assert [r[status_col] for r in rows[1:]] == ["success", "success"]


def test_csv_formula_cells_are_neutralised(itsm: SandboxThread, tmp_path: Path) -> None:
    """A CSV cell starting with = + - @ gets a leading quote in the report."""
    seed(itsm, running("NO1"))
    src = write_csv(
        tmp_path / "t.csv",
        [["NO1", "admin", "SUSPEND", "=cmd|'/c calc'!A1"]],
    )
    run_cli(["run", str(src)], creds_env(itsm.url))
    (row,) = read_report(tmp_path / "t.report.csv")
    assert row["action_message"] == "'=cmd|'/c calc'!A1"


def test_same_ticket_rows_go_in_order_one_at_a_time(tmp_path: Path) -> None:
    """Rows of one sn never overlap on the server and arrive in file order."""
    faults = Faults(latency_ms=15)
    from batchops.sandbox import SandboxConfig, SandboxState

    state = SandboxState(
        SandboxConfig(app_code="batchops-sandbox", app_secret=SECRET, faults=faults)
    )
    sns = [f"NO{i}" for i in range(6)]
    state.seed_tickets(
        Ticket(sn=s, status="RUNNING", creator="admin", processors=["admin"]) for s in sns
    )
    rows = []
    for _round in range(3):
        for sn in sns:
            rows.append([sn, "admin", "SUSPEND", "s"])
            rows.append([sn, "admin", "UNSUSPEND", "u"])
    src = write_csv(tmp_path / "t.csv", rows)
    with SandboxThread(state) as server:
        out = run_cli(
            ["run", str(src), "--concurrency", "8", "--no-precheck"], creds_env(server.url)
        )
    assert out.exit_code == 0, out.stdout + out.stderr
    assert state.stats.concurrent_same_sn == 0
    assert state.stats.double_suspends == 0
    for sn in sns:
        actions = [op.action for op in state.stats.ops_for(sn)]
        assert actions == ["SUSPEND", "UNSUSPEND"] * 3
    assert state.stats.max_in_flight > 1


def test_wrong_secret_stops_run_with_exit_3(itsm: SandboxThread, tmp_path: Path) -> None:
    """A wrong secret stops at once: exit 3, rows pending, the cause named, few requests."""
    seed(itsm, *(running(f"NO{i}") for i in range(300)))
    src = write_csv(tmp_path / "t.csv", [[f"NO{i}", "admin", "SUSPEND", "x"] for i in range(300)])
    out = run_cli(
        ["run", str(src), "--concurrency", "20", "--no-precheck"],
        creds_env(itsm.url, secret="wrong-secret"),
    )
    assert out.exit_code == 3
    assert itsm.state.stats.operations_total <= 20 + 2
    report = read_report(tmp_path / "t.report.csv")
    assert {r["status"] for r in report} == {"pending"}
    # A stop is for people: stderr (what cron mails), never mixed into the results on stdout.
    assert "authentication" in out.stderr and "stopped" not in out.stdout


def test_wrong_secret_with_precheck_sends_no_operation(itsm: SandboxThread, tmp_path: Path) -> None:
    """With the pre-check on, a wrong secret is caught before any operate_ticket."""
    seed(itsm, running("NO1"))
    src = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    out = run_cli(["run", str(src)], creds_env(itsm.url, secret="nope"))
    assert out.exit_code == 3
    assert itsm.state.stats.operations_total == 0
    assert "authentication" in out.stderr.lower() or "认证" in out.stderr


def test_service_off_html_stops_with_exit_3(itsm: SandboxThread, tmp_path: Path) -> None:
    """ITSM switched off answers HTML with HTTP 200: exit 3 and the cause is said."""
    seed(itsm, *(running(f"NO{i}") for i in range(50)))
    itsm.call(lambda: itsm.state.set_faults(Faults(service_off=True)))
    src = write_csv(tmp_path / "t.csv", [[f"NO{i}", "admin", "SUSPEND", "x"] for i in range(50)])
    out = run_cli(["run", str(src), "--no-precheck"], creds_env(itsm.url))
    assert out.exit_code == 3
    assert "HTML" in out.stderr and "HTML" not in out.stdout
    assert itsm.state.stats.requests.get("operate_ticket", 0) <= 22


def test_apigw_gateway_sends_credentials_in_header(itsm: SandboxThread, tmp_path: Path) -> None:
    """--gateway apigw reaches {base}/v2/itsm/... with the header only, and works."""
    seed(itsm, running("NO1"))
    src = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    out = run_cli(["run", str(src), "--gateway", "apigw"], creds_env(itsm.url))
    assert out.exit_code == 0, out.stdout + out.stderr
    assert itsm.state.tickets["NO1"].status == "SUSPENDED"


def test_secret_never_written_anywhere(itsm: SandboxThread, tmp_path: Path) -> None:
    """The app secret is in no file, no stdout and no stderr, success or failure."""
    seed(itsm, running("NO1"))
    src = write_csv(
        tmp_path / "t.csv",
        [["NO1", "admin", "SUSPEND", "x"], ["NO2", "admin", "SUSPEND", "y"], ["", "", "", ""]],
    )
    good = run_cli(["run", str(src), "-o", str(tmp_path / "good.csv")], creds_env(itsm.url))
    bad = run_cli(
        ["run", str(src), "-o", str(tmp_path / "bad.csv"), "--fresh"],
        creds_env(itsm.url, secret=SECRET + "-wrong"),
    )
    assert good.exit_code == 1 and bad.exit_code == 3
    for text in (good.stdout, good.stderr, bad.stdout, bad.stderr):
        assert SECRET not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_strict_sends_nothing_when_a_row_is_invalid(itsm: SandboxThread, tmp_path: Path) -> None:
    """--strict: one invalid row means exit 2 and no request at all."""
    seed(itsm, running("NO1"))
    src = write_csv(
        tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"], ["", "a", "SUSPEND", "y"]]
    )
    out = run_cli(["run", str(src), "--strict"], creds_env(itsm.url))
    assert out.exit_code == 2
    assert out.stderr.startswith("Error: 1 invalid rows")
    assert sum(itsm.state.stats.requests.values()) == 0


def test_plan_sends_no_operation(itsm: SandboxThread, tmp_path: Path) -> None:
    """plan marks sendable rows pending and never calls operate_ticket."""
    seed(itsm, running("NO1"))
    src = write_csv(
        tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"], ["", "a", "SUSPEND", "y"]]
    )
    out = run_cli(["plan", str(src)], creds_env(itsm.url))
    assert out.exit_code == 1
    assert [r["status"] for r in read_report(tmp_path / "t.plan.csv")] == ["pending", "invalid"]
    assert itsm.state.stats.operations_total == 0
    assert itsm.state.tickets["NO1"].status == "RUNNING"


def test_plan_offline_needs_no_credentials(tmp_path: Path) -> None:
    """plan without an ITSM address validates only, and needs no credentials."""
    src = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    out = run_cli(["plan", str(src)])
    assert out.exit_code == 0, out.stderr
    (row,) = read_report(tmp_path / "t.plan.csv")
    assert row["status"] == "pending"


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ("missing", "does not exist"),
        ("extension", ".txt"),
        ("corrupt_xlsx", "xlsx"),
        ("undecodable", "encoding"),
        ("missing_column", "operator"),
        ("no_rows", "no data rows"),
        ("unknown_sheet", "Nope"),
    ],
)
def test_file_errors_exit_2_with_one_line(
    itsm: SandboxThread, tmp_path: Path, setup: str, needle: str
) -> None:
    """Each file-level problem: exit 2, one 'Error:' line, no traceback, nothing sent."""
    args: list[str] = []
    path = tmp_path / "in.csv"
    if setup == "missing":
        path = tmp_path / "absent.csv"
    elif setup == "extension":
        path = tmp_path / "in.txt"
        path.write_text("sn,operator,action_type\n")
    elif setup == "corrupt_xlsx":
        path = tmp_path / "in.xlsx"
        path.write_bytes(b"this is not a zip file")
    elif setup == "undecodable":
        path.write_bytes(b"sn,operator,action_type,action_message\n\x81\xff\xfe\x80,a,SUSPEND,x\n")
    elif setup == "missing_column":
        path.write_text("sn,action_type\nNO1,SUSPEND\n")
    elif setup == "no_rows":
        path.write_text("sn,operator,action_type,action_message\n")
    elif setup == "unknown_sheet":
        path = tmp_path / "in.xlsx"
        book = xlsxwriter.Workbook(str(path))
        book.add_worksheet("Real").write_row(0, 0, ["sn", "operator", "action_type"])
        book.close()
        args = ["--sheet", "Nope"]
    out = run_cli(["run", str(path), *args], creds_env(itsm.url))
    assert out.exit_code == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("Error: ")
    assert needle.lower() in lines[0].lower()
    assert "Traceback" not in out.stderr
    assert sum(itsm.state.stats.requests.values()) == 0


def test_missing_credentials_is_a_clear_error(tmp_path: Path) -> None:
    """No secret in the environment: exit 2 naming BK_APP_SECRET, nothing else read."""
    src = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    out = run_cli(
        ["run", str(src), "--base-url", "http://127.0.0.1:9", "--app-code", "a", "--username", "u"]
    )
    assert out.exit_code == 2
    assert "BK_APP_SECRET" in out.stderr


def test_help_names_every_env_var() -> None:
    """run --help shows each option's environment variable and never a secret flag."""
    out = run_cli(["run", "--help"])
    for name in ("BATCHOPS_BASE_URL", "BK_APP_CODE", "BK_USERNAME", "BK_APP_SECRET", "BK_TOKEN"):
        assert name in out.stdout
    assert "--app-secret" not in out.stdout
    assert "--secret" not in out.stdout


def test_sandbox_demo_runs_the_samples(tmp_path: Path) -> None:
    """The README's first command: samples/ against --sandbox shows all three kinds of row."""
    root = Path(__file__).resolve().parents[2]
    for name in ("tickets.csv", "tickets.xlsx"):
        out_path = tmp_path / ("report" + Path(name).suffix)
        out = run_cli(["run", str(root / "samples" / name), "--sandbox", "-o", str(out_path)])
        assert out.exit_code == 1, out.stdout + out.stderr
        if name.endswith(".csv"):
            statuses = [r["status"] for r in read_report(out_path)]
        else:
            ws = openpyxl.load_workbook(out_path).worksheets[0]
            header = [c.value for c in ws[1]]
            col = header.index("status")
            statuses = [row[col] for row in ws.iter_rows(min_row=2, values_only=True)]
        assert {"success", "failed", "invalid"} <= set(statuses)


def test_summary_counts_and_report_path_in_stdout(itsm: SandboxThread, tmp_path: Path) -> None:
    """The closing summary counts rows per status and gives the report path."""
    seed(itsm, running("NO1"))
    src = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    out = run_cli(["run", str(src)], creds_env(itsm.url))
    assert "1 rows: 1 success" in out.stdout
    assert str(tmp_path / "t.report.csv") in out.stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["run", "{samples}", "--sandbox", "-o", "{out}", "--log-json"], 1),
        (["run", "{missing}", "--sandbox"], 2),
        (["--version"], 0),
    ],
)
def test_the_installed_command_keeps_its_exit_code_and_every_line(
    tmp_path: Path, args: list[str], code: int
) -> None:
    """``python -m batchops`` leaves without the interpreter's teardown: nothing it printed
    into a pipe is lost on the way out, and the exit code is the command's own."""
    root = Path(__file__).resolve().parents[2]
    places = {
        "samples": str(root / "samples" / "tickets.csv"),
        "out": str(tmp_path / "r.csv"),
        "missing": str(tmp_path / "missing.csv"),
    }
    # Block-buffered output, as a pipe gets it by default.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run(
        [sys.executable, "-m", "batchops", *(a.format(**places) for a in args)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == code, done.stdout + done.stderr
    if code == 1:
        assert done.stdout.rstrip().endswith(f"report: {places['out']}")
        events = [json.loads(line) for line in done.stderr.splitlines()]
        assert events[-1]["event"] == "run_finished"
        assert len(read_report(tmp_path / "r.csv")) == 9
    elif code == 2:
        assert done.stderr.startswith("Error: ") and "missing.csv" in done.stderr
    else:
        assert done.stdout.startswith("batchops, version ")


def test_sns_with_hidden_characters_are_invalid_or_trimmed(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """End to end: sns with a zero-width space, a line break, a NUL or a tab inside are
    invalid and never reach the server; one padded with zero-width and no-break spaces is
    sent bare, and the report says it was trimmed."""
    seed(itsm, running("HC1"), running("HC2"))
    src = write_csv(
        tmp_path / "t.csv",
        [
            ["H\u200bC1", "admin", "SUSPEND", "x"],
            ["HC\n1", "admin", "SUSPEND", "x"],
            ["HC\x001", "admin", "SUSPEND", "x"],
            ["HC\t1", "admin", "SUSPEND", "x"],
            ["\u200bHC2\u00a0", "admin", "SUSPEND", "x"],
        ],
    )
    out = run_cli(["run", str(src)], creds_env(itsm.url))
    assert out.exit_code == 1, out.stderr
    report = read_report(tmp_path / "t.report.csv")
    assert [r["status"] for r in report] == ["invalid"] * 4 + ["success"]
    assert "zero width space (U+200B)" in report[0]["message"]
    assert "a line break" in report[1]["message"]
    assert "a NUL character" in report[2]["message"]
    assert "a tab" in report[3]["message"]
    assert "sn trimmed of invisible characters at its ends (U+00A0, U+200B)" in report[4]["message"]
    assert [op.sn for op in itsm.state.stats.operations] == ["HC2"]
    assert itsm.state.tickets["HC1"].status == "RUNNING"

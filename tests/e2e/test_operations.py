"""Daily operations: profiles, confirmation, canary, scheduled-run outputs, handoff, the API."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from datetime import datetime
from pathlib import Path

import openpyxl
import pexpect
import pytest

import batchops
from batchops.model import RESULT_COLUMNS, Status
from batchops.sandbox import SandboxThread

from ..helpers import (
    APP_CODE,
    SECRET,
    creds_env,
    host_env,
    read_report,
    run_cli,
    running,
    seed,
    write_csv,
)

ROOT = Path(__file__).resolve().parents[2]


def write_profiles(path: Path, url: str, **extra: object) -> Path:
    """A batchops.toml with a 'prod' profile pointing at ``url``."""
    lines = [
        'default_profile = "prod"',
        "[profiles.prod]",
        f'base_url = "{url}"',
        f'app_code = "{APP_CODE}"',
        'username = "admin"',
        'secret_env = "PROD_SECRET"',
        "concurrency = 7",
        "timeout = 9",
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    lines += ["[profiles.other]", 'base_url = "http://127.0.0.1:1"', "concurrency = 3"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- profiles


def test_config_show_precedence_flag_env_profile_default(tmp_path: Path) -> None:
    """config show: env beats profile, profile beats default, and each source is named."""
    cfg = write_profiles(tmp_path / "batchops.toml", "http://127.0.0.1:5")
    env = {"BK_APP_CODE": "from-env", "PROD_SECRET": SECRET}
    out = run_cli(["config", "show", "--config", str(cfg), "--profile", "prod"], env)
    assert out.exit_code == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.startswith("  ")}
    assert "from-env" in lines["app_code"] and "[env BK_APP_CODE]" in lines["app_code"]
    assert "7" in lines["concurrency"] and "profile prod" in lines["concurrency"]
    assert "http://127.0.0.1:5" in lines["base_url"]
    assert "[default]" in lines["retries"]
    assert SECRET not in out.stdout
    assert "(set)" in lines["app"]  # "app secret  (set)  [env PROD_SECRET]"
    assert "PROD_SECRET" in lines["app"]


def test_flag_beats_env_beats_profile_in_a_real_run(itsm: SandboxThread, tmp_path: Path) -> None:
    """A run takes base URL and user from the profile and the secret from secret_env; a
    wrong URL in the environment is overridden by the flag."""
    seed(itsm, running("NO1"))
    cfg = write_profiles(tmp_path / "batchops.toml", "http://127.0.0.1:1")
    src = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    env = {"PROD_SECRET": SECRET, "BATCHOPS_BASE_URL": "http://127.0.0.1:2"}
    out = run_cli(
        ["run", str(src), "--config", str(cfg), "--profile", "prod", "--base-url", itsm.url], env
    )
    assert out.exit_code == 0, out.stdout + out.stderr
    assert itsm.state.tickets["NO1"].status == "SUSPENDED"


def test_profile_refuses_a_secret_in_the_file(tmp_path: Path) -> None:
    """A profile holding a secret is refused with a one-line hint to use secret_env."""
    cfg = tmp_path / "batchops.toml"
    cfg.write_text('[profiles.prod]\napp_secret = "oops"\n', encoding="utf-8")
    out = run_cli(["config", "show", "--config", str(cfg), "--profile", "prod"])
    assert out.exit_code == 2
    assert "secret_env" in out.stderr
    assert "oops" not in out.stderr


def test_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    """--profile with a name the file lacks says which profiles exist."""
    cfg = write_profiles(tmp_path / "batchops.toml", "http://x")
    out = run_cli(["config", "show", "--config", str(cfg), "--profile", "nope"])
    assert out.exit_code == 2
    assert "other, prod" in out.stderr


def test_profile_found_in_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trusted batchops.toml in the working directory is found without --config."""
    write_profiles(tmp_path / "batchops.toml", "http://127.0.0.1:5")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert run_cli(["config", "trust", "batchops.toml"]).exit_code == 0
    out = run_cli(["config", "show"])
    assert out.exit_code == 0
    assert "profile: prod" in out.stdout


# --------------------------------------------------------------------------- confirmation


def _spawn(args: list[str], env: dict[str, str], cwd: Path) -> pexpect.spawn:
    full_env = host_env()
    full_env.update(env)
    full_env["COLUMNS"] = "120"
    return pexpect.spawn(
        sys.executable,
        ["-m", "batchops", *args],
        env=full_env,
        cwd=str(cwd),
        encoding="utf-8",
        timeout=30,
    )


def test_terminal_run_asks_and_no_sends_nothing(itsm: SandboxThread, tmp_path: Path) -> None:
    """On a pseudo-terminal, run shows the plan and asks; answering no sends nothing."""
    seed(itsm, running("NO1"), running("NO2"))
    src = write_csv(
        tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"], ["NO2", "admin", "TERMINATE", "y"]]
    )
    child = _spawn(["run", str(src)], creds_env(itsm.url), tmp_path)
    child.expect("About to send 2 of 2 rows")
    child.expect("1 SUSPEND, 1 TERMINATE")
    child.expect(r"Send these operations\?")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert itsm.state.stats.operations_total == 0


def test_terminal_run_asks_and_yes_sends(itsm: SandboxThread, tmp_path: Path) -> None:
    """On a pseudo-terminal, answering yes sends every row."""
    seed(itsm, running("NO1"))
    src = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    child = _spawn(["run", str(src)], creds_env(itsm.url), tmp_path)
    child.expect(r"Send these operations\?")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert itsm.state.tickets["NO1"].status == "SUSPENDED"


def test_ctrl_c_at_the_question_sends_nothing(itsm: SandboxThread, tmp_path: Path) -> None:
    """Ctrl-C at the confirmation means no: nothing sent, no traceback."""
    seed(itsm, running("NO1"))
    src = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    child = _spawn(["run", str(src)], creds_env(itsm.url), tmp_path)
    child.expect(r"Send these operations\?")
    child.sendintr()
    child.expect(pexpect.EOF)
    output = child.before
    child.close()
    assert child.exitstatus == 1
    assert "Traceback" not in output
    assert itsm.state.stats.operations_total == 0


def test_yes_skips_the_question_on_a_terminal(itsm: SandboxThread, tmp_path: Path) -> None:
    """--yes on a terminal sends without asking."""
    seed(itsm, running("NO1"))
    src = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    child = _spawn(["run", str(src), "--yes"], creds_env(itsm.url), tmp_path)
    index = child.expect([r"Send these operations\?", pexpect.EOF])
    child.close()
    assert index == 1
    assert child.exitstatus == 0


def test_no_terminal_never_blocks(itsm: SandboxThread, tmp_path: Path) -> None:
    """Without a terminal (cron), run neither asks nor waits for input."""
    import subprocess

    seed(itsm, running("NO1"))
    src = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    env = host_env()
    env.update(creds_env(itsm.url))
    done = subprocess.run(
        [sys.executable, "-m", "batchops", "run", str(src)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Send these operations" not in done.stderr


# --------------------------------------------------------------------------- canary


def test_canary_without_terminal_goes_on_when_all_succeed(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """--canary 2 without a terminal: the canary succeeds, so the rest is sent too."""
    seed(itsm, *(running(f"NO{i}") for i in range(6)))
    src = write_csv(tmp_path / "t.csv", [[f"NO{i}", "admin", "SUSPEND", "x"] for i in range(6)])
    out = run_cli(["run", str(src), "--canary", "2"], creds_env(itsm.url))
    assert out.exit_code == 0, out.stdout
    assert itsm.state.stats.operations_total == 6


def test_canary_failure_stops_before_the_rest(itsm: SandboxThread, tmp_path: Path) -> None:
    """A failing canary row stops the run: exit 3, the rest pending, and a resume finishes."""
    seed(itsm, *(running(f"NO{i}") for i in range(6)))
    rows = [[f"NO{i}", "admin", "SUSPEND", "x"] for i in range(6)]
    rows[1][1] = "intruder"  # not a processor: ITSM refuses it
    src = write_csv(tmp_path / "t.csv", rows)
    out = run_cli(["run", str(src), "--canary", "2"], creds_env(itsm.url))
    assert out.exit_code == 3
    assert "canary" in out.stderr
    statuses = [r["status"] for r in read_report(tmp_path / "t.report.csv")]
    assert statuses == ["success", "failed"] + ["pending"] * 4
    assert itsm.state.stats.operations_total == 2
    again = run_cli(["run", str(src)], creds_env(itsm.url))
    assert again.exit_code == 1
    statuses = [r["status"] for r in read_report(tmp_path / "t.report.csv")]
    assert statuses == ["success", "failed"] + ["success"] * 4
    assert itsm.state.stats.operations_total == 6


def test_canary_gate_holds_when_the_failed_canary_is_retried(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """After a failed canary, the advice's --retry-failed command keeps --canary: the
    failed row goes first again, fails again, and the rest is still not sent."""
    seed(itsm, *(running(f"NR{i}") for i in range(6)))
    rows = [[f"NR{i}", "admin", "SUSPEND", "x"] for i in range(6)]
    rows[0][1] = "intruder"  # not a processor: ITSM refuses it
    src = write_csv(tmp_path / "t.csv", rows)
    args = ["run", str(src), "--canary", "2"]
    out = run_cli(args, creds_env(itsm.url))
    assert out.exit_code == 3, out.stdout + out.stderr
    retry = f"batchops {' '.join(args)} --retry-failed"
    assert retry in out.stderr
    assert itsm.state.stats.operations_total == 2

    again = run_cli([*args, "--retry-failed"], creds_env(itsm.url))

    assert again.exit_code == 3, again.stdout + again.stderr
    statuses = [r["status"] for r in read_report(tmp_path / "t.report.csv")]
    assert statuses == ["failed", "success", "success"] + ["pending"] * 3
    # Only the canary went: the failed row once more, and one new row.
    assert [op.sn for op in itsm.state.stats.operations] == ["NR0", "NR1", "NR0", "NR2"]


def test_canary_on_a_terminal_asks_before_the_rest(itsm: SandboxThread, tmp_path: Path) -> None:
    """On a terminal, --canary shows the canary's outcomes and asks; no stops there."""
    seed(itsm, *(running(f"NO{i}") for i in range(5)))
    src = write_csv(tmp_path / "t.csv", [[f"NO{i}", "admin", "SUSPEND", "x"] for i in range(5)])
    child = _spawn(["run", str(src), "--canary", "2", "--yes"], creds_env(itsm.url), tmp_path)
    child.expect("Canary: 2 rows sent first")
    child.expect("NO0 SUSPEND → success")
    child.expect(r"Send the rest\?")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    assert itsm.state.stats.operations_total == 2


def test_ctrl_c_at_the_canary_question_stops_and_reports(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """Ctrl-C at "Send the rest?" stops like a no: exit 3, report written, rest pending."""
    seed(itsm, *(running(f"NO{i}") for i in range(4)))
    src = write_csv(tmp_path / "t.csv", [[f"NO{i}", "admin", "SUSPEND", "x"] for i in range(4)])
    child = _spawn(["run", str(src), "--canary", "1", "--yes"], creds_env(itsm.url), tmp_path)
    child.expect(r"Send the rest\?")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    statuses = [r["status"] for r in read_report(tmp_path / "t.report.csv")]
    assert statuses == ["success", "pending", "pending", "pending"]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_at_a_question_only_the_main_thread_can_take_ctrl_c(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """Every other thread blocks SIGINT and SIGTERM, so a Ctrl-C always wakes the question.

    The kernel gives a process-wide signal to any thread not blocking it; a worker thread
    that took it left the main thread asleep in the question's read (a hang seen in CI).
    """
    seed(itsm, *(running(f"TQ{i}") for i in range(3)))
    src = write_csv(tmp_path / "t.csv", [[f"TQ{i}", "admin", "SUSPEND", "x"] for i in range(3)])
    child = _spawn(["run", str(src), "--canary", "1", "--yes"], creds_env(itsm.url), tmp_path)
    child.expect(r"Send the rest\?")
    masks = {}
    for task in Path(f"/proc/{child.pid}/task").iterdir():
        status = (task / "status").read_text()
        masks[int(task.name)] = int(re.search(r"SigBlk:\s*([0-9a-f]+)", status).group(1), 16)
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    workers = {tid: mask for tid, mask in masks.items() if tid != child.pid}
    assert workers, "the run is expected to have worker threads (name resolution)"
    sigint, sigterm = 1 << (2 - 1), 1 << (15 - 1)
    assert all(mask & sigint and mask & sigterm for mask in workers.values()), masks
    assert not masks[child.pid] & sigint
    assert child.exitstatus == 3


# --------------------------------------------------------------------------- scheduled runs


def test_summary_json_contents(itsm: SandboxThread, tmp_path: Path) -> None:
    """--summary-json holds counts per status and action, timing, paths, exit code."""
    seed(itsm, running("NO1"))
    src = write_csv(
        tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"], ["NO2", "admin", "TERMINATE", "y"]]
    )
    out = run_cli(
        ["run", str(src), "--summary-json", str(tmp_path / "s.json"), "--max-failures", "off"],
        creds_env(itsm.url),
    )
    data = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert data["exit_code"] == out.exit_code == 1
    assert data["counts"]["success"] == 1 and data["counts"]["failed"] == 1
    assert data["counts_by_action"] == {"SUSPEND": {"success": 1}, "TERMINATE": {"failed": 1}}
    assert data["report"] == str(tmp_path / "t.report.csv")
    assert data["checkpoint"] == str(tmp_path / ".batchops" / "t.checkpoint.db")
    assert re.fullmatch(r"[0-9a-f]{64}", data["input_fingerprint"])
    assert data["elapsed_s"] >= 0 and data["rows_per_second"] >= 0
    assert SECRET not in (tmp_path / "s.json").read_text(encoding="utf-8")


def test_log_json_lines(itsm: SandboxThread, tmp_path: Path) -> None:
    """--log-json writes one JSON object per stderr line: start, pre-check, failures, end."""
    seed(itsm, running("NO1"))
    src = write_csv(
        tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"], ["NO2", "admin", "TERMINATE", "y"]]
    )
    out = run_cli(["run", str(src), "--log-json"], creds_env(itsm.url))
    records = [json.loads(line) for line in out.stderr.splitlines() if line.strip()]
    events = [r["event"] for r in records]
    assert events[0] == "run_started" and events[-1] == "run_finished"
    assert "precheck_done" in events
    failed = [r for r in records if r["event"] == "row_failed"]
    assert len(failed) == 1 and failed[0]["sn"] == "NO2" and failed[0]["code"] == 3900022
    assert all("ts" in r for r in records)
    assert records[-1]["exit_code"] == 1
    assert SECRET not in out.stderr


def test_quiet_prints_nothing_on_success(itsm: SandboxThread, tmp_path: Path) -> None:
    """--quiet: a clean run prints nothing at all."""
    seed(itsm, running("NO1"))
    src = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    out = run_cli(["run", str(src), "--quiet"], creds_env(itsm.url))
    assert out.exit_code == 0
    assert out.stdout == "" and out.stderr == ""


# --------------------------------------------------------------------------- handoff


def _xlsx_input(path: Path, rows: list[list[str]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Tickets"
    sheet.append(["sn", "operator", "action_type", "action_message", "owner team"])
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_summary_sheet_contents(itsm: SandboxThread, tmp_path: Path) -> None:
    """The XLSX report is the input's workbook with the results and a Summary
    sheet: times, rows per action and status with a chart, top reasons with an example
    sn, settings; no secret anywhere."""
    seed(itsm, running("NO1"), running("NO2", processor="zhang"))
    src = _xlsx_input(
        tmp_path / "t.xlsx",
        [
            ["NO1", "admin", "SUSPEND", "x", "ops"],
            ["NO2", "admin", "TERMINATE", "y", "ops"],
            ["", "admin", "SUSPEND", "z", "ops"],
        ],
    )
    run_cli(["run", str(src), "--max-failures", "off"], creds_env(itsm.url))
    book = openpyxl.load_workbook(tmp_path / "t.report.xlsx")
    assert book.sheetnames == ["Tickets", "Summary"]
    summary = book["Summary"]
    cells = [list(r) for r in summary.iter_rows(values_only=True)]
    facts = {r[0]: r[1] for r in cells if r[0]}
    assert facts["rows"] == 3 and facts["exit code"] == 1
    assert isinstance(facts["started"], datetime) and isinstance(facts["ended"], datetime)
    assert facts["started"] <= facts["ended"]
    assert facts["target"] == itsm.url and facts["profile"] == "(none)"
    header = next(r for r in cells if r[0] == "action")
    table = {r[0]: dict(zip(header[1:], r[1:], strict=False)) for r in cells if r[0] == "SUSPEND"}
    assert table["SUSPEND"]["success"] == 1 and table["SUSPEND"]["invalid"] == 1
    reason = next(r for r in cells if r[0] == "[3900004] 抱歉，admin无权操作该单据")
    assert reason[1:3] == [1, "NO2"]
    assert facts["  app_code"] == APP_CODE
    assert len(summary._charts) == 1
    results = book["Tickets"]
    # The input's own sheet, as it came (no pane frozen, no filter), plus the results.
    assert results.freeze_panes is None and not results.auto_filter.ref
    assert [c.value for c in results[1]][-len(RESULT_COLUMNS) :] == list(RESULT_COLUMNS)
    for sheet in book.worksheets:
        for row in sheet.iter_rows(values_only=True):
            assert all(SECRET not in str(v) for v in row)


def test_fix_the_red_rows_and_send_the_report_back(itsm: SandboxThread, tmp_path: Path) -> None:
    """A report is valid input: fix a failed row, run it with --only failed, and only that
    row is sent; the other rows keep their earlier result."""
    seed(itsm, running("NO1"), running("NO2", processor="zhang"), running("NO3"))
    src = _xlsx_input(
        tmp_path / "t.xlsx",
        [
            ["NO1", "admin", "SUSPEND", "x", "ops"],
            ["NO2", "admin", "TERMINATE", "y", "ops"],
            ["NO3", "admin", "SUSPEND", "z", "ops"],
        ],
    )
    first = run_cli(["run", str(src), "--max-failures", "off"], creds_env(itsm.url))
    assert first.exit_code == 1
    report = tmp_path / "t.report.xlsx"
    book = openpyxl.load_workbook(report)
    sheet = book["Tickets"]
    header = [c.value for c in sheet[1]]
    assert sheet.cell(3, header.index("status") + 1).value == "failed"
    sheet.cell(3, header.index("operator") + 1).value = "zhang"  # the fix
    book.save(report)
    sent_before = itsm.state.stats.operations_total

    second = run_cli(["run", str(report), "--only", "failed,unknown"], creds_env(itsm.url))
    assert second.exit_code == 0, second.stdout + second.stderr
    assert itsm.state.stats.operations_total == sent_before + 1
    assert itsm.state.tickets["NO2"].status == "TERMINATED"
    again = openpyxl.load_workbook(tmp_path / "t.report-2.xlsx")["Tickets"]
    header = [c.value for c in again[1]]
    assert header.count("status") == 1 and header[-8:][0] == "status"
    statuses = [r[header.index("status")] for r in again.iter_rows(min_row=2, values_only=True)]
    assert statuses == ["success", "success", "success"]
    codes = [r[header.index("code")] for r in again.iter_rows(min_row=2, values_only=True)]
    assert codes == [0, 0, 0]


def test_report_fed_back_without_only_sends_only_rows_not_done(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A report run again as it is (no --only) does not replay its successes: only the
    rows not done are sent (here the failed one, fixed), and stderr says so. With the
    pre-check off too, so the pre-check is not what saves the successful rows."""
    seed(itsm, running("RB1"), running("RB2", processor="zhang"), running("RB3"))
    src = write_csv(
        tmp_path / "t.csv",
        [
            ["RB1", "admin", "TERMINATE", "x"],
            ["RB2", "admin", "TERMINATE", "y"],
            ["RB3", "admin", "TERMINATE", "z"],
        ],
    )
    first = run_cli(["run", str(src), "--max-failures", "off"], creds_env(itsm.url))
    assert first.exit_code == 1
    report = tmp_path / "t.report.csv"
    text = report.read_text(encoding="utf-8-sig").replace("RB2,admin", "RB2,zhang")
    report.write_text(text, encoding="utf-8-sig")
    itsm.call(itsm.state.reset_stats)

    second = run_cli(["run", str(report), "--no-precheck"], creds_env(itsm.url))
    assert second.exit_code == 0, second.stdout + second.stderr
    assert [op.sn for op in itsm.state.stats.operations] == ["RB2"]
    assert "is a batchops report: only its rows that are not done" in second.stderr
    statuses = [r["status"] for r in read_report(tmp_path / "t.report-2.csv")]
    assert statuses == ["success", "success", "success"]


def test_a_report_fed_back_keeps_a_done_row_and_its_spelling_of_the_sn(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """Fixing an earlier row whose sn is a done row's in other letter case neither sends
    it (ITSM may take both for one ticket) nor costs the done row its success."""
    seed(itsm, running("CV1"))
    src = write_csv(
        tmp_path / "t.csv", [["cv1", "", "SUSPEND", "x"], ["CV1", "admin", "SUSPEND", "x"]]
    )
    assert run_cli(["run", str(src)], creds_env(itsm.url)).exit_code == 1  # row 2 invalid
    report = tmp_path / "t.report.csv"
    text = report.read_text(encoding="utf-8-sig").replace("cv1,,", "cv1,admin,")
    report.write_text(text, encoding="utf-8-sig")
    itsm.call(itsm.state.reset_stats)

    again = run_cli(["run", str(report), "--no-precheck"], creds_env(itsm.url))

    assert again.exit_code == 1, again.stderr
    assert itsm.state.stats.operations_total == 0
    rows = read_report(tmp_path / "t.report-2.csv")
    assert rows[0]["status"] == "invalid"
    assert rows[0]["message"].startswith("sn 'cv1' is row 3's sn 'CV1' in other letter case")
    assert rows[1]["status"] == "success"


def test_only_needs_a_report(tmp_path: Path) -> None:
    """--only on a plain input file is a clear usage error."""
    src = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    out = run_cli(["run", str(src), "--only", "failed", "--sandbox"])
    assert out.exit_code == 2
    assert "report" in out.stderr


def test_failures_file_holds_only_rows_needing_attention(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """--failures writes only failed/unknown/invalid rows, in the input's columns first."""
    seed(itsm, running("NO1"))
    src = write_csv(
        tmp_path / "t.csv",
        [["NO1", "admin", "SUSPEND", "x"], ["NO2", "admin", "SUSPEND", "y"], ["", "a", "b", ""]],
    )
    run_cli(
        ["run", str(src), "--failures", str(tmp_path / "todo.csv"), "--max-failures", "off"],
        creds_env(itsm.url),
    )
    rows = read_report(tmp_path / "todo.csv")
    assert [r["sn"] for r in rows] == ["NO2", ""]
    assert [r["status"] for r in rows] == ["failed", "invalid"]
    assert list(rows[0])[:4] == ["sn", "operator", "action_type", "action_message"]


# --------------------------------------------------------------------------- Python API


def test_python_api_run_and_plan(itsm: SandboxThread, tmp_path: Path) -> None:
    """batchops.run_batch / plan_batch take the CLI's options as frozen records
    (RunOptions, Files) and return a summary."""
    seed(itsm, running("NO1"), running("NO2"))
    src = write_csv(
        tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"], ["NO2", "admin", "SUSPEND", "y"]]
    )
    env = {"BK_APP_SECRET": SECRET}
    target = batchops.RunOptions(base_url=itsm.url, app_code=APP_CODE, username="admin")
    planned = batchops.plan_batch(src, target, env=env)
    assert planned.counts[Status.PENDING.value] == 2
    assert itsm.state.stats.operations_total == 0
    summary = batchops.run_batch(
        src,
        dataclasses.replace(target, concurrency=2),
        files=batchops.Files(output=tmp_path / "out.csv"),
        env=env,
    )
    assert summary.exit_code == 0
    assert summary.counts[Status.SUCCESS.value] == 2
    assert summary.report_path == str(tmp_path / "out.csv")
    assert itsm.state.stats.operations_total == 2


def test_python_api_raises_batchops_errors(tmp_path: Path) -> None:
    """The API raises the project's own errors (here: no credentials), never exits."""
    from batchops.errors import ConfigError

    src = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    with pytest.raises(ConfigError, match="BK_APP_SECRET"):
        batchops.run_batch(
            src, batchops.RunOptions(base_url="http://127.0.0.1:9", app_code="a"), env={}
        )

"""Fixing rows is part of resuming, end to end: the rows that failed or were invalid are
fixed in the sheet (or in the report) and the command the run advised sends exactly
them; a row already applied must stay as it was sent; every row not sent is told."""

from __future__ import annotations

import shlex
from collections import Counter
from pathlib import Path

from batchops.sandbox import SandboxThread

from ..children import _applied
from ..helpers import (
    FAST,
    creds_env,
    read_report,
    run_cli,
    running,
    seed,
    write_csv,
)


def _advised(stderr: str, lead: str) -> list[str]:
    """The command after ``lead`` in a run's advice, split as a shell splits it."""
    (line,) = [line for line in stderr.splitlines() if line.startswith(lead)]
    words = shlex.split(line.split(": ", 1)[1])
    assert words[:2] == ["batchops", "run"], line
    return words[1:]


def _operations(itsm: SandboxThread) -> int:
    return itsm.state.stats.requests.get("operate_ticket", 0)


def _sent_sns(itsm: SandboxThread, since: int) -> list[str]:
    return [op.sn for op in itsm.state.stats.operations[since:]]


def _five_fail(itsm: SandboxThread, tmp_path: Path, prefix: str) -> tuple[Path, list[list[str]]]:
    """Eight rows; five name an operator who is not the ticket's processor and fail."""
    sns = [f"{prefix}{i}" for i in range(8)]
    seed(itsm, *(running(sn) for sn in sns))
    rows = [[sn, "bob" if i % 3 else "admin", "SUSPEND", "freeze"] for i, sn in enumerate(sns)]
    src = write_csv(tmp_path / "freeze.csv", rows)
    first = run_cli(["run", str(src), *FAST], creds_env(itsm.url))
    assert first.exit_code == 1, first.stdout + first.stderr
    statuses = [r["status"] for r in read_report(tmp_path / "freeze.report.csv")]
    assert statuses.count("failed") == 5 and statuses.count("success") == 3
    return src, rows


def test_the_advised_command_sends_exactly_the_fixed_rows(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """5 rows fail (operator not a processor); their operator cells are fixed; the command
    printed on stderr, run verbatim, sends exactly those 5 and exits 0."""
    sns = [f"FX{i}" for i in range(8)]
    seed(itsm, *(running(sn) for sn in sns))
    rows = [[sn, "bob" if i % 3 else "admin", "SUSPEND", "freeze"] for i, sn in enumerate(sns)]
    src = write_csv(tmp_path / "freeze.csv", rows)
    env = creds_env(itsm.url)
    first = run_cli(["run", str(src), *FAST], env)
    assert first.exit_code == 1, first.stdout + first.stderr
    command = _advised(first.stderr, "once their cause is fixed, resend them with: ")
    assert "--retry-failed" in command
    failed = [row[0] for row in rows if row[1] == "bob"]
    assert len(failed) == 5

    for row in rows:
        row[1] = "admin"
    write_csv(src, rows)
    before = _operations(itsm)
    again = run_cli(command, env)

    assert again.exit_code == 0, again.stdout + again.stderr
    assert _operations(itsm) - before == 5
    assert sorted(_sent_sns(itsm, len(itsm.state.stats.operations) - 5)) == sorted(failed)
    assert _applied(itsm.state.stats.operations) == Counter({(sn, "SUSPEND"): 1 for sn in sns})
    assert [r["status"] for r in read_report(tmp_path / "freeze.report.csv")] == ["success"] * 8
    assert "5 rows changed since the last run" in again.stdout


def test_editing_a_done_row_is_refused_naming_its_sheet_row(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """The fix edits a row that was applied instead: exit 2, its sheet row and what changed
    named, nothing sent (not even a read); put back, the same command goes on."""
    src, rows = _five_fail(itsm, tmp_path, "FD")
    env = creds_env(itsm.url)
    command = ["run", str(src), *FAST, "--retry-failed"]
    rows[3][1] = "carol"  # row 3 (sheet row 5) succeeded
    write_csv(src, rows)
    requests = sum(itsm.state.stats.requests.values())

    refused = run_cli(command, env)

    assert refused.exit_code == 2, refused.stdout + refused.stderr
    assert "row 5 (sn 'FD3', SUSPEND, success): its operator or action_message changed" in (
        refused.stderr
    )
    assert "Nothing was sent" in refused.stderr
    in_chinese = run_cli([*command, "--lang", "zh"], env)
    assert in_chinese.exit_code == 2, in_chinese.stderr
    assert "第 5 行（单号 'FD3'，SUSPEND，success）：处理人或 action_message 改了" in (
        in_chinese.stderr
    )
    assert "本次什么都没有发送" in in_chinese.stderr and "--fresh" in in_chinese.stderr
    assert sum(itsm.state.stats.requests.values()) == requests

    write_csv(src, [[sn, "admin", action, msg] for sn, _op, action, msg in rows])
    before = _operations(itsm)
    fixed = run_cli(command, env)
    assert fixed.exit_code == 0, fixed.stdout + fixed.stderr
    assert _operations(itsm) - before == 5


def test_a_fixed_report_runs_with_only_failed_again_and_again(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """The report's failed rows are fixed (one of them wrongly) and run with --only failed:
    the five are sent, four succeed; the last is fixed and the advised command sends just
    it. No ticket is operated twice."""
    _src, rows = _five_fail(itsm, tmp_path, "FR")
    env = creds_env(itsm.url)
    report = tmp_path / "freeze.report.csv"
    failed = [row[0] for row in rows if row[1] == "bob"]

    def fix(sns: dict[str, str]) -> None:
        lines = report.read_text(encoding="utf-8").splitlines()
        out = [lines[0]]
        for line in lines[1:]:
            cells = line.split(",")
            if cells[0] in sns:
                cells[1] = sns[cells[0]]
            out.append(",".join(cells))
        report.write_text("\n".join(out) + "\n", encoding="utf-8")

    fix({sn: ("carol" if sn == failed[-1] else "admin") for sn in failed})
    before = _operations(itsm)
    first = run_cli(["run", str(report), "--only", "failed", *FAST], env)
    assert first.exit_code == 1, first.stdout + first.stderr
    assert _operations(itsm) - before == 5
    command = _advised(first.stderr, "once their cause is fixed, resend them with: ")
    assert command[:4] == ["run", str(report), "--only", "failed"]

    fix({failed[-1]: "admin"})
    before = _operations(itsm)
    second = run_cli(command, env)
    assert second.exit_code == 0, second.stdout + second.stderr
    assert _sent_sns(itsm, len(itsm.state.stats.operations) - 1) == [failed[-1]]
    assert _operations(itsm) - before == 1
    sns = [row[0] for row in rows]
    assert _applied(itsm.state.stats.operations) == Counter({(sn, "SUSPEND"): 1 for sn in sns})

    third = run_cli(command, env)
    assert third.exit_code == 0, third.stdout + third.stderr
    assert _operations(itsm) - before == 1  # nothing left: nothing sent


def test_invalid_rows_are_named_with_their_reasons_at_the_end(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """Sheet rows 3, 5 and 7 are invalid: the end of the run names them and why (stderr),
    never "nothing left to do"; fixed, the advised command sends just them."""
    sns = [f"IV{i}" for i in range(6)]
    seed(itsm, *(running(sn) for sn in sns))
    rows = [[sn, "admin", "SUSPEND", "freeze"] for sn in sns]
    rows[1][1] = ""  # sheet row 3
    rows[3][2] = "FREEZE"  # sheet row 5
    rows[5][1] = ""  # sheet row 7
    src = write_csv(tmp_path / "t.csv", rows)
    env = creds_env(itsm.url)

    first = run_cli(["run", str(src), *FAST], env)

    assert first.exit_code == 1, first.stdout + first.stderr
    lines = first.stderr.splitlines()
    at = lines.index("3 invalid, not sent:")
    assert lines[at + 1].startswith("  2 × operator is blank"), first.stderr
    assert lines[at + 1].endswith("(rows 3, 7)"), first.stderr
    assert lines[at + 2].startswith("  1 × action_type 'FREEZE'"), first.stderr
    assert lines[at + 2].endswith("(row 5)"), first.stderr
    assert "nothing left to do" not in first.stderr
    command = _advised(first.stderr, "fix them in the sheet, then send them with: ")

    rows[1][1] = rows[5][1] = "admin"
    rows[3][2] = "SUSPEND"
    write_csv(src, rows)
    before = _operations(itsm)
    again = run_cli(command, env)
    assert again.exit_code == 0, again.stdout + again.stderr
    assert sorted(_sent_sns(itsm, len(itsm.state.stats.operations) - 3)) == ["IV1", "IV3", "IV5"]
    assert _operations(itsm) - before == 3


def test_a_run_begun_in_chinese_resumes_in_english_with_its_blank_messages(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A blank message is sent as Chinese text under zh and English under en; the
    checkpoint knows the row by its blank cell, so the run begun under zh resumes under
    en (the fixed row is sent, the applied one is not refused as edited nor sent again)."""
    seed(itsm, running("LG1", status="SUSPENDED"), running("LG2"))
    rows = [["LG1", "admin", "UNSUSPEND", ""], ["LG2", "bob", "SUSPEND", "freeze"]]
    src = write_csv(tmp_path / "t.csv", rows)
    env = creds_env(itsm.url)
    first = run_cli(["run", str(src), *FAST, "--lang", "zh"], env)
    assert first.exit_code == 1, first.stdout + first.stderr
    assert [op.message for op in itsm.state.stats.operations if op.sn == "LG1"] == [
        "批量操作：解挂"
    ]
    rows[1][1] = "admin"
    write_csv(src, rows)
    again = run_cli(["run", str(src), *FAST, "--lang", "en", "--retry-failed"], env)
    assert again.exit_code == 0, again.stdout + again.stderr
    assert [op.sn for op in itsm.state.stats.operations].count("LG1") == 1
    assert _applied(itsm.state.stats.operations) == Counter(
        {("LG1", "UNSUSPEND"): 1, ("LG2", "SUSPEND"): 1}
    )
    assert [r["status"] for r in read_report(tmp_path / "t.report.csv")] == ["success"] * 2


def test_a_handoff_round_leaves_only_sheets_and_reports_beside_the_input(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """plan, run, the report fed back, --fresh and undo: the shared folder holds only the
    sheets and reports; checkpoints, locks and backups are in .batchops/ beside them."""
    src, _rows = _five_fail(itsm, tmp_path, "HO")
    env = creds_env(itsm.url)
    assert run_cli(["plan", str(src)]).exit_code in (0, 1)
    report = tmp_path / "freeze.report.csv"
    run_cli(["run", str(report), *FAST, "--only", "failed"], env)
    run_cli(["run", str(src), *FAST, "--fresh"], env)
    assert run_cli(["undo", str(report)]).exit_code in (0, 1)
    shared = sorted(p.name for p in tmp_path.iterdir() if p.name != ".batchops")
    assert all(not name.endswith((".db", ".lock", ".bak", "-wal", "-shm")) for name in shared), (
        shared
    )
    assert all(name.endswith((".csv", ".xlsx")) for name in shared), shared
    state = sorted(p.name for p in (tmp_path / ".batchops").iterdir())
    assert "freeze.checkpoint.db" in state and "freeze.report.checkpoint.db" in state, state
    assert any(name.endswith(".bak") for name in state), state
    status = run_cli(["status", str(tmp_path / ".batchops" / "freeze.checkpoint.db")])
    assert status.exit_code == 0, status.stdout + status.stderr

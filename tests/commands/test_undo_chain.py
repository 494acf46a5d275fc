"""``batchops undo`` over a chain of reports of one sheet (issue 23, part 6): a report
fed back as input writes ``freeze.report-2.csv``, whose run applies rows of its own; the
undo of ``freeze.report.csv`` names that report and, with ``--with-newer``, reverses
what both runs applied, each operation once."""

from __future__ import annotations

import shlex
from collections import Counter
from pathlib import Path

import openpyxl

from batchops.sandbox import SandboxThread

from ..helpers import HEADER, cli, read_report, run_cli, running, seed, write_csv, write_xlsx
from .test_undo import rewrite_report

ROWS = [
    ["S1", "admin", "SUSPEND", "freeze"],  # 2  success in run 1
    ["F1", "admin", "SUSPEND", "freeze"],  # 3  failed (zhang's ticket), fixed, run 2
    ["P1", "admin", "SUSPEND", "freeze"],  # 4  success in run 1
    ["P1", "zhang", "UNSUSPEND", "thaw"],  # 5  failed (not zhang's), fixed, run 2
    ["F2", "admin", "SUSPEND", "freeze"],  # 6  failed (zhang's ticket), fixed, run 2
    ["F3", "admin", "SUSPEND", "freeze"],  # 7  failed, left as it is
    ["S2", "admin", "SUSPEND", "freeze"],  # 8  success in run 1
]
#: The operator each failed row is fixed to before the report is run again.
FIXED = {"F1": "zhang", "P1": "admin", "F2": "zhang"}


def two_runs(itsm: SandboxThread, tmp_path: Path) -> Path:
    """freeze.csv run (4 rows fail), three of them fixed in its report, which is run
    with --only failed: freeze.report-2.csv. The first report."""
    seed(itsm, running("S1"), running("S2"), running("P1"))
    seed(itsm, *(running(sn, processor="zhang") for sn in ("F1", "F2", "F3")))
    src = write_csv(tmp_path / "freeze.csv", ROWS)
    assert cli(itsm, src, "--max-failures", "off").exit_code == 1
    report = tmp_path / "freeze.report.csv"
    rows = read_report(report)
    statuses = ["success", "failed", "success", "failed", "failed", "failed", "success"]
    assert [r["status"] for r in rows] == statuses
    for row in rows:
        if row["status"] == "failed" and row["sn"] in FIXED:
            row["operator"] = FIXED[row["sn"]]
    rewrite_report(report, rows)
    again = cli(itsm, report, "--only", "failed", "--max-failures", "off")
    assert again.exit_code == 1, again.stdout + again.stderr  # F3 still fails
    second = [r["status"] for r in read_report(tmp_path / "freeze.report-2.csv")]
    assert second == ["success"] * 5 + ["failed", "success"]
    assert {t.status for sn, t in itsm.state.tickets.items() if sn != "F3"} == {
        "SUSPENDED",
        "RUNNING",  # P1: suspended in run 1, resumed in run 2
    }
    return report


def test_undo_names_the_later_report_and_its_command_includes_it_once(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """Without --with-newer the undo sheet is what it always was (run 1's rows), and
    stderr names freeze.report-2.csv with the 3 rows its run applied and the command
    that includes them. That command, run as printed, writes the sheet that reverses
    every operation of both runs once, newest first per ticket; sent, it puts every
    ticket back to RUNNING with one UNSUSPEND each."""
    report = two_runs(itsm, tmp_path)
    out = run_cli(["undo", str(report)])
    assert out.exit_code == 0, out.stdout + out.stderr
    sheet = tmp_path / "freeze.report.undo.csv"
    rows = read_report(sheet)
    assert list(rows[0]) == [*HEADER, "undoes_row", "undoes_action"]
    assert [(r["sn"], r["action_type"], r["undoes_row"]) for r in rows] == [
        ("S1", "UNSUSPEND", "2"),
        ("P1", "UNSUSPEND", "4"),
        ("S2", "UNSUSPEND", "8"),
    ]
    later = tmp_path / "freeze.report-2.csv"
    assert (
        f"{later}: a later run of the same sheet applied 3 rows there that this undo sheet "
        "does not reverse"
    ) in out.stderr
    (advice,) = [line for line in out.stderr.splitlines() if "write this undo sheet again" in line]
    command = advice.split("with: ", 1)[1]
    assert command == f"batchops undo {report} --with-newer --force"

    words = shlex.split(command)
    assert words[0] == "batchops"
    both = run_cli(words[1:])
    assert both.exit_code == 0, both.stdout + both.stderr
    assert "later run of the same sheet" not in both.stderr
    assert f"plus what the later run that wrote {later} applied" in both.stdout
    rows = read_report(sheet)
    first, second = "freeze.report.csv", "freeze.report-2.csv"
    assert [
        (r["sn"], r["operator"], r["action_type"], r["undoes_row"], r["undoes_report"])
        for r in rows
    ] == [
        ("S1", "admin", "UNSUSPEND", "2", first),
        ("P1", "admin", "SUSPEND", "5", second),  # run 2 resumed what run 1 suspended
        ("P1", "admin", "UNSUSPEND", "4", first),
        ("S2", "admin", "UNSUSPEND", "8", first),
        ("F1", "zhang", "UNSUSPEND", "3", second),  # the operator fixed for run 2
        ("F2", "zhang", "UNSUSPEND", "6", second),
    ]
    messages = {(r["sn"], r["undoes_row"]): r["action_message"] for r in rows}
    assert messages[("P1", "5")] == "freeze"  # suspended again for run 1's reason
    assert messages[("F1", "3")] == f"batchops undo of row 3 of {second}"
    assert messages[("S1", "2")] == f"batchops undo of row 2 of {first}"
    assert not (tmp_path / "freeze.report.undo.irreversible.csv").exists()

    before = len(itsm.state.stats.operations)
    assert cli(itsm, sheet).exit_code == 0
    applied = Counter(
        (op.sn, op.action) for op in itsm.state.stats.operations[before:] if op.applied
    )
    assert applied == {
        ("S1", "UNSUSPEND"): 1,
        ("S2", "UNSUSPEND"): 1,
        ("F1", "UNSUSPEND"): 1,
        ("F2", "UNSUSPEND"): 1,
        ("P1", "SUSPEND"): 1,
        ("P1", "UNSUSPEND"): 1,
    }
    assert {t.status for t in itsm.state.tickets.values()} == {"RUNNING"}
    assert itsm.state.stats.double_suspends == 0


def test_a_later_report_edited_since_its_run_is_held_to_its_own_checkpoint(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """Every guarantee holds for each report of the chain: a row of freeze.report-2.csv
    marked success though its run failed it is listed (naming its report), never sent;
    the rows run 1 applied, shown as success in report-2 too, are undone once."""
    report = two_runs(itsm, tmp_path)
    later = tmp_path / "freeze.report-2.csv"
    rows = read_report(later)
    rows[5]["status"] = "success"  # F3: run 2 failed it
    rewrite_report(later, rows)

    out = run_cli(["undo", str(report), "--with-newer"])
    assert out.exit_code == 0, out.stdout + out.stderr
    assert "1 row of the report disagrees with the run's checkpoint" in out.stderr
    undone = Counter(r["sn"] for r in read_report(tmp_path / "freeze.report.undo.csv"))
    assert undone == {"S1": 1, "S2": 1, "P1": 2, "F1": 1, "F2": 1}
    (listed,) = read_report(tmp_path / "freeze.report.undo.irreversible.csv")
    assert (listed["sn"], listed["report_row"], listed["report"]) == (
        "F3",
        "7",
        "freeze.report-2.csv",
    )
    assert "checkpoint records failed" in listed["reason"]


def test_with_newer_and_no_later_run_says_so(itsm: SandboxThread, tmp_path: Path) -> None:
    """--with-newer where no report was fed back: the sheet is the report's undo, with
    each row's report named, and one line on stderr says there was no later run."""
    seed(itsm, running("S1"))
    assert cli(itsm, write_csv(tmp_path / "freeze.csv", [ROWS[0]])).exit_code == 0
    out = run_cli(["undo", str(tmp_path / "freeze.report.csv"), "--with-newer"])
    assert out.exit_code == 0, out.stdout + out.stderr
    assert "--with-newer: no later run of this sheet found" in out.stderr
    (row,) = read_report(tmp_path / "freeze.report.undo.csv")
    assert (row["sn"], row["undoes_report"]) == ("S1", "freeze.report.csv")


def test_the_later_run_is_named_in_chinese_with_the_option_as_it_is(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """Under --lang zh the notice is Chinese; the file names, the command and its
    options stay as they are, and the command repeats --lang zh."""
    report = two_runs(itsm, tmp_path)
    out = run_cli(["undo", str(report), "--lang", "zh"])
    assert out.exit_code == 0, out.stdout + out.stderr
    later = tmp_path / "freeze.report-2.csv"
    (line,) = [x for x in out.stderr.splitlines() if str(later) in x]
    assert "3 行" in line and "撤销" in line
    assert f"batchops undo {report} --lang zh --with-newer --force" in out.stderr


def test_an_xlsx_chain_is_undone_into_one_workbook(itsm: SandboxThread, tmp_path: Path) -> None:
    """A workbook (with an instructions sheet) run, its report fed back after the failed
    ticket was handed over: --with-newer writes one undo workbook naming each row's
    report, and running it resumes both tickets."""
    seed(itsm, running("S1"), running("F1", processor="zhang"))
    src = write_xlsx(
        tmp_path / "freeze.xlsx",
        [["S1", "admin", "SUSPEND", "freeze"], ["F1", "admin", "SUSPEND", "freeze"]],
        extra_sheets=["填写说明"],
    )
    assert cli(itsm, src, "--max-failures", "off").exit_code == 1
    seed(itsm, running("F1"))  # handed over to admin
    report = tmp_path / "freeze.report.xlsx"
    assert cli(itsm, report, "--only", "failed").exit_code == 0

    out = run_cli(["undo", str(report), "--with-newer"])
    assert out.exit_code == 0, out.stdout + out.stderr
    book = openpyxl.load_workbook(tmp_path / "freeze.report.undo.xlsx")
    assert book.sheetnames == ["Undo", "Irreversible"]
    header, *rows = book["Undo"].iter_rows(values_only=True)
    assert header[-1] == "undoes_report"
    assert [(r[0], r[2], r[-1]) for r in rows] == [
        ("S1", "UNSUSPEND", "freeze.report.xlsx"),
        ("F1", "UNSUSPEND", "freeze.report-2.xlsx"),
    ]
    assert cli(itsm, tmp_path / "freeze.report.undo.xlsx").exit_code == 0
    assert {t.status for t in itsm.state.tickets.values()} == {"RUNNING"}

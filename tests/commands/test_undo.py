"""``batchops undo``: :func:`undo_report` over hand-written reports, then end to end on a
real run's report, and the undo run against the stand-in."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest

from batchops.commands.undo import undo_report
from batchops.errors import BatchopsError
from batchops.model import RESULT_COLUMNS
from batchops.sandbox import SandboxThread, Ticket

from ..helpers import HEADER, cli, creds_env, read_report, run_cli, running, seed, write_csv


def report_of_rows(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    """A CSV report as a run writes it, from (sn, action, action_message, status) rows."""
    cells = [
        [sn, "admin", action, message, status, "", "", "1", "", "", "", "2024-05-01T10:00:00"]
        for sn, action, message, status in rows
    ]
    return write_csv(path, cells, header=[*HEADER, *RESULT_COLUMNS])


def undone(sheet: Path) -> list[tuple[str, str, str, str]]:
    """(sn, action, undoes_row, action_message) of each row of an undo sheet."""
    return [
        (r["sn"], r["action_type"], r["undoes_row"], r["action_message"])
        for r in read_report(sheet)
    ]


def test_each_tickets_rows_are_reversed_last_first_in_ticket_order(tmp_path: Path) -> None:
    """Tickets come in the order the report first names them, each ticket's successful
    rows inverted from its last to its first; a re-SUSPEND carries the reason of the
    SUSPEND it restores."""
    report = report_of_rows(
        tmp_path / "r.report.csv",
        [
            ("A1", "SUSPEND", "first freeze", "success"),  # row 2
            ("B1", "SUSPEND", "b freeze", "success"),  # row 3
            ("A1", "UNSUSPEND", "thaw", "success"),  # row 4
            ("A1", "SUSPEND", "second freeze", "success"),  # row 5
        ],
    )
    summary = undo_report(report)
    origin = "batchops undo of row {} of r.report.csv"
    assert undone(tmp_path / "r.report.undo.csv") == [
        ("A1", "UNSUSPEND", "5", origin.format(5)),
        ("A1", "SUSPEND", "4", "first freeze"),
        ("A1", "UNSUSPEND", "2", origin.format(2)),
        ("B1", "UNSUSPEND", "3", origin.format(3)),
    ]
    assert (summary.rows, summary.irreversible, summary.exit_code) == (4, 0, 0)
    assert summary.by_action == {"UNSUSPEND": 3, "SUSPEND": 1}
    assert "(4 rows: 1 SUSPEND, 3 UNSUSPEND)" in summary.describe()
    assert not (tmp_path / "r.report.undo.irreversible.csv").exists()


def test_an_unsuspend_with_no_suspend_before_it_is_undone_with_its_own_message(
    tmp_path: Path,
) -> None:
    """Without an earlier SUSPEND of the ticket in the report, the re-SUSPEND says what
    the UNSUSPEND row said."""
    report = report_of_rows(
        tmp_path / "r.report.csv", [("U1", "UNSUSPEND", "frozen by ops", "success")]
    )
    undo_report(report)
    assert undone(tmp_path / "r.report.undo.csv") == [("U1", "SUSPEND", "2", "frozen by ops")]


def test_rows_that_changed_nothing_are_neither_undone_nor_listed(tmp_path: Path) -> None:
    """failed, skipped, invalid and pending rows did nothing: no inverse and no entry in
    the irreversible list; with nothing to undo the exit code is 1."""
    report = report_of_rows(
        tmp_path / "r.report.csv",
        [
            ("F1", "SUSPEND", "x", "failed"),
            ("K1", "SUSPEND", "x", "skipped"),
            ("", "SUSPEND", "x", "invalid"),
            ("P1", "SUSPEND", "x", "pending"),
        ],
    )
    summary = undo_report(report)
    assert (summary.rows, summary.irreversible, summary.exit_code) == (0, 0, 1)
    assert read_report(tmp_path / "r.report.undo.csv") == []
    assert "nothing in the report can be undone" in summary.describe()


def test_a_successful_row_edited_into_invalid_input_is_listed_not_guessed(tmp_path: Path) -> None:
    """A success row whose cells are no valid input any more (edited after the run) is
    listed with why, and the ticket's other rows are still undone."""
    report = report_of_rows(
        tmp_path / "r.report.csv",
        [("S1", "SUSPEND", "x", "success"), ("S2", "FREEZE", "x", "success")],
    )
    summary = undo_report(report)
    assert undone(tmp_path / "r.report.undo.csv")[0][:3] == ("S1", "UNSUSPEND", "2")
    (listed,) = read_report(tmp_path / "r.report.undo.irreversible.csv")
    assert (listed["report_row"], listed["sn"]) == ("3", "S2")
    assert listed["reason"].startswith("the row is not valid input any more")
    assert summary.irreversible == 1


def test_an_older_irreversible_list_never_stays_beside_a_new_undo_sheet(tmp_path: Path) -> None:
    """When nothing is irreversible now, a list left by an earlier undo is replaced by an
    empty one (with --force, as every existing output) rather than left to describe
    another sheet."""
    report = report_of_rows(tmp_path / "r.report.csv", [("S1", "SUSPEND", "x", "success")])
    stale = tmp_path / "r.report.undo.irreversible.csv"
    stale.write_text("report_row,sn\n9,OLD\n", encoding="utf-8")
    undo_report(report, force=True)
    assert stale.exists() and read_report(stale) == []


@pytest.mark.parametrize("name", ["r.report.csv", "undo.txt"])
def test_an_undo_sheet_over_the_report_or_of_another_kind_is_refused(
    tmp_path: Path, name: str
) -> None:
    """-o naming the report itself, or a file that is neither CSV nor XLSX: refused before
    anything is written, and the report is left as it was."""
    report = report_of_rows(tmp_path / "r.report.csv", [("S1", "SUSPEND", "x", "success")])
    before = report.read_bytes()
    with pytest.raises(BatchopsError):
        undo_report(report, output=tmp_path / name)
    assert report.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.report.csv"]


# --------------------------------------------------------------------------- end to end

ROWS = [
    ["S1", "admin", "SUSPEND", "holiday freeze"],  # 2  success
    ["S2", "admin", "SUSPEND", "holiday freeze"],  # 3  success
    ["U1", "admin", "UNSUSPEND", ""],  # 4  success (ticket was suspended before)
    ["W1", "admin", "WITHDRAW", "dup"],  # 5  success, irreversible
    ["T1", "admin", "TERMINATE", "obsolete"],  # 6  success, irreversible
    ["C1", "admin", "SUSPEND", "wait"],  # 7  success, closed later: irreversible
    ["C1", "admin", "TERMINATE", "done"],  # 8  success, irreversible
    ["M1", "admin", "SUSPEND", "first freeze"],  # 9  success
    ["M1", "admin", "UNSUSPEND", ""],  # 10 success
    ["M1", "admin", "SUSPEND", "second freeze"],  # 11 success
    ["F1", "admin", "SUSPEND", "not mine"],  # 12 failed: nothing to undo
    ["K1", "admin", "SUSPEND", "already"],  # 13 skipped: nothing to undo
    ["", "admin", "SUSPEND", "x"],  # 14 invalid: nothing to undo
]


def seed_tickets(itsm: SandboxThread) -> None:
    seed(itsm, running("S1"), running("S2"), running("W1"), running("T1"), running("C1"))
    seed(itsm, running("M1"), running("F1", processor="zhang"))
    seed(itsm, Ticket("U1", "SUSPENDED", "admin", ["admin"], previous_status="RUNNING"))
    seed(itsm, Ticket("K1", "SUSPENDED", "admin", ["admin"], previous_status="RUNNING"))


def finished_run(itsm: SandboxThread, tmp_path: Path) -> Path:
    seed_tickets(itsm)
    src = write_csv(tmp_path / "freeze.csv", ROWS)
    done = run_cli(["run", str(src), "--max-failures", "off"], creds_env(itsm.url))
    assert done.exit_code == 1, done.stdout + done.stderr
    report = tmp_path / "freeze.report.csv"
    statuses = [r["status"] for r in read_report(report)]
    assert statuses == ["success"] * 10 + ["failed", "skipped", "invalid"]
    return report


def test_undo_writes_the_inverse_rows_and_lists_the_irreversible_ones(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """Success SUSPEND → UNSUSPEND and UNSUSPEND → SUSPEND, each ticket in reverse order;
    WITHDRAW, TERMINATE and rows of a ticket closed later are listed with the reason."""
    report = finished_run(itsm, tmp_path)
    out = run_cli(["undo", str(report)])
    assert out.exit_code == 0, out.stderr
    sheet = tmp_path / "freeze.report.undo.csv"
    assert f"undo sheet: {sheet} (6 rows: 2 SUSPEND, 4 UNSUSPEND)" in out.stdout
    rows = read_report(sheet)
    assert [
        (r["sn"], r["operator"], r["action_type"], r["undoes_row"], r["undoes_action"])
        for r in rows
    ] == [
        ("S1", "admin", "UNSUSPEND", "2", "SUSPEND"),
        ("S2", "admin", "UNSUSPEND", "3", "SUSPEND"),
        ("U1", "admin", "SUSPEND", "4", "UNSUSPEND"),
        ("M1", "admin", "UNSUSPEND", "11", "SUSPEND"),
        ("M1", "admin", "SUSPEND", "10", "UNSUSPEND"),
        ("M1", "admin", "UNSUSPEND", "9", "SUSPEND"),
    ]
    messages = {(r["sn"], r["undoes_row"]): r["action_message"] for r in rows}
    # The re-suspension carries the reason of the suspension it restores.
    assert messages[("M1", "10")] == "first freeze"
    assert messages[("S1", "2")] == "batchops undo of row 2 of freeze.report.csv"
    assert messages[("U1", "4")] == "batchops undo of row 4 of freeze.report.csv"

    listed = read_report(tmp_path / "freeze.report.undo.irreversible.csv")
    assert [(r["report_row"], r["sn"], r["action_done"]) for r in listed] == [
        ("5", "W1", "WITHDRAW"),
        ("6", "T1", "TERMINATE"),
        ("7", "C1", "SUSPEND"),
        ("8", "C1", "TERMINATE"),
    ]
    reasons = [r["reason"] for r in listed]
    assert "REVOKED" in reasons[0] and "reopens" in reasons[0]
    assert "TERMINATED" in reasons[1]
    assert "later (row 8)" in reasons[2]
    assert all(r["finished_at"] for r in listed)
    assert "4 rows cannot be undone" in out.stdout


def test_running_the_undo_sheet_restores_the_statuses(itsm: SandboxThread, tmp_path: Path) -> None:
    """The undo sheet is ordinary input: plan shows what still applies (a ticket resumed
    by hand is skipped), and run puts the suspended tickets back where they were."""
    report = finished_run(itsm, tmp_path)
    assert run_cli(["undo", str(report)]).exit_code == 0
    sheet = tmp_path / "freeze.report.undo.csv"
    itsm.call(lambda: setattr(itsm.state.tickets["S2"], "status", "RUNNING"))  # by hand

    plan = run_cli(["plan", str(sheet)], creds_env(itsm.url))
    assert plan.exit_code == 0, plan.stdout + plan.stderr
    planned = {
        (r["sn"], r["undoes_row"]): r["status"]
        for r in read_report(tmp_path / "freeze.report.undo.plan.csv")  # plan: its own file
    }
    assert planned[("S2", "3")] == "skipped"
    assert planned[("S1", "2")] == "pending"

    done = run_cli(["run", str(sheet)], creds_env(itsm.url))
    assert done.exit_code == 0, done.stdout + done.stderr
    statuses = {sn: t.status for sn, t in itsm.state.tickets.items()}
    assert statuses == {
        "S1": "RUNNING",
        "S2": "RUNNING",
        "U1": "SUSPENDED",
        "W1": "REVOKED",
        "T1": "TERMINATED",
        "C1": "TERMINATED",
        "M1": "RUNNING",
        "F1": "RUNNING",
        "K1": "SUSPENDED",
    }
    assert itsm.state.stats.double_suspends == 0


def test_xlsx_report_gets_an_xlsx_undo_with_a_second_sheet(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """An XLSX report's undo is a workbook: the undo rows first, then 'Irreversible'."""
    seed(itsm, running("S1"), running("T1"))
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["sn", "operator", "action_type", "action_message"])
    sheet.append(["S1", "admin", "SUSPEND", "freeze"])
    sheet.append(["T1", "admin", "TERMINATE", "old"])
    book.save(tmp_path / "t.xlsx")
    assert run_cli(["run", str(tmp_path / "t.xlsx")], creds_env(itsm.url)).exit_code == 0

    out = run_cli(["undo", str(tmp_path / "t.report.xlsx"), "-o", str(tmp_path / "back.xlsx")])
    assert out.exit_code == 0, out.stderr
    undo = openpyxl.load_workbook(tmp_path / "back.xlsx")
    assert undo.sheetnames == ["Undo", "Irreversible"]
    assert [r[:4] for r in undo["Undo"].iter_rows(min_row=2, values_only=True)] == [
        ("S1", "admin", "UNSUSPEND", "batchops undo of row 2 of t.report.xlsx")
    ]
    kept = list(undo["Irreversible"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[1], r[2]) for r in kept] == [("3", "T1", "TERMINATE")]
    assert run_cli(["run", str(tmp_path / "back.xlsx")], creds_env(itsm.url)).exit_code == 0
    assert itsm.state.tickets["S1"].status == "RUNNING"


def test_unknown_outcomes_are_listed_not_undone(tmp_path: Path) -> None:
    """A row whose outcome is unknown is listed for a person to check; a report with
    nothing to undo exits 1 with a header-only sheet."""
    report = write_csv(
        tmp_path / "r.report.csv",
        [["N1", "admin", "SUSPEND", "x", "unknown", "", "lost", "1", "", "", "", ""]],
        header=[
            "sn",
            "operator",
            "action_type",
            "action_message",
            "status",
            "code",
            "message",
            "attempts",
            "http_status",
            "request_id",
            "elapsed_ms",
            "finished_at",
        ],
    )
    out = run_cli(["undo", str(report)])
    assert out.exit_code == 1
    assert "nothing in the report can be undone" in out.stdout
    assert read_report(tmp_path / "r.report.undo.csv") == []
    (listed,) = read_report(tmp_path / "r.report.undo.irreversible.csv")
    assert listed["sn"] == "N1" and "unknown" in listed["reason"]


def test_undo_of_a_plain_input_is_refused(tmp_path: Path) -> None:
    """A sheet that is not a report has no outcomes to undo: exit 2 saying so."""
    src = write_csv(tmp_path / "t.csv", [["S1", "admin", "SUSPEND", "x"]])
    out = run_cli(["undo", str(src)])
    assert out.exit_code == 2
    assert "not a batchops report" in out.stderr


# ------------------------------------------------ what happened, not how the sheet looks


def rewrite_report(path: Path, rows: list[dict[str, str]]) -> None:
    """Save ``rows`` as the CSV report at ``path``, as a spreadsheet would after an edit."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_a_report_sorted_by_action_is_still_undone_in_the_order_the_run_applied(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """Sorted by action, Q1's re-SUSPEND comes before the UNSUSPEND the run sent first;
    undo reverses what the checkpoint says happened, newest first, and running the undo
    sheet puts every ticket back where it was before the run."""
    seed(itsm, running("R1"), running("S1"))
    seed(itsm, Ticket("Q1", "SUSPENDED", "admin", ["admin"], previous_status="RUNNING"))
    before = {sn: t.status for sn, t in itsm.state.tickets.items()}
    src = write_csv(
        tmp_path / "freeze.csv",
        [
            ["R1", "admin", "SUSPEND", "freeze"],
            ["Q1", "admin", "UNSUSPEND", "thaw"],
            ["R1", "admin", "UNSUSPEND", "thaw"],
            ["S1", "admin", "SUSPEND", "freeze"],
            ["Q1", "admin", "SUSPEND", "refreeze"],
            ["R1", "admin", "SUSPEND", "refreeze"],
        ],
    )
    assert cli(itsm, src).exit_code == 0
    report = tmp_path / "freeze.report.csv"
    rewrite_report(report, sorted(read_report(report), key=lambda r: r["action_type"]))

    out = run_cli(["undo", str(report)])
    assert out.exit_code == 0, out.stdout + out.stderr
    sheet = tmp_path / "freeze.report.undo.csv"
    # Sorted: rows 2-5 are R1's, S1's, Q1's and R1's SUSPENDs, 6 and 7 Q1's and R1's thaws.
    origin = "batchops undo of row {} of freeze.report.csv"
    assert [
        (r["sn"], r["action_type"], r["undoes_row"], r["action_message"])
        for r in read_report(sheet)
    ] == [
        ("R1", "UNSUSPEND", "5", origin.format(5)),  # refreeze
        ("R1", "SUSPEND", "7", "freeze"),  # thaw: suspended again for the first freeze's reason
        ("R1", "UNSUSPEND", "2", origin.format(2)),  # freeze
        ("S1", "UNSUSPEND", "3", origin.format(3)),
        ("Q1", "UNSUSPEND", "4", origin.format(4)),  # refreeze
        ("Q1", "SUSPEND", "6", "thaw"),  # thaw
    ]
    assert "trusts the report" not in out.stderr

    assert cli(itsm, sheet).exit_code == 0
    assert {sn: t.status for sn, t in itsm.state.tickets.items()} == before
    assert itsm.state.stats.double_suspends == 0


def test_report_rows_the_checkpoint_contradicts_are_listed_and_never_sent(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A failed row marked ``success`` and a success row given another ticket's sn: undo
    checks each against the run's checkpoint, lists both (and the applied row the edit
    hid) as not undone, says how many on stderr, and the undo run operates none of the
    tickets the run did not change."""
    seed(itsm, running("S1"), running("S2"), running("F1", processor="zhang"))
    seed(itsm, Ticket("Z1", "SUSPENDED", "zhang", ["admin"], previous_status="RUNNING"))
    src = write_csv(
        tmp_path / "freeze.csv",
        [
            ["S1", "admin", "SUSPEND", "freeze"],
            ["S2", "admin", "SUSPEND", "freeze"],
            ["F1", "admin", "SUSPEND", "freeze"],  # not admin's ticket: failed
        ],
    )
    assert cli(itsm, src, "--max-failures", "off").exit_code == 1
    report = tmp_path / "freeze.report.csv"
    rows = read_report(report)
    assert [r["status"] for r in rows] == ["success", "success", "failed"]
    rows[1]["sn"] = "Z1"  # someone else's suspended ticket
    rows[2]["status"] = "success"
    rewrite_report(report, rows)
    # F1's owner hands it to admin and suspends it by hand: an UNSUSPEND would now apply.
    seed(itsm, Ticket("F1", "SUSPENDED", "zhang", ["admin"], "RUNNING"))

    out = run_cli(["undo", str(report)])
    assert out.exit_code == 0, out.stdout + out.stderr
    assert "2 rows of the report disagree with the run's checkpoint" in out.stderr
    sheet = tmp_path / "freeze.report.undo.csv"
    assert [(r["sn"], r["action_type"]) for r in read_report(sheet)] == [("S1", "UNSUSPEND")]
    listed = read_report(tmp_path / "freeze.report.undo.irreversible.csv")
    assert [(r["report_row"], r["sn"]) for r in listed] == [("3", "Z1"), ("4", "F1"), ("3", "S2")]
    assert "checkpoint records S2" in listed[0]["reason"]
    assert "checkpoint records failed" in listed[1]["reason"]
    assert "applied by the run" in listed[2]["reason"]

    operations = len(itsm.state.stats.operations)
    assert cli(itsm, sheet).exit_code == 0
    operated = {op.sn for op in itsm.state.stats.operations[operations:]}
    assert operated == {"S1"}
    statuses = {sn: t.status for sn, t in itsm.state.tickets.items()}
    assert statuses == {"S1": "RUNNING", "S2": "SUSPENDED", "F1": "SUSPENDED", "Z1": "SUSPENDED"}


def test_without_the_checkpoint_undo_says_it_trusts_the_report(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """With the run's checkpoint gone, the report is all there is: one line on stderr
    says so and how to give undo the checkpoint; the sheet is written as before."""
    seed(itsm, running("S1"))
    src = write_csv(tmp_path / "freeze.csv", [["S1", "admin", "SUSPEND", "freeze"]])
    assert cli(itsm, src).exit_code == 0
    (tmp_path / ".batchops" / "freeze.checkpoint.db").unlink()

    out = run_cli(["undo", str(tmp_path / "freeze.report.csv")])
    assert out.exit_code == 0, out.stdout + out.stderr
    (notice,) = [line for line in out.stderr.splitlines() if "trusts the report" in line]
    assert "--checkpoint" in notice
    assert read_report(tmp_path / "freeze.report.undo.csv")[0]["sn"] == "S1"


def test_a_report_under_another_name_is_checked_against_the_checkpoint_given(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A report renamed (or written with -o) is not found beside its input's checkpoint:
    --checkpoint names it, and a row the checkpoint contradicts is listed."""
    seed(itsm, running("S1"), running("F1", processor="zhang"))
    src = write_csv(
        tmp_path / "freeze.csv",
        [["S1", "admin", "SUSPEND", "freeze"], ["F1", "admin", "SUSPEND", "freeze"]],
    )
    assert cli(itsm, src, "--max-failures", "off").exit_code == 1
    rows = read_report(tmp_path / "freeze.report.csv")
    rows[1]["status"] = "success"
    moved = tmp_path / "out" / "edited.csv"
    moved.parent.mkdir()
    rewrite_report(moved, rows)

    out = run_cli(
        ["undo", str(moved), "--checkpoint", str(tmp_path / ".batchops" / "freeze.checkpoint.db")]
    )
    assert out.exit_code == 0, out.stdout + out.stderr
    assert "1 row of the report disagrees" in out.stderr
    assert [r["sn"] for r in read_report(tmp_path / "out" / "edited.undo.csv")] == ["S1"]
    (listed,) = read_report(tmp_path / "out" / "edited.undo.irreversible.csv")
    assert listed["sn"] == "F1"

    missing = run_cli(["undo", str(moved), "--checkpoint", str(tmp_path / "no.db"), "--force"])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_without_a_checkpoint_a_tickets_rows_follow_their_finished_at(tmp_path: Path) -> None:
    """No checkpoint: the report's finished_at orders each ticket's rows, whatever the
    sheet's order; rows finished within one second alternate SUSPEND and UNSUSPEND, as
    ITSM only lets them, and a WITHDRAW or TERMINATE comes last."""
    header = [*HEADER, *RESULT_COLUMNS]

    def row(sn: str, action: str, message: str, at: str) -> list[str]:
        return [sn, "admin", action, message, "success", "", "", "1", "", "", "", at]

    report = write_csv(
        tmp_path / "r.report.csv",
        [
            row("A1", "UNSUSPEND", "thaw", "2024-05-01T10:00:09+08:00"),
            row("A1", "SUSPEND", "freeze", "2024-05-01T10:00:05+08:00"),
            row("B1", "SUSPEND", "freeze", "2024-05-01T10:00:00+08:00"),
            row("B1", "SUSPEND", "refreeze", "2024-05-01T10:00:00+08:00"),
            row("B1", "UNSUSPEND", "thaw", "2024-05-01T10:00:00+08:00"),
            row("C1", "TERMINATE", "done", "2024-05-01T10:00:00+08:00"),
            row("C1", "SUSPEND", "wait", "2024-05-01T10:00:00+08:00"),
        ],
        header=header,
    )
    summary = undo_report(report)
    assert "trusts the report as it stands" in summary.notices()[0]
    # Nothing follows a close: C1 was suspended, then terminated.
    listed = read_report(tmp_path / "r.report.undo.irreversible.csv")
    assert [(r["report_row"], r["sn"]) for r in listed] == [("8", "C1"), ("7", "C1")]
    assert "later (row 7)" in listed[0]["reason"]
    assert [(sn, action, at) for sn, action, at, _ in undone(tmp_path / "r.report.undo.csv")] == [
        ("A1", "SUSPEND", "2"),
        ("A1", "UNSUSPEND", "3"),
        ("B1", "UNSUSPEND", "5"),
        ("B1", "SUSPEND", "6"),
        ("B1", "UNSUSPEND", "4"),
    ]


def test_each_report_is_held_to_the_checkpoint_of_the_run_that_wrote_it(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A report fed back as input writes freeze.report-2.csv and keeps its checkpoint
    beside its own input (freeze.report.checkpoint.db): each report's undo finds its own
    run's checkpoint, not the other one beside it."""
    seed(itsm, running("S1"), running("F1", processor="zhang"))
    src = write_csv(
        tmp_path / "freeze.csv",
        [["S1", "admin", "SUSPEND", "freeze"], ["F1", "admin", "SUSPEND", "freeze"]],
    )
    assert cli(itsm, src, "--max-failures", "off").exit_code == 1
    again = cli(itsm, tmp_path / "freeze.report.csv", "--max-failures", "off")
    assert again.exit_code == 1, again.stdout + again.stderr
    assert (tmp_path / ".batchops" / "freeze.report.checkpoint.db").exists()

    for report, checkpoint in [
        ("freeze.report.csv", "freeze.checkpoint.db"),
        ("freeze.report-2.csv", "freeze.report.checkpoint.db"),
    ]:
        out = run_cli(["undo", str(tmp_path / report)])
        assert out.exit_code == 0, out.stdout + out.stderr
        found = tmp_path / ".batchops" / checkpoint
        assert f"checked against the run's checkpoint {found}\n" in out.stdout
        assert out.stderr == ""

"""``batchops undo``: :func:`undo_report` over hand-written reports, then end to end on a
real run's report, and the undo run against the stand-in."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from batchops.commands.undo import undo_report
from batchops.errors import BatchopsError
from batchops.model import RESULT_COLUMNS
from batchops.sandbox import SandboxThread, Ticket

from ..helpers import HEADER, creds_env, read_report, run_cli, running, seed, write_csv


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

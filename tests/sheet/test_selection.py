"""Tests of batchops.sheet.selection: which rows a run marks invalid and may send, over a plain
input or an earlier report fed back."""

from __future__ import annotations

from pathlib import Path

from batchops.model import RESULT_COLUMNS, OutcomeTable, Status
from batchops.sheet.loading import load_batch
from batchops.sheet.selection import NOT_DONE, mark_invalid, select_rows

from ..helpers import HEADER, write_csv

#: A report's header: the input's columns, then the result columns batchops appends.
REPORT_HEADER = [*HEADER, *RESULT_COLUMNS]


def test_a_done_row_of_a_report_keeps_its_result_when_todays_rules_refuse_it(
    tmp_path: Path,
) -> None:
    """Row 2's message is too long for today's rules; the report says it was applied,
    and that is what stays (it is not sent either way). A row that was not done gets
    today's reason."""
    long = "x" * 300
    src = write_csv(
        tmp_path / "t.report.csv",
        [
            ["R1", "admin", "SUSPEND", long, "success", "0", "success", "1", "200", "b", "9", "t"],
            ["R2", "admin", "SUSPEND", long, "failed", "3900004", "no", "1", "200", "c", "", ""],
        ],
        header=REPORT_HEADER,
    )
    batch = load_batch(src)
    outcomes = OutcomeTable(len(batch))

    mark_invalid(batch, outcomes)
    sendable = select_rows(batch, outcomes, NOT_DONE)

    kept = outcomes.get(0)
    assert (kept.status, kept.message, kept.request_id) == (Status.SUCCESS, "success", "b")
    assert outcomes.get(1).status is Status.INVALID
    assert outcomes.get(1).message.startswith("action_message is 300 characters")
    assert sendable.tolist() == [False, False]


def test_a_repeat_of_a_done_row_is_refused_wherever_it_stands(tmp_path: Path) -> None:
    """In a report fed back, the done row of a run of one action stands for the run:
    the rows around it are the repeats, even one before it in the file. Sending it would
    be the same action twice (a second SUSPEND leaves a ticket stuck)."""
    src = write_csv(
        tmp_path / "t.report.csv",
        [
            ["R1", "admin", "SUSPEND", "x", "failed", "3900004", "no", "1", "200", "a", "", ""],
            ["R1", "admin", "SUSPEND", "x", "success", "0", "success", "1", "200", "b", "9", "t"],
            ["R1", "admin", "SUSPEND", "x", "pending", "", "", "0", "", "", "", ""],
            ["R2", "admin", "SUSPEND", "x", "pending", "", "", "0", "", "", "", ""],
            ["R2", "admin", "SUSPEND", "x", "failed", "3900004", "no", "1", "200", "c", "", ""],
        ],
        header=REPORT_HEADER,
    )
    batch = load_batch(src)
    outcomes = OutcomeTable(len(batch))

    mark_invalid(batch, outcomes)
    sendable = select_rows(batch, outcomes, NOT_DONE)

    assert sendable.tolist() == [False, False, False, True, False]
    assert batch.invalid[0].startswith("repeats SUSPEND of row 3 for the same sn")
    assert batch.invalid[2].startswith("repeats SUSPEND of row 3 for the same sn")
    assert outcomes.get(1).status is Status.SUCCESS
    assert batch.invalid[4].startswith("repeats SUSPEND of row 5 for the same sn")

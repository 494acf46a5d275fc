"""Where a run's outcomes go (:mod:`batchops.run.recorder`): the outcome table, the
checkpoint, the progress display and the event log, with secrets scrubbed on the way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from batchops.checkpoint.store import Checkpoint
from batchops.model import Action, Outcome, OutcomeTable, Row, RowState, Status
from batchops.run.recorder import Recorder, notices_to

from ..helpers import queued_checkpoint

SECRET = "s3cr3t-Value-that-must-never-leak-7f1c"
ROWS = 4


class Shown:
    """A progress sink that remembers what it was told."""

    def __init__(self) -> None:
        self.advanced: list[Status] = []

    def start(self, total: int, done: int = 0) -> None:
        return None

    def advance(self, status: Status) -> None:
        self.advanced.append(status)

    def close(self) -> None:
        return None

    def write(self, text: str) -> None:
        return None


def _row(index: int) -> Row:
    return Row(index, f"SN{index}", "admin", Action.SUSPEND, "m")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Checkpoint]:
    """A checkpoint of ROWS queued rows, a run begun."""
    store = queued_checkpoint(tmp_path / "t.db", ROWS)
    try:
        yield store
    finally:
        store.close()


def _stored(store: Checkpoint) -> dict[int, tuple[RowState, Status, str]]:
    store.flush()
    return {r.index: (r.state, r.outcome.status, r.outcome.message) for r in store.rows()}


def test_an_outcome_reaches_the_table_the_checkpoint_and_the_progress(store: Checkpoint) -> None:
    """One recorded outcome: the table holds it, the checkpoint has the row done with it,
    and the progress display advanced by its status."""
    table, shown = OutcomeTable(ROWS), Shown()
    recorder = Recorder(table, shown, (SECRET,), store)
    recorder.record(_row(1), Outcome(Status.SUCCESS, 0, "ok", 1, request_id="r-1"))
    assert table.get(1) == Outcome(Status.SUCCESS, 0, "ok", 1, request_id="r-1")
    assert table.status_of(0) is Status.PENDING
    assert _stored(store)[1] == (RowState.DONE, Status.SUCCESS, "ok")
    assert _stored(store)[0] == (RowState.QUEUED, Status.PENDING, "")
    assert shown.advanced == [Status.SUCCESS]


def test_a_secret_in_an_answer_is_masked_before_anything_keeps_it(store: Checkpoint) -> None:
    """A message or request id echoing the secret is stored and shown with *** instead."""
    table = OutcomeTable(ROWS)
    events: list[tuple[str, Mapping[str, object]]] = []
    recorder = Recorder(table, Shown(), (SECRET,), store, lambda n, f: events.append((n, f)))
    echoed = Outcome(Status.FAILED, 1306401, f"bad secret {SECRET}", 1, request_id=SECRET)
    recorder.record(_row(0), echoed)
    assert table.get(0).message == "bad secret ***" and table.get(0).request_id == "***"
    assert _stored(store)[0][2] == "bad secret ***"
    assert SECRET not in repr(events)
    assert SECRET not in (store.path.read_bytes() + Path(f"{store.path}-wal").read_bytes()).decode(
        "utf-8", "replace"
    )


def test_failed_and_unknown_rows_are_events_with_their_sheet_row(store: Checkpoint) -> None:
    """row_failed / row_unknown events name the sheet's row number; success is silent."""
    events: list[tuple[str, Mapping[str, object]]] = []
    recorder = Recorder(
        OutcomeTable(ROWS), Shown(), (), store, lambda n, f: events.append((n, f)), lambda i: i + 7
    )
    recorder.record(_row(0), Outcome(Status.SUCCESS, 0, "ok"))
    recorder.record(_row(1), Outcome(Status.FAILED, 3900004, "refused"))
    recorder.record(_row(2), Outcome(Status.UNKNOWN, None, "lost"))
    assert [(name, fields["row"], fields["sn"]) for name, fields in events] == [
        ("row_failed", 8, "SN1"),
        ("row_unknown", 9, "SN2"),
    ]
    assert events[0][1]["code"] == 3900004 and events[0][1]["action"] == "SUSPEND"


def test_a_pending_outcome_puts_the_row_back_in_the_checkpoints_queue(store: Checkpoint) -> None:
    """A row stopped before it was answered is queued again, to be sent by the next run."""
    recorder = Recorder(OutcomeTable(ROWS), Shown(), (), store)
    recorder.record(_row(3), Outcome(Status.PENDING, None, "the run stopped first"))
    assert _stored(store)[3] == (RowState.QUEUED, Status.PENDING, "the run stopped first")


def test_a_row_in_doubt_stays_sending_in_the_checkpoint_for_the_next_run(
    store: Checkpoint,
) -> None:
    """With a checkpoint, a row whose request may have landed is shown pending and left
    "sending" on disk, so the next run reads it back; nothing is advanced."""
    table, shown = OutcomeTable(ROWS), Shown()
    recorder = Recorder(table, shown, (), store)

    async def mark() -> None:
        await store.mark_sending(_row(2), 1, "RUNNING")

    asyncio.run(mark())
    recorder.in_doubt(_row(2), Outcome(Status.PENDING, None, "answer lost"))
    assert table.get(2).status is Status.PENDING
    assert _stored(store)[2][0] is RowState.SENDING
    assert shown.advanced == []


def test_a_row_in_doubt_without_a_checkpoint_is_unknown() -> None:
    """Without a checkpoint nobody will read the row back: it is unknown, and the report
    says to check the ticket."""
    table = OutcomeTable(ROWS)
    Recorder(table, Shown(), ()).in_doubt(_row(0), Outcome(Status.PENDING, None, "answer lost"))
    outcome = table.get(0)
    assert outcome.status is Status.UNKNOWN
    assert "check the ticket in ITSM" in outcome.message


def test_notices_reach_the_person_and_the_event_log() -> None:
    """A notice is shown and logged as a ``notice`` event; with nobody to show it to, it
    is still logged."""
    shown: list[str] = []
    events: list[tuple[str, Mapping[str, object]]] = []
    notices_to(shown.append, lambda n, f: events.append((n, f)))("ITSM is back")
    notices_to(None, lambda n, f: events.append((n, f)))("paused")
    assert shown == ["ITSM is back"]
    assert events == [("notice", {"message": "ITSM is back"}), ("notice", {"message": "paused"})]

"""An edited input over a checkpoint, without a server: which rows still bind (and are
refused when changed), which are taken anew, and what the checkpoint holds after."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from batchops.checkpoint.rebind import bound
from batchops.checkpoint.resume import Work, open_checkpoint
from batchops.checkpoint.store import Checkpoint
from batchops.errors import CheckpointError
from batchops.model import OutcomeTable
from batchops.sheet import mark_invalid
from batchops.sheet.loading import load_batch

from ..helpers import write_csv

URL = "http://itsm.example"


def _open(src: Path, *, retry_failed: bool = False) -> tuple[Checkpoint, Work]:
    batch = load_batch(src)
    outcomes = OutcomeTable(len(batch))
    mark_invalid(batch, outcomes)
    return open_checkpoint(
        batch,
        outcomes,
        batch.invalid == "",
        src.with_suffix(".db"),
        fresh=False,
        retry_failed=retry_failed,
        gateway="esb",
        base_url=URL,
    )


def _first_run(tmp_path: Path, rows: list[list[str]], *changes: str) -> Path:
    """The input, and its checkpoint with ``changes`` (SQL) applied as a run would."""
    src = write_csv(tmp_path / "t.csv", rows)
    store, _work = _open(src)
    store.close()
    with contextlib.closing(sqlite3.connect(src.with_suffix(".db"))) as conn, conn:
        for change in changes:
            conn.execute(change)
    return src


ROWS = [
    ["R1", "admin", "SUSPEND", "x"],
    ["R2", "bob", "SUSPEND", "x"],
    ["R3", "bob", "SUSPEND", "x"],
    ["R4", "admin", "SUSPEND", "x"],
]
DONE = [
    "UPDATE rows SET state='done', status='success' WHERE idx=0",
    "UPDATE rows SET state='done', status='failed', message='no' WHERE idx=1",
    "UPDATE rows SET state='done', status='unknown', message='lost' WHERE idx=2",
    "UPDATE rows SET state='sending', attempts=1 WHERE idx=3",
]


def test_an_unknown_row_may_change_its_operator_not_its_ticket(tmp_path: Path) -> None:
    src = _first_run(tmp_path, ROWS, *DONE)
    write_csv(
        src, [ROWS[0], ["R2", "admin", "SUSPEND", "x"], ["R3", "admin", "SUSPEND", "y"], ROWS[3]]
    )
    store, work = _open(src, retry_failed=True)
    try:
        assert sorted(work.to_send.tolist()) == [1, 2]
        assert "2 rows changed since the last run (rows 3, 4)" in work.note
        assert [d.index for d in work.in_doubt] == [3]
        assert all(bound(r) for r in store.rows() if r.index in (0, 3))
    finally:
        store.close()

    write_csv(src, [ROWS[0], ROWS[1], ["R9", "admin", "SUSPEND", "y"], ROWS[3]])
    with pytest.raises(
        CheckpointError, match=r"row 4 \(sn 'R3', SUSPEND, unknown\): its sn is now 'R9'"
    ):
        _open(src)


def test_a_row_in_doubt_gone_is_refused_an_unbound_one_is_forgotten(tmp_path: Path) -> None:
    src = _first_run(tmp_path, ROWS, *DONE)
    write_csv(src, ROWS[:3])
    with pytest.raises(CheckpointError, match=r"data row 4 \(sn 'R4', SUSPEND, in doubt\) is no"):
        _open(src)

    (tmp_path / "again").mkdir()
    src = _first_run(tmp_path / "again", ROWS, *DONE[:2])  # the last rows were never sent
    write_csv(src, ROWS[:2])
    store, work = _open(src)
    try:
        assert work.to_send.tolist() == []
        assert [r.index for r in store.rows()] == [0, 1]
        binding = store.binding()
        assert binding is not None and binding.row_count == 2
    finally:
        store.close()


def test_a_failed_row_edited_into_an_invalid_one_says_why_and_keeps_history(
    tmp_path: Path,
) -> None:
    src = _first_run(tmp_path, ROWS, *DONE[:2])
    write_csv(src, [ROWS[0], ["R2", "", "SUSPEND", "x"], *ROWS[2:]])
    store, work = _open(src, retry_failed=True)
    try:
        assert np.array_equal(np.sort(work.to_send), [2, 3])
        (row,) = [r for r in store.rows() if r.index == 1]
        assert row.outcome.status.value == "invalid" and "operator" in row.outcome.message
        assert [status for _run, status, _msg in store.history(1)] == ["failed"]
    finally:
        store.close()

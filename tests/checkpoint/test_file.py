"""Unit tests of the checkpoint file itself (:mod:`batchops.checkpoint.file`): its lock on
the sidecar, its schema and the upgrade of older files, the refusal of damaged ones, and
:meth:`CheckpointFile.transaction`, on real SQLite files.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import filelock
import pytest

from batchops.checkpoint.file import CheckpointFile, lock_path, unwritable
from batchops.checkpoint.store import Checkpoint
from batchops.errors import CheckpointError

from ..helpers import queued_checkpoint

ROWS = 300


def _tables(path: Path) -> dict[str, set[str]]:
    """Each table of a closed file and its columns, as another program sees them."""
    conn = sqlite3.connect(path)
    try:
        names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            name: {str(c[1]) for c in conn.execute(f"PRAGMA table_info({name})")}
            for name in names
            if not name.startswith("sqlite_")
        }
    finally:
        conn.close()


def _written(path: Path, rows: int = ROWS) -> bytes:
    """A closed checkpoint of ``rows`` queued rows and one run; its bytes."""
    queued_checkpoint(
        path, rows, base_url="http://127.0.0.1:1", input_path="/nowhere/t.csv"
    ).close()
    return path.read_bytes()


def test_the_lock_is_on_the_sidecar_and_refuses_a_second_open(tmp_path: Path) -> None:
    """Whoever holds ``<name>.lock`` keeps every writer out (readers are let in); once it
    lets go the file opens, and the sidecar stays behind when the file closes."""
    path = tmp_path / ".batchops" / "t.checkpoint.db"
    assert lock_path(path) == tmp_path / ".batchops" / "t.checkpoint.db.lock"
    CheckpointFile.open(path).close()
    held = filelock.FileLock(lock_path(path))
    held.acquire(timeout=0)
    try:
        with pytest.raises(CheckpointError, match="in use by another batchops run"):
            CheckpointFile.open(path)
        CheckpointFile.open_readonly(path).close()
    finally:
        held.release()
    opened = CheckpointFile.open(path)
    opened.close()
    assert lock_path(path).exists()
    CheckpointFile.open(path).close()  # close() let the lock go


def test_a_new_file_gets_every_table_and_column_in_wal_mode(tmp_path: Path) -> None:
    """Opening a missing path creates the four tables, with the columns later versions
    added (``sent_at``, ``stopped``), in WAL mode."""
    path = tmp_path / "new.db"
    CheckpointFile.open(path).close()
    tables = _tables(path)
    assert set(tables) == {"meta", "rows", "history", "runs"}
    assert {"state", "before_status", "sent_at"} <= tables["rows"]
    assert {"ended_at", "exit_code", "stopped"} <= tables["runs"]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_an_older_checkpoint_gains_the_new_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    """A file written before rows kept ``sent_at`` and runs kept ``stopped`` is upgraded
    in place: both columns appear, and what it held is still there."""
    path = tmp_path / "old.db"
    _written(path, rows=3)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE rows DROP COLUMN sent_at")
    conn.execute("ALTER TABLE runs DROP COLUMN stopped")
    conn.commit()
    conn.close()
    assert "sent_at" not in _tables(path)["rows"]
    store = Checkpoint.open(path)
    try:
        assert [r.sn for r in store.rows()] == ["SN0", "SN1", "SN2"]
        assert [(r.note, r.stopped) for r in store.runs()] == [("first run", "")]
    finally:
        store.close()
    tables = _tables(path)
    assert "sent_at" in tables["rows"] and "stopped" in tables["runs"]


def test_a_file_with_some_tables_missing_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    """A file holding ``meta`` alone is not "nothing sent yet": refused naming what is
    missing, and the missing tables are not quietly created."""
    path = tmp_path / "partial.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.commit()
    conn.close()
    with pytest.raises(CheckpointError, match="incomplete \\(no history, rows, runs table\\)"):
        CheckpointFile.open(path)
    assert set(_tables(path)) == {"meta"}
    lock = filelock.FileLock(lock_path(path))
    lock.acquire(timeout=0)  # the refusal let its lock go
    lock.release()


def test_a_truncated_checkpoint_is_refused_like_a_corrupt_one(tmp_path: Path) -> None:
    """A checkpoint cut to half its size (a full disk, an interrupted copy) is refused with
    the way out, for writing and for reading alike; never read as a new checkpoint."""
    data = _written(tmp_path / "whole.db")
    for name in ("w.db", "r.db"):
        (tmp_path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"is not a batchops checkpoint .*--fresh"):
        CheckpointFile.open(tmp_path / "w.db")
    with pytest.raises(CheckpointError, match="is not a batchops checkpoint"):
        CheckpointFile.open_readonly(tmp_path / "r.db")


def test_an_empty_checkpoint_is_refused_when_read(tmp_path: Path) -> None:
    """``batchops report``/``status`` on a 0-byte checkpoint: refused, not an empty run."""
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="is not a batchops checkpoint"):
        CheckpointFile.open_readonly(path)


def test_an_empty_checkpoint_is_refused_for_a_run(tmp_path: Path) -> None:
    """A 0-byte checkpoint says nothing of which rows were sent: a run must refuse it like
    a corrupt one instead of starting over (and sending every row again)."""
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"is not a batchops checkpoint \(it is empty"):
        CheckpointFile.open(path).close()
    assert path.read_bytes() == b""


def test_a_checkpoint_one_byte_short_is_refused(tmp_path: Path) -> None:
    """A checkpoint missing only its last byte opens in SQLite, and its rows then read as
    damaged text; it is refused when opened, for writing and for reading alike."""
    data = _written(tmp_path / "whole.db")
    path = tmp_path / "short.db"
    path.write_bytes(data[:-1])
    with pytest.raises(CheckpointError, match=r"is not a batchops checkpoint .*cut short"):
        CheckpointFile.open(path).close()
    with pytest.raises(CheckpointError, match=r"is not a batchops checkpoint .*cut short"):
        CheckpointFile.open_readonly(path).close()


def test_a_transaction_commits_when_the_block_ends(tmp_path: Path) -> None:
    """What the block wrote is seen by another connection once it ends, and only write
    transactions are counted in ``commits``."""
    path = tmp_path / "t.db"
    file = CheckpointFile.open(path)
    try:
        with file.transaction() as conn:
            conn.execute("INSERT INTO meta(key, value) VALUES ('k', 'v')")
        with file.transaction(write=False) as conn:
            conn.execute("SELECT COUNT(*) FROM meta").fetchone()
        assert file.commits == 1
        other = sqlite3.connect(path)
        try:
            assert other.execute("SELECT value FROM meta WHERE key='k'").fetchall() == [("v",)]
        finally:
            other.close()
    finally:
        file.close()


def test_a_failed_transaction_is_rolled_back_and_its_own_error_raised(tmp_path: Path) -> None:
    """An error in the block undoes its writes and is the error raised, even when the
    block's failure already ended the transaction (as SQLite does on a full disk)."""
    file = CheckpointFile.open(tmp_path / "t.db")
    try:
        with pytest.raises(KeyError, match="first"), file.transaction() as conn:
            conn.execute("INSERT INTO meta(key, value) VALUES ('k', 'v')")
            raise KeyError("first")
        with pytest.raises(ValueError, match="mine"), file.transaction() as conn:
            conn.execute("INSERT INTO meta(key, value) VALUES ('k', 'v')")
            conn.execute("ROLLBACK")  # the transaction is gone before the block fails
            raise ValueError("mine")
        assert file.conn.execute("SELECT COUNT(*) FROM meta").fetchone() == (0,)
        assert file.commits == 0 and not file.conn.in_transaction
    finally:
        file.close()


def test_a_write_transaction_takes_the_write_lock_before_the_block_runs(tmp_path: Path) -> None:
    """While another connection writes, a write transaction fails at BEGIN: none of the
    block's work is done against a file it could not commit to."""
    path = tmp_path / "t.db"
    file = CheckpointFile.open(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        file.conn.execute("PRAGMA busy_timeout=0")
        ran = []
        with pytest.raises(sqlite3.OperationalError, match="locked"), file.transaction():
            ran.append(True)
        assert ran == [] and file.commits == 0
    finally:
        other.execute("ROLLBACK")
        other.close()
        file.close()


def test_unwritable_says_what_ran_out(tmp_path: Path) -> None:
    """A full disk or quota is named as such; any other error is passed on with the
    likely causes, and the checkpoint's path is in both."""
    path = tmp_path / "t.db"
    full = unwritable(path, OSError(errno.ENOSPC, "No space left on device"))
    assert full.startswith(f"checkpoint {path} can no longer be written: ")
    assert "the disk or the disk quota holding" in full and "is full" in full
    other = unwritable(path, sqlite3.OperationalError("disk I/O error"))
    assert other.endswith("disk I/O error (disk full, quota or a file-size limit?)")

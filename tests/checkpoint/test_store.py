"""Unit tests of the checkpoint file (:mod:`batchops.checkpoint.store`), on real SQLite files.

What is checked here is what the resume guarantees stand on: the file is owner-only and
never holds a secret, it is in WAL mode, "sending" marks are committed in groups before
any request leaves, outcomes reach the disk within 100 ms even when nothing else
happens, a second writer is locked out, ``--fresh`` keeps the old file as a backup, and
``batchops report`` can read the file while a run writes it.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchops.checkpoint.group_commit import OUTCOME_FLUSH_S
from batchops.checkpoint.store import (
    Binding,
    Checkpoint,
    row_key,
)
from batchops.errors import CheckpointError
from batchops.model import Action, Outcome, Row, Status
from batchops.sandbox import SandboxThread

from ..helpers import SECRET, creds_env, read_report, run_cli, running, seed, write_csv

BINDING = Binding(
    rows_fingerprint="f" * 64,
    row_count=0,
    gateway="esb",
    base_url="http://127.0.0.1:1",
    input_path="/nowhere/t.csv",
)


def _row(index: int, action: Action = Action.SUSPEND) -> Row:
    return Row(index=index, sn=f"NO{index}", operator="admin", action=action, message="m")


def _new_store(path: Path, n: int) -> Checkpoint:
    """A checkpoint holding ``n`` queued rows, with a run begun."""
    store = Checkpoint.open(path)
    store.initialise(
        Binding(BINDING.rows_fingerprint, n, "esb", BINDING.base_url, BINDING.input_path),
        (
            (
                i,
                row_key(f"NO{i}", "SUSPEND", "admin", "m"),
                f"NO{i}",
                "SUSPEND",
                "queued",
                Status.PENDING.value,
                "",
            )
            for i in range(n)
        ),
    )
    store.begin_run("test")
    return store


def _tamper(path: Path, statement: str) -> None:
    """Change a closed checkpoint behind batchops' back, as another program could."""
    conn = sqlite3.connect(path)
    try:
        conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


def _states(path: Path) -> dict[int, str]:
    """Each row's state as another process would see it (a separate connection)."""
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT idx, state FROM rows"))
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Checkpoint]:
    """An open checkpoint with 200 queued rows."""
    opened = _new_store(tmp_path / "c.db", 200)
    try:
        yield opened
    finally:
        opened.close()


# --------------------------------------------------------------------------- the file


def test_checkpoint_and_its_wal_files_are_owner_only(tmp_path: Path) -> None:
    """The file and SQLite's -wal/-shm beside it are 0600, even with a permissive umask."""
    old = os.umask(0)
    try:
        opened = _new_store(tmp_path / "c.db", 3)
    finally:
        os.umask(old)
    try:
        for name in ("c.db", "c.db-wal", "c.db-shm"):
            mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
            assert mode == 0o600, f"{name}: {oct(mode)}"
    finally:
        opened.close()


def test_existing_checkpoint_with_wide_permissions_is_tightened(tmp_path: Path) -> None:
    """A checkpoint copied with 0644 (cp, a backup restore) is 0600 once batchops opens it."""
    path = tmp_path / "c.db"
    _new_store(path, 1).close()
    path.chmod(0o644)
    Checkpoint.open(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_journal_is_wal_with_normal_sync(store: Checkpoint) -> None:
    """WAL mode is recorded in the file (seen from another connection); sync is NORMAL."""
    other = sqlite3.connect(store.path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_no_secret_in_checkpoint_after_real_runs(itsm: SandboxThread, tmp_path: Path) -> None:
    """After a good run, a run rejected for a wrong secret and a resume, no file holds it."""
    seed(itsm, running("NO1"), running("NO2"))
    src = write_csv(
        tmp_path / "t.csv",
        [["NO1", "admin", "SUSPEND", "x"], ["NO2", "admin", "TERMINATE", "y"]],
    )
    ckpt = tmp_path / "c.db"
    bad = run_cli(
        ["run", str(src), "--checkpoint", str(ckpt), "--no-precheck"],
        creds_env(itsm.url, secret=SECRET + "-wrong"),
    )
    assert bad.exit_code == 3, bad.stdout + bad.stderr
    good = run_cli(["run", str(src), "--checkpoint", str(ckpt)], creds_env(itsm.url))
    assert good.exit_code == 0, good.stdout + good.stderr
    assert [r["status"] for r in read_report(tmp_path / "t.report.csv")] == ["success"] * 2
    files = [p for p in tmp_path.iterdir() if p.name.startswith("c.db")]
    assert files
    for path in files:
        data = path.read_bytes()
        assert SECRET.encode() not in data, path
        assert (SECRET + "-wrong").encode() not in data, path
    # What the checkpoint does hold: the target, never a credential.
    reader = Checkpoint.open_readonly(ckpt)
    try:
        binding = reader.binding()
    finally:
        reader.close()
    assert binding is not None and binding.base_url == itsm.url


# --------------------------------------------------------------------------- opening


def test_second_writer_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    """The advisory lock: a second open fails at once with a clear message; after close it works."""
    path = tmp_path / "c.db"
    first = _new_store(path, 1)
    started = time.monotonic()
    with pytest.raises(CheckpointError, match="in use by another batchops run"):
        Checkpoint.open(path)
    assert time.monotonic() - started < 1.0
    first.close()
    Checkpoint.open(path).close()


def test_not_a_database_is_refused_with_a_hint(tmp_path: Path) -> None:
    """A file that is not SQLite: a CheckpointError naming --fresh, and the lock is released."""
    path = tmp_path / "c.db"
    path.write_bytes(b"definitely not sqlite " * 200)
    with pytest.raises(CheckpointError, match=r"not a batchops checkpoint.*--fresh"):
        Checkpoint.open(path)
    with pytest.raises(CheckpointError, match=r"not a batchops checkpoint.*--fresh"):
        Checkpoint.open(path)  # not "in use": the failed open let go of its lock


def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    """A checkpoint written by another batchops version is refused, and left unchanged."""
    path = tmp_path / "c.db"
    _new_store(path, 1).close()
    _tamper(path, "UPDATE meta SET value='99' WHERE key='schema'")
    with pytest.raises(CheckpointError, match=r"schema 99.*--fresh"):
        Checkpoint.open(path)


@pytest.mark.parametrize(
    ("statement", "what"),
    [
        ("DROP TABLE meta", "no meta table"),
        ("DROP TABLE rows", "no rows table"),
        ("DELETE FROM rows", "0 of its 3 rows"),
        ("DELETE FROM rows WHERE idx = 1", "2 of its 3 rows"),
        ("DELETE FROM meta", "3 rows but no record of its input"),
        ("DELETE FROM meta WHERE key = 'base_url'", "no base_url"),
    ],
)
def test_incomplete_checkpoint_is_refused_like_a_corrupt_one(
    tmp_path: Path, statement: str, what: str
) -> None:
    """A checkpoint with a table dropped or emptied is refused (never read as "nothing sent
    yet"), by the writer and by ``batchops report``; the file is left as it was."""
    path = tmp_path / "c.db"
    _new_store(path, 3).close()
    _tamper(path, statement)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=rf"incomplete \({what}\).*--fresh"):
        Checkpoint.open(path)
    with pytest.raises(CheckpointError, match=rf"incomplete \({what}\)"):
        Checkpoint.open_readonly(path)
    assert path.read_bytes() == before


def test_incomplete_checkpoint_through_the_cli(itsm: SandboxThread, tmp_path: Path) -> None:
    """run on a checkpoint whose meta table is gone: one Error line, exit 2, nothing sent;
    --fresh sets it aside and the run goes on."""
    seed(itsm, running("NO1"), running("NO2"))
    src = write_csv(
        tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"], ["NO2", "admin", "SUSPEND", "y"]]
    )
    env = creds_env(itsm.url)
    first = run_cli(["run", str(src)], env)
    assert first.exit_code == 0, first.stderr
    _tamper(tmp_path / ".batchops" / "t.checkpoint.db", "DROP TABLE meta")
    itsm.call(itsm.state.reset_stats)
    out = run_cli(["run", str(src)], env)
    assert out.exit_code == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("Error: checkpoint ") and "incomplete (no meta table)" in line
    assert sum(itsm.state.stats.requests.values()) == 0
    fresh = run_cli(["run", str(src), "--fresh"], env)
    assert fresh.exit_code == 0, fresh.stderr
    assert itsm.state.stats.operations_total == 0  # the pre-check saw both suspended


def test_missing_checkpoint_without_create(tmp_path: Path) -> None:
    """open(create=False) and open_readonly on a missing file say so and create nothing."""
    with pytest.raises(CheckpointError, match="does not exist"):
        Checkpoint.open(tmp_path / "nope.db", create=False)
    with pytest.raises(CheckpointError, match="does not exist"):
        Checkpoint.open_readonly(tmp_path / "nope.db")
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_without_sent_at_column_is_upgraded(tmp_path: Path) -> None:
    """A checkpoint from before rows kept their send time opens, reads and gains the column."""
    path = tmp_path / "c.db"
    _new_store(path, 2).close()
    _tamper(path, "ALTER TABLE rows DROP COLUMN sent_at")
    reader = Checkpoint.open_readonly(path)
    try:
        assert [r.sent_at for r in reader.rows()] == [None, None]
    finally:
        reader.close()
    writer = Checkpoint.open(path)
    try:
        assert [r.state for r in writer.rows()] == ["queued", "queued"]

        async def mark() -> None:
            await writer.mark_sending(_row(0), 1, "RUNNING")

        asyncio.run(mark())
        assert next(writer.rows()).sent_at is not None
    finally:
        writer.close()


# --------------------------------------------------------------------------- writing


def test_many_marks_in_one_loop_turn_are_one_commit(store: Checkpoint) -> None:
    """Group commit: 150 workers marking "sending" together cost one commit, not 150."""
    before = store.commits

    async def mark_all() -> None:
        await asyncio.gather(*(store.mark_sending(_row(i), 1, "RUNNING") for i in range(150)))

    asyncio.run(mark_all())
    assert store.commits == before + 1
    states = _states(store.path)
    assert sum(1 for s in states.values() if s == "sending") == 150


@pytest.mark.parametrize(
    "error", [sqlite3.OperationalError("database or disk is full"), RuntimeError("a bug")]
)
def test_a_failed_group_commit_is_never_swallowed(
    store: Checkpoint, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """Whatever makes a group commit fail reaches the waiting worker and on_broken (which
    stops the run), stays in ``broken`` for the caller, and refuses every later mark."""
    heard: list[str] = []
    store.on_broken = heard.append

    def fail(*args: object) -> None:
        raise error

    monkeypatch.setattr(store._group, "_write", fail)

    async def mark() -> None:
        with pytest.raises(CheckpointError) as first:
            await store.mark_sending(_row(1), 1, "RUNNING")
        assert str(first.value) == store.broken
        with pytest.raises(CheckpointError):
            await store.mark_sending(_row(2), 1, "RUNNING")

    asyncio.run(mark())
    assert heard == [store.broken] and store.broken
    store.flush()  # after sending began a failure does not raise; broken says it
    assert _states(store.path)[1] == "queued"


def test_mark_is_durable_before_mark_sending_returns(store: Checkpoint) -> None:
    """When mark_sending returns, another connection already sees the row "sending"."""
    seen: list[str] = []

    async def mark() -> None:
        await store.mark_sending(_row(7), 1, "RUNNING")
        seen.append(_states(store.path)[7])

    asyncio.run(mark())
    assert seen == ["sending"]
    rec = next(r for r in store.rows() if r.index == 7)
    assert rec.before_status == "RUNNING"
    assert rec.outcome.attempts == 1
    assert rec.sent_at is not None and abs(rec.sent_at - time.time()) < 60


def test_outcomes_are_committed_within_100ms_without_further_activity(
    store: Checkpoint,
) -> None:
    """The last outcomes of a run reach the disk on their own: no later mark is needed."""

    async def scenario() -> dict[int, str]:
        await store.mark_sending(_row(1), 1, "RUNNING")
        store.record(_row(1), Outcome(Status.SUCCESS, 0, "success", 1))
        await asyncio.sleep(OUTCOME_FLUSH_S * 3)
        return _states(store.path)

    states = asyncio.run(scenario())
    assert states[1] == "done"


def test_outcome_and_next_mark_share_one_commit(store: Checkpoint) -> None:
    """A ticket's next row is marked in the same commit as the previous row's outcome."""

    async def scenario() -> int:
        await store.mark_sending(_row(1), 1, "RUNNING")
        before = store.commits
        store.record(_row(1), Outcome(Status.SUCCESS, 0, "success", 1))
        await store.mark_sending(_row(2), 1, "SUSPENDED")
        return store.commits - before

    assert asyncio.run(scenario()) == 1
    states = _states(store.path)
    assert (states[1], states[2]) == ("done", "sending")


def test_pending_outcome_puts_row_back_in_queue(store: Checkpoint) -> None:
    """A row stopped before its answer (fatal answer elsewhere) is queued again, not done."""

    async def scenario() -> None:
        await store.mark_sending(_row(3), 1, None)
        store.record(_row(3), Outcome(Status.PENDING, None, "not done, run stopped"))

    asyncio.run(scenario())
    store.flush()
    assert _states(store.path)[3] == "queued"


def test_record_outside_an_event_loop_is_kept(store: Checkpoint) -> None:
    """A synchronous caller's outcomes are committed by flush() (no event loop needed)."""
    store.record(_row(4), Outcome(Status.FAILED, 3900004, "no"))
    store.flush()
    rec = next(r for r in store.rows() if r.index == 4)
    assert (rec.state, rec.outcome.status, rec.outcome.code) == ("done", Status.FAILED, 3900004)


def test_requeue_keeps_earlier_outcomes_in_history(store: Checkpoint) -> None:
    """--retry-failed: the earlier outcome goes to history, the row is queued again."""
    store.record(_row(5), Outcome(Status.FAILED, 3900004, "first try failed", 1))
    store.record(_row(6), Outcome(Status.UNKNOWN, None, "lost", 2))
    store.flush()
    store.requeue([5, 6])
    assert _states(store.path)[5] == "queued"
    assert store.history(5) == [(store.run_id, "failed", "first try failed")]
    assert store.history(6) == [(store.run_id, "unknown", "lost")]
    assert store.history(7) == []


# --------------------------------------------------------------------------- --fresh


def test_set_aside_keeps_a_self_contained_backup(tmp_path: Path) -> None:
    """--fresh: the old file becomes <name>.<stamp>.bak with everything (WAL folded in)."""
    path = tmp_path / "c.db"
    opened = _new_store(path, 3)
    opened.record(_row(0), Outcome(Status.SUCCESS, 0, "done before", 1))
    opened.close()
    assert Checkpoint.set_aside(tmp_path / "absent.db") is None
    backup = Checkpoint.set_aside(path)
    assert backup is not None and backup.parent == tmp_path
    assert backup.name.startswith("c.db.") and backup.name.endswith(".bak")
    assert not path.exists()
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    reader = Checkpoint.open_readonly(backup)
    try:
        first = next(reader.rows())
    finally:
        reader.close()
    assert (first.state, first.outcome.message) == ("done", "done before")
    # Twice in one second: a second, distinct backup.
    _new_store(path, 1).close()
    again = Checkpoint.set_aside(path)
    assert again is not None and again != backup and again.exists() and backup.exists()


def test_set_aside_refuses_a_checkpoint_in_use(tmp_path: Path) -> None:
    """--fresh while another run holds the checkpoint: refused, the file stays where it is."""
    path = tmp_path / "c.db"
    opened = _new_store(path, 1)
    try:
        with pytest.raises(CheckpointError, match="in use by another batchops run"):
            Checkpoint.set_aside(path)
        assert path.exists()
        assert not list(tmp_path.glob("*.bak"))
    finally:
        opened.close()


def test_set_aside_moves_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    """--fresh is the advice for a damaged checkpoint, so it must work on one (no traceback)."""
    path = tmp_path / "c.db"
    junk = b"definitely not sqlite " * 200
    path.write_bytes(junk)
    backup = Checkpoint.set_aside(path)
    assert backup is not None and backup.read_bytes() == junk
    assert not path.exists()


# --------------------------------------------------------------------------- read-only


def test_open_readonly_reads_while_another_connection_writes(store: Checkpoint) -> None:
    """WAL: a reader is not blocked by an open write transaction and sees only commits."""
    store.record(_row(0), Outcome(Status.SUCCESS, 0, "committed", 1))
    store.flush()
    conn = store._conn
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE rows SET state='done', status='failed' WHERE idx=1")
    started = time.monotonic()
    reader = Checkpoint.open_readonly(store.path)
    try:
        rows = {r.index: r for r in reader.rows()}
        assert time.monotonic() - started < 1.0  # no busy wait on the writer
        assert rows[0].outcome.message == "committed"
        assert rows[1].state == "queued"  # the uncommitted change is invisible
        conn.execute("COMMIT")
        rows = {r.index: r for r in reader.rows()}
        assert rows[1].outcome.status is Status.FAILED
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._conn.execute("UPDATE rows SET state='queued'")
    finally:
        reader.close()
    # The writer is unaffected and still holds its lock.
    with pytest.raises(CheckpointError, match="in use"):
        Checkpoint.open(store.path)


def test_open_readonly_needs_no_lock_and_changes_nothing(store: Checkpoint) -> None:
    """A reader works while the run holds the lock and leaves the main file's bytes alone."""
    store.flush()
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = store.path.read_bytes()
    reader = Checkpoint.open_readonly(store.path)
    try:
        assert reader.binding() is not None
        assert len(list(reader.rows())) == 200
    finally:
        reader.close()
    assert store.path.read_bytes() == before


@pytest.mark.parametrize("name", ["run#2.db", "what?.db", "50%25.db", "工单 批量.db"])
def test_open_readonly_with_unusual_file_names(tmp_path: Path, name: str) -> None:
    """'#', '?', '%' and spaces in the name: the right file is read and no other is created."""
    path = tmp_path / name
    _new_store(path, 2).close()
    made = set(tmp_path.iterdir())
    reader = Checkpoint.open_readonly(path)
    try:
        assert reader.binding() is not None
        assert len(list(reader.rows())) == 2
    finally:
        reader.close()
    stray = {p for p in tmp_path.iterdir() if not p.name.startswith(name)} - made
    assert not stray


def test_open_readonly_refuses_a_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    """`batchops report` on some other file: a CheckpointError, not a traceback."""
    path = tmp_path / "x.db"
    path.write_bytes(b"nope " * 500)
    with pytest.raises(CheckpointError, match="not a batchops checkpoint"):
        Checkpoint.open_readonly(path)


# --------------------------------------------------------------------------- helpers


def test_row_key_tells_every_field_apart() -> None:
    """Moving text between fields changes the key, so no edited row passes for the old one."""
    keys = {
        row_key("NO1", "SUSPEND", "admin", "m"),
        row_key("NO1", "SUSPEND", "admi", "nm"),
        row_key("NO1", "SUSPEND", "admin", "m "),
        row_key("NO1S", "USPEND", "admin", "m"),
        row_key("NO1", "TERMINATE", "admin", "m"),
    }
    assert len(keys) == 5
    assert row_key("NO1", "SUSPEND", "admin", "m") == row_key("NO1", "SUSPEND", "admin", "m")

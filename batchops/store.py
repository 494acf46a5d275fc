"""The checkpoint: one SQLite file that remembers every row's state across crashes.

Each input row has a record: its identity (position plus a hash of sn, action,
operator and message), its state and its outcome::

    queued ──mark_sending()──▶ sending ──record()──▶ done (success/failed/skipped/unknown)
                                  │
                                  └─ still "sending" after a crash: in doubt, resolved by
                                     reading the ticket back, never by a blind resend

"sending" is committed *before* the request leaves. Commits are grouped: every worker
that asks for a mark in one event-loop turn waits for one shared commit at the start
of the next turn, so the checkpoint costs a commit per group of rows, not two per row,
and a mark waits one loop turn, not a fixed window. WAL mode with
``synchronous=NORMAL`` makes a commit survive the process being killed (not a power cut).

The file is bound to the input's rows and to the target (gateway, base URL); it never
holds a secret, and it is created readable by its owner only. A second process on the
same file is refused at once through a lock on a sidecar file (``x.checkpoint.db.lock``,
taken with ``filelock``: ``flock`` on POSIX, ``msvcrt.locking`` on Windows). The lock
is never taken on the database itself, whose own locks belong to SQLite; the sidecar is
left in place when the run ends, because deleting a lock file lets two runs lock two
different files of the same name.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import shutil
import sqlite3
import stat
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import filelock

from .errors import CheckpointError
from .model import Outcome, Row, Status

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    idx INTEGER PRIMARY KEY,
    row_key TEXT NOT NULL,
    sn TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,              -- queued | sending | done
    before_status TEXT,               -- ticket status expected before the send
    status TEXT NOT NULL,             -- the report's status
    code INTEGER,
    message TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER,
    request_id TEXT NOT NULL DEFAULT '',
    elapsed_ms REAL,
    finished_at TEXT NOT NULL DEFAULT '',
    run_id INTEGER,
    sent_at REAL                      -- wall clock (epoch s) of the last "sending" mark
);
CREATE TABLE IF NOT EXISTS history (
    idx INTEGER NOT NULL,
    run_id INTEGER,
    status TEXT NOT NULL,
    code INTEGER,
    message TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    finished_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    exit_code INTEGER,
    note TEXT NOT NULL DEFAULT '',
    stopped TEXT NOT NULL DEFAULT ''  -- why the run stopped early ('' when it finished)
);
"""

#: How long finished outcomes may wait for a commit when no "sending" mark forces one.
_OUTCOME_FLUSH_S = 0.1
_OUTCOME_FLUSH_ROWS = 2000


def row_key(sn: str, action: str, operator: str, message: str) -> str:
    """A row's content identity: what would be sent, so an edited row is noticed."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update("\x1f".join((sn, action, operator, message)).encode())
    return digest.hexdigest()


def default_checkpoint_path(source: Path) -> Path:
    """Beside the input: ``tickets.csv`` → ``tickets.checkpoint.db``."""
    return source.with_name(f"{source.stem}.checkpoint.db")


@dataclass(frozen=True, slots=True)
class Binding:
    """What a checkpoint belongs to: the input's rows and the target."""

    rows_fingerprint: str
    row_count: int
    gateway: str
    base_url: str
    input_path: str


@dataclass(frozen=True, slots=True)
class StoredRow:
    index: int
    key: str
    sn: str
    action: str
    state: str
    before_status: str | None
    outcome: Outcome
    #: When the row was last marked "sending" (``time.time()``); None if never.
    sent_at: float | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of a checkpoint, as the ``runs`` table keeps it."""

    run_id: int
    started_at: str
    ended_at: str | None
    exit_code: int | None
    note: str
    stopped: str


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot of a checkpoint (:meth:`Checkpoint.progress`)."""

    counts: dict[str, int]
    sending: int
    finished_recently: int


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


class Checkpoint:
    """An open, locked checkpoint file. Use :meth:`open`; close with :meth:`close`."""

    def __init__(
        self, path: Path, conn: sqlite3.Connection, lock: filelock.BaseFileLock | None
    ) -> None:
        self.path = path
        self._conn = conn
        self._lock = lock
        self.run_id: int | None = None
        self._marks: list[tuple[int, int, str | None, int, float]] = []
        self._finals: list[tuple[object, ...]] = []
        self._history: list[tuple[object, ...]] = []
        self._flush_waiters: list[asyncio.Future[None]] = []
        self._commit_soon = False
        self._flush_timer: asyncio.TimerHandle | None = None
        self._last_flush = time.monotonic()
        self.commits = 0
        #: Why the file can no longer be written (disk full, file-size limit), once a
        #: commit failed; from then on nothing more is written and no row may be sent.
        self.broken = ""
        #: Called once with :attr:`broken`'s text when the first commit fails.
        self.on_broken: Callable[[str], None] | None = None

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Checkpoint:
        """Open (creating if asked) and lock the checkpoint; refuse if another run holds it."""
        path = Path(path)
        existed = path.exists()
        if not existed and not create:
            raise CheckpointError(f"checkpoint {path} does not exist; check the path")
        lock = _take_lock(
            path,
            "wait for it to finish (or stop it) — two runs on one checkpoint could operate "
            "a ticket twice",
        )
        try:
            # Created owner-only before SQLite touches it; SQLite gives its -wal and -shm
            # files the same permissions.
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            lock.release()
            raise CheckpointError(
                f"cannot open checkpoint {path}: {exc.strerror}; choose another place with "
                "--checkpoint PATH"
            ) from None
        try:
            _owner_only(fd, path)
        finally:
            os.close(fd)
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint=10000")
            conn.execute("PRAGMA busy_timeout=5000")
            # Before the schema script, which would quietly re-create a dropped table.
            _check_tables(conn, path)
            conn.executescript(_SCHEMA)
            version = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            ours = version is None or version[0] == SCHEMA_VERSION
            if ours and "sent_at" not in _columns(conn, "rows"):
                # A checkpoint made before rows remembered when they were sent.
                conn.execute("ALTER TABLE rows ADD COLUMN sent_at REAL")
            if ours and "stopped" not in _columns(conn, "runs"):
                # A checkpoint made before runs remembered why they stopped.
                conn.execute("ALTER TABLE runs ADD COLUMN stopped TEXT NOT NULL DEFAULT ''")
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            lock.release()
            raise CheckpointError(
                f"{path} is not a batchops checkpoint ({exc}); pass another --checkpoint "
                "or --fresh to replace it"
            ) from None
        except CheckpointError:
            if conn is not None:
                conn.close()
            lock.release()
            raise
        if version is not None and version[0] != SCHEMA_VERSION:
            conn.close()
            lock.release()
            raise CheckpointError(
                f"checkpoint {path} was written by another batchops version "
                f"(schema {version[0]}); use --fresh to start over"
            )
        try:
            _check_rows(conn, path)
        except CheckpointError:
            conn.close()
            lock.release()
            raise
        return cls(path, conn, lock)

    @classmethod
    def open_readonly(cls, path: Path) -> Checkpoint:
        """Open without locking and without writing (``batchops report`` during a run)."""
        path = Path(path)
        if not path.exists():
            raise CheckpointError(f"checkpoint {path} does not exist; check the path")
        # The path is quoted: a '#' or '?' in a file name would otherwise end the path and
        # drop "mode=ro" (SQLite would then open, even create, another file read-write).
        uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=ro"
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=5000")
            _check_tables(conn, path)
            conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            _check_rows(conn, path)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise CheckpointError(f"{path} is not a batchops checkpoint ({exc})") from None
        except CheckpointError:
            if conn is not None:
                conn.close()
            raise
        return cls(path, conn, None)

    @classmethod
    def count_applied(cls, path: Path) -> int | None:
        """Rows an existing checkpoint records as applied (``success``); None if unreadable."""
        if not path.exists():
            return None
        try:
            reader = cls.open_readonly(path)
        except CheckpointError:
            return None
        try:
            (count,) = reader._conn.execute(
                "SELECT COUNT(*) FROM rows WHERE status=?", (Status.SUCCESS.value,)
            ).fetchone()
            return int(count)
        except sqlite3.Error:
            return None
        finally:
            reader.close()

    @staticmethod
    def set_aside(path: Path) -> Path | None:
        """Move an old checkpoint out of the way (``--fresh``), keeping it as a backup."""
        if not path.exists():
            return None
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        backup = path.with_name(f"{path.name}.{stamp}.bak")
        n = 1
        while backup.exists():
            n += 1
            backup = path.with_name(f"{path.name}.{stamp}-{n}.bak")
        # Held until the old file is out of the way, so no run opens it meanwhile.
        lock = _take_lock(path, "--fresh cannot replace it now")
        try:
            # Fold the WAL into the main file so the backup is one self-contained file. A
            # file that is not a database (or a damaged one) is set aside as it is: --fresh
            # is what the "not a batchops checkpoint" error tells the user to do.
            conn = sqlite3.connect(path)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.DatabaseError:
                pass
            finally:
                conn.close()
            os.replace(path, backup)
            for suffix in ("-wal", "-shm"):
                # Normally gone after the checkpoint above; if not, they travel with the
                # backup (SQLite pairs "X.bak-wal" with "X.bak"), never mixed into a new one.
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{path}{suffix}", f"{backup}{suffix}")
        finally:
            lock.release()
        return backup

    def close(self) -> None:
        try:
            with contextlib.suppress(CheckpointError):
                self._flush_now()  # a failure is kept in self.broken for the caller
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    # ---------------------------------------------------------------- binding

    def binding(self) -> Binding | None:
        meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        if "rows_fingerprint" not in meta:
            return None
        return Binding(
            rows_fingerprint=meta["rows_fingerprint"],
            row_count=int(meta["row_count"]),
            gateway=meta["gateway"],
            base_url=meta["base_url"],
            input_path=meta["input_path"],
        )

    def row_keys(self) -> list[str]:
        return [k for (k,) in self._conn.execute("SELECT row_key FROM rows ORDER BY idx")]

    def initialise(
        self,
        binding: Binding,
        rows: Iterable[tuple[int, str, str, str, str, str, str]],
    ) -> None:
        """Write the binding and one record per input row: (index, key, sn, action, state,
        status, message). Rows not to send (invalid, or left out by ``--only``) come in
        ``done`` with their outcome so far; the others ``queued`` and ``pending``."""
        with self._before_sending():
            self._initialise(binding, rows)

    def _initialise(
        self,
        binding: Binding,
        rows: Iterable[tuple[int, str, str, str, str, str, str]],
    ) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                [
                    ("schema", SCHEMA_VERSION),
                    ("rows_fingerprint", binding.rows_fingerprint),
                    ("row_count", str(binding.row_count)),
                    ("gateway", binding.gateway),
                    ("base_url", binding.base_url),
                    ("input_path", binding.input_path),
                    ("created_at", _now()),
                ],
            )
            conn.executemany(
                "INSERT INTO rows(idx, row_key, sn, action, state, status, message) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        self.commits += 1

    def update_input_path(self, path: str) -> None:
        self._conn.execute("UPDATE meta SET value=? WHERE key='input_path'", (path,))

    @contextlib.contextmanager
    def _before_sending(self) -> Iterator[None]:
        """Writes made before any row is sent: a failure there is a plain exit 2."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise CheckpointError(
                f"cannot write checkpoint {self.path}: {_what_ran_out(self.path, exc)}; "
                "nothing was sent"
            ) from None

    def begin_run(self, note: str = "") -> int:
        with self._before_sending():
            cur = self._conn.execute(
                "INSERT INTO runs(started_at, note) VALUES (?, ?)", (_now(), note)
            )
        self.run_id = int(cur.lastrowid or 0)
        return self.run_id

    def end_run(self, exit_code: int, stopped: str = "") -> None:
        """Close this run's record: when, its exit code, and why it stopped early if it did."""
        self.flush()
        if self.broken:
            return
        # Every row is recorded by now; failing to note the run's end must not turn a
        # finished run into an error after sending.
        with contextlib.suppress(sqlite3.Error, OSError):
            self._conn.execute(
                "UPDATE runs SET ended_at=?, exit_code=?, stopped=? WHERE run_id=?",
                (_now(), exit_code, stopped, self.run_id),
            )

    # ---------------------------------------------------------------- reading

    def rows(self) -> Iterator[StoredRow]:
        sent_at = "sent_at" if "sent_at" in _columns(self._conn, "rows") else "NULL"
        cursor = self._conn.execute(
            "SELECT idx, row_key, sn, action, state, before_status, status, code, message, "
            f"attempts, http_status, request_id, elapsed_ms, finished_at, {sent_at} "
            "FROM rows ORDER BY idx"
        )
        for rec in cursor:
            yield StoredRow(
                index=rec[0],
                key=rec[1],
                sn=rec[2],
                action=rec[3],
                state=rec[4],
                before_status=rec[5],
                outcome=Outcome(
                    status=Status(rec[6]),
                    code=rec[7],
                    message=rec[8],
                    attempts=rec[9],
                    http_status=rec[10],
                    request_id=rec[11],
                    elapsed_ms=rec[12],
                    finished_at=rec[13],
                ),
                sent_at=rec[14],
            )

    def runs(self) -> list[RunRecord]:
        """Every run of this checkpoint, oldest first."""
        stopped = "stopped" if "stopped" in _columns(self._conn, "runs") else "''"
        return [
            RunRecord(*rec)
            for rec in self._conn.execute(
                f"SELECT run_id, started_at, ended_at, exit_code, note, {stopped} "
                "FROM runs ORDER BY run_id"
            )
        ]

    def progress(self, since: str, until: str | None = None) -> Progress:
        """Rows per status, rows in flight, and rows that finished at or after ``since``
        (and at or before ``until``; the checkpoint's own time text), in one read
        transaction: a consistent snapshot."""
        conn = self._conn
        conn.execute("BEGIN")
        try:
            counts = dict(conn.execute("SELECT status, COUNT(*) FROM rows GROUP BY status"))
            (sending,) = conn.execute("SELECT COUNT(*) FROM rows WHERE state='sending'").fetchone()
            (recent,) = conn.execute(
                "SELECT COUNT(*) FROM rows WHERE state='done' AND finished_at >= ? "
                "AND finished_at <= ?",
                (since, until or "~"),  # "~" sorts after every time text
            ).fetchone()
        finally:
            conn.execute("COMMIT")
        return Progress({str(k): int(v) for k, v in counts.items()}, int(sending), int(recent))

    def history(self, index: int) -> list[tuple[int | None, str, str]]:
        """Earlier outcomes of one row (run, status, message), oldest first."""
        return [
            (r[0], r[1], r[2])
            for r in self._conn.execute(
                "SELECT run_id, status, message FROM history WHERE idx=? ORDER BY rowid",
                (index,),
            )
        ]

    def requeue(self, indices: Sequence[int]) -> None:
        """Send these rows again (``--retry-failed``); their earlier outcome goes to history."""
        with self._before_sending():
            self._requeue(indices)

    def _requeue(self, indices: Sequence[int]) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO history(idx, run_id, status, code, message, attempts, finished_at) "
                "SELECT idx, run_id, status, code, message, attempts, finished_at FROM rows "
                "WHERE idx=?",
                ((i,) for i in indices),
            )
            conn.executemany(
                "UPDATE rows SET state='queued', status='pending' WHERE idx=?",
                ((i,) for i in indices),
            )
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        self.commits += 1

    # ---------------------------------------------------------------- writing

    async def mark_sending(self, row: Row, attempt: int, before: str | None) -> None:
        """Durably note that ``row`` is about to be sent; returns once committed."""
        if self.broken:
            raise CheckpointError(self.broken)
        loop = asyncio.get_running_loop()
        self._marks.append((row.index, attempt, before, self.run_id or 0, time.time()))
        # One future per worker, not one shared: cancelling a task cancels the future it
        # awaits, and that must not cancel the other workers' marks.
        waiter: asyncio.Future[None] = loop.create_future()
        self._flush_waiters.append(waiter)
        self._kick(loop)
        await waiter

    def record(self, row: Row, outcome: Outcome) -> None:
        """Note a row's outcome; committed with the next group, at the latest 100 ms later."""
        if self.broken:
            return  # the row stays as last committed; the next run reads it back
        state = "queued" if outcome.status is Status.PENDING else "done"
        self._finals.append(
            (
                state,
                outcome.status.value,
                outcome.code,
                outcome.message,
                outcome.attempts,
                outcome.http_status,
                outcome.request_id,
                outcome.elapsed_ms,
                outcome.finished_at,
                self.run_id,
                row.index,
            )
        )
        if self._commit_soon:
            return  # a commit is on its way and takes this outcome along
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # A caller without an event loop: commit when due; flush() and close() do the rest.
            if self._finals_due():
                self._flush_now()
            return
        self._next_step(loop)

    def flush(self) -> None:
        """Commit every mark and outcome noted so far.

        Once sending has begun, a failure must not raise past here: it stops the run
        through :attr:`on_broken`, and the caller reads :attr:`broken`.
        """
        with contextlib.suppress(CheckpointError):
            self._flush_now()

    def _finals_due(self) -> bool:
        return (
            len(self._finals) >= _OUTCOME_FLUSH_ROWS
            or time.monotonic() - self._last_flush > _OUTCOME_FLUSH_S
        )

    def _next_step(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start a commit if marks wait or outcomes are due; else make sure one comes."""
        if self._marks or (self._finals and self._finals_due()):
            self._kick(loop)
        elif self._finals and self._flush_timer is None:
            # When no later mark or outcome comes along (the last rows of a run, or one slow
            # request), commit anyway once the 100 ms are up, so a kill costs no more
            # read-backs than that.
            delay = max(0.0, self._last_flush + _OUTCOME_FLUSH_S - time.monotonic())
            self._flush_timer = loop.call_later(delay, self._on_timer, loop)

    def _kick(self, loop: asyncio.AbstractEventLoop) -> None:
        # Group commit: the commit runs a loop turn later, so every worker marking in
        # this turn joins it. A fixed window (1 ms) gathered more marks per commit but
        # added that millisecond to every request: 20% of the send time at D=20 ms.
        if not self._commit_soon:
            self._commit_soon = True
            loop.call_soon(self._commit_group)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._flush_timer = None
        self._kick(loop)

    def _commit_group(self) -> None:
        self._commit_soon = False
        # A failure reaches every worker waiting for this commit through its waiter.
        with contextlib.suppress(Exception):
            self._flush_now()

    def _error(self, exc: BaseException) -> CheckpointError:
        return CheckpointError(f"cannot write checkpoint {self.path}: {exc}")

    def _flush_now(self) -> None:
        """Commit everything noted so far, here and now; settle the marks' waiters."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        marks, self._marks = self._marks, []
        finals, self._finals = self._finals, []
        waiters, self._flush_waiters = self._flush_waiters, []
        if self.broken:
            _settle(waiters, CheckpointError(self.broken))
            return
        try:
            self._write(marks, finals)
        except (sqlite3.Error, OSError) as exc:
            self.broken = _unwritable(self.path, exc)
            error = CheckpointError(self.broken)
            _settle(waiters, error)
            if self.on_broken is not None:
                self.on_broken(self.broken)
            raise error from None
        except BaseException as exc:
            _settle(waiters, self._error(exc))
            raise
        _settle(waiters, None)

    def _write(
        self, marks: list[tuple[int, int, str | None, int, float]], finals: list[tuple[object, ...]]
    ) -> None:
        if not marks and not finals:
            return
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if finals:
                conn.executemany(
                    "UPDATE rows SET state=?, status=?, code=?, message=?, attempts=?, "
                    "http_status=?, request_id=?, elapsed_ms=?, finished_at=?, run_id=? "
                    "WHERE idx=?",
                    finals,
                )
            if marks:
                conn.executemany(
                    "UPDATE rows SET state='sending', attempts=?, before_status=?, run_id=?, "
                    "sent_at=? WHERE idx=?",
                    (
                        (attempt, before, run, sent_at, idx)
                        for idx, attempt, before, run, sent_at in marks
                    ),
                )
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        self.commits += 1
        self._last_flush = time.monotonic()


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back what is left of a failed transaction, keeping the first error.

    On a full disk SQLite may already have rolled back by itself; a ROLLBACK then fails
    with "no transaction is active" and would hide what really went wrong.
    """
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _unwritable(path: Path, exc: BaseException) -> str:
    """One line: the checkpoint cannot be written, what ran out, and where."""
    return f"checkpoint {path} can no longer be written: {_what_ran_out(path, exc)}"


def _what_ran_out(path: Path, exc: BaseException) -> str:
    sizes = []
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-journal")):
        with contextlib.suppress(OSError):
            sizes.append((name.stat().st_size, name))
    limit = _file_size_limit()
    if limit is not None and sizes:
        size, name = max(sizes)
        if size + (1 << 16) >= limit:
            return (
                f"the file-size limit ({limit} bytes, 'ulimit -f') was reached by {name}; "
                "raise the limit or choose another --checkpoint"
            )
    folder = path.resolve().parent
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(folder).free
        if free < (1 << 20):
            return f"the disk holding {folder} is full ({free} bytes free)"
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    ):
        return f"the disk or the disk quota holding {folder} is full"
    return f"{exc} (disk full, quota or a file-size limit?)"


def _file_size_limit() -> int | None:
    """The process's file-size limit ('ulimit -f') in bytes; None when there is none."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if limit == resource.RLIM_INFINITY else int(limit)


_TABLES = frozenset({"meta", "rows", "history", "runs"})


def _incomplete(path: Path, what: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is incomplete ({what}); it was damaged or edited, so it cannot "
        "say which rows were sent. Pass another --checkpoint, or --fresh to set it aside "
        "and start over (the pre-check then decides what is sent)"
    )


def _check_tables(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a checkpoint that has some of batchops' tables but not all of them.

    A file with no table at all is a new checkpoint (created, then the run died before
    writing it); one missing ``meta`` or ``rows`` would otherwise be re-created empty and
    read as "nothing sent yet".
    """
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if tables and not tables >= _TABLES:
        missing = ", ".join(sorted(_TABLES - tables))
        raise _incomplete(path, f"no {missing} table")


def _check_rows(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a checkpoint whose rows do not match what its meta table says it holds."""
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    (stored,) = conn.execute("SELECT COUNT(*) FROM rows").fetchone()
    if "rows_fingerprint" not in meta:
        if stored:
            raise _incomplete(path, f"{stored} rows but no record of its input")
        return
    try:
        expected = int(meta.get("row_count", ""))
    except ValueError:
        raise _incomplete(path, "no row count") from None
    missing = [k for k in ("gateway", "base_url", "input_path") if k not in meta]
    if missing:
        raise _incomplete(path, "no " + ", ".join(missing))
    if stored != expected:
        raise _incomplete(path, f"{stored} of its {expected} rows")


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(rec[1]) for rec in conn.execute(f"PRAGMA table_info({table})")}


def lock_path(checkpoint: Path) -> Path:
    """The sidecar file whose lock says a run holds ``checkpoint``."""
    return checkpoint.with_name(f"{checkpoint.name}.lock")


def _take_lock(path: Path, advice: str) -> filelock.BaseFileLock:
    """Lock the checkpoint's sidecar lock file at once, or say that another run holds it."""
    lock = filelock.FileLock(lock_path(path), mode=0o600)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise CheckpointError(
            f"checkpoint {path} is in use by another batchops run; {advice}"
        ) from None
    except OSError as exc:
        raise CheckpointError(
            f"cannot lock checkpoint {path}: {exc.strerror or exc}; choose another place "
            "with --checkpoint PATH"
        ) from None
    return lock


def _owner_only(fd: int, path: Path) -> None:
    """Take group and other permissions off a checkpoint made or copied with them.

    SQLite gives the -wal and -shm files it creates the main file's permissions; ones
    left over from before are tightened too. Files of another owner are left alone.
    On Windows, permissions are ACLs that a mode cannot express: nothing to do there.
    """
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            os.fchmod(fd, mode & 0o700)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(OSError):
            side = Path(f"{path}{suffix}")
            mode = stat.S_IMODE(side.stat().st_mode)
            if mode & 0o077:
                side.chmod(mode & 0o700)


def summarise_changes(
    old_keys: Sequence[str],
    new_keys: Sequence[str],
    row_number: Callable[[int], int] = lambda index: index + 2,
) -> str:
    """Say in a few words how an input's rows differ from the checkpoint's (rows named
    by ``row_number``, the sheet's row of a data row)."""
    parts = []
    if len(new_keys) != len(old_keys):
        parts.append(f"{len(old_keys)} rows then, {len(new_keys)} now")
    changed = [i for i, (a, b) in enumerate(zip(old_keys, new_keys, strict=False)) if a != b]
    if changed:
        first = ", ".join(str(row_number(i)) for i in changed[:5])
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        parts.append(f"{len(changed)} rows differ (rows {first}{more})")
    return "; ".join(parts) or "the rows differ"


def _settle(waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for waiter in waiters:
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)

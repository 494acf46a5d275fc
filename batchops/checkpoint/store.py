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

The file is bound to the input's rows (the rows sent or maybe sent must stay as they
were; :mod:`batchops.checkpoint.rebind`) and to the target (gateway, base URL); it never
holds a secret, and it is created readable by its owner only. A second process on the
same file is refused at once through a lock on a sidecar file (``x.checkpoint.db.lock``).

This module is the checkpoint's face to the rest of batchops (:class:`Checkpoint`, its
records, the row identity); the file itself (lock, schema, migration, transactions) is
:mod:`batchops.checkpoint.file`'s, and when marks and outcomes are committed is
:mod:`batchops.checkpoint.group_commit`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from batchops.errors import CheckpointError
from batchops.i18n import _
from batchops.model import Outcome, Row, RowState, Status

from .file import SCHEMA_VERSION, CheckpointFile, columns, lock_path, what_ran_out
from .group_commit import GroupCommit

__all__ = [
    "SCHEMA_VERSION",
    "Binding",
    "Checkpoint",
    "Progress",
    "RunRecord",
    "StoredRow",
    "lock_path",
    "row_key",
]


def row_key(sn: str, action: str, operator: str, message: str) -> str:
    """A row's content identity: what would be sent, so an edited row is noticed."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update("\x1f".join((sn, action, operator, message)).encode())
    return digest.hexdigest()


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
    state: RowState
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

    def __init__(self, file: CheckpointFile) -> None:
        self.file = file
        self.path = file.path
        self.run_id: int | None = None
        self._group = GroupCommit(file)

    @property
    def _conn(self) -> sqlite3.Connection:
        return self.file.conn

    @property
    def commits(self) -> int:
        """Write transactions committed so far."""
        return self.file.commits

    @property
    def broken(self) -> str:
        """Why the file can no longer be written, once a commit failed ("" until then)."""
        return self._group.broken

    @property
    def on_broken(self) -> Callable[[str], None] | None:
        """Called once with :attr:`broken`'s text when the first commit fails."""
        return self._group.on_broken

    @on_broken.setter
    def on_broken(self, callback: Callable[[str], None] | None) -> None:
        self._group.on_broken = callback

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Checkpoint:
        """Open (creating if asked) and lock the checkpoint; refuse if another run holds it."""
        return cls(CheckpointFile.open(path, create=create))

    @classmethod
    def open_readonly(cls, path: Path) -> Checkpoint:
        """Open without locking and without writing (``batchops report`` during a run)."""
        return cls(CheckpointFile.open_readonly(path))

    @classmethod
    def count_applied(cls, path: Path) -> int | None:
        """Rows an existing checkpoint records as applied (``success``); None if unreadable."""
        count = cls._peek(path, "SELECT COUNT(*) FROM rows WHERE status=?", Status.SUCCESS.value)
        return None if count is None else int(count)

    @classmethod
    def last_uncertain_send(cls, path: Path) -> float:
        """When (epoch s) an existing checkpoint last sent a row whose fate it does not know
        (still "sending", or ended ``unknown``); 0 when none, or the file is unreadable."""
        latest = cls._peek(
            path,
            "SELECT MAX(sent_at) FROM rows WHERE state='sending' OR status=?",
            Status.UNKNOWN.value,
        )
        return float(latest or 0.0)

    @classmethod
    def _peek(cls, path: Path, query: str, *params: object) -> float | None:
        """One number of an existing checkpoint, read without locking it; None when the
        file is missing or cannot be read (or the query finds none)."""
        if not path.exists():
            return None
        try:
            reader = cls.open_readonly(path)
        except CheckpointError:
            return None
        try:
            (value,) = reader._conn.execute(query, params).fetchone()
            return None if value is None else float(value)
        except sqlite3.Error:
            return None
        finally:
            reader.close()

    @staticmethod
    def set_aside(path: Path) -> Path | None:
        """Move an old checkpoint out of the way (``--fresh``), keeping it as a backup."""
        return CheckpointFile.set_aside(path)

    def close(self) -> None:
        try:
            with contextlib.suppress(CheckpointError):
                self._group.commit_now()  # a failure is kept in self.broken for the caller
        finally:
            self.file.close()

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
        with self.file.transaction() as conn:
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

    def update_input_path(self, path: str) -> None:
        self._conn.execute("UPDATE meta SET value=? WHERE key='input_path'", (path,))

    @contextlib.contextmanager
    def _before_sending(self) -> Iterator[None]:
        """Writes made before any row is sent: a failure there is a plain exit 2."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise CheckpointError(
                _("cannot write checkpoint {path}: {why}; nothing was sent").format(
                    path=self.path, why=what_ran_out(self.path, exc)
                )
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
        sent_at = "sent_at" if "sent_at" in columns(self._conn, "rows") else "NULL"
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
                state=RowState(rec[4]),
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
        stopped = "stopped" if "stopped" in columns(self._conn, "runs") else "''"
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
        with self.file.transaction(write=False) as conn:
            counts = dict(conn.execute("SELECT status, COUNT(*) FROM rows GROUP BY status"))
            (sending,) = conn.execute("SELECT COUNT(*) FROM rows WHERE state='sending'").fetchone()
            (recent,) = conn.execute(
                "SELECT COUNT(*) FROM rows WHERE state='done' AND finished_at >= ? "
                "AND finished_at <= ?",
                (since, until or "~"),  # "~" sorts after every time text
            ).fetchone()
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
        with self.file.transaction() as conn:
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

    def rebind(
        self,
        binding: Binding,
        fresh: Sequence[tuple[int, str, str, str, str, str, str]],
        renamed: Sequence[tuple[str, str, str, int]],
        dropped_from: int | None,
    ) -> None:
        """Bind the checkpoint to an edited input (:mod:`.rebind` decided what): rows
        recorded anew as a first run records them (an earlier outcome goes to history),
        rows that keep their outcome under new content, rows past the input's end
        forgotten, and the binding's fingerprint and row count, in one transaction."""
        with self._before_sending(), self.file.transaction() as conn:
            if dropped_from is not None:
                conn.execute("DELETE FROM history WHERE idx >= ?", (dropped_from,))
                conn.execute("DELETE FROM rows WHERE idx >= ?", (dropped_from,))
            conn.executemany(
                "INSERT INTO history(idx, run_id, status, code, message, attempts, finished_at) "
                "SELECT idx, run_id, status, code, message, attempts, finished_at FROM rows "
                "WHERE idx=?",
                ((rec[0],) for rec in fresh),
            )
            conn.executemany("DELETE FROM rows WHERE idx=?", ((rec[0],) for rec in fresh))
            conn.executemany(
                "INSERT INTO rows(idx, row_key, sn, action, state, status, message) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                fresh,
            )
            conn.executemany("UPDATE rows SET row_key=?, sn=?, action=? WHERE idx=?", renamed)
            conn.executemany(
                "UPDATE meta SET value=? WHERE key=?",
                [
                    (binding.rows_fingerprint, "rows_fingerprint"),
                    (str(binding.row_count), "row_count"),
                ],
            )

    # ---------------------------------------------------------------- writing

    def mark_sending(self, row: Row, attempt: int, before: str | None) -> Awaitable[None]:
        """Durably note that ``row`` is about to be sent: await the result, which is done
        once committed (the caller awaits the commit itself, see GroupCommit.mark)."""
        return self._group.mark((attempt, before, self.run_id or 0, time.time(), row.index))

    def record(self, row: Row, outcome: Outcome) -> None:
        """Note a row's outcome; committed with the next group, at the latest 100 ms later."""
        if self.broken:
            return  # the row stays as last committed; the next run reads it back
        state = "queued" if outcome.status is Status.PENDING else "done"
        self._group.note(
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

    def flush(self) -> None:
        """Commit every mark and outcome noted so far.

        Once sending has begun, a failure must not raise past here: it stops the run
        through :attr:`on_broken`, and the caller reads :attr:`broken`.
        """
        with contextlib.suppress(CheckpointError):
            self._group.commit_now()

"""The checkpoint file: lock, schema, migration, and one way to write a transaction.

This module owns the SQLite file under :class:`batchops.checkpoint.store.Checkpoint`: creating it
owner-only, the lock that refuses a second run on the same file, the schema
and the upgrade of older checkpoints, the checks that refuse a damaged or foreign file,
opening it read-only (``batchops report`` during a run), setting it aside (``--fresh``),
and :meth:`CheckpointFile.transaction`, the one place that says BEGIN, COMMIT and
ROLLBACK. What is written, and when, is :mod:`batchops.checkpoint.group_commit`'s and ``store``'s.

The lock is on a sidecar file (``x.checkpoint.db.lock``, taken with ``filelock``:
``flock`` on POSIX, ``msvcrt.locking`` on Windows). It is never taken on the database
itself, whose own locks belong to SQLite; the sidecar is left in place when the run
ends, because deleting a lock file lets two runs lock two different files of the same
name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import stat
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import filelock

from batchops.errors import CheckpointError
from batchops.i18n import N_, _

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


class CheckpointFile:
    """An open checkpoint file: its connection and, unless read-only, its lock."""

    def __init__(
        self, path: Path, conn: sqlite3.Connection, lock: filelock.BaseFileLock | None
    ) -> None:
        self.path = path
        self.conn = conn
        self._lock = lock
        #: Write transactions committed so far (tests count group commits with it).
        self.commits = 0

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> CheckpointFile:
        """Open (creating if asked) and lock the checkpoint; refuse if another run holds it."""
        path = Path(path)
        if not path.exists() and not create:
            raise CheckpointError(
                _("checkpoint {path} does not exist; check the path").format(path=path)
            )
        if create:
            _make_folder(path.parent)
        lock = _take_lock(
            path,
            _(
                "wait for it to finish (or stop it) — two runs on one checkpoint could operate "
                "a ticket twice"
            ),
        )
        try:
            _check_whole(path)
            _create_owner_only(path)
            conn = _connect_with_schema(path)
        except CheckpointError:
            lock.release()
            raise
        try:
            _check_rows(conn, path)
        except CheckpointError:
            conn.close()
            lock.release()
            raise
        return cls(path, conn, lock)

    @classmethod
    def open_readonly(cls, path: Path) -> CheckpointFile:
        """Open without locking and without writing (``batchops report`` during a run)."""
        path = Path(path)
        if not path.exists():
            raise CheckpointError(
                _("checkpoint {path} does not exist; check the path").format(path=path)
            )
        # The path is quoted: a '#' or '?' in a file name would otherwise end the path and
        # drop "mode=ro" (SQLite would then open, even create, another file read-write).
        uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=ro"
        _check_whole(path)
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
            raise CheckpointError(
                _("{path} is not a batchops checkpoint ({error})").format(
                    path=path, error=_sqlite_said(exc)
                )
            ) from None
        except CheckpointError:
            if conn is not None:
                conn.close()
            raise
        return cls(path, conn, None)

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
        lock = _take_lock(path, _("--fresh cannot replace it now"))
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

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction around the block, like sqlite-utils' ``atomic()``.

        Committed when the block ends; rolled back when it raises, and the block's error
        is the one raised. ``write`` takes the write lock at once (``BEGIN IMMEDIATE``,
        so a busy file fails before any work) and counts the commit in :attr:`commits`;
        a read (``write=False``) is one consistent snapshot.
        """
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        if write:
            self.commits += 1

    def close(self) -> None:
        """Close the connection (an error closing it is of no use to anyone) and unlock."""
        try:
            with contextlib.suppress(sqlite3.Error):
                self.conn.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None


def _make_folder(folder: Path) -> None:
    """The checkpoint's own folder (the input's ``.batchops``), owner-only, one level only:
    a mistyped deeper ``--checkpoint`` path is still an error, not a tree of folders."""
    if folder.is_dir():
        return
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise CheckpointError(
            _(
                "cannot make the folder {folder} for the checkpoint: {reason}; choose "
                "another place with --checkpoint PATH"
            ).format(folder=folder, reason=exc.strerror)
        ) from None


def _create_owner_only(path: Path) -> None:
    """Create the checkpoint file if needed, readable by its owner only."""
    try:
        # Created owner-only before SQLite touches it; SQLite gives its -wal and -shm
        # files the same permissions.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise CheckpointError(
            _(
                "cannot open checkpoint {path}: {error}; choose another place with "
                "--checkpoint PATH"
            ).format(path=path, error=exc.strerror)
        ) from None
    try:
        _owner_only(fd, path)
    finally:
        os.close(fd)


_SQLITE_MAGIC = b"SQLite format 3\x00"

#: SQLite's own words for the files it refuses most often, as a person reads them.
_SQLITE_WORDS = {
    "file is not a database": N_("it is not a database file"),
    "database disk image is malformed": N_("the database file is damaged"),
}


def _sqlite_said(error: sqlite3.DatabaseError) -> str:
    """What SQLite said of a file, in the language in use when it is a common refusal."""
    text = str(error)
    return _(_SQLITE_WORDS[text]) if text in _SQLITE_WORDS else text


def _check_whole(path: Path) -> None:
    """Refuse an existing checkpoint that is empty or cut short, before SQLite opens it.

    SQLite takes a 0-byte file for a new, empty database, and reads a file missing part
    of its last page with the rest as zeros: either would make a run forget which rows
    were sent and send them again. A database file is always whole pages (in WAL mode
    too), so a size that is not is a cut. A missing file is a new checkpoint.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            header = handle.read(100)
    except FileNotFoundError:
        return
    except OSError:
        return  # opening it says what is wrong, with the way out
    if size == 0:
        cut = _("it is empty (0 bytes)")
    elif header.startswith(_SQLITE_MAGIC) and len(header) == 100:
        page = int.from_bytes(header[16:18], "big")
        page = 65536 if page == 1 else page
        if not page or size % page == 0:
            return
        cut = _("it is cut short: {size} bytes is no whole number of its {page}-byte pages")
        cut = cut.format(size=size, page=page)
    else:
        return  # SQLite refuses a file that is not a database
    raise CheckpointError(
        _(
            "{path} is not a batchops checkpoint ({why}), so it cannot say which rows were "
            "sent; pass another --checkpoint, or --fresh to set it aside and start over"
        ).format(path=path, why=cut)
    )


def _connect_with_schema(path: Path) -> sqlite3.Connection:
    """Connect for writing, create or upgrade the schema; refuse a foreign or damaged file."""
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # 2 KB pages (set before WAL mode; a no-op on an existing file) and the WAL folded
        # back every 4,000 pages (8 MB): a run's small commits write fewer bytes, and
        # closing folds back a few MB instead of the 20 MB a 5,000-row run left with 4 KB
        # pages at 10,000 (close 40 ms -> 10 ms; BENCHMARKS.md, "Closing the checkpoint").
        conn.execute("PRAGMA page_size=2048")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint=4000")
        conn.execute("PRAGMA busy_timeout=5000")
        # Before the schema script, which would quietly re-create a dropped table.
        _check_tables(conn, path)
        conn.executescript(_SCHEMA)
        version = _migrate(conn)
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        raise CheckpointError(
            _(
                "{path} is not a batchops checkpoint ({error}); pass another --checkpoint "
                "or --fresh to replace it"
            ).format(path=path, error=_sqlite_said(exc))
        ) from None
    except CheckpointError:
        if conn is not None:
            conn.close()
        raise
    if version is not None and version[0] != SCHEMA_VERSION:
        conn.close()
        raise CheckpointError(
            _(
                "checkpoint {path} was written by another batchops version "
                "(schema {schema}); use --fresh to start over"
            ).format(path=path, schema=version[0])
        )
    return conn


def _migrate(conn: sqlite3.Connection) -> tuple[object, ...] | None:
    """Bring a checkpoint of this schema version up to date; its stored version row."""
    version: tuple[object, ...] | None = conn.execute(
        "SELECT value FROM meta WHERE key='schema'"
    ).fetchone()
    ours = version is None or version[0] == SCHEMA_VERSION
    if ours and "sent_at" not in columns(conn, "rows"):
        # A checkpoint made before rows remembered when they were sent.
        conn.execute("ALTER TABLE rows ADD COLUMN sent_at REAL")
    if ours and "stopped" not in columns(conn, "runs"):
        # A checkpoint made before runs remembered why they stopped.
        conn.execute("ALTER TABLE runs ADD COLUMN stopped TEXT NOT NULL DEFAULT ''")
    return version


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back what is left of a failed transaction, keeping the first error.

    On a full disk SQLite may already have rolled back by itself; a ROLLBACK then fails
    with "no transaction is active" and would hide what really went wrong.
    """
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def unwritable(path: Path, exc: BaseException) -> str:
    """One line: the checkpoint cannot be written, what ran out, and where."""
    return _("checkpoint {path} can no longer be written: {why}").format(
        path=path, why=what_ran_out(path, exc)
    )


def what_ran_out(path: Path, exc: BaseException) -> str:
    sizes = []
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-journal")):
        with contextlib.suppress(OSError):
            sizes.append((name.stat().st_size, name))
    limit = _file_size_limit()
    if limit is not None and sizes:
        size, name = max(sizes)
        if size + (1 << 16) >= limit:
            return _(
                "the file-size limit ({limit} bytes, 'ulimit -f') was reached by {name}; "
                "raise the limit or choose another --checkpoint"
            ).format(limit=limit, name=name)
    folder = path.resolve().parent
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(folder).free
        if free < (1 << 20):
            return _("the disk holding {folder} is full ({free} bytes free)").format(
                folder=folder, free=free
            )
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    ):
        return _("the disk or the disk quota holding {folder} is full").format(folder=folder)
    return _("{error} (disk full, quota or a file-size limit?)").format(error=exc)


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
        _(
            "checkpoint {path} is incomplete ({what}); it was damaged or edited, so it cannot "
            "say which rows were sent. Pass another --checkpoint, or --fresh to set it aside "
            "and start over (the pre-check then decides what is sent)"
        ).format(path=path, what=what)
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
        raise _incomplete(path, _("no {tables} table").format(tables=missing))


def _check_rows(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a checkpoint whose rows do not match what its meta table says it holds."""
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    (stored,) = conn.execute("SELECT COUNT(*) FROM rows").fetchone()
    if "rows_fingerprint" not in meta:
        if stored:
            raise _incomplete(
                path, _("{count} rows but no record of its input").format(count=stored)
            )
        return
    try:
        expected = int(meta.get("row_count", ""))
    except ValueError:
        raise _incomplete(path, _("no row count")) from None
    missing = [k for k in ("gateway", "base_url", "input_path") if k not in meta]
    if missing:
        raise _incomplete(path, _("no {fields}").format(fields=", ".join(missing)))
    if stored != expected:
        raise _incomplete(
            path, _("{count} of its {expected} rows").format(count=stored, expected=expected)
        )


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
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
            _("checkpoint {path} is in use by another batchops run; {advice}").format(
                path=path, advice=advice
            )
        ) from None
    except OSError as exc:
        raise CheckpointError(
            _(
                "cannot lock checkpoint {path}: {error}; choose another place "
                "with --checkpoint PATH"
            ).format(path=path, error=exc.strerror or exc)
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

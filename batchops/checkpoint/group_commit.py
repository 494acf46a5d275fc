"""Group commit: "sending" marks and finished outcomes, written a group at a time.

This module owns *when* the checkpoint is written once rows are being sent. Every worker
that asks for a mark in one event-loop turn waits for one shared commit at the start of
the next turn, so the checkpoint costs a commit per group of rows, not two per row, and a
mark waits one loop turn, not a fixed window. Finished outcomes ride along with the next
group, or are committed on their own at most 100 ms after they were noted.

A commit that fails is never swallowed: the file is then *broken*
(:attr:`GroupCommit.broken` says why), every worker waiting for that commit gets the
:class:`~batchops.errors.CheckpointError`, :attr:`GroupCommit.on_broken` is called once
(the run uses it to stop sending), and every later mark is refused. A row is never sent
without its mark committed first.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable

from batchops.errors import CheckpointError
from batchops.i18n import _

from .file import CheckpointFile, unwritable

#: How long finished outcomes may wait for a commit when no "sending" mark forces one.
OUTCOME_FLUSH_S = 0.1
OUTCOME_FLUSH_ROWS = 2000

#: A "sending" mark, in the order of :data:`_MARK_SQL`'s parameters: (attempt, status
#: expected before, run id, epoch s, row index).
Mark = tuple[int, str | None, int, float, int]
#: A finished outcome, in the column order of :data:`_FINAL_SQL`'s parameters.
Final = tuple[object, ...]

_FINAL_SQL = (
    "UPDATE rows SET state=?, status=?, code=?, message=?, attempts=?, "
    "http_status=?, request_id=?, elapsed_ms=?, finished_at=?, run_id=? WHERE idx=?"
)
_MARK_SQL = (
    "UPDATE rows SET state='sending', attempts=?, before_status=?, run_id=?, sent_at=? WHERE idx=?"
)


class GroupCommit:
    """Marks and outcomes of one open checkpoint file, grouped into commits."""

    def __init__(self, file: CheckpointFile) -> None:
        self._file = file
        self._marks: list[Mark] = []
        self._finals: list[Final] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._commit_soon = False
        self._timer: asyncio.TimerHandle | None = None
        self._last_flush = time.monotonic()
        #: Why the file can no longer be written (disk full, file-size limit), once a
        #: commit failed; from then on nothing more is written and no row may be sent.
        self.broken = ""
        #: Called once with :attr:`broken`'s text when the first commit fails.
        self.on_broken: Callable[[str], None] | None = None

    def mark(self, mark: Mark) -> asyncio.Future[None]:
        """Note that a row is about to be sent: await the future, done once committed.

        Not a coroutine: the worker awaits the commit itself, so a row's mark costs no
        coroutine objects and no frames on its await chain (CPU-bound runs feel each µs).
        Raises :class:`CheckpointError` at once when the file is broken.
        """
        if self.broken:
            raise CheckpointError(self.broken)
        loop = asyncio.get_running_loop()
        self._marks.append(mark)
        # One future per worker, not one shared: cancelling a task cancels the future it
        # awaits, and that must not cancel the other workers' marks.
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        self._kick(loop)
        return waiter

    def note(self, final: Final) -> None:
        """Note a finished outcome; committed with the next group, at the latest 100 ms on."""
        self._finals.append(final)
        if self._commit_soon:
            return  # a commit is on its way and takes this outcome along
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # A caller without an event loop: commit when due; flush() and close() do the rest.
            if self._finals_due():
                self.commit_now()
            return
        self._next_step(loop)

    def commit_now(self) -> None:
        """Commit everything noted so far, here and now; settle the marks' waiters.

        Raises :class:`CheckpointError` when the commit fails (and the file is broken).
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        marks, self._marks = self._marks, []
        finals, self._finals = self._finals, []
        waiters, self._waiters = self._waiters, []
        if self.broken:
            _settle(waiters, CheckpointError(self.broken))
            return
        try:
            self._write(marks, finals)
        except Exception as exc:
            # Out of room (disk, quota, 'ulimit -f') is the expected case; anything else
            # is a bug, and it stops the run the same way rather than vanish.
            if isinstance(exc, sqlite3.Error | OSError):
                self.broken = unwritable(self._file.path, exc)
            else:
                self.broken = _("cannot write checkpoint {path}: {error}").format(
                    path=self._file.path, error=repr(exc)
                )
            error = CheckpointError(self.broken)
            _settle(waiters, error)
            if self.on_broken is not None:
                self.on_broken(self.broken)
            raise error from exc
        except BaseException as exc:  # cancelled or interrupted mid-commit
            text = _("cannot write checkpoint {path}: {error}").format(
                path=self._file.path, error=exc
            )
            _settle(waiters, CheckpointError(text))
            raise
        _settle(waiters, None)

    def _finals_due(self) -> bool:
        return (
            len(self._finals) >= OUTCOME_FLUSH_ROWS
            or time.monotonic() - self._last_flush > OUTCOME_FLUSH_S
        )

    def _next_step(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start a commit if marks wait or outcomes are due; else make sure one comes."""
        if self._marks or (self._finals and self._finals_due()):
            self._kick(loop)
        elif self._finals and self._timer is None:
            # When no later mark or outcome comes along (the last rows of a run, or one slow
            # request), commit anyway once the 100 ms are up, so a kill costs no more
            # read-backs than that.
            delay = max(0.0, self._last_flush + OUTCOME_FLUSH_S - time.monotonic())
            self._timer = loop.call_later(delay, self._on_timer, loop)

    def _kick(self, loop: asyncio.AbstractEventLoop) -> None:
        # Group commit: the commit runs a loop turn later, so every worker marking in
        # this turn joins it. A fixed window (1 ms) gathered more marks per commit but
        # added that millisecond to every request: 20% of the send time at D=20 ms.
        if not self._commit_soon:
            self._commit_soon = True
            loop.call_soon(self._commit_group)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._kick(loop)

    def _commit_group(self) -> None:
        self._commit_soon = False
        # A failed commit has been delivered by the time it raises here: to each waiting
        # worker, to on_broken (which stops the run) and to :attr:`broken`, which refuses
        # every later mark and which flush()/close()'s callers read. Raising it on into
        # the event loop would only print "Exception in callback".
        with contextlib.suppress(CheckpointError):
            self.commit_now()

    def _write(self, marks: list[Mark], finals: list[Final]) -> None:
        if not marks and not finals:
            return
        with self._file.transaction() as conn:
            if finals:
                conn.executemany(_FINAL_SQL, finals)
            if marks:
                conn.executemany(_MARK_SQL, marks)
        self._last_flush = time.monotonic()


def _settle(waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for waiter in waiters:
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)

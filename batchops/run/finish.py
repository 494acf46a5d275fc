"""The end of a run: its report and failures file, its summary and its exit code.

The exit code (one of :class:`batchops.exits.Exit`) follows the stop's kind, then what
is left (never a message's wording): see :func:`exit_code_of`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from batchops.checkpoint import Checkpoint
from batchops.errors import BatchopsError
from batchops.exits import Exit
from batchops.i18n import _
from batchops.model import STATUS_ORDER, OutcomeTable, RunSummary, Status
from batchops.report import SummarySheet, unwritten_after_sending, write_failures, write_report
from batchops.sheet import Batch, add_notes
from batchops.stops import Stop

from .context import Ending
from .prompts import Advice, invalid_reasons
from .summary import summary_sheet, top_failures


def counts_by_action(batch: Batch, outcomes: OutcomeTable) -> dict[str, dict[str, int]]:
    """Rows per action and status, counted on codes (no table of a million labels)."""
    codes, actions = pd.factorize(np.where(batch.action == "", "(none)", batch.action))
    width = len(STATUS_ORDER)
    pairs = np.bincount(
        codes.astype(np.int64) * width + outcomes.status_codes(), minlength=len(actions) * width
    ).reshape(len(actions), width)
    return {
        str(action): {STATUS_ORDER[j].value: int(pairs[i, j]) for j in range(width) if pairs[i, j]}
        for i, action in enumerate(actions.tolist())
    }


def exit_code_of(
    counts: Mapping[str, int], stop: Stop | None, *, pending_is_unfinished: bool = True
) -> Exit:
    """The exit code follows the stop's kind, then what is left: never a message's wording."""
    if stop is not None:
        return stop.kind.exit_code
    if pending_is_unfinished and counts.get(Status.PENDING.value, 0):
        # Rows left undone without a stop (the way to ITSM kept failing for them): the
        # same command sends them, so this is a resumable stop, not a finished run.
        return Exit.STOPPED
    bad = sum(counts.get(s.value, 0) for s in (Status.FAILED, Status.INVALID, Status.UNKNOWN))
    return Exit.ROWS_FAILED if bad else Exit.OK


@dataclass(frozen=True, slots=True)
class RunEnd:
    """What the end of a run needs beside its outcomes: where to write, what to say."""

    #: ``time.monotonic()`` when the run started.
    started: float
    #: None: no report (the run was not confirmed).
    report_path: Path | None
    failures_path: Path | None
    store: Checkpoint | None
    #: What the resume found, for the summary.
    note: str
    advice: Advice
    #: The settings the report's summary sheet lists.
    settings: dict[str, object]


@dataclass(frozen=True, slots=True)
class _Written:
    path: Path | None = None
    error: str = ""
    #: The exit code, once a report that could not be written changed it.
    exit_code: Exit | None = None


def finish_run(batch: Batch, outcomes: OutcomeTable, state: Ending, end: RunEnd) -> RunSummary:
    """Write the report (and the failures file) and sum the run up."""
    counts = outcomes.counts()
    by_action = counts_by_action(batch, outcomes)
    failures = top_failures(outcomes, batch.sn, operators=batch.operator)
    stop = state.stop
    stopped = (
        _("not confirmed; nothing was sent") if state.declined else stop.reason if stop else ""
    )
    exit_code = Exit.ROWS_FAILED if state.declined else exit_code_of(counts, stop)
    invalid = invalid_reasons(batch, outcomes)
    next_step = "" if state.declined else end.advice.next_step(counts, stop, failures, invalid)
    elapsed = time.monotonic() - end.started
    ended = datetime.now().astimezone()
    written = _Written()
    if end.report_path is not None:
        sheet = summary_sheet(
            counts, by_action, failures, end.settings, elapsed, stopped, exit_code
        )
        written = _write(batch, outcomes, end, end.report_path, sheet)
    store = end.store
    return RunSummary(
        counts=counts,
        total_rows=len(batch),
        sent_requests=state.requests,
        elapsed_s=elapsed,
        report_path=str(written.path) if written.path else None,
        exit_code=exit_code if written.exit_code is None else written.exit_code,
        stopped_reason=stopped,
        input_fingerprint=batch.fingerprint,
        checkpoint_path=str(store.path) if store else None,
        counts_by_action=by_action,
        note=end.note,
        advice=next_step,
        top_failures=failures,
        failures_path=(
            str(end.failures_path) if end.failures_path is not None and written.path else None
        ),
        report_error=written.error,
        started_at=iso_time(ended - timedelta(seconds=elapsed)),
        finished_at=iso_time(ended),
        input_path=str(batch.source),
        rows_sent=state.rows_sent,
    )


def iso_time(moment: datetime) -> str:
    """A moment as ``--summary-json`` gives it: ISO 8601 to the millisecond, with its offset."""
    return moment.isoformat(timespec="milliseconds")


def _write(
    batch: Batch, outcomes: OutcomeTable, end: RunEnd, report_path: Path, sheet: SummarySheet
) -> _Written:
    """The report and the failures file; what went wrong, if anything, once rows were sent."""
    add_notes(batch, outcomes)
    path: Path | None = None
    try:
        path = write_report(
            batch.frame,
            outcomes,
            report_path,
            summary=sheet,
            sheet_name=batch.sheet,
            book=batch.book,
        )
        if end.failures_path is not None:
            write_failures(batch.frame, outcomes, end.failures_path)
    except BatchopsError as exc:
        if not outcomes.any_attempted():
            raise  # nothing was sent: exit 2 says so truthfully
        store = end.store
        if store is not None and store.broken:
            # Not "safe in the checkpoint": it could not be written either. Exit 3
            # stands: the same command reads back what was in flight and goes on.
            error = _("{error}; the checkpoint could not be written either (above)").format(
                error=exc
            )
            return _Written(path, error)
        error = unwritten_after_sending(str(exc), store.path if store else None, report_path)
        return _Written(path, error, Exit.REPORT_UNWRITTEN)
    return _Written(path=path)

"""What a run's checkpoint says the rows of its report did, for ``undo``.

A run that writes its report where it goes by default leaves its checkpoint beside its
input; the checkpoint's own record of the input (its binding) tells whether it belongs
to a given report. It is read as ``status`` reads it: read-only and unlocked, so a
checkpoint is never disturbed by an undo. A report row is the checkpoint's row at the
same place when both hold the same sn, action, operator and message (the report keeps
every input row in order); a row moved by sorting is found by that content.

A report fed back as input starts a chain: ``t.report.csv`` run again writes
``t.report-2.csv`` (its checkpoint ``.batchops/t.report.checkpoint.db`` is bound to
``t.report.csv``), that one ``t.report-3.csv``, and so on. Each later report shows the
rows an earlier run applied as ``success`` too, but its checkpoint records them as
carried, never sent: only rows a run sent itself (:func:`sent_by_run`) are its own.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from batchops.checkpoint import Checkpoint, StoredRow, row_keys
from batchops.errors import CheckpointError, InputError
from batchops.i18n import _
from batchops.model import RowState, Status
from batchops.report import STATE_FOLDER, default_checkpoint_path, default_report_path
from batchops.sheet import Batch, load_batch


def find_checkpoint(report: Path) -> Path | None:
    """The checkpoint of the run that wrote ``report`` where a run leaves both: beside
    the run's input, named after it, and bound (its own record says) to an input whose
    report is ``report``. None when there is none; two candidates are refused."""
    found = []
    candidates = [
        *sorted(report.parent.glob("*.checkpoint.db")),
        *sorted((report.parent / STATE_FOLDER).glob("*.checkpoint.db")),
    ]
    for candidate in candidates:
        source = _bound_input(candidate)
        if (
            source is not None
            and default_report_path(source).name == report.name
            and default_checkpoint_path(source).name == candidate.name
        ):
            found.append(candidate)
    if len(found) > 1:
        raise InputError(
            _(
                "{count} checkpoints beside {report} belong to runs that wrote it "
                "({names}); name the one with --checkpoint"
            ).format(count=len(found), report=report, names=", ".join(p.name for p in found))
        )
    return found[0] if found else None


@dataclass(frozen=True, slots=True)
class LaterRun:
    """A later run of the same sheet: the report it wrote, its checkpoint, its record,
    and how many rows it applied itself (``success`` and sent by it)."""

    report: Path
    checkpoint: Path
    record: list[StoredRow]
    applied: int


def later_runs(report: Path) -> list[LaterRun]:
    """The runs that followed the one that wrote ``report``, oldest first: the run whose
    input was ``report`` (and wrote the next report of the chain, where a run writes it),
    the run whose input was that report, and so on. A link whose checkpoint or report is
    not where a run leaves it ends the chain."""
    runs: list[LaterRun] = []
    current, seen = report, {report.name.casefold()}
    while True:
        following = default_report_path(current)
        checkpoint = _checkpoint_of_input(current)
        if checkpoint is None or following.name.casefold() in seen or not following.is_file():
            return runs
        try:
            record = read_record(checkpoint)
        except CheckpointError:
            return runs
        applied = sum(
            1 for s in record if sent_by_run(s) and outcome_recorded(s) == Status.SUCCESS.value
        )
        runs.append(LaterRun(following, checkpoint, record, applied))
        seen.add(following.name.casefold())
        current = following


def load_later(
    later: Sequence[LaterRun], sheet: str | None, encoding: str | None
) -> list[tuple[Batch, str, Sequence[StoredRow]]]:
    """The later runs' reports, read as the first one is, each with its run's record."""
    return [
        (
            load_batch(run.report, sheet=sheet, encoding=encoding, include_hidden=True),
            run.report.name,
            run.record,
        )
        for run in later
    ]


def _checkpoint_of_input(source: Path) -> Path | None:
    """The checkpoint a run of ``source`` left where a run leaves it (beside it, as an
    older batchops did, or in its state folder) and bound to an input of that name."""
    beside = source.with_name(f"{source.stem}.checkpoint.db")
    for candidate in (beside, source.parent / STATE_FOLDER / beside.name):
        bound = _bound_input(candidate) if candidate.is_file() else None
        if bound is not None and bound.name.casefold() == source.name.casefold():
            return candidate
    return None


def sent_by_run(stored: StoredRow) -> bool:
    """Whether the checkpoint's own run sent the row: a row an earlier report fed back
    as done is carried with its status, never sent (no send time, no attempt)."""
    return stored.sent_at is not None or stored.outcome.attempts > 0


def _bound_input(checkpoint: Path) -> Path | None:
    """The input a checkpoint's run read; None when unreadable or never bound."""
    try:
        store = Checkpoint.open_readonly(checkpoint)
    except CheckpointError:
        return None
    try:
        binding = store.binding()
    except (sqlite3.Error, KeyError, ValueError):  # a file that cannot say is not the run's
        return None
    finally:
        store.close()
    return None if binding is None else Path(binding.input_path)


def read_record(checkpoint: Path) -> list[StoredRow]:
    """Every row a checkpoint records, read without locking or writing it."""
    store = Checkpoint.open_readonly(checkpoint)
    try:
        if store.binding() is None:
            raise CheckpointError(
                _("checkpoint {path} has no run recorded yet").format(path=checkpoint)
            )
        return list(store.rows())
    finally:
        store.close()


def match_rows(batch: Batch, record: Sequence[StoredRow]) -> dict[int, StoredRow]:
    """Each report row's record in the checkpoint: the one at its place when that is the
    same row (a report as the run wrote it), else the first unclaimed one with the same
    sn, action, operator and message (a report whose rows were sorted or moved)."""
    keys = row_keys(batch)
    at = {stored.index: stored for stored in record}
    matched: dict[int, StoredRow] = {}
    for index, key in enumerate(keys):
        stored = at.get(index)
        if stored is not None and stored.key == key:
            matched[index] = stored
    claimed = {stored.index for stored in matched.values()}
    free: dict[str, deque[StoredRow]] = {}
    for stored in record:
        if stored.index not in claimed:
            free.setdefault(stored.key, deque()).append(stored)
    for index, key in enumerate(keys):
        if index not in matched and free.get(key):
            matched[index] = free[key].popleft()
    return matched


def outcome_recorded(stored: StoredRow) -> str:
    """A row's outcome as the checkpoint records it; one still being sent when a run
    died may have landed: unknown."""
    if stored.state is RowState.SENDING:
        return Status.UNKNOWN.value
    return stored.outcome.status.value

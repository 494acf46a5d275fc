"""What a run's checkpoint says the rows of its report did, for ``undo``.

A run that writes its report where it goes by default leaves its checkpoint beside its
input; the checkpoint's own record of the input (its binding) tells whether it belongs
to a given report. It is read as ``status`` reads it: read-only and unlocked, so a
checkpoint is never disturbed by an undo. A report row is the checkpoint's row at the
same place when both hold the same sn, action, operator and message (the report keeps
every input row in order); a row moved by sorting is found by that content.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from batchops.checkpoint import Checkpoint, StoredRow, row_keys
from batchops.errors import CheckpointError, InputError
from batchops.i18n import _
from batchops.model import RowState, Status
from batchops.report import STATE_FOLDER, default_checkpoint_path, default_report_path
from batchops.sheet import Batch


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

"""A checkpoint over an input that was edited since: which rows still bind, which are new.

A checkpoint binds the rows whose operation reached ITSM or may have: applied
(``success``), in doubt (``sending`` when a run died), and ``unknown`` (its request may
have landed). Those must stay as they were sent; every other row may be fixed between
runs (the usual fix of a ``failed`` row is its operator) and is taken as it is now.

Rows are known by their place in the input (the checkpoint's ``idx``), checked against
what was recorded there (:func:`.store.row_key`: sn, action, operator and message). A
place is the only identity that two rows of one ticket do not share; a row inserted or
deleted above a bound row moves it, and the run is refused, naming where the row sent
now is, instead of quietly taking another row for it.

- a bound row edited, moved or gone: refused, nothing sent (exit 2), each row named;
  an ``unknown`` row (also one ``--retry-failed`` queued again and did not send yet)
  may change its operator or message, not its ticket or action;
- a ``failed`` or ``unknown`` row edited: it keeps its outcome (``--retry-failed`` sends
  it as it is now), unless it is invalid now;
- any other row edited (``invalid``, ``pending``, ``skipped``, never sent), and a row
  added at the end: recorded as a first run records it, so it is validated and sent;
- a row gone from the end that bound nothing: forgotten.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from batchops.errors import CheckpointError
from batchops.i18n import _, ngettext
from batchops.model import Outcome, OutcomeTable, RowState, Status
from batchops.sheet import Batch, show

from .store import Binding, Checkpoint, StoredRow

#: Rows a refusal names; the rest are counted.
_SHOWN = 5


@dataclass
class Rebinding:
    """How the input's rows differ from the checkpoint's, as written back to it."""

    #: Rows recorded again as a first run records them: (index, key, sn, action, state,
    #: status, message).
    fresh: list[tuple[int, str, str, str, str, str, str]]
    #: Failed or unknown rows that keep their outcome under their new content:
    #: (key, sn, action, index).
    renamed: list[tuple[str, str, str, int]]
    #: Recorded rows beyond the input's end (none of them bound).
    dropped_from: int | None = None

    @property
    def edited(self) -> int:
        return len(self.fresh) + len(self.renamed)


def bound(rec: StoredRow) -> bool:
    """Whether the row's operation reached ITSM or may have: it must stay as sent."""
    if rec.state is RowState.SENDING:
        return True
    return rec.state is RowState.DONE and rec.outcome.status in (Status.SUCCESS, Status.UNKNOWN)


def rebind(
    store: Checkpoint,
    binding: Binding,
    keys: Sequence[str],
    batch: Batch,
    outcomes: OutcomeTable,
    queued: np.ndarray,
) -> str:
    """Check the edited input against the checkpoint and record its rows as they are now;
    a note on what was taken anew ("" when nothing). ``queued`` marks the rows a first run
    would queue. Refuses (:class:`CheckpointError`) when a bound row changed."""
    records = list(store.rows())
    plan = _compare(store, records, keys, batch, outcomes, queued)
    store.rebind(binding, plan.fresh, plan.renamed, plan.dropped_from)
    parts = []
    edited = sorted(
        [r[0] for r in plan.fresh if r[0] < len(records)] + [r[3] for r in plan.renamed]
    )
    if edited:
        parts.append(
            ngettext(
                "{count} row changed since the last run ({rows}): taken as it is now",
                "{count} rows changed since the last run ({rows}): taken as they are now",
                len(edited),
            ).format(count=len(edited), rows=_row_list(batch, edited))
        )
    added = len(keys) - len(records)
    if added > 0:
        parts.append(
            ngettext(
                "{count} row added since the last run",
                "{count} rows added since the last run",
                added,
            ).format(count=added)
        )
    return "; ".join(parts)


def _compare(
    store: Checkpoint,
    records: list[StoredRow],
    keys: Sequence[str],
    batch: Batch,
    outcomes: OutcomeTable,
    queued: np.ndarray,
) -> Rebinding:
    labels = outcomes.labels()
    plan = Rebinding([], [])
    refused: list[str] = []
    where: dict[str, int] | None = None

    def first_record(index: int) -> tuple[int, str, str, str, str, str, str]:
        state = RowState.QUEUED if queued[index] else RowState.DONE
        message = outcomes.get(index).message
        return (
            index,
            keys[index],
            str(batch.sn[index]),
            str(batch.action[index]),
            state.value,
            str(labels[index]),
            message,
        )

    for rec in records:
        index = rec.index
        now = keys[index] if index < len(keys) else None
        if now == rec.key:
            continue
        if rec.state is RowState.QUEUED and _requeued_unknown(store, index):
            # --retry-failed queued it again and it was not sent since: still unknown.
            rec = dataclasses.replace(
                rec, state=RowState.DONE, outcome=Outcome(Status.UNKNOWN, None, "")
            )
        if _must_stay(rec, batch, index, now):
            if where is None:
                where = {}
                for position, key in enumerate(keys):
                    where.setdefault(key, position)
            refused.append(_what_changed(rec, batch, index, where.get(rec.key)))
        elif now is None:
            plan.dropped_from = index if plan.dropped_from is None else plan.dropped_from
        elif (
            rec.state is RowState.DONE
            and rec.outcome.status in (Status.FAILED, Status.UNKNOWN)
            and not batch.invalid[index]
        ):
            plan.renamed.append((now, str(batch.sn[index]), str(batch.action[index]), index))
        else:
            plan.fresh.append(first_record(index))
    if refused:
        raise _refusal(refused, store.path)
    plan.fresh.extend(first_record(index) for index in range(len(records), len(keys)))
    return plan


def _requeued_unknown(store: Checkpoint, index: int) -> bool:
    """Whether the row ended ``unknown`` before ``--retry-failed`` queued it again."""
    earlier = store.history(index)
    return bool(earlier) and earlier[-1][1] == Status.UNKNOWN.value


def _must_stay(rec: StoredRow, batch: Batch, index: int, now: str | None) -> bool:
    """Whether this change of a recorded row is refused: a bound row changed (an unknown
    one may change its operator and message, not its ticket or its action)."""
    if not bound(rec):
        return False
    if now is None or rec.state is not RowState.DONE or rec.outcome.status is not Status.UNKNOWN:
        return True
    return (str(batch.sn[index]), str(batch.action[index])) != (rec.sn, rec.action)


def _what_changed(rec: StoredRow, batch: Batch, index: int, moved_to: int | None) -> str:
    """One refused row: where it is, what it was, what it says now."""
    status = _("in doubt") if rec.state is RowState.SENDING else rec.outcome.status.value
    if index >= len(batch):
        text = _(
            "data row {position} (sn '{sn}', {action}, {status}) is no longer in the file"
        ).format(position=index + 1, sn=show(rec.sn), action=rec.action, status=status)
    else:
        text = _("row {row} (sn '{sn}', {action}, {status}): {change}").format(
            row=batch.row_number(index),
            sn=show(rec.sn),
            action=rec.action,
            status=status,
            change=_change(rec, batch, index),
        )
    if moved_to is None or moved_to == index:
        return text
    return _(
        "{what} (the row as sent is now row {row}: a row was inserted or deleted above it)"
    ).format(what=text, row=batch.row_number(moved_to))


def _change(rec: StoredRow, batch: Batch, index: int) -> str:
    """What differs in a recorded row: its ticket, its action, or what goes with them."""
    sn, action = str(batch.sn[index]), str(batch.action[index])
    if sn != rec.sn:
        return _("its sn is now '{sn}'").format(sn=show(sn))
    if action != rec.action:
        return _("its action is now {action}").format(action=action or "(none)")
    return _("its operator or action_message changed")


def _refusal(refused: list[str], path: Path) -> CheckpointError:
    shown = "; ".join(refused[:_SHOWN])
    if len(refused) > _SHOWN:
        shown += _("; and {count} more").format(count=len(refused) - _SHOWN)
    return CheckpointError(
        _(
            "the input changed since checkpoint {path} was made, in rows an earlier run "
            "applied or may have applied: {rows}. Nothing was sent. Put those rows back "
            "as they were sent, in their places (fix only rows that are not done: failed, "
            "invalid, pending, unknown); or, to start over with this file, add --fresh "
            "(the old checkpoint is kept as a backup)"
        ).format(path=path, rows=shown)
    )


def _row_list(batch: Batch, indices: list[int]) -> str:
    rows = ", ".join(str(batch.row_number(i)) for i in indices[:_SHOWN])
    if len(indices) > _SHOWN:
        rows = _("{rows} and {count} more").format(rows=rows, count=len(indices) - _SHOWN)
    return ngettext("row {rows}", "rows {rows}", len(indices)).format(rows=rows)

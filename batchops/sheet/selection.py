"""Which rows a run may send: invalid rows marked, rows hidden in the sheet left out,
``--only`` over an earlier report (the others keep that report's result), and the notes
batchops adds to a row's message.

A row hidden or filtered out in the sheet is ``skipped`` with :data:`LEFT_OUT_MESSAGE`:
never sent, and neither ``failed`` nor ``invalid`` (nothing went wrong: a person chose
the rows to send by hiding the others). In a report fed back it stays ``skipped``, a
status of rows that are done, so it is not sent then either unless asked for
(``--only skipped``). A row an earlier report fed back says was done or may have landed
keeps that result instead, as an invalid one does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

import numpy as np
import pandas as pd

from batchops.errors import ConfigError
from batchops.i18n import N_, _, ngettext
from batchops.model import Outcome, OutcomeTable, Status
from batchops.settings import refused

from .loading import Batch, previous_done, status_word, status_words

#: The rows of an earlier report that a run sends when no --only is given.
NOT_DONE = ("pending", "failed", "unknown", "invalid")

#: The report's message for a row hidden in the sheet, which is not sent (shown with ``_``).
LEFT_OUT_MESSAGE = N_(
    "hidden in the sheet (a hidden or filtered-out row), so not sent; unhide it, or run "
    "with --include-hidden to send hidden rows too"
)


#: The report's message for a footer row (a total under the tickets), which is no ticket.
FOOTER_MESSAGE = N_("a total row under the tickets, not a ticket: left out, not sent")


def mark_invalid(batch: Batch, outcomes: OutcomeTable) -> None:
    """Give each invalid row its reason, except a row an earlier report fed back says was
    done or may have landed: that result stays (it is never sent either way)."""
    previous = batch.previous_results
    kept = (
        previous_done(previous["status"])
        if previous is not None
        else np.zeros(len(batch.invalid), dtype=bool)
    )
    for index in np.flatnonzero(batch.invalid != "").tolist():
        if kept[index] and previous is not None:
            outcomes.set(index, _previous_outcome(previous, index))
        else:
            outcomes.set(index, Outcome(Status.INVALID, None, str(batch.invalid[index])))


def mark_left_out(batch: Batch, outcomes: OutcomeTable) -> int:
    """Give each row hidden in the sheet that is not sent its outcome (``skipped``, or the
    result an earlier report fed back says it already had, when done); how many there are."""
    if batch.left_out is None:
        return 0
    rows = np.flatnonzero(batch.left_out)
    previous = batch.previous_results
    kept = previous_done(previous["status"]) if previous is not None else None
    footer = batch.footer
    for index in rows.tolist():
        if kept is not None and previous is not None and kept[index]:
            outcomes.set(index, _previous_outcome(previous, index))
        elif footer is not None and footer[index]:
            outcomes.set(index, Outcome(Status.SKIPPED, None, _(FOOTER_MESSAGE)))
        else:
            outcomes.set(index, Outcome(Status.SKIPPED, None, _(LEFT_OUT_MESSAGE)))
    return len(rows)


def left_out_note(count: int) -> str:
    """The summary's line about the rows hidden in the sheet ('' when there are none)."""
    if not count:
        return ""
    return ngettext(
        "1 row hidden or filtered out in the sheet: left out, not sent (skipped); "
        "--include-hidden sends it",
        "{count} rows hidden or filtered out in the sheet: left out, not sent (skipped); "
        "--include-hidden sends them",
        count,
    ).format(count=count)


def select_rows(batch: Batch, outcomes: OutcomeTable, only: Collection[str] | None) -> np.ndarray:
    """Which rows this run may send: every valid row, or with ``only`` those an earlier
    report gave one of the named statuses (the others keep that report's result)."""
    valid = np.zeros(len(batch), dtype=bool)
    valid[batch.valid_indices()] = True
    if not only:
        return valid
    wanted = {s.strip().lower() for s in only if s.strip()}
    unknown = wanted - {s.value for s in Status}
    if unknown:
        known = [s.value for s in Status]
        raise refused("--only", ",".join(sorted(unknown)), ", ".join(known), known)
    previous = batch.previous_results
    if previous is None:
        raise ConfigError(
            _(
                "--only needs a batchops report as input (with its status column); "
                "{path} is a plain input file"
            ).format(path=batch.source)
        )
    earlier = previous_statuses(previous)
    chosen: np.ndarray = np.asarray(valid & np.isin(earlier, list(wanted)), dtype=bool)
    for index in np.flatnonzero(valid & ~chosen).tolist():
        outcomes.set(index, _previous_outcome(previous, index))
    return chosen


def previous_statuses(previous: pd.DataFrame) -> np.ndarray:
    """An earlier report's status column, one lower-case word a row (full-width letters
    made plain: a status retyped with a Chinese input method still counts)."""
    return status_words(previous["status"]).to_numpy(dtype=object)


def _previous_outcome(previous: pd.DataFrame, index: int) -> Outcome:
    row = previous.iloc[index]

    def number(name: str) -> float | None:
        text = str(row[name]).strip()
        try:
            return float(text) if text else None
        except ValueError:
            return None

    status_text = status_word(row["status"])
    status = Status(status_text) if status_text in {s.value for s in Status} else Status.PENDING
    code, attempts, http = number("code"), number("attempts"), number("http_status")
    return Outcome(
        status,
        int(code) if code is not None else None,
        str(row["message"]),
        int(attempts or 0),
        int(http) if http is not None else None,
        str(row["request_id"]),
        number("elapsed_ms"),
        str(row["finished_at"]),
    )


def add_notes(batch: Batch, outcomes: OutcomeTable) -> None:
    """Say in the report's message what batchops changed in a row before sending it."""
    for index, note in batch.notes.items():
        outcome = outcomes.get(index)
        if note not in outcome.message:
            message = f"{outcome.message} ({note})" if outcome.message else note
            outcomes.set(index, dataclasses.replace(outcome, message=message))


def mark_not_sent(outcomes: OutcomeTable, indices: np.ndarray, why: str) -> None:
    for index in indices.tolist():
        if outcomes.status_of(index) is Status.PENDING:
            outcomes.set(index, Outcome(Status.PENDING, None, _("not sent: {why}").format(why=why)))

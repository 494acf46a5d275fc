"""Where a run's outcomes go: the outcome table, the checkpoint, the machine-wide record
of operations in flight, the progress display and the event log, with secrets scrubbed
on the way. Also the run's notices and events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from batchops.checkpoint import Checkpoint, InFlightLedger
from batchops.i18n import _
from batchops.model import Outcome, OutcomeTable, Row, Status
from batchops.secrets import Scrubber

from .progress import ProgressSink

Events = Callable[[str, Mapping[str, object]], None]


def no_events(name: str, fields: Mapping[str, object]) -> None:
    return None


def notices_to(notice: Callable[[str], None] | None, emit: Events) -> Callable[[str], None]:
    """What a person should see while the run goes on: to ``notice`` and as an event."""

    def say(text: str) -> None:
        if notice is not None:
            notice(text)
        emit("notice", {"message": text})

    return say


class Recorder:
    """Where outcomes go: the table, the checkpoint and the progress display, secrets scrubbed."""

    def __init__(
        self,
        outcomes: OutcomeTable,
        progress: ProgressSink,
        secrets: tuple[str, ...],
        store: Checkpoint | None = None,
        emit: Events | None = None,
        row_number: Callable[[int], int] | None = None,
        *,
        ledger: InFlightLedger | None = None,
    ) -> None:
        self.outcomes = outcomes
        self._row_number = row_number or (lambda index: index + 2)
        self.progress = progress
        self._scrubber = Scrubber(secrets)
        self._store = store
        self._emit = emit
        self._ledger = ledger
        #: Rows this run has given an outcome (the heartbeat's rate and ETA).
        self.finished = 0
        #: Of those, rows sent to ITSM (the summary's rate).
        self.sent = 0

    def flush(self) -> None:
        if self._store is not None:
            self._store.flush()

    def record(self, row: Row, outcome: Outcome) -> None:
        outcome = self._scrubbed(outcome)
        self.outcomes.set(row.index, outcome)
        if self._store is not None:
            self._store.record(row, outcome)
        if self._ledger is not None:
            # An outcome (even "pending": not sent, or certainly not applied) means
            # nothing of this row can land any more; a row left in doubt comes through
            # in_doubt() instead, and stays in the record for the next run.
            self._ledger.settle(row.index)
        self.progress.advance(outcome.status)
        self.finished += 1
        if outcome.attempts:
            self.sent += 1
        if self._emit is not None and outcome.status in (Status.FAILED, Status.UNKNOWN):
            self._emit(
                "row_" + outcome.status.value,
                {
                    "row": self._row_number(row.index),
                    "sn": row.sn,
                    "action": row.action.value,
                    "code": outcome.code,
                    "message": outcome.message,
                },
            )

    def in_doubt(self, row: Row, outcome: Outcome) -> None:
        """A row whose request may have landed, left unsettled by a stop.

        With a checkpoint it stays "sending" there (the next run reads it back) and is
        shown pending; without one nobody will read it back, so it is ``unknown``.
        """
        if self._store is None:
            outcome = Outcome(
                Status.UNKNOWN,
                None,
                _(
                    "its answer was lost and the run stopped before the ticket could be read "
                    "back (no checkpoint was kept): check the ticket in ITSM"
                ),
            )
        self.outcomes.set(row.index, self._scrubbed(outcome))

    def _scrubbed(self, outcome: Outcome) -> Outcome:
        # The client already scrubs every answer; this is the last line before a file.
        message = self._scrubber.text(outcome.message)
        request_id = self._scrubber.text(outcome.request_id)
        if message != outcome.message or request_id != outcome.request_id:
            outcome = dataclasses.replace(outcome, message=message, request_id=request_id)
        return outcome

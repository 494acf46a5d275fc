"""Undo: from a finished report, the input sheet that reverses what the run did.

Only what a run really did is undone: rows whose status is ``success``. A SUSPEND
becomes an UNSUSPEND and an UNSUSPEND a SUSPEND; a ticket's rows are reversed in the
opposite order of the report, so the ticket walks back through the states it went
through. A re-SUSPEND carries the reason of the suspension it restores (the ticket's
earlier successful SUSPEND in the report), else the UNSUSPEND row's own message.

What cannot be reversed is listed, never dropped: WITHDRAW and TERMINATE (ITSM has no
action that reopens a ticket), the rows of a ticket that one of those closed later in
the report, and rows whose outcome is ``unknown`` (nobody knows what to undo). Rows
that changed nothing (failed, skipped, invalid, pending) are left out.

The undo sheet is ordinary input: ``plan`` and the pre-check show what still applies
(a ticket someone resumed by hand in the meantime is ``skipped``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from batchops.errors import InputError
from batchops.exits import Exit
from batchops.model import MAX_MESSAGE_LENGTH, Action, Status
from batchops.report import Kind, Output, Table, guard_outputs, write_tables
from batchops.sheet import Batch, load_batch

UNDO_SHEET = "Undo"
IRREVERSIBLE_SHEET = "Irreversible"
UNDO_COLUMNS = ("sn", "operator", "action_type", "action_message", "undoes_row", "undoes_action")
IRREVERSIBLE_COLUMNS = ("report_row", "sn", "action_done", "done_by", "finished_at", "reason")

_INVERSE = {Action.SUSPEND: Action.UNSUSPEND, Action.UNSUSPEND: Action.SUSPEND}
_CLOSING = {Action.WITHDRAW: "withdrawn (REVOKED)", Action.TERMINATE: "terminated (TERMINATED)"}
_EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls"})


def default_undo_path(report: Path) -> Path:
    """Beside the report, in its format: ``t.report.xlsx`` → ``t.report.undo.xlsx``."""
    suffix = ".xlsx" if report.suffix.lower() in _EXCEL_SUFFIXES else ".csv"
    return report.with_name(f"{report.stem}.undo{suffix}")


def irreversible_csv_path(undo_sheet: Path) -> Path:
    """The list beside a CSV undo sheet: ``t.undo.csv`` → ``t.undo.irreversible.csv``."""
    return undo_sheet.with_name(f"{undo_sheet.stem}.irreversible.csv")


@dataclass
class UndoPlan:
    """The undo sheet's rows and the rows that cannot be undone, as text cells."""

    rows: list[list[str]] = field(default_factory=list)
    irreversible: list[list[str]] = field(default_factory=list)
    #: Inverse actions written, by action.
    by_action: dict[str, int] = field(default_factory=dict)


def plan_undo(batch: Batch, report_name: str) -> UndoPlan:
    """Work out the inverse of every successful row of the report ``batch`` holds."""
    undoing = _Undoing.of(batch, report_name)
    for chain in undoing.chains().values():
        undoing.reverse(chain)
    return undoing.plan


@dataclass
class _Undoing:
    """One report being reversed: what the run did to each row, and the plan so far."""

    batch: Batch
    report_name: str
    #: Each row's status in the report, trimmed and lower-cased.
    statuses: list[str]
    finished: list[object]
    #: Each row's action_message as the report holds it (blank without the column).
    raw_messages: list[str]
    plan: UndoPlan = field(default_factory=UndoPlan)

    @classmethod
    def of(cls, batch: Batch, report_name: str) -> _Undoing:
        previous = batch.previous_results
        if previous is None:
            raise InputError(
                f"{batch.source} is not a batchops report (it has no status column); undo "
                "reads the report a run wrote (tickets.report.xlsx)"
            )
        raw_messages = (
            batch.frame[batch.columns["action_message"]].str.strip().tolist()
            if "action_message" in batch.columns
            else [""] * len(batch)
        )
        return cls(
            batch,
            report_name,
            previous["status"].str.strip().str.lower().tolist(),
            previous["finished_at"].tolist(),
            raw_messages,
        )

    def listed(self, index: int, reason: str) -> None:
        """Row ``index`` cannot be undone, for ``reason``."""
        batch = self.batch
        self.plan.irreversible.append(
            [
                str(index + 2),
                str(batch.sn[index]),
                str(batch.action[index]),
                str(batch.operator[index]),
                str(self.finished[index]),
                reason,
            ]
        )

    def chains(self) -> dict[str, list[int]]:
        """Each ticket's rows that did (or may have done) something, in report order."""
        chains: dict[str, list[int]] = {}
        for index, status in enumerate(self.statuses):
            if status not in (Status.SUCCESS.value, Status.UNKNOWN.value):
                continue
            if self.batch.invalid[index]:
                # The report was edited since the run: say so rather than guess.
                reason = f"the row is not valid input any more ({self.batch.invalid[index]})"
                self.listed(index, reason)
            else:
                chains.setdefault(str(self.batch.sn[index]), []).append(index)
        return chains

    def reverse(self, chain: list[int]) -> None:
        """One ticket's rows: the inverse of each, last first, or why there is none."""
        batch = self.batch
        done = [i for i in chain if self.statuses[i] == Status.SUCCESS.value]
        closed_at = next((i for i in reversed(done) if Action(batch.action[i]) in _CLOSING), None)
        inverse_rows: list[list[str]] = []
        for index in chain:
            reason = self._irreversible(index, closed_at)
            if reason:
                self.listed(index, reason)
                continue
            action = Action(batch.action[index])
            inverse = _INVERSE[action]
            message = _undo_message(batch, self.raw_messages, done, index, self.report_name)
            inverse_rows.append(
                [
                    str(batch.sn[index]),
                    str(batch.operator[index]),
                    inverse.value,
                    message,
                    str(index + 2),
                    action.value,
                ]
            )
            self.plan.by_action[inverse.value] = self.plan.by_action.get(inverse.value, 0) + 1
        self.plan.rows.extend(reversed(inverse_rows))

    def _irreversible(self, index: int, closed_at: int | None) -> str:
        """Why row ``index`` cannot be undone ("" when it can)."""
        action = Action(self.batch.action[index])
        if self.statuses[index] == Status.UNKNOWN.value:
            return "outcome unknown: check the ticket in ITSM; only what a run confirmed is undone"
        if action in _CLOSING:
            return (
                f"{action.value} cannot be undone: the ticket is "
                f"{_CLOSING[action]} and ITSM has no action that reopens it"
            )
        if closed_at is not None and index < closed_at:
            closing = Action(self.batch.action[closed_at])
            return (
                f"the ticket was {_CLOSING[closing]} later (row {closed_at + 2}): "
                "a closed ticket takes no action"
            )
        return ""


def _undo_message(
    batch: Batch, raw_messages: Sequence[str], done: Sequence[int], index: int, report: str
) -> str:
    """The reason sent with an inverse row."""
    origin = f"batchops undo of row {index + 2} of {report}"
    if Action(batch.action[index]) is Action.UNSUSPEND:
        # Suspend again for the reason the ticket was suspended before this UNSUSPEND.
        earlier = [i for i in done if i < index and batch.action[i] == Action.SUSPEND.value]
        text = str(batch.message[earlier[-1]]) if earlier else raw_messages[index]
        if text:
            return text
    return origin[:MAX_MESSAGE_LENGTH]


@dataclass(frozen=True, slots=True)
class UndoSummary:
    """What ``undo`` wrote."""

    rows: int
    irreversible: int
    path: str
    irreversible_path: str
    by_action: dict[str, int]

    @property
    def exit_code(self) -> Exit:
        return Exit.OK if self.rows else Exit.ROWS_FAILED

    def describe(self) -> str:
        actions = ", ".join(f"{n} {a}" for a, n in sorted(self.by_action.items()))
        lines = [
            f"undo sheet: {self.path} ({self.rows} rows" + (f": {actions})" if actions else ")")
        ]
        if not self.rows:
            lines.append("  nothing in the report can be undone (no successful SUSPEND/UNSUSPEND)")
        if self.irreversible:
            lines.append(
                f"{self.irreversible} rows cannot be undone; each with its reason in "
                f"{self.irreversible_path}"
            )
        if self.rows:
            lines.append(
                f"next: batchops plan {self.path} (shows what still applies), then batchops run"
            )
        return "\n".join(lines)


def undo_report(
    report: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    sheet: str | None = None,
    encoding: str | None = None,
    force: bool = False,
) -> UndoSummary:
    """Write the sheet that reverses ``report`` (default beside it) and list what cannot be.

    An existing file is replaced only with ``force``; a run's input, report or checkpoint
    never is (:func:`batchops.report.guard_outputs`).
    """
    source = Path(report)
    batch = load_batch(source, sheet=sheet, encoding=encoding, include_hidden=True)
    path = Path(output) if output else default_undo_path(source)
    named = [Output("the undo sheet (-o)", path, Kind.SHEET)]
    if path.suffix.lower() != ".xlsx":
        side = irreversible_csv_path(path)
        named.append(Output("the list of rows that cannot be undone", side, Kind.SHEET))
    guard_outputs({"the report": source}, named, force=force)
    plan = plan_undo(batch, source.name)
    undo = Table(UNDO_SHEET, UNDO_COLUMNS, plan.rows)
    kept = Table(IRREVERSIBLE_SHEET, IRREVERSIBLE_COLUMNS, plan.irreversible)
    if path.suffix.lower() == ".xlsx":
        write_tables(path, [undo, kept])
        where = f"{path} (sheet {IRREVERSIBLE_SHEET})"
    else:
        write_tables(path, [undo])
        side = irreversible_csv_path(path)
        if plan.irreversible or side.exists():  # never leave an older list beside a new sheet
            write_tables(side, [kept])
        where = str(side)
    return UndoSummary(len(plan.rows), len(plan.irreversible), str(path), where, plan.by_action)

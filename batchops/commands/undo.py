"""Undo: from a finished report, the input sheet that reverses what the run did.

Only what a run really did is undone: rows whose status is ``success``. A SUSPEND
becomes an UNSUSPEND and an UNSUSPEND a SUSPEND; each ticket's rows are reversed newest
applied first, so the ticket walks back through the states it went through, whatever
order the sheet is in now (sorted in Excel, say). A re-SUSPEND carries the reason of the
suspension it restores (the ticket's SUSPEND applied before that UNSUSPEND), else the
UNSUSPEND row's own message.

What happened is the run's checkpoint's to say, not the sheet's. When the checkpoint is
there (beside the run's input, where a run leaves it, or named with ``--checkpoint``),
it is read without being disturbed: a ticket's rows go in the order their requests left,
only rows it records as applied are undone, and a report row it contradicts (a status,
sn, action, operator or message edited since the run) is listed, never sent, as is an
applied row no report row names any more. Without one the report is trusted as it
stands, and undo says so: each ticket's rows go by their ``finished_at`` (to the second;
within one second SUSPEND and UNSUSPEND alternate, as ITSM only lets them).

What cannot be reversed is listed, never dropped: WITHDRAW and TERMINATE (ITSM has no
action that reopens a ticket), the rows of a ticket that one of those closed later, and
rows whose outcome is ``unknown`` (nobody knows what to undo). Rows that changed nothing
(failed, skipped, invalid, pending) are left out.

A report fed back as input writes the next report of the same sheet (``t.report-2.csv``),
whose run may apply rows of its own. With ``with_newer`` those later runs are undone too,
each report held to its own run's checkpoint: a later run contributes only the rows it
sent itself (the rows an earlier run applied, which it shows as ``success`` too, are that
run's to undo, once), and each ticket's rows of the whole chain are reversed newest
applied first. The sheets then name the report each row comes from.

The undo sheet is ordinary input: ``plan`` and the pre-check show what still applies
(a ticket someone resumed by hand in the meantime is ``skipped``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from batchops.checkpoint import StoredRow
from batchops.errors import InputError
from batchops.i18n import N_, _
from batchops.model import MAX_MESSAGE_LENGTH, Action, Status
from batchops.report import Kind, Output, Table, guard_outputs, write_tables
from batchops.settings import resolve
from batchops.sheet import Batch, load_batch

from .undo_record import (
    LaterRun,
    find_checkpoint,
    later_runs,
    load_later,
    match_rows,
    outcome_recorded,
    read_record,
    sent_by_run,
)
from .undo_summary import UndoSummary, again_command, undo_words

__all__ = ["UndoSummary", "plan_undo", "undo_report"]

UNDO_SHEET = "Undo"
IRREVERSIBLE_SHEET = "Irreversible"
#: The reason of an inverse row that has none of its own to restore; a profile's
#: ``undo_message`` replaces it. Short: it lands in the ticket's history.
UNDO_MESSAGE = N_("batchops undo of row {row} of {file}")
UNDO_COLUMNS = ("sn", "operator", "action_type", "action_message", "undoes_row", "undoes_action")
IRREVERSIBLE_COLUMNS = ("report_row", "sn", "action_done", "done_by", "finished_at", "reason")
#: With later runs included, the report each row comes from ends each row.
CHAIN_UNDO_COLUMNS = (*UNDO_COLUMNS, "undoes_report")
CHAIN_IRREVERSIBLE_COLUMNS = (*IRREVERSIBLE_COLUMNS, "report")

_INVERSE = {Action.SUSPEND: Action.UNSUSPEND, Action.UNSUSPEND: Action.SUSPEND}
_CLOSING = {
    Action.WITHDRAW: N_("withdrawn (REVOKED)"),
    Action.TERMINATE: N_("terminated (TERMINATED)"),
}
_EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls"})
#: Outcomes after which a ticket may have changed: the rows undo has to account for.
_ACTED = frozenset({Status.SUCCESS.value, Status.UNKNOWN.value})


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
    #: Report rows the checkpoint contradicts (listed, not undone).
    disagreeing: int = 0
    #: Rows the checkpoint records as applied (or maybe applied) that no report row is.
    missing: int = 0


def plan_undo(
    batch: Batch,
    report_name: str,
    record: Sequence[StoredRow] | None = None,
    *,
    message: str | None = None,
    later: Sequence[tuple[Batch, str, Sequence[StoredRow]]] | None = None,
) -> UndoPlan:
    """Work out the inverse of every applied row of the report ``batch`` holds: checked
    against the run's checkpoint ``record`` when there is one, else as the report says.
    ``message`` is the reason of an inverse row that has none to restore ({row}, {file});
    None: :data:`UNDO_MESSAGE` in the language in use. ``later``: the reports (batch,
    name, their run's record) of the later runs of the same sheet, oldest first, whose
    own rows are undone too; each row then names its report."""
    labelled = later is not None
    base = _Undoing.of(batch, report_name, message, labelled=labelled)
    if record is not None:
        base.check(record)
    parts = [base]
    for later_batch, name, later_record in later or ():
        part = _Undoing.of(later_batch, name, message, plan=base.plan, labelled=labelled)
        part.later = True
        part.check(later_record)
        parts.append(part)
    tickets: dict[str, list[_Op]] = {}
    for part in parts:
        for sn, chain in part.chains().items():
            tickets.setdefault(sn, []).extend((part, i) for i in part.applied_order(chain))
    for ops in tickets.values():
        _reverse(_in_time(ops))
    return base.plan


#: One row of one report of the chain: the row ``index`` of the report ``part`` reads.
_Op = tuple["_Undoing", int]


def _in_time(ops: list[_Op]) -> list[_Op]:
    """A ticket's rows of every report, in the order they were applied: report after
    report (each later run read the report the one before wrote), or by when each request
    left when every report has its run's checkpoint (an earlier run resumed later, say)."""
    if len({id(part) for part, _unused in ops}) < 2 or any(p.sent is None for p, _i in ops):
        return ops

    def left(op: _Op) -> float:
        part, index = op
        return part.sent[index][0] if part.sent is not None else 0.0

    return sorted(ops, key=left)  # stable: report order within the same moment


@dataclass(eq=False)  # one report of the chain is itself, whatever its cells
class _Undoing:
    """One report being reversed: what the run did to each row, and the plan so far."""

    batch: Batch
    report_name: str
    #: Each row's status in the report, trimmed and lower-cased.
    statuses: list[str]
    #: Each row's finished_at as shown in the list (the checkpoint's when it has one).
    finished: list[str]
    #: Each row's action_message as the report holds it (blank without the column).
    raw_messages: list[str]
    plan: UndoPlan = field(default_factory=UndoPlan)
    #: With a checkpoint: when each row's request left, and its place in the input.
    sent: dict[int, tuple[float, int]] | None = None
    #: Rows already accounted for (listed) by the check against the checkpoint.
    settled: set[int] = field(default_factory=set)
    #: The reason an inverse row without one of its own carries ({row}, {file}).
    template: str = UNDO_MESSAGE
    #: A later run's report: only rows its run sent itself are its to undo.
    later: bool = False
    #: With a later run's checkpoint: the report rows its run sent itself.
    own: set[int] | None = None
    #: Whether each row names its report (later runs included).
    labelled: bool = False

    @classmethod
    def of(
        cls,
        batch: Batch,
        report_name: str,
        template: str | None = None,
        *,
        plan: UndoPlan | None = None,
        labelled: bool = False,
    ) -> _Undoing:
        previous = batch.previous_results
        if previous is None:
            raise InputError(
                _(
                    "{path} is not a batchops report (it has no status column); undo "
                    "reads the report a run wrote (tickets.report.xlsx)"
                ).format(path=batch.source)
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
            [str(when) for when in previous["finished_at"].tolist()],
            raw_messages,
            plan or UndoPlan(),
            template=template or _(UNDO_MESSAGE),
            labelled=labelled,
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
                self.finished[index],
                reason,
                *self.label(),
            ]
        )

    def label(self) -> list[str]:
        """The report a row comes from, as the last cell, when the sheets name it."""
        return [self.report_name] if self.labelled else []

    def check(self, record: Sequence[StoredRow]) -> None:
        """Hold the report to the run's checkpoint: what it records is what happened."""
        matched = match_rows(self.batch, record)
        if not matched:
            raise InputError(
                _(
                    "no row of {path} is a row of the checkpoint given: it records "
                    "another run; give the checkpoint of the run that wrote this report"
                ).format(path=self.batch.source)
            )
        self.sent = {}
        if self.later:
            self.own = {index for index, stored in matched.items() if sent_by_run(stored)}
        at = {stored.index: stored for stored in record}
        for index, status in enumerate(self.statuses):
            stored = matched.get(index)
            if stored is not None:
                self.finished[index] = stored.outcome.finished_at or ""
                self.sent[index] = (stored.sent_at or 0.0, stored.index)
            if self.batch.invalid[index] and status in _ACTED:
                continue  # listed with why by chains()
            reason = self._disagreement(index, stored, at.get(index))
            if reason:
                self.listed(index, reason)
                self.settled.add(index)
                self.plan.disagreeing += 1
        claimed = {stored.index for stored in matched.values()}
        for stored in record:
            if stored.index in claimed or outcome_recorded(stored) not in _ACTED:
                continue
            if not self.later or sent_by_run(stored):  # a carried row is an earlier run's
                self._listed_record(stored)

    def _disagreement(self, index: int, stored: StoredRow | None, there: StoredRow | None) -> str:
        """Why the checkpoint contradicts report row ``index`` ("" when it does not, or
        when neither says the row changed anything)."""
        status = self.statuses[index]
        recorded = outcome_recorded(stored) if stored is not None else ""
        if status == recorded or (status not in _ACTED and recorded not in _ACTED):
            return ""
        if stored is None:
            sn, action = self.batch.sn[index], self.batch.action[index]
            if there is not None and (there.sn, there.action) != (sn, action):
                return _(
                    "the run's checkpoint records {recorded_sn} {recorded_action} at row {row}, "
                    "not {sn} {action}: the report was edited since the run; not undone"
                ).format(
                    recorded_sn=there.sn,
                    recorded_action=there.action,
                    row=index + 2,
                    sn=sn,
                    action=action,
                )
            return _(
                "the run's checkpoint has no row with this sn, action, operator and message: "
                "the report was edited since the run; not undone"
            )
        said = (
            _(
                "the report says {status}, the run's checkpoint records {recorded}: not undone "
                "(the checkpoint is what the run did); check the ticket in ITSM"
            )
            if recorded in _ACTED
            else _(
                "the report says {status}, the run's checkpoint records {recorded}: not undone "
                "(the checkpoint is what the run did)"
            )
        )
        return said.format(status=status or _("nothing"), recorded=recorded)

    def _listed_record(self, stored: StoredRow) -> None:
        """A row the checkpoint records as (maybe) applied that no report row is."""
        applied = outcome_recorded(stored) == Status.SUCCESS.value
        why = (
            _(
                "applied by the run (row {row} of its input) but no row of the report is "
                "this row any more (edited or removed): not undone; check the ticket in ITSM"
            )
            if applied
            else _(
                "sent by the run, outcome unknown, (row {row} of its input) but no row of the "
                "report is this row any more (edited or removed): not undone; check the ticket "
                "in ITSM"
            )
        )
        self.plan.irreversible.append(
            [
                str(stored.index + 2),
                stored.sn,
                stored.action,
                "",  # the checkpoint keeps no operator
                stored.outcome.finished_at or "",
                why.format(row=stored.index + 2),
                *self.label(),
            ]
        )
        self.plan.missing += 1

    def chains(self) -> dict[str, list[int]]:
        """Each ticket's rows that did (or may have done) something, in report order."""
        chains: dict[str, list[int]] = {}
        for index, status in enumerate(self.statuses):
            if status not in _ACTED or index in self.settled:
                continue
            if self.own is not None and index not in self.own:
                continue  # an earlier run's row, carried: undone (once) with that run's
            if self.batch.invalid[index]:
                # The report was edited since the run: say so rather than guess.
                reason = _("the row is not valid input any more ({why})").format(
                    why=self.batch.invalid[index]
                )
                self.listed(index, reason)
            else:
                chains.setdefault(str(self.batch.sn[index]), []).append(index)
        return chains

    def applied_order(self, chain: list[int]) -> list[int]:
        """One ticket's rows in the order the run applied them."""
        if self.sent is not None:
            sent = self.sent
            return sorted(chain, key=lambda index: sent[index])
        moments: dict[int, int] = {}
        for index in chain:
            when = _moment(self.finished[index])
            if when is None:  # a time missing or unreadable: only the sheet's order is left
                moments = dict.fromkeys(chain, 0)
                break
            moments[index] = when
        by_second = sorted(chain, key=moments.__getitem__)  # stable: sheet order within
        ordered: list[int] = []
        last = self._opening(chain)
        for _unused, second in itertools.groupby(by_second, key=moments.__getitem__):
            rest = list(second)
            while rest:
                # ITSM only lets SUSPEND and UNSUSPEND alternate; nothing follows a close.
                pick = next(
                    (i for i in rest if self._follows(i, last)),
                    min(rest, key=lambda i: str(self.batch.action[i]) in _CLOSING),
                )
                rest.remove(pick)
                ordered.append(pick)
                last = self._reversible(pick) or last
        return ordered

    def _reversible(self, index: int) -> Action | None:
        """Row ``index``'s action when it applied a SUSPEND or UNSUSPEND, else None."""
        action = Action(self.batch.action[index])
        applied = self.statuses[index] == Status.SUCCESS.value
        return action if applied and action in _INVERSE else None

    def _follows(self, index: int, last: Action | None) -> bool:
        """Whether row ``index`` applied the action that can come after ``last``."""
        action = self._reversible(index)
        return action is not None and (last is None or action is _INVERSE[last])

    def _opening(self, chain: list[int]) -> Action | None:
        """The action the ticket's first row follows, as far as the rows tell: with more
        SUSPENDs than UNSUSPENDs the first was a SUSPEND (so it "follows" an UNSUSPEND)."""
        actions = [self._reversible(index) for index in chain]
        suspends, unsuspends = actions.count(Action.SUSPEND), actions.count(Action.UNSUSPEND)
        if suspends == unsuspends:
            return None
        return Action.UNSUSPEND if suspends > unsuspends else Action.SUSPEND


def _reverse(chain: Sequence[_Op]) -> None:
    """One ticket's rows, in applied order: the inverse of each, newest first, or why
    there is none."""
    done = [op for op in chain if _status(op) == Status.SUCCESS.value]
    closing = [op for op in done if _action(op) in _CLOSING]
    closed_at = chain.index(closing[-1]) if closing else None
    inverse_rows: list[list[str]] = []
    for place, (part, index) in enumerate(chain):
        reason = _irreversible(chain, place, closed_at)
        if reason:
            part.listed(index, reason)
            continue
        action = _action((part, index))
        inverse = _INVERSE[action]
        message = _undo_message(done, (part, index))
        inverse_rows.append(
            [
                str(part.batch.sn[index]),
                str(part.batch.operator[index]),
                inverse.value,
                message,
                str(index + 2),
                action.value,
                *part.label(),
            ]
        )
        part.plan.by_action[inverse.value] = part.plan.by_action.get(inverse.value, 0) + 1
    if chain:
        chain[0][0].plan.rows.extend(reversed(inverse_rows))


def _status(op: _Op) -> str:
    part, index = op
    return part.statuses[index]


def _action(op: _Op) -> Action:
    part, index = op
    return Action(part.batch.action[index])


def _irreversible(chain: Sequence[_Op], place: int, closed_at: int | None) -> str:
    """Why the row at ``place`` in its ticket's applied ``chain`` cannot be undone (""
    when it can)."""
    action = _action(chain[place])
    if _status(chain[place]) == Status.UNKNOWN.value:
        return _("outcome unknown: check the ticket in ITSM; only what a run confirmed is undone")
    if action in _CLOSING:
        return _(
            "{action} cannot be undone: the ticket is {closed} and ITSM has no action "
            "that reopens it"
        ).format(action=action.value, closed=_(_CLOSING[action]))
    if closed_at is not None and place < closed_at:
        closer = chain[closed_at]
        return _(
            "the ticket was {closed} later (row {row}): a closed ticket takes no action"
        ).format(closed=_(_CLOSING[_action(closer)]), row=closer[1] + 2)
    return ""


def _moment(text: str) -> int | None:
    """A finished_at as whole seconds since the epoch (naive: local time); None when it
    is no time (blank, or changed by a spreadsheet)."""
    try:
        return round(datetime.fromisoformat(text.strip()).astimezone().timestamp())
    except (ValueError, OverflowError, OSError):
        return None


def _undo_message(done: Sequence[_Op], op: _Op) -> str:
    """The reason sent with an inverse row (``done``: the ticket's applied rows, in the
    order they were applied): it lands in the ticket's history, for its people to read."""
    part, index = op
    if _action(op) is Action.UNSUSPEND:
        # Suspend again for the reason the ticket was suspended before this UNSUSPEND.
        earlier = [o for o in done[: done.index(op)] if _action(o) is Action.SUSPEND]
        if earlier:
            suspended, at = earlier[-1]
            text = str(suspended.batch.message[at])
        else:
            text = part.raw_messages[index]
        if text:
            return text
    origin = part.template.format(row=index + 2, file=part.report_name)
    return origin.strip()[:MAX_MESSAGE_LENGTH]


def undo_report(
    report: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    sheet: str | None = None,
    encoding: str | None = None,
    force: bool = False,
    checkpoint: str | os.PathLike[str] | None = None,
    profile: str | None = None,
    config: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    with_newer: bool = False,
    command: Sequence[str] | None = None,
) -> UndoSummary:
    """Write the sheet that reverses ``report`` (default beside it) and list what cannot be.

    The report is held to the run's ``checkpoint`` (default: the one its run left
    beside its input, when there is one). An existing file is replaced only with
    ``force``; a run's input, report or checkpoint never is
    (:func:`batchops.report.guard_outputs`). The reason an inverse row carries into the
    ticket, when it has none to restore, is the ``profile``'s ``undo_message``, else
    :data:`UNDO_MESSAGE` in the language in use. The later runs of the same sheet
    (:func:`~.undo_record.later_runs`) are undone too ``with_newer``, else named with the
    command that includes them: ``command`` (the words after ``batchops``) and the option.
    """
    settings = resolve({}, profile=profile, config=config, env=env)
    source = Path(report)
    batch = load_batch(source, sheet=sheet, encoding=encoding, include_hidden=True)
    path = Path(output) if output else default_undo_path(source)
    record_path = Path(checkpoint) if checkpoint is not None else find_checkpoint(source)
    later = [run for run in later_runs(source) if run.applied or with_newer]
    _guard(source, record_path, later if with_newer else [], path, force=force)
    record = read_record(record_path) if record_path is not None else None
    plan = plan_undo(
        batch,
        source.name,
        record,
        message=settings.values.undo_message,
        later=load_later(later, sheet, encoding) if with_newer else None,
    )
    where = _write(path, plan, labelled=with_newer)
    given = {"-o": output, "--sheet": sheet, "--encoding": encoding, "--checkpoint": checkpoint}
    given |= {"--profile": profile, "--config": config}
    words = command or undo_words(report, given)
    return UndoSummary(
        len(plan.rows),
        len(plan.irreversible),
        str(path),
        where,
        plan.by_action,
        str(record_path or ""),
        plan.disagreeing,
        plan.missing,
        settings.warnings,
        left_out=() if with_newer else tuple((str(r.report), r.applied) for r in later),
        included=tuple((str(r.report), str(r.checkpoint)) for r in later) if with_newer else (),
        with_newer=with_newer,
        again=again_command(words),
    )


def _guard(
    source: Path, record: Path | None, later: Sequence[LaterRun], path: Path, *, force: bool
) -> None:
    """Refuse an undo sheet (or its list) that would replace what must stay: the reports
    and checkpoints read (:func:`batchops.report.guard_outputs`)."""
    named = [Output(_("the undo sheet (-o)"), path, Kind.SHEET)]
    if path.suffix.lower() != ".xlsx":
        side = irreversible_csv_path(path)
        named.append(Output(_("the list of rows that cannot be undone"), side, Kind.SHEET))
    inputs = {_("the report"): source}
    if record is not None:
        inputs[_("the run's checkpoint")] = record
    for run in later:
        inputs[_("the later report {path}").format(path=run.report)] = run.report
        inputs[_("the later run's checkpoint {path}").format(path=run.checkpoint)] = run.checkpoint
    guard_outputs(inputs, named, force=force)


def _write(path: Path, plan: UndoPlan, *, labelled: bool) -> str:
    """Write the undo sheet and the list of what cannot be undone; where the list is."""
    undo = Table(UNDO_SHEET, CHAIN_UNDO_COLUMNS if labelled else UNDO_COLUMNS, plan.rows)
    kept = Table(
        IRREVERSIBLE_SHEET,
        CHAIN_IRREVERSIBLE_COLUMNS if labelled else IRREVERSIBLE_COLUMNS,
        plan.irreversible,
    )
    if path.suffix.lower() == ".xlsx":
        write_tables(path, [undo, kept])
        return _("{path} (sheet {sheet})").format(path=path, sheet=IRREVERSIBLE_SHEET)
    write_tables(path, [undo])
    side = irreversible_csv_path(path)
    if plan.irreversible or side.exists():  # never leave an older list beside a new sheet
        write_tables(side, [kept])
    return str(side)

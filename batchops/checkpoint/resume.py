"""What a run still has to do, given its checkpoint: bind it, refuse it, or resume from it.

A first run writes one record per input row. A later run against the same target
continues (on an input edited since, once :mod:`.rebind` has checked that the rows sent
are still as they were and recorded the others as they are now): rows with an outcome
keep it, rows never sent (or invalid before, and valid now) are sent, and rows
that were being sent when the earlier run died are handed back as *in doubt*, to be
read back before anything is resent. ``--retry-failed`` requeues failed rows together
with the later rows of their ticket, so each ticket still follows the file's order.

Rows a run *holds* (hidden in the sheet, left out) are recorded ``queued`` with their
``skipped`` outcome, never ``done``: they were not sent, so the run that includes them
later (``--include-hidden``, or once unhidden) sends them; a run that holds them sends
none, whatever the checkpoint has queued.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from batchops.errors import CheckpointError
from batchops.i18n import _, ngettext
from batchops.model import Outcome, OutcomeTable, RowState, Status
from batchops.secrets import masked_url
from batchops.sheet import DONE_BEFORE, Batch, one_letter_case, show

from .rebind import rebind
from .store import Binding, Checkpoint, StoredRow, row_key


@dataclass(frozen=True, slots=True)
class InDoubtRow:
    """A row that was "sending" when an earlier run died: read it back before any resend."""

    index: int
    #: The ticket's status before the request left, when it was known.
    before: str | None
    attempts: int
    #: When its request left (wall clock; 0 when an old checkpoint did not say).
    sent_at: float = 0.0
    #: The action in flight when it is not this row's: an earlier run (of another sheet,
    #: found in the machine-wide record, :mod:`.inflight`) sent it. The row waits until
    #: that operation shows or can no longer land, then goes as usual.
    other_action: str | None = None


@dataclass
class Work:
    """What this run still has to do."""

    to_send: np.ndarray
    #: Rows that were "sending" when an earlier run died.
    in_doubt: list[InDoubtRow]
    note: str = ""
    #: Wall-clock time of the latest request whose fate is not known (unknown rows sent
    #: again, an old run's with ``--fresh``): nothing is read or sent before that request
    #: could no longer land. Rows in doubt are not counted: each is parked on its own.
    last_sent_at: float = 0.0
    #: With ``--fresh``: what the checkpoint set aside said (None when there was none).
    fresh: FreshStart | None = None


@dataclass(frozen=True, slots=True)
class FreshStart:
    """What ``--fresh`` set aside: the backup, and how many rows it recorded as applied."""

    backup: Path
    applied: int | None

    def describe(self, precheck: bool) -> str:
        said = (
            _(
                "--fresh: the old checkpoint (kept as {backup}) recorded an unknown number of "
                "rows as applied"
            ).format(backup=self.backup)
            if self.applied is None
            else _(
                "--fresh: the old checkpoint (kept as {backup}) recorded {count} rows as applied"
            ).format(backup=self.backup, count=self.applied)
        )
        if precheck:
            return _(
                "{said}; the pre-check reads every ticket's live state and decides what is "
                "sent again (rows already where their action leads are skipped)"
            ).format(said=said)
        return _(
            "{said}; with --no-precheck nothing checks the tickets first, so those rows are "
            "sent again (a second SUSPEND leaves a ticket stuck)"
        ).format(said=said)


def row_keys(batch: Batch) -> list[str]:
    """Each row as the checkpoint knows it: sn, action, operator, message. A message left
    blank counts as the default batchops wrote before messages had a language
    (``batchops: UNSUSPEND``), whatever text this run sends for it: a run resumed under
    another language or profile is the same run, and checkpoints written before keep
    their keys."""
    messages = batch.message.tolist()
    if batch.defaulted is not None:
        for index in np.flatnonzero(batch.defaulted).tolist():
            messages[index] = f"batchops: {batch.action[index]}"
    return [
        row_key(sn, action, operator, message)
        for sn, action, operator, message in zip(
            batch.sn.tolist(),
            batch.action.tolist(),
            batch.operator.tolist(),
            messages,
            strict=True,
        )
    ]


def rows_fingerprint(keys: list[str]) -> str:
    digest = hashlib.sha256()
    for key in keys:
        digest.update(key.encode())
    return digest.hexdigest()


def open_checkpoint(
    batch: Batch,
    outcomes: OutcomeTable,
    sendable: np.ndarray,
    path: Path,
    *,
    fresh: bool,
    retry_failed: bool,
    gateway: str,
    base_url: str,
    held: np.ndarray | None = None,
) -> tuple[Checkpoint, Work]:
    """Open the checkpoint and work out what is left; refuse one that belongs elsewhere.

    ``held`` marks rows this run does not send though they were never sent (hidden in the
    sheet): a new checkpoint records them as still to send, and this run sends none."""
    applied = Checkpoint.count_applied(path) if fresh else None
    # What the old run may still have in flight lands on tickets this run starts over on.
    uncertain_since = Checkpoint.last_uncertain_send(path) if fresh else 0.0
    backup = Checkpoint.set_aside(path) if fresh else None
    keys = row_keys(batch)
    binding = _binding(batch, keys, gateway, base_url)
    queued = sendable if held is None else np.asarray(sendable, dtype=bool) | held
    store = Checkpoint.open(path)
    try:
        stored = store.binding()
        if stored is None:
            store.initialise(binding, _initial_rows(batch, keys, queued, outcomes))
            store.begin_run("first run")
            note = (
                _("checkpoint: {path} (previous one kept as {backup})")
                if backup
                else _("checkpoint: {path}")
            ).format(path=path, backup=backup)
            work = Work(np.flatnonzero(sendable).astype(np.int64), [], note, uncertain_since)
            if backup is not None:
                work.fresh = FreshStart(backup, applied)
            return store, work
        _check_target(stored, binding, path)
        edits = ""
        if stored.rows_fingerprint != binding.rows_fingerprint:
            edits = rebind(store, binding, keys, batch, outcomes, queued)
        if stored.input_path != binding.input_path:
            store.update_input_path(binding.input_path)
        work = _resume(store, outcomes, retry_failed, path, batch, sendable)
        work.note = "; ".join(part for part in (work.note, edits) if part)
        # A row an older batchops queued that today's rules refuse (one sn in two letter
        # cases, say) is not sent: it keeps the reason it is invalid as its outcome.
        work.to_send = work.to_send[batch.invalid[work.to_send] == ""]
        if held is not None:
            work.to_send = work.to_send[~held[work.to_send]]
        return store, work
    except BaseException:
        store.close()
        raise


#: Rows whose columns are taken at a time while the checkpoint is created.
_INIT_CHUNK_ROWS = 50_000


def _binding(batch: Batch, keys: list[str], gateway: str, base_url: str) -> Binding:
    """What this run's checkpoint is bound to: the input's rows and the target."""
    return Binding(
        rows_fingerprint=rows_fingerprint(keys),
        row_count=len(batch),
        gateway=gateway,
        # A password in the URL is never written down; the target is the same without it.
        base_url=masked_url(base_url),
        input_path=str(batch.source.resolve()),
    )


def _initial_rows(
    batch: Batch, keys: list[str], sendable: np.ndarray, outcomes: OutcomeTable
) -> Iterator[tuple[int, str, str, str, str, str, str]]:
    """The checkpoint's first record of every row, from plain columns a chunk at a time.

    Zipping column slices in C costs a fraction of building each row's tuple in Python
    (20,000 rows: 0.2 s -> 0.075 s), and a chunk at a time keeps a million rows from
    holding five more lists of a million entries at once.
    """
    labels = outcomes.labels()
    state = np.where(sendable.astype(bool), "queued", "done")
    for start in range(0, len(batch), _INIT_CHUNK_ROWS):
        stop = min(start + _INIT_CHUNK_ROWS, len(batch))
        yield from zip(
            range(start, stop),
            keys[start:stop],
            batch.sn[start:stop].tolist(),
            batch.action[start:stop].tolist(),
            state[start:stop].tolist(),
            labels[start:stop].tolist(),
            outcomes.messages(start, stop),
            strict=True,
        )


def _check_target(stored: Binding, binding: Binding, path: Path) -> None:
    """Refuse a checkpoint made for another ITSM (its rows are :func:`rebind`'s)."""
    # An older checkpoint may hold the URL's password: compared (and shown) without it.
    stored_url = masked_url(stored.base_url)
    if (stored.gateway, stored_url) != (binding.gateway, binding.base_url):
        raise CheckpointError(
            _(
                "checkpoint {path} belongs to a run against {stored_url} ({stored_gateway}), "
                "not {base_url} ({gateway}); use the same --base-url/--gateway, "
                "or --fresh to start over"
            ).format(
                path=path,
                stored_url=stored_url,
                stored_gateway=stored.gateway,
                base_url=binding.base_url,
                gateway=binding.gateway,
            )
        )


def _resume(
    store: Checkpoint,
    outcomes: OutcomeTable,
    retry_failed: bool,
    path: Path,
    batch: Batch,
    sendable: np.ndarray,
) -> Work:
    queued: list[int] = []
    in_doubt: list[InDoubtRow] = []
    last_sent_at = 0.0
    records = list(store.rows())
    retry = _rows_to_retry(records) if retry_failed else set()
    # Rows left unsent as invalid (or out of --only) that this run would send are sent:
    # fixed since, or chosen now.
    revived = _revived(records, sendable)
    # A row today's rules refuse is not sent again: it keeps its outcome (an unknown one
    # still says its request may have landed).
    retry = {index for index in retry | revived if not batch.invalid[index]}
    shadowed = _spelled_like_done(records, batch)
    retry -= shadowed.keys()
    done = 0
    for rec in records:
        if rec.state is RowState.DONE:
            if batch.invalid[rec.index] and rec.outcome.status in _NOT_SENT_NOW:
                done += 1  # invalid now: it keeps its reason (mark_invalid's outcome)
                continue
            if rec.index in retry:
                queued.append(rec.index)
                if rec.outcome.status is Status.UNKNOWN:
                    # Its request may still land: the pre-check reads no sooner than that.
                    last_sent_at = max(last_sent_at, rec.sent_at or 0.0)
            else:
                outcomes.set(rec.index, rec.outcome)
                done += 1
        elif rec.state is RowState.SENDING:
            in_doubt.append(
                InDoubtRow(rec.index, rec.before_status, rec.outcome.attempts, rec.sent_at or 0.0)
            )
        elif rec.index in shadowed:
            outcomes.set(rec.index, Outcome(Status.INVALID, None, shadowed[rec.index]))
        else:
            queued.append(rec.index)
    _refuse_invalid_in_doubt(in_doubt, batch, path)
    if retry:
        store.requeue(sorted(retry))
    store.begin_run("retry-failed" if retry_failed else "resume")
    note = _resume_note(path, done, in_doubt, records, retry, revived)
    if not queued and not in_doubt:
        note += _("; ") + _(
            "nothing left to send (--retry-failed resends failed rows, --fresh starts over)"
        )
    return Work(np.array(sorted(queued), dtype=np.int64), in_doubt, note, last_sent_at)


def _resume_note(
    path: Path,
    done: int,
    in_doubt: list[InDoubtRow],
    records: list[StoredRow],
    retry: set[int],
    revived: set[int],
) -> str:
    """What the resume found, for the summary."""
    parts = [
        _("resumed from checkpoint {path}: {done} rows already done").format(path=path, done=done)
    ]
    if in_doubt:
        parts.append(
            _("{count} in doubt (read back before any resend)").format(count=len(in_doubt))
        )
    again = retry - revived
    if again:
        after = sum(1 for r in records if r.index in again and r.outcome.status is Status.SKIPPED)
        sent_again = _("{count} failed/unknown rows sent again")
        if after:
            sent_again = _(
                "{count} failed/unknown rows sent again "
                "(and {after} skipped rows of their tickets after them)"
            )
        parts.append(sent_again.format(count=len(again) - after, after=after))
    if retry & revived:
        count = len(retry & revived)
        parts.append(
            ngettext(
                "{count} row not sent before (invalid, or not chosen) is sent now",
                "{count} rows not sent before (invalid, or not chosen) are sent now",
                count,
            ).format(count=count)
        )
    return _("; ").join(parts)


#: Outcomes of rows that did not reach ITSM, replaced by the reason a row is invalid now.
_NOT_SENT_NOW = (Status.FAILED, Status.INVALID, Status.PENDING, Status.SKIPPED)


def _revived(records: list[StoredRow], sendable: np.ndarray) -> set[int]:
    """Rows recorded ``invalid``, or left out by ``--only`` (``pending``), that this run
    chooses to send: every row not done is validated again and sent."""
    return {
        rec.index
        for rec in records
        if rec.state is RowState.DONE
        and rec.outcome.status in (Status.INVALID, Status.PENDING)
        and sendable[rec.index]
    }


def _spelled_like_done(records: list[StoredRow], batch: Batch) -> dict[int, str]:
    """Rows not done whose sn is, in other letter case, the sn of a row an earlier run
    already did or may have done (done, unknown or in doubt), with why they are not sent.

    A checkpoint from before batchops refused such files holds both spellings as two
    tickets; ITSM may take them for one, so the row already done stands for the ticket
    (as in a report fed back), and nothing is sent to it under the other spelling.
    """
    if one_letter_case(batch.sn.tolist()):
        return {}

    def ran(rec: StoredRow) -> bool:
        return rec.state is RowState.SENDING or (
            rec.state is RowState.DONE and rec.outcome.status in _DONE_OR_MAYBE
        )

    leaders: dict[str, StoredRow] = {}
    for rec in records:
        if ran(rec):
            leaders.setdefault(rec.sn.casefold(), rec)
    shadowed: dict[int, str] = {}
    for rec in records:
        leader = leaders.get(rec.sn.casefold())
        # A row that ran itself keeps its result (one in doubt is read back as ever).
        if leader is None or leader.sn == rec.sn or ran(rec):
            continue
        shadowed[rec.index] = _(
            "sn '{sn}' is row {row}'s sn "
            "'{other}' in other letter case, whose row an earlier run already "
            "ran; ITSM may take both for one ticket: check it in ITSM, then fix the file "
            "(one spelling, without the rows already done) and use --fresh"
        ).format(sn=show(rec.sn), row=batch.row_number(leader.index), other=show(leader.sn))
    return shadowed


#: The statuses of rows an earlier run did or may have done (as for a report fed back).
_DONE_OR_MAYBE = tuple(Status(name) for name in DONE_BEFORE)


def _refuse_invalid_in_doubt(in_doubt: list[InDoubtRow], batch: Batch, path: Path) -> None:
    """A row an older batchops sent whose answer was lost, and which today's rules refuse,
    can be neither read back as a row nor left pending: a person must look first."""
    for doubt in in_doubt:
        reason = str(batch.invalid[doubt.index])
        if reason:
            sn = show(str(batch.sn[doubt.index]))
            raise CheckpointError(
                _(
                    "checkpoint {path}: row {row} (sn '{sn}') was being "
                    "sent when an earlier run stopped, and it is invalid now ({reason}); check "
                    "ticket '{sn}' in ITSM, fix the file (and remove the rows already done), "
                    "then run with --fresh"
                ).format(path=path, row=batch.row_number(doubt.index), sn=sn, reason=reason)
            )


def _rows_to_retry(records: list[StoredRow]) -> set[int]:
    """--retry-failed: each failed or unknown row, with the later rows of its ticket that
    were skipped (judged on a status the failed row did not bring), so that the ticket's
    rows still go in file order; none of a ticket whose later rows already succeeded."""
    chains: dict[str, list[StoredRow]] = {}
    for rec in records:
        chains.setdefault(rec.sn, []).append(rec)
    chosen: set[int] = set()
    for chain in chains.values():
        for pos, rec in enumerate(chain):
            if rec.state is not RowState.DONE or rec.outcome.status not in (
                Status.FAILED,
                Status.UNKNOWN,
            ):
                continue
            later = chain[pos + 1 :]
            if any(r.outcome.status is Status.SUCCESS for r in later):
                continue  # resending it now would run it after rows that came later
            chosen.add(rec.index)
            # (A held row is queued with a skipped outcome: never sent, nothing to redo.)
            chosen.update(
                r.index
                for r in later
                if r.state is RowState.DONE and r.outcome.status is Status.SKIPPED
            )
    return chosen

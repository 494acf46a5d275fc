"""One run, as the sequence of its steps.

load → select → checkpoint → settle → pre-check → confirm → send → finish:
:func:`run_steps` says exactly that. The file side's steps are here; the network side's
(settle, pre-check, confirm, send) are in :mod:`.network`. The run travels between them
as one record, :class:`~.context.Run`. Every failure that stops the whole run before
anything was sent is a :class:`batchops.errors.BatchopsError`; every row's fate is an
outcome in the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from batchops.checkpoint import InFlightLedger, RunLock, Work, open_checkpoint
from batchops.errors import BatchopsError, ConfigError
from batchops.exits import Exit
from batchops.i18n import N_, _, ngettext
from batchops.model import OutcomeTable, RunSummary
from batchops.process import fewer_young_collections
from batchops.report import (
    Outputs,
    check_outputs,
    default_checkpoint_path,
    default_report_path,
    unwritten_after_sending,
    write_report,
)
from batchops.secrets import masked_url
from batchops.settings import RunConfig, as_path
from batchops.sheet import (
    NOT_DONE,
    Batch,
    add_notes,
    left_out_note,
    load_batch,
    mark_invalid,
    mark_left_out,
    previous_statuses,
    select_rows,
)
from batchops.stops import Stop

from .context import Loaded, Run, RunHooks
from .finish import RunEnd, finish_run
from .network import checkpoint_stop, send
from .summary import summary_fields, write_summary_json


def run_steps(config: RunConfig, hooks: RunHooks) -> RunSummary:
    """Run the steps; return the summary (the report and the checkpoint are written)."""
    loaded = load(config, hooks)
    refuse_invalid_if_strict(config, loaded)
    with machine_records(config, loaded.batch) as ledger:
        run = open_run(config, hooks, loaded, ledger)
        try:
            with fewer_young_collections():
                run.ending = asyncio.run(send(run))
            summary = finish(run)
        finally:
            if run.store is not None:
                run.store.close()
    summary = _write_summary_json(run, summary)
    hooks.emit("run_finished", summary_fields(summary))
    return summary


def load(config: RunConfig, hooks: RunHooks) -> Loaded:
    """Read and validate the input, check every output path, choose the rows to send."""
    files = config.files
    batch = load_batch(
        config.input_path,
        sheet=files.sheet,
        encoding=files.encoding,
        include_hidden=files.include_hidden,
        default_message=config.settings.values.default_message,
    )
    outputs = _outputs(config, batch.source)
    check_outputs(batch.source, outputs)
    outcomes = OutcomeTable(len(batch))
    mark_invalid(batch, outcomes)
    mark_left_out(batch, outcomes)
    only = tuple(config.choices.only) if config.choices.only else None
    if not only and batch.previous_results is not None:
        # An earlier report fed back as it is: re-sending its successes would replay
        # them (and a second SUSPEND sticks a ticket). Only what is not done goes.
        only = NOT_DONE
        hooks.say(
            _(
                "{source} is a batchops report: only its rows that are not done "
                "({statuses}) are sent; success and skipped rows keep their "
                "result. Use --only STATUS,... to choose other rows"
            ).format(source=batch.source, statuses=", ".join(NOT_DONE))
        )
    sendable = select_rows(batch, outcomes, only)
    hooks.emit(
        "run_started",
        {
            "input": str(batch.source),
            "rows": len(batch),
            "to_send": int(sendable.sum()),
            "invalid": batch.invalid_count(),
            "hidden_left_out": batch.left_out_count(),
            "target": masked_url(config.connection.base_url) or "(sandbox)",
            "gateway": config.connection.gateway,
        },
    )
    return Loaded(batch, outcomes, outputs, sendable, only)


def _outputs(config: RunConfig, source: Path) -> Outputs:
    """Every path the run writes: the given ones, or the defaults beside the input."""
    files = config.files
    checkpoint = None
    if files.use_checkpoint and (files.checkpoint or not config.connection.sandbox):
        checkpoint = as_path(files.checkpoint) or default_checkpoint_path(source)
    return Outputs(
        as_path(files.output) or default_report_path(source),
        as_path(files.failures),
        as_path(files.summary_json),
        checkpoint,
    )


def refuse_invalid_if_strict(config: RunConfig, loaded: Loaded) -> None:
    """With --strict, any invalid row sends nothing (the report says which)."""
    batch = loaded.batch
    if not (config.choices.strict and batch.invalid_count()):
        return
    add_notes(batch, loaded.outcomes)
    path = write_report(
        batch.frame, loaded.outcomes, loaded.outputs.report, sheet_name=batch.sheet, book=batch.book
    )
    raise ConfigError(
        _(
            "{count} invalid rows and --strict is on, so nothing was sent; "
            "see the 'message' column of {path} and fix those rows"
        ).format(count=batch.invalid_count(), path=path)
    )


@contextlib.contextmanager
def machine_records(config: RunConfig, batch: Batch) -> Iterator[InFlightLedger | None]:
    """One run per ticket set and target on this machine, whatever the checkpoint, and
    this run's record of its operations in flight; none for the stand-in, whose tickets
    live in this run only."""
    if config.connection.sandbox:
        yield None
        return
    tickets = batch.sn[batch.invalid == ""].tolist()
    lock = RunLock(config.connection.base_url, tickets, source=batch.source).acquire()
    try:
        assert lock.folder is not None
        ledger = InFlightLedger.start(lock.folder, lock.target)
        try:
            yield ledger
        finally:
            ledger.close()
    finally:
        lock.release()


def open_run(
    config: RunConfig, hooks: RunHooks, loaded: Loaded, ledger: InFlightLedger | None = None
) -> Run:
    """Bind the checkpoint (or resume from it): the run and what it still has to do."""
    started = time.monotonic()
    work = Work(to_send=np.flatnonzero(loaded.sendable).astype(np.int64), in_doubt=[])
    store = None
    if loaded.outputs.checkpoint is not None:
        store, work = open_checkpoint(
            loaded.batch,
            loaded.outcomes,
            loaded.sendable,
            loaded.outputs.checkpoint,
            fresh=config.choices.fresh,
            retry_failed=config.choices.retry_failed,
            gateway=config.connection.gateway,
            base_url=config.connection.base_url or "(sandbox)",
            held=loaded.batch.left_out,
        )
    work.last_sent_at = max(work.last_sent_at, _unknown_rows_sent_by(loaded))
    run = Run(config, hooks, loaded, work, store, started, ledger=ledger)
    try:
        park_left_in_flight(run)
    except BaseException:
        if store is not None:
            store.close()
        raise
    run.fresh_note = _fresh_note(run)
    return run


def park_left_in_flight(run: Run) -> None:
    """Tickets on which an ended run (whatever its checkpoint, or none) may still have an
    operation in flight: park this run's first row of each (see InFlightLedger.adopt)."""
    ledger, work, policy = run.ledger, run.work, run.config.policy
    if ledger is None:
        return
    entries = ledger.left_in_flight(policy.server_timeout_s + policy.readback_delay_s)
    if not entries:
        return
    rows = np.union1d(work.to_send, np.array([d.index for d in work.in_doubt], dtype=np.int64))
    parked = ledger.adopt(entries, run.loaded.batch, rows, work.in_doubt)
    if not parked:
        return
    work.in_doubt.extend(parked)
    count = len(parked)
    run.hooks.say(
        ngettext(
            "{count} ticket had an operation in flight from an earlier batchops run that "
            "ended (recorded in {folder}): it is read back until that operation shows or "
            "can no longer land, before anything is sent to it",
            "{count} tickets had an operation in flight from an earlier batchops run that "
            "ended (recorded in {folder}): each is read back until that operation shows or "
            "can no longer land, before anything is sent to it",
            count,
        ).format(count=count, folder=ledger.folder.path)
    )


def _unknown_rows_sent_by(loaded: Loaded) -> float:
    """An earlier report fed back with ``unknown`` rows to send again: their requests
    went out before the report was written, and may land until the window after that
    (no checkpoint says when exactly). 0 when there are none."""
    previous = loaded.batch.previous_results
    if previous is None or not len(loaded.sendable):
        return 0.0
    earlier = previous_statuses(previous)
    if not (np.asarray(loaded.sendable, dtype=bool) & (earlier == "unknown")).any():
        return 0.0
    try:
        return loaded.batch.source.stat().st_mtime
    except OSError:
        return time.time()  # cannot tell: as if it had just been written


def _fresh_note(run: Run) -> dict[str, str]:
    """What --fresh set aside: shown in the confirmation when there is one, else on stderr."""
    if run.work.fresh is None:
        return {}
    text = run.work.fresh.describe(run.config.choices.precheck)
    if run.hooks.confirm is not None:
        return {N_("fresh start"): text.removeprefix("--fresh: ")}
    run.hooks.say(text)
    return {}


def finish(run: Run) -> RunSummary:
    """Outcomes into the checkpoint first, then the report: a kill while the report is
    written then costs no read-backs on the next run."""
    store, loaded = run.store, run.loaded
    ending = dataclasses.replace(run.ending, stop=_final_stop(run))
    end = RunEnd(
        started=run.started,
        report_path=None if ending.declined else loaded.outputs.report,
        failures_path=loaded.outputs.failures,
        store=store,
        note=_("; ").join(
            n for n in (run.work.note, left_out_note(loaded.batch.left_out_count())) if n
        ),
        advice=run.advice(),
        settings=_shown_settings(run.config, loaded),
    )
    summary = finish_run(loaded.batch, loaded.outcomes, ending, end)
    if store is not None:
        store.end_run(summary.exit_code, summary.stopped_reason)
    return summary


def _final_stop(run: Run) -> Stop | None:
    """The send's stop, or the checkpoint's: a checkpoint that could not be written, maybe
    noticed only by this last flush, leaves the run resumable, not done."""
    stop, store = run.ending.stop, run.store
    if store is None:
        return stop
    store.flush()
    if not store.broken:
        return stop
    if stop is None:
        return checkpoint_stop(store.broken)
    if store.broken in stop.reason:
        return stop
    return dataclasses.replace(
        stop, reason=_("{reason}; also {broken}").format(reason=stop.reason, broken=store.broken)
    )


def _shown_settings(config: RunConfig, loaded: Loaded) -> dict[str, object]:
    """The settings the report's summary sheet lists."""
    connection, policy = config.connection, config.policy
    credentials = connection.credentials
    # Labels for a person, in the language in use (the sheet is read by people only).
    return {
        _("input"): str(loaded.batch.source),
        _("target"): masked_url(connection.base_url) or _("(embedded sandbox)"),
        _("gateway"): connection.gateway,
        _("app_code"): credentials.app_code if credentials else "batchops-sandbox",
        _("profile"): config.settings.profile or "",
        _("concurrency"): policy.concurrency,
        _("rate"): policy.rate or _("unlimited"),
        _("pre-check"): _("on") if config.choices.precheck else _("off"),
        _("only"): ",".join(sorted(loaded.only)) if loaded.only else "",
        _("canary"): config.choices.canary or "",
    }


def _write_summary_json(run: Run, summary: RunSummary) -> RunSummary:
    loaded, store = run.loaded, run.store
    path = loaded.outputs.summary_json
    if path is None:
        return summary
    try:
        write_summary_json(summary, path)
    except BatchopsError as exc:
        if not loaded.outcomes.any_attempted():
            raise
        return dataclasses.replace(
            summary,
            exit_code=Exit.REPORT_UNWRITTEN,
            report_error=unwritten_after_sending(
                str(exc), store.path if store else None, loaded.outputs.report
            ),
        )
    return summary

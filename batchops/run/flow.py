"""One run, as the sequence of its steps.

load → select → checkpoint → settle → pre-check → confirm → send → finish. :func:`run`
says exactly that; each step is a short function here (the file side) or in
:mod:`batchops.run.network` (the network side: settle, pre-check, confirm, send). Every
failure that stops the whole run before anything was sent is a
:class:`batchops.errors.BatchopsError`; every row's fate is an outcome in the report.
What the caller is shown and asked meanwhile is its :class:`Hooks`, wired once into the
:class:`RunHooks` the steps use.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from batchops.checkpoint import Checkpoint, RunLock, Work, default_checkpoint_path, open_checkpoint
from batchops.errors import BatchopsError, ConfigError
from batchops.itsm import Tracer
from batchops.model import OutcomeTable, RunSummary
from batchops.report import (
    Outputs,
    check_outputs,
    default_report_path,
    unwritten_after_sending,
    write_report,
)
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
from batchops.stops import StopKind

from .finish import EXIT_REPORT_UNWRITTEN, RunEnd, RunState, finish_run
from .network import checkpoint_stop, send
from .progress import NullProgress, ProgressSink
from .prompts import Advice, Confirm, ConfirmCanary, fatal_fix
from .recorder import Events, no_events, notices_to
from .summary import summary_fields, write_summary_json


@dataclass(frozen=True, slots=True)
class Hooks:
    """What the caller sees and answers while a run (or a plan) goes; none of it is a
    setting, and every part may be left out.

    ``confirm`` is shown the overview before anything is sent (False sends nothing);
    ``confirm_canary`` decides after a canary (without it: go on only if every canary
    row succeeded). ``events`` receives ``(name, fields)`` for log lines; ``notice`` what
    a person should see meanwhile (an outage, a long rate-limit pause). With
    ``handle_signals`` Ctrl-C and SIGTERM stop the run cleanly. ``verbose`` 1 writes a
    line per request and answer to stderr (an ``http`` event with ``events``), 2 adds
    the bodies; credentials masked.
    """

    progress: ProgressSink | None = None
    confirm: Confirm | None = None
    confirm_canary: ConfirmCanary | None = None
    events: Events | None = None
    notice: Callable[[str], None] | None = None
    handle_signals: bool = False
    verbose: int = 0

    def tracer(self) -> Tracer | None:
        """--verbose's tracer, or None."""
        return Tracer(self.verbose, events=self.events) if self.verbose > 0 else None


@dataclass(frozen=True, slots=True)
class RunHooks:
    """The caller's :class:`Hooks`, wired for the steps: nothing left to check for None."""

    emit: Events
    say: Callable[[str], None]
    progress: ProgressSink = dataclasses.field(default_factory=NullProgress)
    confirm: Confirm | None = None
    confirm_canary: ConfirmCanary | None = None
    handle_signals: bool = False
    #: --verbose: a line (or an ``http`` event) per request and answer.
    tracer: Tracer | None = None

    @classmethod
    def wired(cls, hooks: Hooks) -> RunHooks:
        emit = hooks.events or no_events
        return cls(
            emit=emit,
            say=notices_to(hooks.notice, emit),
            progress=hooks.progress or NullProgress(),
            confirm=hooks.confirm,
            confirm_canary=hooks.confirm_canary,
            handle_signals=hooks.handle_signals,
            tracer=hooks.tracer(),
        )


@dataclass(slots=True)
class Loaded:
    """The input, its outcome table, and where the run's files go."""

    batch: Batch
    outcomes: OutcomeTable
    outputs: Outputs
    #: Which rows this run may send.
    sendable: np.ndarray
    #: --only as it applies to this run (an earlier report fed back: the rows not done).
    only: tuple[str, ...] | None


def run(config: RunConfig, hooks: RunHooks) -> RunSummary:
    """Run the steps; return the summary (the report and the checkpoint are written)."""
    loaded = load(config, hooks)
    started = time.monotonic()
    refuse_invalid_if_strict(config, loaded)
    lock = None if config.connection.sandbox else _lock(config, loaded.batch)
    try:
        store, work = open_store(config, loaded)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    try:
        extra = _fresh_note(config, hooks, work)
        with fewer_young_collections():
            state = asyncio.run(send(config, hooks, loaded, work, store, extra))
        summary = finish(config, loaded, state, store, work, started)
    finally:
        try:
            if store is not None:
                store.close()
        finally:
            if lock is not None:
                lock.release()
    summary = _write_summary_json(config, loaded, summary, store)
    hooks.emit("run_finished", summary_fields(summary))
    return summary


@contextlib.contextmanager
def fewer_young_collections() -> Iterator[None]:
    """Let the cycle collector's youngest generation fill up more before it runs.

    With a hundred requests in flight, thousands of young objects are alive at any time,
    and Python's default (a collection every 700 net allocations) walks them over and
    over. Measured (BENCHMARKS.md, "Kept after measuring"): without it the client spends
    about 60 % more CPU per row at C=100, D=0 (20,000 rows: 5.4–7.1 s user against
    7.7–11.0 s). Nothing of a run's own is cyclic garbage, so the threshold is raised for
    the send and put back after.
    """
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], _YOUNG_GC_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


_YOUNG_GC_THRESHOLD = 20_000


def load(config: RunConfig, hooks: RunHooks) -> Loaded:
    """Read and validate the input, check every output path, choose the rows to send."""
    files = config.files
    batch = load_batch(
        config.input_path,
        sheet=files.sheet,
        encoding=files.encoding,
        include_hidden=files.include_hidden,
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
            f"{batch.source} is a batchops report: only its rows that are not done "
            f"({', '.join(NOT_DONE)}) are sent; success and skipped rows keep their "
            "result. Use --only STATUS,... to choose other rows"
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
            "target": config.connection.base_url or "(sandbox)",
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
    path = write_report(batch.frame, loaded.outcomes, loaded.outputs.report, sheet_name=batch.sheet)
    raise ConfigError(
        f"{batch.invalid_count()} invalid rows and --strict is on, so nothing was sent; "
        f"see the 'message' column of {path} and fix those rows"
    )


def _lock(config: RunConfig, batch: Batch) -> RunLock:
    # One run per sheet and target, whatever the checkpoint; the stand-in is per run.
    connection = config.connection
    return RunLock(batch.source, connection.gateway, connection.base_url, config.env).acquire()


def open_store(config: RunConfig, loaded: Loaded) -> tuple[Checkpoint | None, Work]:
    """Bind the checkpoint (or resume from it): what this run still has to do."""
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
    return store, work


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


def _fresh_note(config: RunConfig, hooks: RunHooks, work: Work) -> dict[str, str]:
    """What --fresh set aside: shown in the confirmation when there is one, else on stderr."""
    if work.fresh is None:
        return {}
    text = work.fresh.describe(config.choices.precheck)
    if hooks.confirm is not None:
        return {"fresh start": text.removeprefix("--fresh: ")}
    hooks.say(text)
    return {}


def finish(
    config: RunConfig,
    loaded: Loaded,
    state: RunState,
    store: Checkpoint | None,
    work: Work,
    started: float,
) -> RunSummary:
    """Outcomes into the checkpoint first, then the report: a kill while the report is
    written then costs no read-backs on the next run."""
    if store is not None:
        store.flush()
        if store.broken:
            # Possibly only noticed by this last flush: the run is resumable, not done.
            if state.stop is None:
                state.stop = checkpoint_stop(store.broken)
            elif store.broken not in state.stop.reason:
                state.stop = dataclasses.replace(
                    state.stop, reason=f"{state.stop.reason}; also {store.broken}"
                )
    choices = config.choices
    advice = Advice(choices.command, config.settings, config.env, checkpointed=store is not None)
    if state.stop is not None and state.stop.kind is StopKind.FATAL and not state.stop.fix:
        fix = fatal_fix(state.fatal_answer, advice, sandbox=config.connection.sandbox)
        state.stop = dataclasses.replace(state.stop, fix=fix)
    end = RunEnd(
        started=started,
        report_path=None if state.declined else loaded.outputs.report,
        failures_path=loaded.outputs.failures,
        store=store,
        note="; ".join(n for n in (work.note, left_out_note(loaded.batch.left_out_count())) if n),
        advice=advice,
        settings=_shown_settings(config, loaded),
    )
    summary = finish_run(loaded.batch, loaded.outcomes, state, end)
    if store is not None:
        store.end_run(summary.exit_code, summary.stopped_reason)
    return summary


def _shown_settings(config: RunConfig, loaded: Loaded) -> dict[str, object]:
    """The settings the report's summary sheet lists."""
    connection, policy = config.connection, config.policy
    credentials = connection.credentials
    return {
        "input": str(loaded.batch.source),
        "target": connection.base_url or "(embedded sandbox)",
        "gateway": connection.gateway,
        "app_code": credentials.app_code if credentials else "batchops-sandbox",
        "profile": config.settings.profile or "",
        "concurrency": policy.concurrency,
        "rate": policy.rate or "unlimited",
        "pre-check": "on" if config.choices.precheck else "off",
        "only": ",".join(sorted(loaded.only)) if loaded.only else "",
        "canary": config.choices.canary or "",
    }


def _write_summary_json(
    config: RunConfig, loaded: Loaded, summary: RunSummary, store: Checkpoint | None
) -> RunSummary:
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
            exit_code=EXIT_REPORT_UNWRITTEN,
            report_error=unwritten_after_sending(
                str(exc), store.path if store else None, loaded.outputs.report
            ),
        )
    return summary

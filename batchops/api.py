"""The Python API: ``run_batch``, ``plan_batch`` and ``report_from_checkpoint``.

The CLI is a thin layer over these. Each builds its frozen settings once
(:mod:`batchops.settings.records`) and hands them to the run's steps (:mod:`batchops.run.flow`,
:mod:`batchops.commands.plan`). Every failure that stops the whole run is a
:class:`batchops.errors.BatchopsError`; every row's fate is an outcome in the report. A
scheduler can call these functions directly and read the returned
:class:`batchops.model.RunSummary`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from batchops.checkpoint import Checkpoint, row_keys, rows_fingerprint
from batchops.commands import plan as planning
from batchops.errors import BatchopsError, CheckpointError
from batchops.exits import Exit
from batchops.i18n import _
from batchops.model import Outcome, OutcomeTable, RowState, RunSummary, Status
from batchops.report import Outputs, check_outputs, default_report_path, write_report
from batchops.run import (
    CanaryReport,
    CanaryRow,
    Confirm,
    ConfirmCanary,
    Events,
    Hooks,
    Notifier,
    PlanOverview,
    RunHooks,
    counts_by_action,
    exit_code_of,
    run_steps,
)
from batchops.settings import (
    FailureBrake,
    Files,
    Resolved,
    RunChoices,
    RunOptions,
    plan_config,
    resolve_options,
    run_config,
)
from batchops.sheet import add_notes, load_batch

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REPORT_UNWRITTEN",
    "EXIT_ROWS_FAILED",
    "EXIT_STOPPED",
    "CanaryReport",
    "CanaryRow",
    "Confirm",
    "ConfirmCanary",
    "Events",
    "Exit",
    "FailureBrake",
    "Files",
    "Hooks",
    "PlanOverview",
    "RunChoices",
    "RunOptions",
    "RunSummary",
    "plan_batch",
    "report_from_checkpoint",
    "run_batch",
]

#: The codes a scheduler compares ``RunSummary.exit_code`` with, by the names this API
#: has exported since its start; the table (and each code's meaning) is :class:`Exit`.
EXIT_OK = Exit.OK
EXIT_ROWS_FAILED = Exit.ROWS_FAILED
EXIT_STOPPED = Exit.STOPPED
EXIT_REPORT_UNWRITTEN = Exit.REPORT_UNWRITTEN
EXIT_INTERRUPTED = Exit.INTERRUPTED


def run_batch(
    input_path: str | os.PathLike[str],
    options: RunOptions | None = None,
    *,
    files: Files | None = None,
    choices: RunChoices | None = None,
    hooks: Hooks | None = None,
    env: Mapping[str, str] | None = None,
) -> RunSummary:
    """Validate ``input_path``, send every valid row, write the report, return a summary.

    ``options`` are the CLI's target, sending and notification options
    (:class:`RunOptions`); a setting left ``None`` comes from the environment (``env``,
    default ``os.environ``), then from the ``batchops.toml`` profile, then from the
    default. The app secret is only ever read from the environment (``BK_APP_SECRET``,
    or the variable the profile's ``secret_env`` names). ``files`` says how the input
    is read and where the report and the other outputs go (:class:`Files`); ``choices``
    what the run does (:class:`RunChoices`: ``--strict``, ``--canary``, ``--only``, …);
    ``hooks`` what the caller is shown and asked meanwhile (:class:`Hooks`).

    Every row's progress is kept in a checkpoint (default: beside the input), so running
    the same call again after a crash continues where it stopped. With
    ``RunOptions(sandbox=True)`` no checkpoint is kept unless ``Files(checkpoint=…)``
    names one: the stand-in's tickets live only as long as the run. ``notify`` (Apprise
    URLs) is told how the run ended, when ``notify_on`` says so (``problems``: exit code
    not 0, the default; ``always``), also when it stops on an error.
    """
    env = os.environ if env is None else env
    options = options or RunOptions()
    wired = RunHooks.wired(hooks or Hooks())
    settings = resolve_options(options, env)
    notifier = _notifier(settings, env)
    try:
        config = run_config(
            Path(input_path),
            options,
            settings,
            files=files or Files(),
            choices=choices or RunChoices(),
            say=wired.say,
            env=env,
        )
        summary = run_steps(config, wired)
    except BatchopsError as error:
        notifier.run_failed(error, str(input_path))
        raise
    notifier.run_finished(summary, str(input_path))
    return summary


def _notifier(settings: Resolved, env: Mapping[str, str]) -> Notifier:
    values = settings.values
    secrets = (env.get(values.secret_env, ""), env.get(values.token_env, ""))
    return Notifier.from_settings(values.notify, values.notify_on, secrets)


def plan_batch(
    input_path: str | os.PathLike[str],
    options: RunOptions | None = None,
    *,
    files: Files | None = None,
    precheck: bool = True,
    hooks: Hooks | None = None,
    env: Mapping[str, str] | None = None,
) -> RunSummary:
    """Validate (and, with an ITSM address, pre-check) without sending any operation.

    Takes what :func:`run_batch` takes, and reads of it only the target (``options``),
    the input and output paths (``files``), and ``notice``, ``events`` and ``verbose``
    (``hooks``). Rows that would be sent are ``pending``; rows the pre-check would skip
    are ``skipped`` with the reason; invalid rows are ``invalid``. The report is written
    exactly as ``run`` would write it. Without an ITSM address (flag, environment or
    profile) it only validates, and needs no credentials.
    """
    env = os.environ if env is None else env
    hooks = hooks or Hooks()
    config = plan_config(
        Path(input_path),
        options or RunOptions(),
        files=files or Files(),
        say=hooks.notice or _quiet,
        env=env,
        precheck=precheck,
    )
    return planning.plan(config, hooks.tracer())


def report_from_checkpoint(
    checkpoint: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    input_path: str | os.PathLike[str] | None = None,
    sheet: str | None = None,
    encoding: str | None = None,
) -> RunSummary:
    """Write the report of a checkpoint's run as it stands, without touching the checkpoint.

    Works while the run is going: rows being sent show as ``pending``. The input file is
    needed for its columns; it must still hold the same rows.
    """
    started = time.monotonic()
    store = Checkpoint.open_readonly(Path(checkpoint))
    try:
        binding = store.binding()
        if binding is None:
            raise CheckpointError(
                _("checkpoint {path} has no run recorded yet").format(path=checkpoint)
            )
        source = Path(input_path or binding.input_path)
        if not source.exists():
            raise CheckpointError(
                _("the run's input {path} is gone; pass it with --input PATH").format(path=source)
            )
        # Every row, as the checkpoint has them (a held row is in it, queued and skipped).
        batch = load_batch(source, sheet=sheet, encoding=encoding, include_hidden=True)
        if rows_fingerprint(row_keys(batch)) != binding.rows_fingerprint:
            raise CheckpointError(
                _(
                    "{path} no longer holds the rows of checkpoint {checkpoint}; pass the "
                    "original file with --input PATH"
                ).format(path=source, checkpoint=checkpoint)
            )
        outcomes = _recorded(store, len(batch))
    finally:
        store.close()
    add_notes(batch, outcomes)
    target = Path(output) if output else default_report_path(source)
    # The checkpoint is read here, not written, but a report over it would lose it too.
    check_outputs(source, Outputs(target, checkpoint=Path(checkpoint)))
    path = write_report(batch.frame, outcomes, target, sheet_name=batch.sheet, book=batch.book)
    counts = outcomes.counts()
    return RunSummary(
        counts=counts,
        total_rows=len(batch),
        sent_requests=0,
        elapsed_s=time.monotonic() - started,
        report_path=str(path),
        # A report of a run still going: pending rows are its business, not a stop.
        exit_code=exit_code_of(counts, None, pending_is_unfinished=False),
        input_fingerprint=batch.fingerprint,
        checkpoint_path=str(checkpoint),
        counts_by_action=counts_by_action(batch, outcomes),
    )


def _recorded(store: Checkpoint, rows: int) -> OutcomeTable:
    """Every row's outcome as the checkpoint has it; a row being sent is ``pending``."""
    outcomes = OutcomeTable(rows)
    for rec in store.rows():
        if rec.state is RowState.SENDING:
            outcome = Outcome(
                Status.PENDING,
                None,
                _("being sent (if its run was killed: in doubt, the next run reads it back)"),
                rec.outcome.attempts,
            )
        else:
            outcome = rec.outcome
        outcomes.set(rec.index, outcome)
    return outcomes


def _quiet(text: str) -> None:
    return None

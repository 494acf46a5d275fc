"""The Python API: ``run_batch``, ``plan_batch`` and ``report_from_checkpoint``.

The CLI is a thin layer over these. Each builds its frozen settings once
(:mod:`batchops.runconfig`) and hands them to the run's steps (:mod:`batchops.pipeline`,
:mod:`batchops.planning`). Every failure that stops the whole run is a
:class:`batchops.errors.BatchopsError`; every row's fate is an outcome in the report. A
scheduler can call these functions directly and read the returned
:class:`batchops.model.RunSummary`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

from . import pipeline, planning
from .config import Gateway
from .errors import BatchopsError, CheckpointError
from .finish import EXIT_OK, EXIT_REPORT_UNWRITTEN, EXIT_ROWS_FAILED, counts_by_action, exit_code_of
from .loader import load_batch
from .model import Outcome, OutcomeTable, RowState, RunSummary, Status
from .notify import Notifier
from .outputs import Outputs, check_outputs
from .pipeline import RunHooks
from .progress import NullProgress, ProgressSink
from .prompts import CanaryReport, CanaryRow, Confirm, ConfirmCanary, PlanOverview
from .recorder import Events, no_events, notices_to
from .report import default_report_path, write_report
from .resume import row_keys, rows_fingerprint
from .runconfig import FailureBrake, Files, RunOptions, plan_config, resolve_run, run_config
from .selection import add_notes
from .stops import EXIT_INTERRUPTED, EXIT_STOPPED
from .store import Checkpoint
from .trace import Tracer

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
    "FailureBrake",
    "PlanOverview",
    "RunSummary",
    "plan_batch",
    "report_from_checkpoint",
    "run_batch",
]


def run_batch(
    input_path: str | os.PathLike[str],
    *,
    base_url: str | None = None,
    gateway: Gateway | None = None,
    app_code: str | None = None,
    username: str | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    rate: float | None = None,
    max_failures: str | FailureBrake | None = None,
    readback_delay: float | None = None,
    server_timeout: float | None = None,
    outage_wait: float | None = None,
    ca_bundle: str | None = None,
    profile: str | None = None,
    config: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    sheet: str | None = None,
    encoding: str | None = None,
    strict: bool = False,
    precheck: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    use_checkpoint: bool = True,
    fresh: bool = False,
    retry_failed: bool = False,
    only: Collection[str] | None = None,
    canary: int | None = None,
    failures: str | os.PathLike[str] | None = None,
    summary_json: str | os.PathLike[str] | None = None,
    insecure: bool = False,
    sandbox: bool = False,
    progress: ProgressSink | None = None,
    confirm: Confirm | None = None,
    confirm_canary: ConfirmCanary | None = None,
    events: Events | None = None,
    env: Mapping[str, str] | None = None,
    handle_signals: bool = False,
    notice: Callable[[str], None] | None = None,
    command: Sequence[str] | None = None,
    proxy: str | None = None,
    notify: Sequence[str] | None = None,
    notify_on: str | None = None,
    verbose: int = 0,
) -> RunSummary:
    """Validate ``input_path``, send every valid row, write the report, return a summary.

    Keyword arguments mirror the CLI options; a setting left ``None`` comes from the
    environment, then from the ``batchops.toml`` profile, then from the default. The app
    secret is only ever read from the environment (``BK_APP_SECRET``, or the variable
    the profile's ``secret_env`` names).

    ``confirm`` is called with a :class:`PlanOverview` before anything is sent; returning
    False sends nothing. With ``canary=N`` the first N rows go first; then
    ``confirm_canary`` decides, or (without it) the run goes on only if every canary row
    succeeded. ``only`` (e.g. ``{"failed", "unknown"}``) re-runs just those rows of an
    earlier report given as input. ``events`` receives ``(name, fields)`` for log lines;
    ``notice`` receives what a person should see while the run goes on (an outage, a long
    rate-limit pause). ``command`` is the command line that started the run: the advice
    in the summary names the exact command that finishes the work.

    Every row's progress is kept in a checkpoint (default: beside the input), so running
    the same call again after a crash continues where it stopped. With ``sandbox=True``
    no checkpoint is kept unless ``checkpoint`` is given: the stand-in's tickets live
    only as long as the run.

    ``proxy`` wins over HTTPS_PROXY/HTTP_PROXY/NO_PROXY (honoured otherwise). ``notify``
    (Apprise URLs) is told how the run ended, when ``notify_on`` says so (``problems``:
    exit code not 0, the default; ``always``), also when it stops on an error.
    ``verbose`` 1 writes a line per request and answer to stderr (an ``http`` event with
    ``events``), 2 adds the bodies; credentials masked.
    """
    env = os.environ if env is None else env
    emit = events or no_events
    say = notices_to(notice, emit)
    files = Files(
        Path(input_path),
        output=_path(output),
        sheet=sheet,
        encoding=encoding,
        failures=_path(failures),
        summary_json=_path(summary_json),
        checkpoint=_path(checkpoint),
        use_checkpoint=use_checkpoint,
    )
    options = RunOptions(
        base_url=base_url,
        gateway=gateway,
        app_code=app_code,
        username=username,
        concurrency=concurrency,
        timeout=timeout,
        retries=retries,
        rate=rate,
        max_failures=max_failures,
        readback_delay=readback_delay,
        server_timeout=server_timeout,
        outage_wait=outage_wait,
        ca_bundle=ca_bundle,
        profile=profile,
        config=config,
        insecure=insecure,
        sandbox=sandbox,
        proxy=proxy,
        notify=notify,
        notify_on=notify_on,
    )
    settings = resolve_run(options, env)
    notifier = Notifier.from_settings(
        settings["notify"],
        settings["notify_on"],
        (env.get(settings["secret_env"], ""), env.get(settings["token_env"], "")),
    )
    hooks = RunHooks(
        emit=emit,
        say=say,
        progress=progress or NullProgress(),
        confirm=confirm,
        confirm_canary=confirm_canary,
        handle_signals=handle_signals,
        tracer=_tracer(verbose, events),
    )
    try:
        run_settings = run_config(
            files,
            options,
            settings,
            say=say,
            env=env,
            strict=strict,
            precheck=precheck,
            fresh=fresh,
            retry_failed=retry_failed,
            only=only,
            canary=canary,
            command=command,
        )
        summary = pipeline.run(run_settings, hooks)
    except BatchopsError as error:
        notifier.run_failed(error, str(input_path))
        raise
    notifier.run_finished(summary, str(input_path))
    return summary


def plan_batch(
    input_path: str | os.PathLike[str],
    *,
    base_url: str | None = None,
    gateway: Gateway | None = None,
    app_code: str | None = None,
    username: str | None = None,
    timeout: float | None = None,
    ca_bundle: str | None = None,
    profile: str | None = None,
    config: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    sheet: str | None = None,
    encoding: str | None = None,
    precheck: bool = True,
    sandbox: bool = False,
    insecure: bool = False,
    summary_json: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    notice: Callable[[str], None] | None = None,
    proxy: str | None = None,
    verbose: int = 0,
    events: Events | None = None,
) -> RunSummary:
    """Validate (and, with an ITSM address, pre-check) without sending any operation.

    Rows that would be sent are ``pending``; rows the pre-check would skip are
    ``skipped`` with the reason; invalid rows are ``invalid``. The report is written
    exactly as ``run`` would write it. Without an ITSM address (flag, environment or
    profile) it only validates, and needs no credentials.
    """
    env = os.environ if env is None else env
    files = Files(
        Path(input_path),
        output=_path(output),
        sheet=sheet,
        encoding=encoding,
        summary_json=_path(summary_json),
    )
    options = RunOptions(
        base_url=base_url,
        gateway=gateway,
        app_code=app_code,
        username=username,
        timeout=timeout,
        ca_bundle=ca_bundle,
        profile=profile,
        config=config,
        insecure=insecure,
        sandbox=sandbox,
        proxy=proxy,
    )
    config_ = plan_config(files, options, say=notice or _quiet, env=env, precheck=precheck)
    return planning.plan(config_, _tracer(verbose, events))


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
            raise CheckpointError(f"checkpoint {checkpoint} has no run recorded yet")
        source = Path(input_path or binding.input_path)
        if not source.exists():
            raise CheckpointError(f"the run's input {source} is gone; pass it with --input PATH")
        batch = load_batch(source, sheet=sheet, encoding=encoding)
        if rows_fingerprint(row_keys(batch)) != binding.rows_fingerprint:
            raise CheckpointError(
                f"{source} no longer holds the rows of checkpoint {checkpoint}; pass the "
                "original file with --input PATH"
            )
        outcomes = OutcomeTable(len(batch))
        for rec in store.rows():
            if rec.state is RowState.SENDING:
                outcome = Outcome(
                    Status.PENDING,
                    None,
                    "being sent (if its run was killed: in doubt, the next run reads it back)",
                    rec.outcome.attempts,
                )
            else:
                outcome = rec.outcome
            outcomes.set(rec.index, outcome)
    finally:
        store.close()
    add_notes(batch, outcomes)
    target = Path(output) if output else default_report_path(source)
    # The checkpoint is read here, not written, but a report over it would lose it too.
    check_outputs(source, Outputs(target, checkpoint=Path(checkpoint)))
    path = write_report(batch.frame, outcomes, target, sheet_name=batch.sheet)
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


def _tracer(verbose: int, events: Events | None) -> Tracer | None:
    return Tracer(verbose, events=events) if verbose > 0 else None


def _path(value: str | os.PathLike[str] | None) -> Path | None:
    return Path(value) if value else None


def _quiet(text: str) -> None:
    return None

"""The Python API: ``run_batch`` and ``plan_batch``. The CLI is a thin layer over these.

One run is: load and validate the file → (optionally) start the embedded stand-in →
pre-check ticket statuses → ask for confirmation → send → write the report. Every
step's failure that stops the whole run is a :class:`batchops.errors.BatchopsError`;
every row's fate is an outcome in the report. A scheduler can call these functions
directly and read the returned :class:`batchops.model.RunSummary`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import os
import shlex
import signal
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from .client import Answer, ItsmClient, Verdict
from .config import (
    ClientSettings,
    Credentials,
    Gateway,
    Resolved,
    masked_url,
    notify_label,
    resolve,
    target_source,
)
from .config import credentials_from as _credentials_from
from .console import NullProgress, ProgressSink
from .errors import BatchopsError, CheckpointError, ConfigError, FatalAnswerError
from .executor import Executor, FailureBrake, SendPolicy, chains_by_sn
from .loader import Batch, load_batch
from .model import STATUS_ORDER, Outcome, OutcomeTable, Row, RunSummary, Status
from .notify import Notifier
from .outputs import Outputs, check_outputs, unwritten_after_sending
from .planner import Precheck, StatusTable, _all_or_none, read_statuses, simulate
from .report import default_plan_path, default_report_path, write_failures, write_report
from .resume import Work, open_checkpoint, row_keys, rows_fingerprint
from .runlock import RunLock
from .stops import EXIT_INTERRUPTED as STOP_INTERRUPTED
from .stops import EXIT_STOPPED, RunControl, Stop, StopKind, Stopped
from .store import Checkpoint, default_checkpoint_path
from .summary import summary_fields, summary_sheet, top_failures, write_summary_json
from .trace import Tracer

EXIT_OK = 0
EXIT_ROWS_FAILED = 1
EXIT_USAGE = 2
EXIT_FATAL = EXIT_STOPPED
EXIT_INTERRUPTED = STOP_INTERRUPTED
#: Operations were sent, but the report (or --failures / --summary-json) could not be
#: written; the results are safe in the checkpoint (``batchops report`` rebuilds them).
EXIT_REPORT_UNWRITTEN = 4


@dataclass(frozen=True, slots=True)
class PlanOverview:
    """What a run is about to do, shown before asking for confirmation."""

    total_rows: int
    to_send: int
    by_action: dict[str, int]
    by_status: dict[str, int]
    operators: list[str]
    target: str
    gateway: str
    app_code: str
    invalid: int = 0
    precheck_note: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    #: Which flag, variable, or file and profile chose ``target``.
    target_source: str = ""

    def describe(self) -> str:
        actions = ", ".join(f"{n} {a}" for a, n in sorted(self.by_action.items())) or "none"
        ops = ", ".join(self.operators[:5]) + (" …" if len(self.operators) > 5 else "")
        lines = [
            f"About to send {self.to_send} of {self.total_rows} rows to {self.target} "
            f"({self.gateway}, app {self.app_code}).",
            f"  target chosen by: {self.target_source or 'the caller'}",
            f"  actions: {actions}",
            f"  operators ({len(self.operators)}): {ops or '-'}",
        ]
        counts = ", ".join(f"{n} {s}" for s, n in self.by_status.items() if n)
        if counts:
            lines.append(f"  rows: {counts}")
        if self.precheck_note:
            lines.append(f"  pre-check: {self.precheck_note}")
        lines.extend(f"  {key}: {value}" for key, value in self.extra.items())
        return "\n".join(lines)


Confirm = Callable[[PlanOverview], bool]


class _Recorder:
    """Where outcomes go: the table, the checkpoint and the progress display, secrets scrubbed."""

    def __init__(
        self,
        outcomes: OutcomeTable,
        progress: ProgressSink,
        secrets: tuple[str, ...],
        store: Checkpoint | None = None,
        emit: Events | None = None,
        row_number: Callable[[int], int] | None = None,
    ) -> None:
        self.outcomes = outcomes
        self._row_number = row_number or (lambda index: index + 2)
        self.progress = progress
        self._secrets = secrets
        self._store = store
        self._emit = emit

    def flush(self) -> None:
        if self._store is not None:
            self._store.flush()

    def record(self, row: Row, outcome: Outcome) -> None:
        outcome = self._scrubbed(outcome)
        self.outcomes.set(row.index, outcome)
        if self._store is not None:
            self._store.record(row, outcome)
        self.progress.advance(outcome.status)
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
                "its answer was lost and the run stopped before the ticket could be read "
                "back (no checkpoint was kept): check the ticket in ITSM",
            )
        self.outcomes.set(row.index, self._scrubbed(outcome))

    def _scrubbed(self, outcome: Outcome) -> Outcome:
        # The client already scrubs every answer; this is the last line before a file.
        if self._secrets and any(
            s in outcome.message or s in outcome.request_id for s in self._secrets
        ):
            message, request_id = outcome.message, outcome.request_id
            for secret in self._secrets:
                message = message.replace(secret, "***")
                request_id = request_id.replace(secret, "***")
            outcome = dataclasses.replace(outcome, message=message, request_id=request_id)
        return outcome


def _add_notes(batch: Batch, outcomes: OutcomeTable) -> None:
    """Say in the report's message what batchops changed in a row before sending it."""
    for index, note in batch.notes.items():
        outcome = outcomes.get(index)
        if note not in outcome.message:
            message = f"{outcome.message} ({note})" if outcome.message else note
            outcomes.set(index, dataclasses.replace(outcome, message=message))


def _mark_invalid(batch: Batch, outcomes: OutcomeTable) -> None:
    for index in np.flatnonzero(batch.invalid != "").tolist():
        outcomes.set(index, Outcome(Status.INVALID, None, str(batch.invalid[index])))


def _counts_by_action(batch: Batch, outcomes: OutcomeTable) -> dict[str, dict[str, int]]:
    """Rows per action and status, counted on codes (no table of a million labels)."""
    codes, actions = pd.factorize(np.where(batch.action == "", "(none)", batch.action))
    width = len(STATUS_ORDER)
    pairs = np.bincount(
        codes.astype(np.int64) * width + outcomes.status_codes(), minlength=len(actions) * width
    ).reshape(len(actions), width)
    return {
        str(action): {STATUS_ORDER[j].value: int(pairs[i, j]) for j in range(width) if pairs[i, j]}
        for i, action in enumerate(actions.tolist())
    }


def _exit_code(
    counts: Mapping[str, int], stop: Stop | None, *, pending_is_unfinished: bool = True
) -> int:
    """The exit code follows the stop's kind, then what is left: never a message's wording."""
    if stop is not None:
        return stop.kind.exit_code
    if pending_is_unfinished and counts.get(Status.PENDING.value, 0):
        # Rows left undone without a stop (the way to ITSM kept failing for them): the
        # same command sends them, so this is a resumable stop, not a finished run.
        return EXIT_FATAL
    bad = sum(counts.get(s.value, 0) for s in (Status.FAILED, Status.INVALID, Status.UNKNOWN))
    return EXIT_ROWS_FAILED if bad else EXIT_OK


@dataclass
class _Target:
    base_url: str
    credentials: Credentials


def _sandbox_seed(batch: Batch) -> list[tuple[str, str]]:
    return [(str(batch.sn[i]), str(batch.operator[i])) for i in batch.valid_indices().tolist()]


async def _start_sandbox(stack: AsyncExitStack, batch: Batch, gateway: Gateway) -> _Target:
    from . import sandbox

    config = sandbox.SandboxConfig()
    state = sandbox.SandboxState(config)
    state.seed_from_rows(_sandbox_seed(batch))
    runner, url = await sandbox.start_sandbox(state)
    stack.push_async_callback(runner.cleanup)
    return _Target(
        url,
        Credentials(app_code=config.app_code, app_secret=config.app_secret, username="admin"),
    )


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
    emit = events or _no_events
    settings = resolve(
        {
            "base_url": base_url,
            "gateway": gateway,
            "app_code": app_code,
            "username": username,
            "concurrency": concurrency,
            "timeout": timeout,
            "retries": retries,
            "rate": rate,
            "max_failures": max_failures if isinstance(max_failures, str) else None,
            "readback_delay": readback_delay,
            "server_timeout": server_timeout,
            "outage_wait": outage_wait,
            "ca_bundle": ca_bundle,
            "proxy": proxy,
            "notify": list(notify) if notify else None,
            "notify_on": notify_on,
        },
        profile=profile,
        config=config,
        env=env,
    )
    notifier = Notifier.from_settings(
        settings["notify"],
        settings["notify_on"],
        (env.get(settings["secret_env"], ""), env.get(settings["token_env"], "")),
    )
    try:
        summary = _run(
            input_path,
            settings,
            env,
            emit,
            tracer=_tracer(verbose, events),
            max_failures=max_failures,
            output=output,
            sheet=sheet,
            encoding=encoding,
            strict=strict,
            precheck=precheck,
            checkpoint=checkpoint,
            use_checkpoint=use_checkpoint,
            fresh=fresh,
            retry_failed=retry_failed,
            only=only,
            canary=canary,
            failures=failures,
            summary_json=summary_json,
            insecure=insecure,
            sandbox=sandbox,
            progress=progress,
            confirm=confirm,
            confirm_canary=confirm_canary,
            handle_signals=handle_signals,
            notice=notice,
            command=command,
        )
    except BatchopsError as error:
        notifier.run_failed(error, str(input_path))
        raise
    notifier.run_finished(summary, str(input_path))
    return summary


def _tracer(verbose: int, events: Events | None) -> Tracer | None:
    return Tracer(verbose, events=events) if verbose > 0 else None


def _run(
    input_path: str | os.PathLike[str],
    settings: Resolved,
    env: Mapping[str, str],
    emit: Events,
    *,
    tracer: Tracer | None,
    max_failures: str | FailureBrake | None,
    output: str | os.PathLike[str] | None,
    sheet: str | None,
    encoding: str | None,
    strict: bool,
    precheck: bool,
    checkpoint: str | os.PathLike[str] | None,
    use_checkpoint: bool,
    fresh: bool,
    retry_failed: bool,
    only: Collection[str] | None,
    canary: int | None,
    failures: str | os.PathLike[str] | None,
    summary_json: str | os.PathLike[str] | None,
    insecure: bool,
    sandbox: bool,
    progress: ProgressSink | None,
    confirm: Confirm | None,
    confirm_canary: ConfirmCanary | None,
    handle_signals: bool,
    notice: Callable[[str], None] | None,
    command: Sequence[str] | None,
) -> RunSummary:
    """The run itself, on resolved settings: load, checkpoint, send, report."""
    policy, timeout_s = _policy(settings, max_failures)
    say = _notifier(notice, emit)
    for warning in settings.warnings:
        say(warning)
    gateway_used: Gateway = settings["gateway"]
    credentials: Credentials | None = None
    resolved_url = ""
    if not sandbox:
        resolved_url = str(settings["base_url"] or "").strip()
        if not resolved_url:
            raise ConfigError(
                "no ITSM address: pass --base-url URL, set BATCHOPS_BASE_URL or use a "
                "--profile (or try --sandbox to run against the embedded stand-in)"
            )
        if not resolved_url.startswith(("http://", "https://")):
            raise ConfigError(f"--base-url must start with http:// or https://: {resolved_url!r}")
        credentials = _credentials(settings, env)
    if canary is not None and canary < 1:
        raise ConfigError("--canary must be at least 1 row")

    batch = load_batch(Path(input_path), sheet=sheet, encoding=encoding)
    report_path = Path(output) if output else default_report_path(batch.source)
    store_path: Path | None = None
    if use_checkpoint and (checkpoint is not None or not sandbox):
        store_path = Path(checkpoint) if checkpoint else default_checkpoint_path(batch.source)
    outputs = Outputs(
        report_path,
        Path(failures) if failures else None,
        Path(summary_json) if summary_json else None,
        store_path,
    )
    check_outputs(batch.source, outputs)
    outcomes = OutcomeTable(len(batch))
    _mark_invalid(batch, outcomes)
    if not only and batch.previous_results is not None:
        # An earlier report fed back as it is: re-sending its successes would replay
        # them (and a second SUSPEND sticks a ticket). Only what is not done goes.
        only = _NOT_DONE
        say(
            f"{batch.source} is a batchops report: only its rows that are not done "
            f"({', '.join(_NOT_DONE)}) are sent; success and skipped rows keep their "
            "result. Use --only STATUS,... to choose other rows"
        )
    sendable = _select(batch, outcomes, only)
    progress = progress or NullProgress()
    started = time.monotonic()
    emit(
        "run_started",
        {
            "input": str(batch.source),
            "rows": len(batch),
            "to_send": int(sendable.sum()),
            "invalid": batch.invalid_count(),
            "target": resolved_url or "(sandbox)",
            "gateway": gateway_used,
        },
    )

    if strict and batch.invalid_count():
        _add_notes(batch, outcomes)
        path = write_report(batch.frame, outcomes, report_path, sheet_name=batch.sheet)
        raise ConfigError(
            f"{batch.invalid_count()} invalid rows and --strict is on, so nothing was sent; "
            f"see the 'message' column of {path} and fix those rows"
        )

    overview_extra: dict[str, str] = {}
    store: Checkpoint | None = None
    work = Work(to_send=np.flatnonzero(sendable).astype(np.int64), in_doubt=[])
    # One run per sheet and target, whatever the checkpoint; the stand-in is per run.
    lock = None if sandbox else RunLock(batch.source, gateway_used, resolved_url, env).acquire()
    try:
        if store_path is not None:
            store, work = open_checkpoint(
                batch,
                outcomes,
                sendable,
                store_path,
                fresh=fresh,
                retry_failed=retry_failed,
                gateway=gateway_used,
                base_url=resolved_url or "(sandbox)",
            )
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    if work.fresh is not None:
        # Shown in the confirmation when there is one to show it in; otherwise on stderr.
        fresh_text = work.fresh.describe(precheck)
        if confirm is not None:
            overview_extra["fresh start"] = fresh_text.removeprefix("--fresh: ")
        else:
            say(fresh_text)
    try:
        with _fewer_young_collections():
            state = asyncio.run(
                _run_async(
                    batch,
                    outcomes,
                    policy,
                    progress,
                    work,
                    store,
                    gateway=gateway_used,
                    target=None if credentials is None else _Target(resolved_url, credentials),
                    timeout_s=timeout_s,
                    precheck=precheck,
                    canary=canary,
                    confirm=confirm,
                    confirm_canary=confirm_canary,
                    ca_bundle=settings["ca_bundle"],
                    insecure=insecure,
                    handle_signals=handle_signals,
                    emit=emit,
                    say=say,
                    target_source="--sandbox" if sandbox else target_source(settings),
                    overview_extra=overview_extra,
                    proxy=_proxy(settings),
                    tracer=tracer,
                )
            )
        if store is not None:
            # Outcomes first, report second: a kill while the report is written then
            # costs no read-backs on the next run.
            store.flush()
            if store.broken:
                # Possibly only noticed by this last flush: the run is resumable, not done.
                if state.stop is None:
                    state.stop = _checkpoint_stop(store.broken)
                elif store.broken not in state.stop.reason:
                    state.stop = dataclasses.replace(
                        state.stop, reason=f"{state.stop.reason}; also {store.broken}"
                    )
        advice = _Advice(command, settings, env, checkpointed=store is not None)
        if state.stop is not None and state.stop.kind is StopKind.FATAL and not state.stop.fix:
            state.stop = dataclasses.replace(
                state.stop, fix=_fatal_fix(state.fatal_answer, advice, sandbox=sandbox)
            )
        summary = _finish_run(
            batch,
            outcomes,
            state,
            started=started,
            report_path=None if state.declined else report_path,
            store=store,
            note=work.note,
            advice=advice,
            settings={
                "input": str(batch.source),
                "target": resolved_url or "(embedded sandbox)",
                "gateway": gateway_used,
                "app_code": credentials.app_code if credentials else "batchops-sandbox",
                "profile": settings.profile or "",
                "concurrency": policy.concurrency,
                "rate": policy.rate or "unlimited",
                "pre-check": "on" if precheck else "off",
                "only": ",".join(sorted(only)) if only else "",
                "canary": canary or "",
            },
            failures_path=Path(failures) if failures else None,
        )
        if store is not None:
            store.end_run(summary.exit_code, summary.stopped_reason)
    finally:
        try:
            if store is not None:
                store.close()
        finally:
            if lock is not None:
                lock.release()
    if summary_json:
        try:
            write_summary_json(summary, Path(summary_json))
        except BatchopsError as exc:
            if not outcomes.any_attempted():
                raise
            summary = dataclasses.replace(
                summary,
                exit_code=EXIT_REPORT_UNWRITTEN,
                report_error=unwritten_after_sending(
                    str(exc), store.path if store else None, report_path
                ),
            )
    emit("run_finished", summary_fields(summary))
    return summary


def _proxy(settings: Resolved) -> str | None:
    """The explicit proxy (flag or profile), checked; None leaves it to the environment."""
    value = settings["proxy"]
    if value is None or not str(value).strip():
        return None
    value = str(value).strip()
    if value.lower() != "none" and not value.startswith(("http://", "https://")):
        raise ConfigError(
            f"--proxy must be an http:// or https:// URL (or 'none' to connect directly), "
            f"not {masked_url(value)!r}"
        )
    return value


def _credentials(settings: Resolved, env: Mapping[str, str]) -> Credentials:
    return _credentials_from(
        settings["app_code"],
        settings["username"],
        env,
        secret_env=settings["secret_env"],
        token_env=settings["token_env"],
    )


def _no_events(name: str, fields: Mapping[str, object]) -> None:
    return None


def _notifier(notice: Callable[[str], None] | None, emit: Events) -> Callable[[str], None]:
    """What a person should see while the run goes on: to ``notice`` and as an event."""

    def say(text: str) -> None:
        if notice is not None:
            notice(text)
        emit("notice", {"message": text})

    return say


def _policy(settings: Resolved, brake: str | FailureBrake | None) -> tuple[SendPolicy, float]:
    concurrency = int(settings["concurrency"])
    timeout_s = float(settings["timeout"])
    rate = settings["rate"]
    if concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if timeout_s <= 0:
        raise ConfigError("--timeout must be more than 0 seconds")
    if rate is not None and float(rate) <= 0:
        raise ConfigError("--rate must be more than 0 requests per second")
    policy = SendPolicy(
        concurrency=concurrency,
        retries=max(0, int(settings["retries"])),
        rate=float(rate) if rate is not None else None,
        brake=brake if isinstance(brake, FailureBrake) else _brake(settings["max_failures"]),
        readback_delay_s=max(0.0, float(settings["readback_delay"])),
        server_timeout_s=max(0.0, float(settings["server_timeout"])),
        outage_wait_s=max(0.0, float(settings["outage_wait"])),
    )
    return policy, timeout_s


#: The rows of an earlier report that a run sends when no --only is given.
_NOT_DONE = ("pending", "failed", "unknown", "invalid")


def _select(batch: Batch, outcomes: OutcomeTable, only: Collection[str] | None) -> np.ndarray:
    """Which rows this run may send: every valid row, or with ``only`` those an earlier
    report gave one of the named statuses (the others keep that report's result)."""
    valid: np.ndarray = np.asarray(batch.invalid == "", dtype=bool)
    if not only:
        return valid
    wanted = {s.strip().lower() for s in only if s.strip()}
    unknown = wanted - {s.value for s in Status}
    if unknown:
        raise ConfigError(
            f"--only takes statuses ({', '.join(s.value for s in Status)}), not "
            + ", ".join(sorted(unknown))
        )
    previous = batch.previous_results
    if previous is None:
        raise ConfigError(
            f"--only needs a batchops report as input (with its status column); "
            f"{batch.source} is a plain input file"
        )
    earlier = previous["status"].str.strip().str.lower().to_numpy(dtype=object)
    chosen: np.ndarray = np.asarray(valid & np.isin(earlier, list(wanted)), dtype=bool)
    for index in np.flatnonzero(valid & ~chosen).tolist():
        outcomes.set(index, _previous_outcome(previous, index))
    return chosen


def _previous_outcome(previous: pd.DataFrame, index: int) -> Outcome:
    row = previous.iloc[index]

    def number(name: str) -> float | None:
        text = str(row[name]).strip()
        try:
            return float(text) if text else None
        except ValueError:
            return None

    status_text = str(row["status"]).strip().lower()
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


def _finish_run(
    batch: Batch,
    outcomes: OutcomeTable,
    state: _RunState,
    *,
    started: float,
    report_path: Path | None,
    store: Checkpoint | None,
    note: str,
    advice: _Advice,
    settings: dict[str, object],
    failures_path: Path | None,
) -> RunSummary:
    """Write the report (and the failures file) and sum the run up."""
    counts = outcomes.counts()
    by_action = _counts_by_action(batch, outcomes)
    failures = top_failures(outcomes, batch.sn)
    stop = state.stop
    stopped = "not confirmed; nothing was sent" if state.declined else stop.reason if stop else ""
    exit_code = EXIT_ROWS_FAILED if state.declined else _exit_code(counts, stop)
    next_step = "" if state.declined else advice.next_step(counts, stop, failures)
    elapsed = time.monotonic() - started
    path: Path | None = None
    report_error = ""
    if report_path is not None:
        sheet = summary_sheet(counts, by_action, failures, settings, elapsed, stopped, exit_code)
        _add_notes(batch, outcomes)
        try:
            path = write_report(
                batch.frame, outcomes, report_path, summary=sheet, sheet_name=batch.sheet
            )
            if failures_path is not None:
                write_failures(batch.frame, outcomes, failures_path)
        except BatchopsError as exc:
            if not outcomes.any_attempted():
                raise  # nothing was sent: exit 2 says so truthfully
            if store is not None and store.broken:
                # Not "safe in the checkpoint": it could not be written either. Exit 3
                # stands: the same command reads back what was in flight and goes on.
                report_error = f"{exc}; the checkpoint could not be written either (above)"
            else:
                report_error = unwritten_after_sending(
                    str(exc), store.path if store else None, report_path
                )
                exit_code = EXIT_REPORT_UNWRITTEN
    return RunSummary(
        counts=counts,
        total_rows=len(batch),
        sent_requests=state.requests,
        elapsed_s=elapsed,
        report_path=str(path) if path else None,
        exit_code=exit_code,
        stopped_reason=stopped,
        input_fingerprint=batch.fingerprint,
        checkpoint_path=str(store.path) if store else None,
        counts_by_action=by_action,
        note=note,
        advice=next_step,
        top_failures=failures,
        failures_path=str(failures_path) if failures_path is not None and path else None,
        report_error=report_error,
    )


def _checkpoint_stop(reason: str) -> Stop:
    """The stop for a checkpoint that can no longer be written: what ran out is in
    ``reason``; the fix is to make room, after which the same command goes on."""
    return Stop(
        StopKind.CHECKPOINT,
        f"{reason}; stopped at once",
        fix="make room for the checkpoint (free disk space, raise the quota or 'ulimit -f'); "
        "rows that were in flight are then read back first, none is sent twice",
    )


#: Answers that mean "these credentials are not accepted here" (docs/itsm.md §2).
_CREDENTIAL_CODES = frozenset({1306000, 1306401, 1306402, 1306403, 1306406, 1640001, 1640301})


def _fatal_fix(answer: Answer | None, advice: _Advice, *, sandbox: bool) -> str:
    """What to fix after a fatal answer: for a refused credential, which one and from where."""
    if answer is None or sandbox:
        return ""
    if answer.code in _CREDENTIAL_CODES or answer.http_status in (401, 403):
        return f"the credentials or the app's permissions; used: {advice.credential_sources()}"
    return ""


def _masked_argv(words: list[str]) -> list[str]:
    """A command line as it may be shown: a notification URL (it holds the webhook key)
    shows only its scheme, a proxy URL no password."""
    shown: list[str] = []
    masks = {"--notify": notify_label, "--proxy": masked_url}
    for word in words:
        option, equals, value = word.partition("=")
        if shown and shown[-1] in masks:
            word = masks[shown[-1]](word)
        elif equals and option in masks:
            word = f"{option}={masks[option](value)}"
        shown.append(word)
    return shown


class _Advice:
    """What to do next, with the exact command that finishes the work.

    "Run the same command again" is said only when it is true: with a checkpoint, the
    same command (less ``--fresh``, which would start over) continues; rows that ITSM
    refused need ``--retry-failed``; without a checkpoint the report itself is the way
    back (``--only pending``).
    """

    def __init__(
        self,
        command: Sequence[str] | None,
        settings: Resolved,
        env: Mapping[str, str],
        *,
        checkpointed: bool,
    ) -> None:
        self._command = list(command) if command else None
        self._settings = settings
        self._env = env
        self._checkpointed = checkpointed

    def _cmd(self, *extra: str) -> str:
        if self._command is None:
            return "the same command" + (f" with {' '.join(extra)}" if extra else "")
        words = _masked_argv([w for w in self._command if w != "--fresh"])
        words += [e for e in extra if e not in words]
        return shlex.join(words)

    def resume(self) -> str:
        return self._cmd()

    def retry_failed(self) -> str:
        return self._cmd("--retry-failed")

    def credential_sources(self) -> str:
        """Which credentials were used and where each came from (never a secret's value)."""
        settings = self._settings
        sources = settings.sources
        secret_env = str(settings["secret_env"])
        token_env = str(settings["token_env"])
        where_secret = f"the environment variable {secret_env}" + (
            f" (named by {sources['secret_env']})" if sources["secret_env"] != "default" else ""
        )
        parts = [
            f"app code {settings['app_code'] or self._env.get('BK_APP_CODE', '')!r} "
            f"(from {sources['app_code']})",
            f"app secret from {where_secret}",
        ]
        if self._env.get(token_env):
            parts.append(f"bk_token from the environment variable {token_env}")
        user = settings["username"] or self._env.get("BK_USERNAME", "")
        if user:
            parts.append(f"user {user!r} (from {sources['username']})")
        return "; ".join(parts)

    def next_step(
        self, counts: Mapping[str, int], stop: Stop | None, failures: list[tuple[str, int, str]]
    ) -> str:
        pending = counts.get(Status.PENDING.value, 0)
        failed = counts.get(Status.FAILED.value, 0)
        unknown = counts.get(Status.UNKNOWN.value, 0)
        lines: list[str] = []
        if stop is not None and stop.fix:
            lines.append(f"fix this first: {stop.fix}")
        if pending:
            if self._checkpointed:
                lines.append(f"to continue ({pending} rows not done), run: {self.resume()}")
            else:
                lines.append(
                    f"{pending} rows not done and no checkpoint was kept: send just those "
                    "with: batchops run REPORT --only pending (REPORT: the report below)"
                )
        if failed or unknown:
            reasons = "; ".join(f"{n} × {text}" for text, n, _ in failures[:3])
            what = ", ".join(
                f"{n} {label}" for n, label in ((failed, "failed"), (unknown, "unknown")) if n
            )
            lines.append(f"{what}" + (f" (top reasons: {reasons})" if reasons else ""))
            if unknown:
                lines.append("check the unknown rows' tickets in ITSM before sending them again")
            if self._checkpointed:
                lines.append(f"once their cause is fixed, resend them with: {self.retry_failed()}")
            else:
                lines.append(
                    "once their cause is fixed, resend them with: batchops run REPORT "
                    "--only failed,unknown"
                )
        if not lines:
            return "nothing left to do"
        return "\n".join(lines)


def _brake(value: str | FailureBrake | None) -> FailureBrake:
    if value is None:
        return FailureBrake()
    if isinstance(value, FailureBrake):
        return value
    try:
        return FailureBrake.parse(value)
    except ValueError as exc:
        raise ConfigError(
            f"--max-failures takes a count (10), a percentage (5%) or 'off', not {value!r} ({exc})"
        ) from None


@dataclass
class _RunState:
    requests: int = 0
    stop: Stop | None = None
    #: The answer behind a FATAL stop, to say which credential to fix.
    fatal_answer: Answer | None = None
    declined: bool = False


@dataclass(frozen=True, slots=True)
class CanaryReport:
    """The outcomes of the canary rows, shown before the rest is sent."""

    outcomes: list[tuple[int, str, str, Outcome]]  # (sheet row number, sn, action, outcome)
    remaining: int

    @property
    def all_good(self) -> bool:
        return all(o.status in (Status.SUCCESS, Status.SKIPPED) for *_, o in self.outcomes)

    def describe(self) -> str:
        lines = [f"Canary: {len(self.outcomes)} rows sent first:"]
        for number, sn, action, outcome in self.outcomes:
            lines.append(
                f"  row {number}: {sn} {action} → {outcome.status.value}"
                + (f" ({outcome.message})" if outcome.status is not Status.SUCCESS else "")
            )
        lines.append(f"{self.remaining} rows remain.")
        return "\n".join(lines)


ConfirmCanary = Callable[[CanaryReport], bool]
Events = Callable[[str, Mapping[str, object]], None]


@contextlib.contextmanager
def _fewer_young_collections() -> Iterator[None]:
    """Let the cycle collector's youngest generation fill up more before it runs.

    With a hundred requests in flight, thousands of young objects are alive at any time,
    and Python's default (a collection every 700 net allocations) walks them over and
    over: up to a fifth of the client's time in a checkpointed run at C=100, D=0. Nothing of
    a run's own is cyclic garbage, so the threshold is raised for the run and put back.
    """
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], _YOUNG_GC_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


_YOUNG_GC_THRESHOLD = 20_000


async def _run_async(
    batch: Batch,
    outcomes: OutcomeTable,
    policy: SendPolicy,
    progress: ProgressSink,
    work: Work,
    store: Checkpoint | None,
    *,
    gateway: Gateway,
    target: _Target | None,
    timeout_s: float,
    precheck: bool,
    canary: int | None,
    confirm: Confirm | None,
    confirm_canary: ConfirmCanary | None,
    ca_bundle: str | None,
    insecure: bool,
    handle_signals: bool,
    emit: Events,
    say: Callable[[str], None],
    target_source: str = "",
    overview_extra: Mapping[str, str] | None = None,
    proxy: str | None = None,
    tracer: Tracer | None = None,
) -> _RunState:
    state = _RunState()
    async with AsyncExitStack() as stack:
        local = target is None
        if target is None:
            target = await _start_sandbox(stack, batch, gateway)
        settings = ClientSettings(
            base_url=target.base_url,
            gateway=gateway,
            credentials=target.credentials,
            concurrency=policy.concurrency,
            timeout_s=timeout_s,
            ca_bundle=ca_bundle,
            insecure=insecure,
            # The embedded stand-in is on this machine: never through a proxy.
            proxy=None if local else proxy,
            trust_env=not local,
        )
        if tracer is not None:
            tracer.add_secrets(target.credentials.secrets)
        client = await stack.enter_async_context(ItsmClient(settings, tracer=tracer))
        recorder = _Recorder(
            outcomes, progress, target.credentials.secrets, store, emit, batch.row_number
        )
        control = RunControl()
        executor = Executor(
            client,
            policy,
            on_outcome=recorder.record,
            on_in_doubt=recorder.in_doubt,
            before_send=store.mark_sending if store else _no_mark,
            control=control,
            notice=say,
            row_number=batch.row_number,
        )
        # From here on Ctrl-C and SIGTERM mean "stop: send nothing more, record what is
        # known, write the report". Every wait below ends at once when they come.
        signals = _Signals(control) if handle_signals else None
        if signals is not None:
            stack.callback(signals.remove)
        if store is not None:
            # A checkpoint that can no longer be written stops the run at once (13.13).
            store.on_broken = lambda reason: executor.request_stop(_checkpoint_stop(reason))
        try:
            stop = await check_reachable(client, control)
            if stop is not None:
                state.stop = stop
                _mark_not_sent(outcomes, work.to_send, stop.reason)
                return state
            to_send = work.to_send
            if work.in_doubt:
                progress.start(len(work.in_doubt))
                try:
                    to_send = await _settle_in_doubt(batch, work, executor, recorder, policy)
                finally:
                    progress.close()
            checked: Precheck | None = None
            if precheck and len(to_send) and not control.stopping:
                checked = await control.run(
                    read_statuses(
                        client,
                        (str(batch.sn[i]) for i in to_send.tolist()),
                        concurrency=policy.concurrency,
                    )
                )
                executor.statuses = checked.statuses
                if checked.accepted:
                    # Auth is the same for reads and operations; what the probe would
                    # still learn (a refused operate_ticket) costs nothing when refused.
                    executor.credentials_accepted()
                emit(
                    "precheck_done",
                    {
                        "tickets": len(checked.statuses),
                        "via": checked.method,
                        "unreadable": len(checked.unreadable),
                    },
                )
                blind = _unreadable_suspends(batch, to_send, checked)
                if blind:
                    state.stop = blind
                    _mark_not_sent(outcomes, to_send, blind.reason)
                    return state
        except FatalAnswerError as exc:
            state.stop = Stop(StopKind.FATAL, str(exc))
            state.fatal_answer = exc.answer if isinstance(exc.answer, Answer) else None
            _mark_not_sent(outcomes, work.to_send, str(exc))
            return state
        except Stopped:
            state.stop = control.stop
            return state
        finally:
            state.requests = client.requests_sent
        if control.stopping:
            state.stop = control.stop
            return state
        if confirm is not None:
            # The plan is walked row by row: only when someone is asked about it.
            overview = _overview(
                batch, to_send, checked, target.base_url, gateway, target.credentials
            )
            overview = dataclasses.replace(
                overview, target_source=target_source, extra=dict(overview_extra or {})
            )
            if overview.to_send:
                if signals is not None:
                    signals.remove()  # a question on the terminal: Ctrl-C means "no"
                try:
                    accepted = _ask(confirm, overview)
                finally:
                    if signals is not None:
                        signals.install()
                if not accepted:
                    state.declined = True
                    return state
        batches = [to_send]
        if canary is not None and canary < len(to_send):
            batches = [to_send[:canary], to_send[canary:]]
        result = None
        progress.start(len(to_send))
        try:
            for number, part in enumerate(batches):
                if number == 1:
                    passed = await _canary_passed(
                        batch, part, batches[0], outcomes, confirm_canary, control, signals
                    )
                    if not passed:
                        break
                    if checked is not None:
                        # The canary moved some tickets on: read them again, never guess.
                        again = await read_statuses(
                            client, {str(batch.sn[i]) for i in batches[0].tolist()}
                        )
                        executor.statuses = StatusTable(
                            {**(executor.statuses or {}), **again.statuses}
                        )
                result = await executor.run(chains_by_sn(batch.sn, part), batch.row)
                if executor.stopping:
                    break
        except FatalAnswerError as exc:
            control.request_stop(Stop(StopKind.FATAL, str(exc)))
            state.fatal_answer = exc.answer if isinstance(exc.answer, Answer) else None
        finally:
            progress.close()
        state.requests = client.requests_sent
        state.stop = control.stop
        if result is not None and result.fatal is not None:
            state.fatal_answer = result.fatal
    return state


async def check_reachable(client: ItsmClient, control: RunControl) -> Stop | None:
    """Find out before anything else whether the target can be reached at all.

    A refused port, an unknown host, a TLS or proxy failure, or a host that does not
    answer within ``--timeout`` stop the run here, in seconds, with nothing sent and
    nothing spent: every row stays pending for the same command once it is fixed. A
    refused connection is tried three times within a second or two (a server restarting).
    """
    answer = await client.probe()
    for pause in (0.5, 1.0):
        if answer.verdict is Verdict.SUCCESS or "refused" not in answer.network:
            break
        await control.sleep(pause)
        answer = await client.probe()
    if answer.verdict is Verdict.SUCCESS:
        return None
    return Stop(
        StopKind.UNREACHABLE,
        f"cannot reach ITSM at {client.target}: {answer.network or answer.message}; "
        "nothing was sent",
        "check --base-url (scheme, host, port) and --gateway, the proxy settings "
        "(HTTPS_PROXY / NO_PROXY) and the VPN",
    )


def _mark_not_sent(outcomes: OutcomeTable, indices: np.ndarray, why: str) -> None:
    for index in indices.tolist():
        if outcomes.status_of(index) is Status.PENDING:
            outcomes.set(index, Outcome(Status.PENDING, None, f"not sent: {why}"))


def _unreadable_suspends(batch: Batch, to_send: np.ndarray, checked: Precheck) -> Stop | None:
    """Stop before sending when a ticket with a SUSPEND row could not be read.

    A SUSPEND of a ticket that is already SUSPENDED is accepted by ITSM and leaves the
    ticket stuck; without its status batchops cannot know, so it sends nothing blind.
    Other actions cannot stick a ticket when applied twice, so they alone never stop it.
    """
    if not checked.unreadable:
        return None
    if not checked.statuses:
        why = next(iter(checked.unreadable.values()))
        return Stop(
            StopKind.PRECHECK,
            f"the pre-check could not read any of {len(checked.unreadable)} tickets ({why}); "
            "nothing was sent",
            "wait until ITSM answers status reads again, or check --base-url and --gateway",
        )
    blind = sorted(
        {
            str(batch.sn[i])
            for i in to_send.tolist()
            if batch.action[i] == "SUSPEND" and str(batch.sn[i]) in checked.unreadable
        }
    )
    if not blind:
        return None
    reasons: dict[str, int] = {}
    for sn in blind:
        why = checked.unreadable[sn]
        reasons[why] = reasons.get(why, 0) + 1
    top = "; ".join(f"{n} × {why}" for why, n in sorted(reasons.items(), key=lambda x: -x[1])[:3])
    return Stop(
        StopKind.PRECHECK,
        f"the pre-check could not read the status of {len(blind)} tickets with SUSPEND rows "
        f"({top}); a SUSPEND sent to a ticket that is already SUSPENDED leaves it stuck, so "
        "nothing was sent",
        "wait until ITSM answers status reads again",
    )


async def _canary_passed(
    batch: Batch,
    rest: np.ndarray,
    first: np.ndarray,
    outcomes: OutcomeTable,
    confirm_canary: ConfirmCanary | None,
    control: RunControl,
    signals: _Signals | None,
) -> bool:
    report = CanaryReport(
        [
            (batch.row_number(i), str(batch.sn[i]), str(batch.action[i]), outcomes.get(i))
            for i in first.tolist()
        ],
        remaining=len(rest),
    )
    if confirm_canary is not None:
        # Nothing is in flight while the question is open: let Ctrl-C answer it.
        if signals is not None:
            signals.remove()
        try:
            go_on = _ask(confirm_canary, report)
        finally:
            if signals is not None:
                signals.install()
    else:
        go_on = report.all_good
    if not go_on:
        bad = sum(
            1 for *_, o in report.outcomes if o.status not in (Status.SUCCESS, Status.SKIPPED)
        )
        control.request_stop(
            Stop(
                StopKind.CANARY,
                f"stopped after the canary ({bad} of {len(report.outcomes)} canary rows did "
                "not succeed)"
                if bad
                else "stopped after the canary: not confirmed",
                "look at the canary rows in the report",
            )
        )
    return go_on


async def _no_mark(row: Row, attempt: int, before: str | None) -> None:
    return None


async def _settle_in_doubt(
    batch: Batch, work: Work, executor: Executor, recorder: _Recorder, policy: SendPolicy
) -> np.ndarray:
    """Read back rows that were in flight when an earlier run died; return what to send."""
    # The dead run's last requests may still be running on the server: read back no
    # sooner than the gateway's backend time (--server-timeout) plus --readback-delay
    # after they left, so that "unchanged" proves the action did not run.
    wait = work.last_sent_at + policy.server_timeout_s + policy.readback_delay_s - time.time()
    if wait > 0:
        await executor.control.sleep(wait)
    resend: list[int] = []

    async def settle(index: int, before: str | None, attempts: int) -> None:
        row = batch.row(index)
        outcome = await executor.resolve_in_doubt(row, before)
        if outcome is None:
            resend.append(index)
        else:
            recorder.record(row, dataclasses.replace(outcome, attempts=attempts))

    feed = iter(work.in_doubt)

    async def worker() -> None:
        for index, before, attempts in feed:
            await settle(index, before, attempts)

    try:
        await _all_or_none(worker() for _ in range(min(policy.concurrency, 20)))
    finally:
        recorder.flush()
    merged = np.union1d(work.to_send, np.array(resend, dtype=np.int64))
    return merged.astype(np.int64)


def _overview(
    batch: Batch,
    valid: np.ndarray,
    checked: Precheck | None,
    target: str,
    gateway: str,
    credentials: Credentials,
) -> PlanOverview:
    by_action: dict[str, int] = {}
    for action in batch.action[valid].tolist():
        by_action[str(action)] = by_action.get(str(action), 0) + 1
    by_status = {"invalid": batch.invalid_count()}
    to_send = len(valid)
    note = "skipped (--no-precheck)"
    if checked is not None:
        verdicts = simulate(batch.action, batch.sn, chains_by_sn(batch.sn, valid), checked.statuses)
        skipped = sum(1 for _, status, _ in verdicts if status is Status.SKIPPED)
        by_status["skipped"] = skipped
        to_send -= skipped
        note = f"{len(checked.statuses)} tickets read with {checked.method}"
    operators = sorted({str(o) for o in batch.operator[valid].tolist()})
    return PlanOverview(
        total_rows=len(batch),
        to_send=to_send,
        by_action=by_action,
        by_status=by_status,
        operators=operators,
        target=target,
        gateway=gateway,
        app_code=credentials.app_code,
        invalid=batch.invalid_count(),
        precheck_note=note,
    )


T = TypeVar("T")


def _ask(question: Callable[[T], bool], about: T) -> bool:
    """Ask a blocking question with plain Ctrl-C semantics.

    Inside ``asyncio.run`` a first Ctrl-C only schedules a cancellation, which cannot
    reach code blocked on the terminal; Python's own handler makes it a KeyboardInterrupt
    there, which the question treats as "no".
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return question(about)
    except KeyboardInterrupt:
        return False
    finally:
        signal.signal(signal.SIGINT, previous)


class _Signals:
    """SIGINT/SIGTERM while a run is on: stop sending at once; a second signal leaves now.

    The first signal throws the run's stop switch: no request leaves after it, every wait
    (backoff, read-back, outage, rate limit) ends, rows not done stay pending and rows in
    doubt stay in doubt for the next run, and the report is written.

    The event loop's own handlers where it has them (POSIX); elsewhere (Windows, where
    ``add_signal_handler`` raises NotImplementedError) plain ``signal.signal`` handlers
    that hand the signal to the loop, plus SIGBREAK (Ctrl-Break) where it exists.
    """

    def __init__(self, control: RunControl) -> None:
        self._control = control
        self._hits = 0
        self._installed = False
        self._previous: dict[signal.Signals, object] = {}
        self.install()

    @staticmethod
    def _signals() -> list[signal.Signals]:
        names = ("SIGINT", "SIGTERM", "SIGBREAK")
        return [getattr(signal, name) for name in names if hasattr(signal, name)]

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._on_signal, sig.name)
        except NotImplementedError:
            for sig in self._signals():
                self._previous[sig] = signal.signal(sig, self._plain_handler(loop))
        self._installed = True

    def _plain_handler(self, loop: asyncio.AbstractEventLoop) -> Callable[[int, object], None]:
        def handler(signum: int, frame: object) -> None:
            name = signal.Signals(signum).name
            if self._hits:
                self._on_signal(name)  # leaves at once, whatever the loop is doing
            loop.call_soon_threadsafe(self._on_signal, name)

        return handler

    def remove(self) -> None:
        if not self._installed:
            return
        if self._previous:
            for sig, previous in self._previous.items():
                signal.signal(sig, previous)  # type: ignore[arg-type]
            self._previous.clear()
        else:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        self._installed = False

    def _on_signal(self, signame: str) -> None:
        self._hits += 1
        if self._hits > 1:
            # Second interrupt: leave now. SQLite's journal keeps the checkpoint whole.
            os._exit(EXIT_INTERRUPTED)
        self._control.request_stop(Stop(StopKind.INTERRUPTED, f"interrupted by {signame}"))


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
    started = time.monotonic()
    settings = resolve(
        {
            "base_url": base_url,
            "gateway": gateway,
            "app_code": app_code,
            "username": username,
            "timeout": timeout,
            "ca_bundle": ca_bundle,
            "proxy": proxy,
        },
        profile=profile,
        config=config,
        env=env,
    )
    for warning in settings.warnings:
        if notice is not None:
            notice(warning)
    resolved_url = str(settings["base_url"] or "").strip()
    gateway_used: Gateway = settings["gateway"]
    timeout_s = float(settings["timeout"])
    reads = precheck and (sandbox or bool(resolved_url))
    credentials = _credentials(settings, env) if reads and not sandbox else None
    explicit_proxy = _proxy(settings)
    tracer = _tracer(verbose, events)
    batch = load_batch(Path(input_path), sheet=sheet, encoding=encoding)
    report_path = Path(output) if output else default_plan_path(batch.source)
    check_outputs(
        batch.source,
        Outputs(report_path, summary_json=Path(summary_json) if summary_json else None),
    )
    outcomes = OutcomeTable(len(batch))
    _mark_invalid(batch, outcomes)
    valid = batch.valid_indices()
    statuses: Mapping[str, str] | None = None
    requests = 0
    note = "not run (no --base-url)" if precheck else "skipped (--no-precheck)"
    if reads and len(valid):

        async def read() -> tuple[Precheck, int]:
            async with AsyncExitStack() as stack:
                target = (
                    _Target(resolved_url, credentials)
                    if credentials is not None
                    else await _start_sandbox(stack, batch, gateway_used)
                )
                client_settings = ClientSettings(
                    base_url=target.base_url,
                    gateway=gateway_used,
                    credentials=target.credentials,
                    timeout_s=timeout_s,
                    ca_bundle=settings["ca_bundle"],
                    insecure=insecure,
                    proxy=None if sandbox else explicit_proxy,
                    trust_env=not sandbox,
                )
                if tracer is not None:
                    tracer.add_secrets(target.credentials.secrets)
                client = await stack.enter_async_context(ItsmClient(client_settings, tracer=tracer))
                stop = await check_reachable(client, RunControl())
                if stop is not None:
                    raise FatalAnswerError(f"{stop.reason}; {stop.fix}")
                checked = await read_statuses(client, (str(batch.sn[i]) for i in valid.tolist()))
                return checked, client.requests_sent

        checked, requests = asyncio.run(read())
        statuses = checked.statuses
        note = f"{len(statuses)} tickets read with {checked.method}"
    verdicts = simulate(batch.action, batch.sn, chains_by_sn(batch.sn, valid), statuses or {})
    shown: dict[str, str] = {}
    for index, status, message in verdicts:
        if statuses is None:
            message = shown.setdefault(message, f"{message} (not pre-checked: {note})")
        outcomes.set(index, Outcome(status, None, message))
    _add_notes(batch, outcomes)
    path = write_report(batch.frame, outcomes, report_path, sheet_name=batch.sheet)
    counts = outcomes.counts()
    summary = RunSummary(
        counts=counts,
        total_rows=len(batch),
        sent_requests=requests,
        elapsed_s=time.monotonic() - started,
        report_path=str(path),
        exit_code=EXIT_ROWS_FAILED if counts[Status.INVALID.value] else EXIT_OK,
        input_fingerprint=batch.fingerprint,
        counts_by_action=_counts_by_action(batch, outcomes),
        note=f"plan only, nothing sent; pre-check: {note}; target: "
        + (
            "the embedded sandbox"
            if sandbox
            else f"{resolved_url} (from {target_source(settings)})"
            if resolved_url
            else "none"
        ),
    )
    if summary_json:
        write_summary_json(summary, Path(summary_json))
    return summary


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
            if rec.state == "sending":
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
    _add_notes(batch, outcomes)
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
        exit_code=_exit_code(counts, None, pending_is_unfinished=False),
        input_fingerprint=batch.fingerprint,
        checkpoint_path=str(checkpoint),
        counts_by_action=_counts_by_action(batch, outcomes),
    )

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
import signal
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from .client import ItsmClient
from .config import ClientSettings, Credentials, Gateway, Resolved, resolve
from .config import credentials_from as _credentials_from
from .console import NullProgress, ProgressSink
from .errors import CheckpointError, ConfigError, FatalAnswerError
from .executor import Executor, FailureBrake, SendPolicy, chains_by_sn
from .loader import Batch, load_batch
from .model import STATUS_ORDER, Outcome, OutcomeTable, Row, RunSummary, Status
from .planner import Precheck, StatusTable, read_statuses, simulate
from .report import default_report_path, write_failures, write_report
from .resume import Work, open_checkpoint, row_keys, rows_fingerprint
from .store import Checkpoint, default_checkpoint_path
from .summary import summary_fields, summary_sheet, top_failures, write_summary_json

EXIT_OK = 0
EXIT_ROWS_FAILED = 1
EXIT_USAGE = 2
EXIT_FATAL = 3
EXIT_INTERRUPTED = 130


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

    def describe(self) -> str:
        actions = ", ".join(f"{n} {a}" for a, n in sorted(self.by_action.items())) or "none"
        ops = ", ".join(self.operators[:5]) + (" …" if len(self.operators) > 5 else "")
        lines = [
            f"About to send {self.to_send} of {self.total_rows} rows to {self.target} "
            f"({self.gateway}, app {self.app_code}).",
            f"  actions: {actions}",
            f"  operators ({len(self.operators)}): {ops or '-'}",
        ]
        counts = ", ".join(f"{n} {s}" for s, n in self.by_status.items() if n)
        if counts:
            lines.append(f"  rows: {counts}")
        if self.precheck_note:
            lines.append(f"  pre-check: {self.precheck_note}")
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
    ) -> None:
        self.outcomes = outcomes
        self.progress = progress
        self._secrets = secrets
        self._store = store
        self._emit = emit

    def flush(self) -> None:
        if self._store is not None:
            self._store.flush()

    def record(self, row: Row, outcome: Outcome) -> None:
        if self._secrets and any(s in outcome.message for s in self._secrets):
            message = outcome.message
            for secret in self._secrets:
                message = message.replace(secret, "***")
            outcome = dataclasses.replace(outcome, message=message)
        self.outcomes.set(row.index, outcome)
        if self._store is not None:
            self._store.record(row, outcome)
        self.progress.advance(outcome.status)
        if self._emit is not None and outcome.status in (Status.FAILED, Status.UNKNOWN):
            self._emit(
                "row_" + outcome.status.value,
                {
                    "row": row.index + 2,
                    "sn": row.sn,
                    "action": row.action.value,
                    "code": outcome.code,
                    "message": outcome.message,
                },
            )


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


def _exit_code(counts: Mapping[str, int], stopped: str, fatal: bool, interrupted: bool) -> int:
    if interrupted:
        return EXIT_INTERRUPTED
    if fatal or stopped:
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
    earlier report given as input. ``events`` receives ``(name, fields)`` for log lines.

    Every row's progress is kept in a checkpoint (default: beside the input), so running
    the same call again after a crash continues where it stopped. With ``sandbox=True``
    no checkpoint is kept unless ``checkpoint`` is given: the stand-in's tickets live
    only as long as the run.
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
            "ca_bundle": ca_bundle,
        },
        profile=profile,
        config=config,
        env=env,
    )
    policy, timeout_s = _policy(settings, max_failures)
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
    _check_report_path(report_path, batch.source)
    outcomes = OutcomeTable(len(batch))
    _mark_invalid(batch, outcomes)
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
        path = write_report(batch.frame, outcomes, report_path, sheet_name=batch.sheet)
        raise ConfigError(
            f"{batch.invalid_count()} invalid rows and --strict is on, so nothing was sent; "
            f"see the 'message' column of {path} and fix those rows"
        )

    store: Checkpoint | None = None
    work = Work(to_send=np.flatnonzero(sendable).astype(np.int64), in_doubt=[])
    if use_checkpoint and (checkpoint is not None or not sandbox):
        store_path = Path(checkpoint) if checkpoint else default_checkpoint_path(batch.source)
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
                )
            )
        if store is not None:
            # Outcomes first, report second: a kill while the report is written then
            # costs no read-backs on the next run.
            store.flush()
        summary = _finish_run(
            batch,
            outcomes,
            state,
            started=started,
            report_path=None if state.declined else report_path,
            store=store,
            note=work.note,
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
        if store is not None:
            store.close()
    if summary_json:
        write_summary_json(summary, Path(summary_json))
    emit("run_finished", summary_fields(summary))
    return summary


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
    )
    return policy, timeout_s


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
    settings: dict[str, object],
    failures_path: Path | None,
) -> RunSummary:
    """Write the report (and the failures file) and sum the run up."""
    counts = outcomes.counts()
    by_action = _counts_by_action(batch, outcomes)
    stopped = state.stopped
    if state.declined:
        stopped = "not confirmed; nothing was sent"
    elif stopped and store is not None and counts[Status.PENDING.value]:
        stopped += "; run the same command again to continue"
    exit_code = (
        EXIT_ROWS_FAILED
        if state.declined
        else _exit_code(counts, state.stopped, state.fatal, state.interrupted)
    )
    elapsed = time.monotonic() - started
    path: Path | None = None
    if report_path is not None:
        sheet = summary_sheet(
            counts,
            by_action,
            top_failures(outcomes, batch.sn),
            settings,
            elapsed,
            stopped,
            exit_code,
        )
        path = write_report(
            batch.frame, outcomes, report_path, summary=sheet, sheet_name=batch.sheet
        )
        if failures_path is not None:
            write_failures(batch.frame, outcomes, failures_path)
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
    )


def _check_report_path(report_path: Path, source: Path) -> None:
    """Refuse early a report path that would overwrite the input or cannot be written."""
    if report_path.resolve() == source.resolve():
        raise ConfigError(f"the report would overwrite the input {source}; choose another --output")
    folder = report_path.resolve().parent
    if not folder.is_dir():
        raise ConfigError(
            f"the report's folder {folder} does not exist; create it or change --output"
        )
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"cannot write the report into {folder}; change --output")


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
    stopped: str = ""
    fatal: bool = False
    interrupted: bool = False
    declined: bool = False


@dataclass(frozen=True, slots=True)
class CanaryReport:
    """The outcomes of the canary rows, shown before the rest is sent."""

    outcomes: list[tuple[int, str, str, Outcome]]  # (index, sn, action, outcome)
    remaining: int

    @property
    def all_good(self) -> bool:
        return all(o.status in (Status.SUCCESS, Status.SKIPPED) for *_, o in self.outcomes)

    def describe(self) -> str:
        lines = [f"Canary: {len(self.outcomes)} rows sent first:"]
        for index, sn, action, outcome in self.outcomes:
            lines.append(
                f"  row {index + 2}: {sn} {action} → {outcome.status.value}"
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
) -> _RunState:
    state = _RunState()
    async with AsyncExitStack() as stack:
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
        )
        client = await stack.enter_async_context(ItsmClient(settings))
        recorder = _Recorder(outcomes, progress, target.credentials.secrets, store, emit)
        executor = Executor(
            client,
            policy,
            on_outcome=recorder.record,
            before_send=store.mark_sending if store else _no_mark,
        )
        try:
            if work.in_doubt:
                progress.start(len(work.in_doubt))
                to_send = await _settle_in_doubt(batch, work, executor, recorder, timeout_s)
                progress.close()
            else:
                to_send = work.to_send
            checked: Precheck | None = None
            if precheck and len(to_send) and not executor.stopping:
                checked = await read_statuses(
                    client,
                    (str(batch.sn[i]) for i in to_send.tolist()),
                    concurrency=policy.concurrency,
                )
                executor.statuses = checked.statuses
                if checked.accepted:
                    # Auth is the same for reads and operations; what the probe would
                    # still learn (a refused operate_ticket) costs nothing when refused.
                    executor.credentials_accepted()
                emit("precheck_done", {"tickets": len(checked.statuses), "via": checked.method})
        except FatalAnswerError as exc:
            state.requests = client.requests_sent
            state.stopped, state.fatal = str(exc), True
            for index in work.to_send.tolist():
                if outcomes.status_of(index) is Status.PENDING:
                    outcomes.set(index, Outcome(Status.PENDING, None, f"not sent: {exc}"))
            return state
        if confirm is not None:
            # The plan is walked row by row: only when someone is asked about it.
            overview = _overview(
                batch, to_send, checked, target.base_url, gateway, target.credentials
            )
            if overview.to_send and not _ask(confirm, overview):
                state.declined = True
                return state
        # From here on Ctrl-C means "stop taking rows, finish and record what is in flight".
        # Until here nothing was sent, and Python's own KeyboardInterrupt is the right answer.
        signals = _Signals(executor) if handle_signals else None
        if signals is not None:
            stack.callback(signals.remove)
        batches = [to_send]
        if canary is not None and canary < len(to_send):
            batches = [to_send[:canary], to_send[canary:]]
        result = None
        progress.start(len(to_send))
        try:
            for number, part in enumerate(batches):
                if number == 1:
                    passed = await _canary_passed(
                        batch, part, batches[0], outcomes, confirm_canary, state, signals
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
        finally:
            progress.close()
        state.requests = client.requests_sent
        if result is not None:
            state.stopped = state.stopped or result.stopped_reason
            state.fatal = result.fatal is not None or result.stopped_reason.startswith(
                "failure brake"
            )
            state.interrupted = result.interrupted
    return state


async def _canary_passed(
    batch: Batch,
    rest: np.ndarray,
    first: np.ndarray,
    outcomes: OutcomeTable,
    confirm_canary: ConfirmCanary | None,
    state: _RunState,
    signals: _Signals | None,
) -> bool:
    report = CanaryReport(
        [(i, str(batch.sn[i]), str(batch.action[i]), outcomes.get(i)) for i in first.tolist()],
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
        state.stopped = (
            f"stopped after the canary ({bad} of {len(report.outcomes)} canary rows did not "
            "succeed)"
            if bad
            else "stopped after the canary: not confirmed"
        )
        state.fatal = True
    return go_on


async def _no_mark(row: Row, attempt: int, before: str | None) -> None:
    return None


async def _settle_in_doubt(
    batch: Batch, work: Work, executor: Executor, recorder: _Recorder, timeout_s: float
) -> np.ndarray:
    """Read back rows that were in flight when an earlier run died; return what to send."""
    # The dead run's last requests may still be running on the server: treat them like an
    # answer lost in this run and read back no sooner than --timeout plus --readback-delay
    # after they left. An earlier read can find the ticket "unchanged" and resend it.
    wait = work.last_sent_at + timeout_s + executor.policy.readback_delay_s - time.time()
    if wait > 0:
        await asyncio.sleep(wait)
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

    await asyncio.gather(*(worker() for _ in range(min(executor.policy.concurrency, 20))))
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
    """SIGINT/SIGTERM while sending: stop taking rows; a second signal leaves at once."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._hits = 0
        self._installed = False
        self.install()

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig.name)
        self._installed = True

    def remove(self) -> None:
        if not self._installed:
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        self._installed = False

    def _on_signal(self, signame: str) -> None:
        self._hits += 1
        if self._hits > 1:
            # Second interrupt: leave now. SQLite's journal keeps the checkpoint whole.
            os._exit(EXIT_INTERRUPTED)
        self._executor.request_stop(f"interrupted by {signame}", interrupted=True)


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
        },
        profile=profile,
        config=config,
        env=env,
    )
    resolved_url = str(settings["base_url"] or "").strip()
    gateway_used: Gateway = settings["gateway"]
    timeout_s = float(settings["timeout"])
    reads = precheck and (sandbox or bool(resolved_url))
    credentials = _credentials(settings, env) if reads and not sandbox else None
    batch = load_batch(Path(input_path), sheet=sheet, encoding=encoding)
    report_path = Path(output) if output else default_report_path(batch.source)
    _check_report_path(report_path, batch.source)
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
                )
                client = await stack.enter_async_context(ItsmClient(client_settings))
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
        note=f"plan only, nothing sent; pre-check: {note}",
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
    path = write_report(
        batch.frame,
        outcomes,
        Path(output) if output else default_report_path(source),
        sheet_name=batch.sheet,
    )
    counts = outcomes.counts()
    return RunSummary(
        counts=counts,
        total_rows=len(batch),
        sent_requests=0,
        elapsed_s=time.monotonic() - started,
        report_path=str(path),
        exit_code=_exit_code(counts, "", False, False),
        input_fingerprint=batch.fingerprint,
        checkpoint_path=str(checkpoint),
        counts_by_action=_counts_by_action(batch, outcomes),
    )

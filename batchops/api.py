"""The Python API: ``run_batch`` and ``plan_batch``. The CLI is a thin layer over these.

One run is: load and validate the file → (optionally) start the embedded stand-in →
pre-check ticket statuses → ask for confirmation → send → write the report. Every
step's failure that stops the whole run is a :class:`batchops.errors.BatchopsError`;
every row's fate is an outcome in the report. A scheduler can call these functions
directly and read the returned :class:`batchops.model.RunSummary`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .client import ItsmClient
from .config import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_S, ClientSettings, Credentials, Gateway
from .config import credentials_from as _credentials_from
from .console import NullProgress, ProgressSink
from .errors import ConfigError, FatalAnswerError
from .executor import Executor, FailureBrake, SendPolicy, chains_by_sn
from .loader import Batch, load_batch
from .model import Outcome, OutcomeTable, Row, RunSummary, Status
from .planner import Precheck, read_statuses, simulate
from .report import default_report_path, write_report

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
    """Where outcomes go: the outcome table and the progress display, secrets scrubbed."""

    def __init__(self, outcomes: OutcomeTable, progress: ProgressSink, secrets: tuple[str, ...]):
        self.outcomes = outcomes
        self.progress = progress
        self._secrets = secrets

    def record(self, row: Row, outcome: Outcome) -> None:
        if self._secrets and any(s in outcome.message for s in self._secrets):
            message = outcome.message
            for secret in self._secrets:
                message = message.replace(secret, "***")
            outcome = Outcome(
                outcome.status,
                outcome.code,
                message,
                outcome.attempts,
                outcome.http_status,
                outcome.request_id,
                outcome.elapsed_ms,
                outcome.finished_at,
            )
        self.outcomes.set(row.index, outcome)
        self.progress.advance(outcome.status)


def _mark_invalid(batch: Batch, outcomes: OutcomeTable) -> None:
    for index in np.flatnonzero(batch.invalid != "").tolist():
        outcomes.set(index, Outcome(Status.INVALID, None, str(batch.invalid[index])))


def _counts_by_action(batch: Batch, outcomes: OutcomeTable) -> dict[str, dict[str, int]]:
    table = pd.DataFrame(
        {
            "action": np.where(batch.action == "", "(none)", batch.action),
            "status": outcomes.labels(),
        }
    )
    result: dict[str, dict[str, int]] = {}
    tally = table.value_counts(sort=False)
    for key, n in zip(tally.index.tolist(), tally.tolist(), strict=True):
        action, status = key
        result.setdefault(str(action), {})[str(status)] = int(n)
    return result


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
    gateway: Gateway = "esb",
    app_code: str | None = None,
    username: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT_S,
    output: str | os.PathLike[str] | None = None,
    sheet: str | None = None,
    encoding: str | None = None,
    strict: bool = False,
    precheck: bool = True,
    retries: int = 3,
    rate: float | None = None,
    max_failures: str | FailureBrake | None = None,
    readback_delay: float = 1.0,
    ca_bundle: str | None = None,
    insecure: bool = False,
    sandbox: bool = False,
    progress: ProgressSink | None = None,
    confirm: Confirm | None = None,
    env: Mapping[str, str] | None = None,
    handle_signals: bool = False,
) -> RunSummary:
    """Validate ``input_path``, send every valid row, write the report, return a summary.

    Keyword arguments mirror the CLI options. Credentials not given come from the
    environment (``BK_APP_CODE``, ``BK_APP_SECRET``, ``BK_USERNAME``, ``BK_TOKEN``); the app
    secret is only ever read from there. ``confirm`` is called with a
    :class:`PlanOverview` before anything is sent; returning False sends nothing.
    """
    env = os.environ if env is None else env
    if concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if timeout <= 0:
        raise ConfigError("--timeout must be more than 0 seconds")
    if rate is not None and rate <= 0:
        raise ConfigError("--rate must be more than 0 requests per second")
    brake = _brake(max_failures)
    credentials: Credentials | None = None
    resolved_url = ""
    if not sandbox:
        resolved_url = (base_url or env.get("BATCHOPS_BASE_URL", "")).strip()
        if not resolved_url:
            raise ConfigError(
                "no ITSM address: pass --base-url URL or set BATCHOPS_BASE_URL "
                "(or try --sandbox to run against the embedded stand-in)"
            )
        if not resolved_url.startswith(("http://", "https://")):
            raise ConfigError(f"--base-url must start with http:// or https://: {resolved_url!r}")
        credentials = _credentials_from(app_code, username, env)

    batch = load_batch(Path(input_path), sheet=sheet, encoding=encoding)
    report_path = Path(output) if output else default_report_path(batch.source)
    outcomes = OutcomeTable(len(batch))
    _mark_invalid(batch, outcomes)
    policy = SendPolicy(
        concurrency=concurrency,
        retries=max(0, retries),
        rate=rate,
        brake=brake,
        readback_delay_s=max(0.0, readback_delay),
    )
    progress = progress or NullProgress()
    started = time.monotonic()

    if strict and batch.invalid_count():
        path = write_report(batch.frame, outcomes, report_path)
        raise ConfigError(
            f"{batch.invalid_count()} invalid rows and --strict is on, so nothing was sent; "
            f"see the 'message' column of {path} and fix those rows"
        )

    state = asyncio.run(
        _run_async(
            batch,
            outcomes,
            policy,
            progress,
            gateway=gateway,
            target=None if credentials is None else _Target(resolved_url, credentials),
            timeout=timeout,
            precheck=precheck,
            confirm=confirm,
            ca_bundle=ca_bundle,
            insecure=insecure,
            handle_signals=handle_signals,
        )
    )
    if state.declined:
        counts = outcomes.counts()
        return RunSummary(
            counts=counts,
            total_rows=len(batch),
            sent_requests=state.requests,
            elapsed_s=time.monotonic() - started,
            report_path=None,
            exit_code=EXIT_ROWS_FAILED,
            stopped_reason="not confirmed; nothing was sent",
            input_fingerprint=batch.fingerprint,
        )
    path = write_report(batch.frame, outcomes, report_path)
    counts = outcomes.counts()
    return RunSummary(
        counts=counts,
        total_rows=len(batch),
        sent_requests=state.requests,
        elapsed_s=time.monotonic() - started,
        report_path=str(path),
        exit_code=_exit_code(counts, state.stopped, state.fatal, state.interrupted),
        stopped_reason=state.stopped,
        input_fingerprint=batch.fingerprint,
        counts_by_action=_counts_by_action(batch, outcomes),
    )


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


async def _run_async(
    batch: Batch,
    outcomes: OutcomeTable,
    policy: SendPolicy,
    progress: ProgressSink,
    *,
    gateway: Gateway,
    target: _Target | None,
    timeout: float,
    precheck: bool,
    confirm: Confirm | None,
    ca_bundle: str | None,
    insecure: bool,
    handle_signals: bool,
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
            timeout_s=timeout,
            ca_bundle=ca_bundle,
            insecure=insecure,
        )
        client = await stack.enter_async_context(ItsmClient(settings))
        valid = batch.valid_indices()
        checked: Precheck | None = None
        if precheck and len(valid):
            try:
                checked = await read_statuses(
                    client,
                    (str(batch.sn[i]) for i in valid.tolist()),
                    concurrency=policy.concurrency,
                )
            except FatalAnswerError as exc:
                state.requests = client.requests_sent
                state.stopped, state.fatal = str(exc), True
                for index in valid.tolist():
                    outcomes.set(index, Outcome(Status.PENDING, None, f"not sent: {exc}"))
                return state
        overview = _overview(batch, checked, target.base_url, gateway, target.credentials)
        if confirm is not None and overview.to_send and not confirm(overview):
            state.declined = True
            return state

        recorder = _Recorder(outcomes, progress, target.credentials.secrets)
        executor = Executor(
            client,
            policy,
            on_outcome=recorder.record,
            statuses=checked.statuses if checked else None,
        )
        if handle_signals:
            _install_signal_handlers(executor)
        progress.start(len(valid))
        try:
            result = await executor.run(chains_by_sn(batch.sn, valid), batch.row)
        finally:
            progress.close()
            if handle_signals:
                _remove_signal_handlers()
        state.requests = client.requests_sent
        state.stopped = result.stopped_reason
        state.fatal = result.fatal is not None or result.stopped_reason.startswith("failure brake")
        state.interrupted = result.interrupted
    return state


def _overview(
    batch: Batch,
    checked: Precheck | None,
    target: str,
    gateway: str,
    credentials: Credentials,
) -> PlanOverview:
    valid = batch.valid_indices()
    by_action: dict[str, int] = {}
    for action in batch.action[valid].tolist():
        by_action[str(action)] = by_action.get(str(action), 0) + 1
    by_status = {"invalid": batch.invalid_count()}
    to_send = len(valid)
    note = "skipped (--no-precheck)"
    if checked is not None:
        verdicts = simulate(batch.action, batch.sn, chains_by_sn(batch.sn, valid), checked.statuses)
        skipped = sum(1 for status, _ in verdicts.values() if status is Status.SKIPPED)
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


def _install_signal_handlers(executor: Executor) -> None:
    loop = asyncio.get_running_loop()
    hits = {"n": 0}

    def on_signal(signame: str) -> None:
        hits["n"] += 1
        if hits["n"] > 1:
            # Second interrupt: leave now. SQLite's journal keeps the checkpoint whole.
            os._exit(EXIT_INTERRUPTED)
        executor.request_stop(f"interrupted by {signame}", interrupted=True)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)


def _remove_signal_handlers() -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)


def plan_batch(
    input_path: str | os.PathLike[str],
    *,
    base_url: str | None = None,
    gateway: Gateway = "esb",
    app_code: str | None = None,
    username: str | None = None,
    output: str | os.PathLike[str] | None = None,
    sheet: str | None = None,
    encoding: str | None = None,
    precheck: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
    sandbox: bool = False,
    ca_bundle: str | None = None,
    insecure: bool = False,
    env: Mapping[str, str] | None = None,
) -> RunSummary:
    """Validate (and, with an ITSM address, pre-check) without sending any operation.

    Rows that would be sent are ``pending``; rows the pre-check would skip are
    ``skipped`` with the reason; invalid rows are ``invalid``. The report is written
    exactly as ``run`` would write it.
    """
    env = os.environ if env is None else env
    started = time.monotonic()
    resolved_url = (base_url or env.get("BATCHOPS_BASE_URL", "")).strip()
    reads = precheck and (sandbox or bool(resolved_url))
    credentials = _credentials_from(app_code, username, env) if reads and not sandbox else None
    batch = load_batch(Path(input_path), sheet=sheet, encoding=encoding)
    report_path = Path(output) if output else default_report_path(batch.source)
    outcomes = OutcomeTable(len(batch))
    _mark_invalid(batch, outcomes)
    valid = batch.valid_indices()
    statuses: dict[str, str] | None = None
    requests = 0
    note = "not run (no --base-url)" if precheck else "skipped (--no-precheck)"
    if reads and len(valid):

        async def read() -> tuple[Precheck, int]:
            async with AsyncExitStack() as stack:
                target = (
                    _Target(resolved_url, credentials)
                    if credentials is not None
                    else await _start_sandbox(stack, batch, gateway)
                )
                settings = ClientSettings(
                    base_url=target.base_url,
                    gateway=gateway,
                    credentials=target.credentials,
                    timeout_s=timeout,
                    ca_bundle=ca_bundle,
                    insecure=insecure,
                )
                client = await stack.enter_async_context(ItsmClient(settings))
                checked = await read_statuses(client, (str(batch.sn[i]) for i in valid.tolist()))
                return checked, client.requests_sent

        checked, requests = asyncio.run(read())
        statuses = checked.statuses
        note = f"{len(statuses)} tickets read with {checked.method}"
    verdicts = simulate(batch.action, batch.sn, chains_by_sn(batch.sn, valid), statuses or {})
    for index in valid.tolist():
        status, message = verdicts[index]
        if statuses is None:
            message = f"{message} (not pre-checked: {note})"
        outcomes.set(index, Outcome(status, None, message))
    path = write_report(batch.frame, outcomes, report_path)
    counts = outcomes.counts()
    return RunSummary(
        counts=counts,
        total_rows=len(batch),
        sent_requests=requests,
        elapsed_s=time.monotonic() - started,
        report_path=str(path),
        exit_code=EXIT_ROWS_FAILED if counts[Status.INVALID.value] else EXIT_OK,
        input_fingerprint=batch.fingerprint,
        counts_by_action=_counts_by_action(batch, outcomes),
    )

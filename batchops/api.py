"""The Python API: ``run_batch`` and ``plan_batch``. The CLI is a thin layer over these.

One run is: load and validate the file → (optionally) start the embedded stand-in →
pre-check ticket statuses → ask for confirmation → send → write the report. Every
step's failure that stops the whole run is a :class:`batchops.errors.BatchopsError`;
every row's fate is an outcome in the report. A scheduler can call these functions
directly and read the returned :class:`batchops.model.RunSummary`.
"""

from __future__ import annotations

import asyncio
import hashlib
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
from .errors import CheckpointError, ConfigError, FatalAnswerError
from .executor import Executor, FailureBrake, SendPolicy, chains_by_sn
from .loader import Batch, load_batch
from .model import Outcome, OutcomeTable, Row, RunSummary, Status
from .planner import Precheck, read_statuses, simulate
from .report import default_report_path, write_report
from .store import Binding, Checkpoint, default_checkpoint_path, row_key, summarise_changes

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
    ) -> None:
        self.outcomes = outcomes
        self.progress = progress
        self._secrets = secrets
        self._store = store

    def flush(self) -> None:
        if self._store is not None:
            self._store.flush()

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
        if self._store is not None:
            self._store.record(row, outcome)
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
    checkpoint: str | os.PathLike[str] | None = None,
    use_checkpoint: bool = True,
    fresh: bool = False,
    retry_failed: bool = False,
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

    Every row's progress is kept in a checkpoint (default: beside the input), so running
    the same call again after a crash continues where it stopped. With ``sandbox=True``
    no checkpoint is kept unless ``checkpoint`` is given: the stand-in's tickets live
    only as long as the run.
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
    _check_report_path(report_path, batch.source)
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

    store: Checkpoint | None = None
    work = _Work(to_send=batch.valid_indices(), in_doubt=[])
    if use_checkpoint and (checkpoint is not None or not sandbox):
        store_path = Path(checkpoint) if checkpoint else default_checkpoint_path(batch.source)
        store, work = _open_checkpoint(
            batch,
            outcomes,
            store_path,
            fresh=fresh,
            retry_failed=retry_failed,
            gateway=gateway,
            base_url=resolved_url or "(sandbox)",
        )
    try:
        state = asyncio.run(
            _run_async(
                batch,
                outcomes,
                policy,
                progress,
                work,
                store,
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
        elapsed = time.monotonic() - started
        if state.declined:
            summary = RunSummary(
                counts=outcomes.counts(),
                total_rows=len(batch),
                sent_requests=state.requests,
                elapsed_s=elapsed,
                report_path=None,
                exit_code=EXIT_ROWS_FAILED,
                stopped_reason="not confirmed; nothing was sent",
                input_fingerprint=batch.fingerprint,
                checkpoint_path=str(store.path) if store else None,
            )
        else:
            path = write_report(batch.frame, outcomes, report_path)
            counts = outcomes.counts()
            stopped = state.stopped
            if stopped and store is not None and counts[Status.PENDING.value]:
                stopped += "; run the same command again to continue"
            summary = RunSummary(
                counts=counts,
                total_rows=len(batch),
                sent_requests=state.requests,
                elapsed_s=elapsed,
                report_path=str(path),
                exit_code=_exit_code(counts, state.stopped, state.fatal, state.interrupted),
                stopped_reason=stopped,
                input_fingerprint=batch.fingerprint,
                checkpoint_path=str(store.path) if store else None,
                counts_by_action=_counts_by_action(batch, outcomes),
                note=work.note,
            )
        if store is not None:
            store.end_run(summary.exit_code)
        return summary
    finally:
        if store is not None:
            store.close()


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
class _Work:
    """What this run still has to do."""

    to_send: np.ndarray
    in_doubt: list[tuple[int, str | None]]
    note: str = ""


def _row_keys(batch: Batch) -> list[str]:
    return [
        row_key(sn, action, operator, message)
        for sn, action, operator, message in zip(
            batch.sn.tolist(),
            batch.action.tolist(),
            batch.operator.tolist(),
            batch.message.tolist(),
            strict=True,
        )
    ]


def _rows_fingerprint(keys: list[str]) -> str:
    digest = hashlib.sha256()
    for key in keys:
        digest.update(key.encode())
    return digest.hexdigest()


def _open_checkpoint(
    batch: Batch,
    outcomes: OutcomeTable,
    path: Path,
    *,
    fresh: bool,
    retry_failed: bool,
    gateway: str,
    base_url: str,
) -> tuple[Checkpoint, _Work]:
    """Open the checkpoint and work out what is left; refuse one that belongs elsewhere."""
    backup = Checkpoint.set_aside(path) if fresh else None
    keys = _row_keys(batch)
    binding = Binding(
        rows_fingerprint=_rows_fingerprint(keys),
        row_count=len(batch),
        gateway=gateway,
        base_url=base_url,
        input_path=str(batch.source.resolve()),
    )
    store = Checkpoint.open(path)
    try:
        stored = store.binding()
        if stored is None:
            store.initialise(
                binding,
                (
                    (i, keys[i], str(batch.sn[i]), str(batch.action[i]), "", outcomes.get(i))
                    for i in range(len(batch))
                ),
            )
            store.begin_run("first run")
            note = f"checkpoint: {path}" + (f" (previous one kept as {backup})" if backup else "")
            return store, _Work(batch.valid_indices(), [], note)
        _check_binding(stored, binding, store, keys, path)
        if stored.input_path != binding.input_path:
            store.update_input_path(binding.input_path)
        return store, _resume(store, outcomes, retry_failed, path)
    except BaseException:
        store.close()
        raise


def _check_binding(
    stored: Binding, binding: Binding, store: Checkpoint, keys: list[str], path: Path
) -> None:
    if stored.rows_fingerprint != binding.rows_fingerprint:
        what = summarise_changes(store.row_keys(), keys)
        raise CheckpointError(
            f"the input changed since checkpoint {path} was made ({what}); to continue the "
            "earlier run, restore that file; to start over with this one, add --fresh "
            "(the old checkpoint is kept as a backup)"
        )
    if (stored.gateway, stored.base_url) != (binding.gateway, binding.base_url):
        raise CheckpointError(
            f"checkpoint {path} belongs to a run against {stored.base_url} ({stored.gateway}), "
            f"not {binding.base_url} ({binding.gateway}); use the same --base-url/--gateway, "
            "or --fresh to start over"
        )


def _resume(store: Checkpoint, outcomes: OutcomeTable, retry_failed: bool, path: Path) -> _Work:
    queued: list[int] = []
    in_doubt: list[tuple[int, str | None]] = []
    again: list[int] = []
    done = 0
    for rec in store.rows():
        if rec.state == "done":
            if retry_failed and rec.outcome.status in (Status.FAILED, Status.UNKNOWN):
                again.append(rec.index)
                queued.append(rec.index)
            else:
                outcomes.set(rec.index, rec.outcome)
                done += 1
        elif rec.state == "sending":
            in_doubt.append((rec.index, rec.before_status))
        else:
            queued.append(rec.index)
    if again:
        store.requeue(again)
    store.begin_run("retry-failed" if retry_failed else "resume")
    parts = [f"resumed from checkpoint {path}: {done} rows already done"]
    if in_doubt:
        parts.append(f"{len(in_doubt)} in doubt (read back before any resend)")
    if again:
        parts.append(f"{len(again)} failed/unknown rows sent again")
    if not queued and not in_doubt:
        parts.append(
            "nothing left to send (--retry-failed resends failed rows, --fresh starts over)"
        )
    return _Work(np.array(sorted(queued), dtype=np.int64), in_doubt, "; ".join(parts))


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
    work: _Work,
    store: Checkpoint | None,
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
        recorder = _Recorder(outcomes, progress, target.credentials.secrets, store)
        executor = Executor(
            client,
            policy,
            on_outcome=recorder.record,
            before_send=store.mark_sending if store else _no_mark,
        )
        if handle_signals:
            _install_signal_handlers(executor)
            stack.callback(_remove_signal_handlers)
        try:
            if work.in_doubt:
                progress.start(len(work.in_doubt))
                to_send = await _settle_in_doubt(batch, work, executor, recorder)
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
        except FatalAnswerError as exc:
            state.requests = client.requests_sent
            state.stopped, state.fatal = str(exc), True
            for index in work.to_send.tolist():
                if outcomes.status_of(index) is Status.PENDING:
                    outcomes.set(index, Outcome(Status.PENDING, None, f"not sent: {exc}"))
            return state
        overview = _overview(batch, to_send, checked, target.base_url, gateway, target.credentials)
        if confirm is not None and overview.to_send and not confirm(overview):
            state.declined = True
            return state
        progress.start(len(to_send))
        try:
            result = await executor.run(chains_by_sn(batch.sn, to_send), batch.row)
        finally:
            progress.close()
        state.requests = client.requests_sent
        state.stopped = result.stopped_reason
        state.fatal = result.fatal is not None or result.stopped_reason.startswith("failure brake")
        state.interrupted = result.interrupted
    return state


async def _no_mark(row: Row, attempt: int, before: str | None) -> None:
    return None


async def _settle_in_doubt(
    batch: Batch, work: _Work, executor: Executor, recorder: _Recorder
) -> np.ndarray:
    """Read back rows that were in flight when an earlier run died; return what to send."""
    resend: list[int] = []

    async def settle(index: int, before: str | None) -> None:
        row = batch.row(index)
        outcome = await executor.resolve_in_doubt(row, before)
        if outcome is None:
            resend.append(index)
        else:
            recorder.record(row, outcome)

    feed = iter(work.in_doubt)

    async def worker() -> None:
        for index, before in feed:
            await settle(index, before)

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
    _check_report_path(report_path, batch.source)
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
        if _rows_fingerprint(_row_keys(batch)) != binding.rows_fingerprint:
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
        batch.frame, outcomes, Path(output) if output else default_report_path(source)
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

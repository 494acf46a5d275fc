"""The network side of a run: connect → settle → pre-check → confirm → send.

:func:`send` opens the client (or the embedded stand-in), reads back rows an earlier
run left in doubt, reads every ticket's status, asks for confirmation, and hands the
rows to the :class:`batchops.send.pool.Executor` (the canary first, when asked for).
A stop at any point leaves every row not done ``pending`` for the same command.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from batchops.aio import Backoff, all_or_none, retrying
from batchops.checkpoint import Checkpoint, InDoubtRow, Work
from batchops.errors import FatalAnswerError
from batchops.itsm import Answer, ItsmClient, Verdict
from batchops.model import Row
from batchops.process import RunSignals, main_thread_takes_signals
from batchops.send import Executor, Precheck, StatusTable, chains_by_sn, read_statuses
from batchops.settings import ClientSettings, Credentials, RunConfig, target_source
from batchops.sheet import Batch, mark_not_sent
from batchops.stops import RunControl, Stop, StopKind, Stopped

from .finish import RunState
from .prompts import CanaryReport, CanaryRow, ask, plan_overview
from .recorder import Recorder

if TYPE_CHECKING:
    from .flow import Loaded, RunHooks


@dataclass(frozen=True, slots=True)
class Target:
    """The ITSM a run talks to: the configured one, or the stand-in started for the run."""

    base_url: str
    credentials: Credentials


@dataclass(slots=True)
class Session:
    """A connected run: its client, where outcomes go, its stop switch and its executor."""

    client: ItsmClient
    target: Target
    recorder: Recorder
    control: RunControl
    executor: Executor
    signals: RunSignals | None


async def send(
    config: RunConfig,
    hooks: RunHooks,
    loaded: Loaded,
    work: Work,
    store: Checkpoint | None,
    overview_extra: Mapping[str, str],
) -> RunState:
    """Connect, settle, pre-check, confirm and send; say how it ended."""
    main_thread_takes_signals(asyncio.get_running_loop())
    state = RunState()
    async with AsyncExitStack() as stack:
        session = await connect(stack, config, hooks, loaded, store)
        try:
            prepared = await prepare(config, hooks, loaded, work, session, state)
        finally:
            state.requests = session.client.requests_sent
        if prepared is None:
            return state
        to_send, checked = prepared
        if session.control.stopping:
            state.stop = session.control.stop
            return state
        if not confirmed(config, hooks, loaded, session, to_send, checked, overview_extra):
            state.declined = True
            return state
        await send_rows(config, hooks, loaded, session, to_send, checked, state)
    return state


async def connect(
    stack: AsyncExitStack,
    config: RunConfig,
    hooks: RunHooks,
    loaded: Loaded,
    store: Checkpoint | None,
) -> Session:
    """Open the client and build the executor; from here on a signal stops the run."""
    connection = config.connection
    local = connection.credentials is None
    if connection.credentials is None:
        target = await start_sandbox(stack, loaded.batch)
    else:
        target = Target(connection.base_url, connection.credentials)
    settings = ClientSettings(
        base_url=target.base_url,
        gateway=connection.gateway,
        credentials=target.credentials,
        concurrency=config.policy.concurrency,
        timeout_s=connection.timeout_s,
        ca_bundle=connection.ca_bundle,
        insecure=connection.insecure,
        # The embedded stand-in is on this machine: never through a proxy.
        proxy=None if local else connection.proxy,
        trust_env=not local,
    )
    if hooks.tracer is not None:
        hooks.tracer.add_secrets(target.credentials.secrets)
    client = await stack.enter_async_context(ItsmClient(settings, tracer=hooks.tracer))
    batch = loaded.batch
    recorder = Recorder(
        loaded.outcomes,
        hooks.progress,
        target.credentials.secrets,
        store,
        hooks.emit,
        batch.row_number,
    )
    control = RunControl()
    executor = Executor(
        client,
        config.policy,
        on_outcome=recorder.record,
        on_in_doubt=recorder.in_doubt,
        before_send=store.mark_sending if store else _no_mark,
        control=control,
        notice=hooks.say,
        row_number=batch.row_number,
    )
    # From here on Ctrl-C and SIGTERM mean "stop: send nothing more, record what is
    # known, write the report". Every wait below ends at once when they come.
    signals = RunSignals(control) if hooks.handle_signals else None
    if signals is not None:
        stack.callback(signals.remove)
    if store is not None:
        # A checkpoint that can no longer be written stops the run at once (13.13).
        store.on_broken = lambda reason: executor.request_stop(checkpoint_stop(reason))
    return Session(client, target, recorder, control, executor, signals)


async def prepare(
    config: RunConfig,
    hooks: RunHooks,
    loaded: Loaded,
    work: Work,
    session: Session,
    state: RunState,
) -> tuple[np.ndarray, Precheck | None] | None:
    """Reachable? Settle the rows in doubt, then pre-check: what to send, or None (stopped)."""
    try:
        stop = await check_reachable(session.client, session.control)
        if stop is not None:
            state.stop = stop
            _mark_not_sent(loaded, work.to_send, stop.reason)
            return None
        to_send = work.to_send
        await until_earlier_sends_cannot_land(config, hooks, work, session)
        if work.in_doubt:
            hooks.progress.start(len(work.in_doubt))
            try:
                to_send = await settle_in_doubt(config, loaded.batch, work, session)
            finally:
                hooks.progress.close()
        checked: Precheck | None = None
        if config.choices.precheck and len(to_send) and not session.control.stopping:
            checked = await precheck(config, hooks, loaded.batch, to_send, session)
            blind = unreadable_suspends(loaded.batch, to_send, checked)
            if blind:
                state.stop = blind
                _mark_not_sent(loaded, to_send, blind.reason)
                return None
    except FatalAnswerError as exc:
        state.stop = Stop(StopKind.FATAL, str(exc))
        state.fatal_answer = exc.answer if isinstance(exc.answer, Answer) else None
        _mark_not_sent(loaded, work.to_send, str(exc))
        return None
    except Stopped:
        state.stop = session.control.stop
        return None
    return to_send, checked


def _mark_not_sent(loaded: Loaded, indices: np.ndarray, why: str) -> None:
    mark_not_sent(loaded.outcomes, indices, why)


async def precheck(
    config: RunConfig, hooks: RunHooks, batch: Batch, to_send: np.ndarray, session: Session
) -> Precheck:
    """Read the status of every ticket about to be sent."""
    checked = await session.control.run(
        read_statuses(
            session.client,
            (str(batch.sn[i]) for i in to_send.tolist()),
            concurrency=config.policy.concurrency,
            prove_absent=suspended_sns(batch, to_send),
            control=session.control,
        )
    )
    if checked.accepted:
        # Auth is the same for reads and operations; what the probe would
        # still learn (a refused operate_ticket) costs nothing when refused.
        session.executor.credentials_accepted()
    hooks.emit(
        "precheck_done",
        {
            "tickets": len(checked.statuses),
            "via": checked.method,
            "unreadable": len(checked.unreadable),
        },
    )
    return checked


def confirmed(
    config: RunConfig,
    hooks: RunHooks,
    loaded: Loaded,
    session: Session,
    to_send: np.ndarray,
    checked: Precheck | None,
    overview_extra: Mapping[str, str],
) -> bool:
    """Ask before sending, when there is someone to ask and something to send."""
    if hooks.confirm is None:
        return True
    # The plan is walked row by row: only when someone is asked about it.
    target = session.target
    overview = plan_overview(
        loaded.batch,
        to_send,
        checked,
        target.base_url,
        config.connection.gateway,
        target.credentials,
    )
    overview = dataclasses.replace(
        overview,
        target_source=_target_source(config),
        extra=dict(overview_extra),
    )
    if not overview.to_send:
        return True
    if session.signals is not None:
        session.signals.remove()  # a question on the terminal: Ctrl-C means "no"
    try:
        return ask(hooks.confirm, overview)
    finally:
        if session.signals is not None:
            session.signals.install()


def _target_source(config: RunConfig) -> str:
    return "--sandbox" if config.connection.sandbox else target_source(config.settings)


async def send_rows(
    config: RunConfig,
    hooks: RunHooks,
    loaded: Loaded,
    session: Session,
    to_send: np.ndarray,
    checked: Precheck | None,
    state: RunState,
) -> None:
    """Send: the canary first when asked for, then the rest if it passed."""
    batch, executor = loaded.batch, session.executor
    parts = [to_send]
    canary = config.choices.canary
    if canary is not None and canary < len(to_send):
        parts = [to_send[:canary], to_send[canary:]]
    statuses = checked.statuses if checked is not None else None
    result = None
    hooks.progress.start(len(to_send))
    try:
        for number, part in enumerate(parts):
            if number == 1:
                if not canary_passed(hooks, loaded, part, parts[0], session):
                    break
                if statuses is not None:
                    # The canary moved some tickets on: read them again, never guess.
                    canary_sns = {str(batch.sn[i]) for i in parts[0].tolist()}
                    try:
                        again = await read_statuses(
                            session.client,
                            canary_sns,
                            concurrency=config.policy.concurrency,
                            prove_absent=suspended_sns(batch, part),
                            control=session.control,
                        )
                    except Stopped:
                        break  # a retry's pause ended by the stop: the rest is not sent
                    stop = blind_after_canary(batch, part, canary_sns, statuses, again)
                    if stop is not None:
                        session.control.request_stop(stop)
                        break
                    # No status from before the canary survives for its tickets: one that was
                    # not read again has none now, and the rest sends to it only what ITSM
                    # itself refuses when it no longer applies, never a SUSPEND (above).
                    kept = {sn: s for sn, s in statuses.items() if sn not in canary_sns}
                    statuses = StatusTable({**kept, **again.statuses})
            result = await executor.run(chains_by_sn(batch.sn, part), batch.row, statuses)
            if executor.stopping:
                break
    except FatalAnswerError as exc:
        session.control.request_stop(Stop(StopKind.FATAL, str(exc)))
        state.fatal_answer = exc.answer if isinstance(exc.answer, Answer) else None
    finally:
        hooks.progress.close()
    state.requests = session.client.requests_sent
    state.stop = session.control.stop
    if result is not None and result.fatal is not None:
        state.fatal_answer = result.fatal


def canary_passed(
    hooks: RunHooks, loaded: Loaded, rest: np.ndarray, first: np.ndarray, session: Session
) -> bool:
    """Show the canary's rows; go on if confirmed (or, unasked, if every one succeeded)."""
    batch = loaded.batch
    report = CanaryReport(
        [
            CanaryRow(
                batch.row_number(i), str(batch.sn[i]), str(batch.action[i]), loaded.outcomes.get(i)
            )
            for i in first.tolist()
        ],
        remaining=len(rest),
    )
    signals = session.signals
    if hooks.confirm_canary is not None:
        # Nothing is in flight while the question is open: let Ctrl-C answer it.
        if signals is not None:
            signals.remove()
        try:
            go_on = ask(hooks.confirm_canary, report)
        finally:
            if signals is not None:
                signals.install()
    else:
        go_on = report.all_good
    if not go_on:
        bad = report.bad
        session.control.request_stop(
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


async def settle_in_doubt(
    config: RunConfig, batch: Batch, work: Work, session: Session
) -> np.ndarray:
    """Read back rows that were in flight when an earlier run died; return what to send
    (call once their requests can no longer land: :func:`until_earlier_sends_cannot_land`)."""
    policy, executor, recorder = config.policy, session.executor, session.recorder
    resend: list[int] = []
    feed = iter(work.in_doubt)

    async def settle(doubt: InDoubtRow) -> None:
        row = batch.row(doubt.index)
        outcome = await executor.rows.settle_in_doubt(row, doubt.before)
        if outcome is None:
            resend.append(doubt.index)
        else:
            recorder.record(row, dataclasses.replace(outcome, attempts=doubt.attempts))

    async def worker() -> None:
        for doubt in feed:
            await settle(doubt)

    try:
        # When one reader fails, the others are cancelled before the error is raised.
        await all_or_none(worker() for _ in range(min(policy.concurrency, 20)))
    finally:
        recorder.flush()
    merged = np.union1d(work.to_send, np.array(resend, dtype=np.int64))
    return merged.astype(np.int64)


async def until_earlier_sends_cannot_land(
    config: RunConfig, hooks: RunHooks, work: Work, session: Session
) -> None:
    """Wait until the earlier requests whose fate is unknown can no longer land.

    They may still be running on the server: reading (or pre-checking) no sooner than the
    gateway's backend time (--server-timeout) plus --readback-delay after they left is what
    makes an unchanged ticket prove the action did not run.
    """
    policy = config.policy
    wait = work.last_sent_at + policy.server_timeout_s + policy.readback_delay_s - time.time()
    if wait <= 0:
        return
    hooks.say(
        f"waiting {wait:.0f} s before reading tickets: an earlier request whose answer "
        "was lost may still land until then"
    )
    await session.control.sleep(wait)


async def start_sandbox(stack: AsyncExitStack, batch: Batch) -> Target:
    """Start the embedded stand-in, seeded with the input's tickets, for this run only."""
    from batchops import sandbox

    config = sandbox.SandboxConfig()
    state = sandbox.SandboxState(config)
    state.seed_from_rows(
        [(str(batch.sn[i]), str(batch.operator[i])) for i in batch.valid_indices().tolist()]
    )
    runner, url = await sandbox.start_sandbox(state)
    stack.push_async_callback(runner.cleanup)
    return Target(
        url,
        Credentials(app_code=config.app_code, app_secret=config.app_secret, username="admin"),
    )


def unreadable_suspends(batch: Batch, to_send: np.ndarray, checked: Precheck) -> Stop | None:
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
    blind, top = _blind_suspends(batch, to_send, checked.unreadable)
    if not blind:
        return None
    return Stop(
        StopKind.PRECHECK,
        f"the pre-check could not read the status of {blind} tickets with SUSPEND rows "
        f"({top}); a SUSPEND sent to a ticket that is already SUSPENDED leaves it stuck, so "
        "nothing was sent",
        "wait until ITSM answers status reads again",
    )


def blind_after_canary(
    batch: Batch,
    rest: np.ndarray,
    canary_sns: set[str],
    before: Mapping[str, str],
    again: Precheck,
) -> Stop | None:
    """Stop before the rest when a canary ticket was not read again (unreadable, or known
    before the canary and now absent from the answer) and still has a SUSPEND row to send:
    its status from before the canary may be stale (the canary may have suspended it),
    and a second SUSPEND leaves it stuck."""
    unknown = {
        sn: "absent from the answer"
        for sn in canary_sns
        if sn in before and sn not in again.statuses
    }
    unknown.update(again.unreadable)
    blind, top = _blind_suspends(batch, rest, unknown)
    if not blind:
        return None
    return Stop(
        StopKind.PRECHECK,
        f"after the canary, the status of {blind} tickets with SUSPEND rows still to send "
        f"could not be read again ({top}); a SUSPEND sent to a ticket that is already "
        "SUSPENDED leaves it stuck, so the rest was not sent",
        "wait until ITSM answers status reads again",
    )


def suspended_sns(batch: Batch, rows: np.ndarray) -> set[str]:
    """The tickets that ``rows`` would SUSPEND."""
    return {str(batch.sn[i]) for i in rows.tolist() if batch.action[i] == "SUSPEND"}


def _blind_suspends(
    batch: Batch, rows: np.ndarray, unreadable: Mapping[str, str]
) -> tuple[int, str]:
    """How many tickets of ``rows`` have a SUSPEND row but an unreadable status, and the
    commonest reasons why (``"2 × timeout; 1 × HTTP 503"``)."""
    if not unreadable:
        return 0, ""
    blind = suspended_sns(batch, rows) & unreadable.keys()
    reasons: dict[str, int] = {}
    for sn in blind:
        reasons[unreadable[sn]] = reasons.get(unreadable[sn], 0) + 1
    commonest = sorted(reasons.items(), key=lambda x: (-x[1], x[0]))[:3]
    return len(blind), "; ".join(f"{n} × {why}" for why, n in commonest)


def checkpoint_stop(reason: str) -> Stop:
    """The stop for a checkpoint that can no longer be written: what ran out is in
    ``reason``; the fix is to make room, after which the same command goes on."""
    return Stop(
        StopKind.CHECKPOINT,
        f"{reason}; stopped at once",
        fix="make room for the checkpoint (free disk space, raise the quota or 'ulimit -f'); "
        "rows that were in flight are then read back first, none is sent twice",
    )


#: Between tries of a refused connection: 0.5 s, then 1 s.
_REACH_BACKOFF = Backoff(0.5, max_s=1.0)


async def check_reachable(client: ItsmClient, control: RunControl) -> Stop | None:
    """Find out before anything else whether the target can be reached at all.

    A refused port, an unknown host, a TLS or proxy failure, or a host that does not
    answer within ``--timeout`` stop the run here, in seconds, with nothing sent and
    nothing spent: every row stays pending for the same command once it is fixed. A
    refused connection is tried three times within a second or two (a server restarting).
    """
    answer, _ = await retrying(
        lambda number: client.probe(),
        again=lambda a: a.verdict is not Verdict.SUCCESS and "refused" in a.network,
        tries=3,
        wait=lambda number, a: control.sleep(_REACH_BACKOFF.delay(number)),
    )
    if answer.verdict is Verdict.SUCCESS:
        return None
    return Stop(
        StopKind.UNREACHABLE,
        f"cannot reach ITSM at {client.target}: {answer.network or answer.message}; "
        "nothing was sent",
        "check --base-url (scheme, host, port) and --gateway, the proxy settings "
        "(HTTPS_PROXY / NO_PROXY) and the VPN",
    )

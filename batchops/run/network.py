"""The network side of a run: connect → pre-check → confirm → send (rows in doubt parked).

:func:`send` opens the client (or the embedded stand-in), reads back rows an earlier
run left in doubt, reads every ticket's status, asks for confirmation, and hands the
rows to the :class:`batchops.send.pool.Executor` (the canary first, when asked for).
A stop at any point leaves every row not done ``pending`` for the same command.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Iterator, Mapping
from contextlib import AsyncExitStack

import numpy as np

from batchops.aio import Backoff, retrying
from batchops.checkpoint import Checkpoint, InFlightLedger
from batchops.errors import FatalAnswerError
from batchops.i18n import _
from batchops.itsm import Answer, ItsmClient, Target, Verdict, client_for, configured_target
from batchops.model import Action, Row
from batchops.process import RunSignals, main_thread_takes_signals
from batchops.send import (
    BeforeSend,
    Executor,
    InDoubt,
    Precheck,
    StatusTable,
    chains_by_sn,
    read_statuses,
)
from batchops.settings import Credentials, RunConfig, target_source
from batchops.sheet import Batch, mark_not_sent
from batchops.stops import RunControl, Stop, StopKind, Stopped

from .context import Ending, Run, Session
from .heartbeat import beat, stop_beating
from .prompts import CanaryReport, CanaryRow, ask, fatal_fix, plan_overview
from .recorder import Recorder


async def send(run: Run) -> Ending:
    """Connect, settle, pre-check, confirm and send; say how it ended."""
    main_thread_takes_signals(asyncio.get_running_loop())
    async with AsyncExitStack() as stack:
        session = await connect(stack, run)
        stack.push_async_callback(stop_beating, asyncio.ensure_future(beat(run)))
        ending = await _connected(run)
        return dataclasses.replace(
            ending, requests=session.client.requests_sent, rows_sent=session.recorder.sent
        )


async def _connected(run: Run) -> Ending:
    prepared = await prepare(run)
    if isinstance(prepared, Stop):
        return Ending(stop=prepared)
    control = run.connected.control
    if control.stopping:
        return Ending(stop=control.stop)
    to_send, checked = prepared
    if not confirmed(run, to_send, checked):
        return Ending(declined=True)
    return Ending(stop=await send_rows(run, to_send, checked))


async def connect(stack: AsyncExitStack, run: Run) -> Session:
    """Open the client and build the executor; from here on a signal stops the run."""
    config, hooks, loaded, store, ledger = run.config, run.hooks, run.loaded, run.store, run.ledger
    connection = config.connection
    if connection.credentials is None:
        target = await start_sandbox(stack, loaded.batch)
    else:
        target = configured_target(connection)
    client = await stack.enter_async_context(
        client_for(connection, target, concurrency=config.policy.concurrency, tracer=hooks.tracer)
    )
    batch = loaded.batch
    recorder = Recorder(
        loaded.outcomes,
        hooks.progress,
        target.credentials.secrets,
        store,
        hooks.emit,
        batch.row_number,
        ledger=ledger,
    )
    control = RunControl()
    executor = Executor(
        client,
        config.policy,
        on_outcome=recorder.record,
        on_in_doubt=recorder.in_doubt,
        before_send=before_send(store, ledger),
        control=control,
        notice=hooks.say,
        row_number=batch.row_number,
        events=hooks.emit,
    )
    # From here on Ctrl-C and SIGTERM mean "stop: send nothing more, record what is
    # known, write the report". Every wait below ends at once when they come.
    signals = RunSignals(control) if hooks.handle_signals else None
    if signals is not None:
        stack.callback(signals.remove)
    if store is not None:
        # A checkpoint that can no longer be written stops the run at once: a row sent
        # now could not be marked, and the next run could not tell it must be read back.
        store.on_broken = lambda reason: executor.request_stop(checkpoint_stop(reason))
    run.session = Session(client, target, recorder, control, executor, signals)
    return run.session


async def prepare(run: Run) -> Stop | tuple[np.ndarray, Precheck | None]:
    """Reachable? Settle the rows in doubt, then pre-check: what to send, or why not."""
    session, work = run.connected, run.work
    try:
        stop = await check_reachable(session.client, session.control)
        if stop is not None:
            _mark_not_sent(run, work.to_send, stop.reason)
            return stop
        await until_earlier_sends_cannot_land(run)
        to_send = park_in_doubt(run) if work.in_doubt else work.to_send
        checked: Precheck | None = None
        if run.config.choices.precheck and len(to_send) and not session.control.stopping:
            run.pulse.phase = "precheck"
            checked = await precheck(run, to_send)
            blind = unreadable_suspends(run.loaded.batch, to_send, checked)
            if blind:
                _mark_not_sent(run, to_send, blind.reason)
                return blind
    except FatalAnswerError as exc:
        _mark_not_sent(run, work.to_send, str(exc))
        return fatal_stop(run, str(exc), exc.answer)
    except Stopped:
        return session.control.stop or Stop(StopKind.INTERRUPTED, _("stopped"))
    return to_send, checked


def fatal_stop(run: Run, reason: str, answer: object) -> Stop:
    """A FATAL stop with its fix: which credential or setting to change."""
    connection = run.config.connection
    fix = fatal_fix(
        answer if isinstance(answer, Answer) else None,
        run.advice(),
        sandbox=connection.sandbox,
        base_url=connection.base_url or "",
        gateway=connection.gateway,
    )
    return Stop(StopKind.FATAL, reason, fix)


def _mark_not_sent(run: Run, indices: np.ndarray, why: str) -> None:
    mark_not_sent(run.loaded.outcomes, indices, why)


async def precheck(run: Run, to_send: np.ndarray) -> Precheck:
    """Read the status of every ticket about to be sent."""
    batch, session = run.loaded.batch, run.connected
    checked = await session.control.run(
        read_statuses(
            session.client,
            (str(batch.sn[i]) for i in to_send.tolist()),
            concurrency=run.config.policy.concurrency,
            prove_absent=suspended_sns(batch, to_send),
            control=session.control,
        )
    )
    if checked.accepted:
        # Auth is the same for reads and operations; what the probe would
        # still learn (a refused operate_ticket) costs nothing when refused.
        session.executor.credentials_accepted()
    run.hooks.emit(
        "precheck_done",
        {
            "tickets": len(checked.statuses),
            "via": checked.method,
            "unreadable": len(checked.unreadable),
        },
    )
    return checked


def confirmed(run: Run, to_send: np.ndarray, checked: Precheck | None) -> bool:
    """Ask before sending, when there is someone to ask and something to send."""
    confirm = run.hooks.confirm
    if confirm is None:
        if run.hooks.unasked and len(to_send):
            run.hooks.say(
                _(
                    "sending without asking: stdin or stderr is not a terminal, so nobody "
                    "can be asked (--yes says this is meant, and silences this line)"
                )
            )
        return True
    # The plan is walked row by row: only when someone is asked about it.
    session, config = run.connected, run.config
    overview = plan_overview(
        run.loaded.batch,
        to_send,
        checked,
        session.target.base_url,
        config.connection.gateway,
        session.target.credentials,
    )
    overview = dataclasses.replace(
        overview,
        target_source=_target_source(config),
        extra=dict(run.fresh_note),
    )
    if not overview.to_send:
        return True
    with _signals_off(session):  # a question on the terminal: Ctrl-C means "no"
        return ask(confirm, overview)


@contextlib.contextmanager
def _signals_off(session: Session) -> Iterator[None]:
    """While a question is open nothing is in flight: let Ctrl-C answer it."""
    if session.signals is None:
        yield
        return
    session.signals.remove()
    try:
        yield
    finally:
        session.signals.install()


def _target_source(config: RunConfig) -> str:
    return "--sandbox" if config.connection.sandbox else target_source(config.settings)


async def send_rows(run: Run, to_send: np.ndarray, checked: Precheck | None) -> Stop | None:
    """Send: the canary first when asked for, then the rest if it passed."""
    session, hooks = run.connected, run.hooks
    canary = run.config.choices.canary
    parts = [to_send]
    if canary is not None and canary < len(to_send):
        parts = [to_send[:canary], to_send[canary:]]
    statuses = checked.statuses if checked is not None else None
    fatal: object = None
    hooks.progress.start(len(to_send))
    pulse = run.pulse
    pulse.phase, pulse.to_send, pulse.sending_since = "sending", len(to_send), time.monotonic()
    try:
        for number, part in enumerate(parts):
            if number == 1:
                stop = canary_stop(run, part, parts[0])
                if stop is None and statuses is not None:
                    stop, statuses = await after_canary(run, part, parts[0], statuses)
                if stop is not None:
                    return stop
            result = await session.executor.run(
                chains_by_sn(run.loaded.batch.sn, part), run.loaded.batch.row, statuses
            )
            fatal = result.fatal
            if session.executor.stopping:
                break
    except FatalAnswerError as exc:
        return fatal_stop(run, str(exc), exc.answer)
    finally:
        hooks.progress.close()
    stop = session.control.stop
    if stop is not None and stop.kind is StopKind.FATAL and not stop.fix:
        return fatal_stop(run, stop.reason, fatal)
    return stop


async def after_canary(
    run: Run, rest: np.ndarray, first: np.ndarray, statuses: Mapping[str, str]
) -> tuple[Stop | None, Mapping[str, str]]:
    """The canary moved some tickets on: read them again, never guess."""
    batch, session = run.loaded.batch, run.connected
    canary_sns = {str(batch.sn[i]) for i in first.tolist()}
    try:
        again = await read_statuses(
            session.client,
            canary_sns,
            concurrency=run.config.policy.concurrency,
            prove_absent=suspended_sns(batch, rest),
            control=session.control,
        )
    except Stopped:
        # A retry's pause ended by the stop: the rest is not sent.
        return session.control.stop or Stop(StopKind.INTERRUPTED, _("stopped")), statuses
    stop = blind_after_canary(batch, rest, canary_sns, statuses, again)
    # No status from before the canary survives for its tickets: one that was not read
    # again has none now, and the rest sends to it only what ITSM itself refuses when it
    # no longer applies, never a SUSPEND (blind_after_canary stops those).
    kept = {sn: s for sn, s in statuses.items() if sn not in canary_sns}
    return stop, StatusTable({**kept, **again.statuses})


def canary_stop(run: Run, rest: np.ndarray, first: np.ndarray) -> Stop | None:
    """Show the canary's rows; None to go on: confirmed (or, unasked, every one succeeded)."""
    batch, hooks = run.loaded.batch, run.hooks
    report = CanaryReport(
        [
            CanaryRow(
                batch.row_number(i),
                str(batch.sn[i]),
                str(batch.action[i]),
                run.loaded.outcomes.get(i),
            )
            for i in first.tolist()
        ],
        remaining=len(rest),
    )
    if hooks.confirm_canary is not None:
        with _signals_off(run.connected):
            go_on = ask(hooks.confirm_canary, report)
    else:
        go_on = report.all_good
    if go_on:
        return None
    bad = report.bad
    return Stop(
        StopKind.CANARY,
        _("stopped after the canary ({bad} of {count} canary rows did not succeed)").format(
            bad=bad, count=len(report.outcomes)
        )
        if bad
        else _("stopped after the canary: not confirmed"),
        _("look at the canary rows in the report"),
    )


async def _no_mark(row: Row, attempt: int, before: str | None) -> None:
    return None


def before_send(store: Checkpoint | None, ledger: InFlightLedger | None) -> BeforeSend:
    """What is written before each request leaves: the checkpoint's "sending" mark and
    the machine-wide in-flight record, each a group at a time, both awaited."""
    if store is None:
        return ledger.mark if ledger is not None else _no_mark
    if ledger is None:
        return store.mark_sending

    async def both(row: Row, attempt: int, before: str | None) -> None:
        # The checkpoint's commit is asked for first, so it runs first in the next loop
        # turn: a kill between the two leaves this row "sending" in the checkpoint (read
        # back by a resume, as ever), never in the record alone, which would park it
        # needlessly in a resume. The request leaves only once both are written.
        marked = store.mark_sending(row, attempt, before)
        recorded = ledger.mark(row, attempt, before)
        try:
            await marked
        finally:
            await recorded

    return both


def park_in_doubt(run: Run) -> np.ndarray:
    """Rows in flight when an earlier run died go with the rest, each settled by the pool
    (parked: read back until its request shows or can no longer land) before any resend;
    return what to send."""
    work = run.work
    run.connected.executor.in_doubt = {
        doubt.index: InDoubt(
            doubt.before,
            doubt.sent_at,
            doubt.attempts,
            Action(doubt.other_action) if doubt.other_action else None,
        )
        for doubt in work.in_doubt
    }
    merged = np.union1d(work.to_send, np.array([d.index for d in work.in_doubt], dtype=np.int64))
    return merged.astype(np.int64)


async def until_earlier_sends_cannot_land(run: Run) -> None:
    """Wait until the earlier requests whose fate is unknown can no longer land.

    They may still be running on the server: reading (or pre-checking) no sooner than the
    gateway's backend time (--server-timeout) plus --readback-delay after they left is what
    makes an unchanged ticket prove the action did not run.
    """
    policy = run.config.policy
    wait = run.work.last_sent_at + policy.server_timeout_s + policy.readback_delay_s - time.time()
    if wait <= 0:
        return
    run.hooks.say(
        _(
            "waiting {seconds} s before reading tickets: an earlier request whose answer "
            "was lost may still land until then"
        ).format(seconds=f"{wait:.0f}")
    )
    pulse = run.pulse
    pulse.phase, pulse.waiting = "settling", "earlier_requests"
    pulse.wait_until = time.monotonic() + wait
    try:
        await run.connected.control.sleep(wait)
    finally:
        pulse.waiting = ""


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
        stand_in=True,
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
            _(
                "the pre-check could not read any of {count} tickets ({why}); nothing was sent"
            ).format(count=len(checked.unreadable), why=why),
            _("wait until ITSM answers status reads again, or check --base-url and --gateway"),
        )
    blind, top = _blind_suspends(batch, to_send, checked.unreadable)
    if not blind:
        return None
    return Stop(
        StopKind.PRECHECK,
        _(
            "the pre-check could not read the status of {count} tickets with SUSPEND rows "
            "({reasons}); a SUSPEND sent to a ticket that is already SUSPENDED leaves it stuck, "
            "so nothing was sent"
        ).format(count=blind, reasons=top),
        _("wait until ITSM answers status reads again"),
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
        sn: _("absent from the answer")
        for sn in canary_sns
        if sn in before and sn not in again.statuses
    }
    unknown.update(again.unreadable)
    blind, top = _blind_suspends(batch, rest, unknown)
    if not blind:
        return None
    return Stop(
        StopKind.PRECHECK,
        _(
            "after the canary, the status of {count} tickets with SUSPEND rows still to send "
            "could not be read again ({reasons}); a SUSPEND sent to a ticket that is already "
            "SUSPENDED leaves it stuck, so the rest was not sent"
        ).format(count=blind, reasons=top),
        _("wait until ITSM answers status reads again"),
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
    return len(blind), _("; ").join(f"{n} × {why}" for why, n in commonest)


def checkpoint_stop(reason: str) -> Stop:
    """The stop for a checkpoint that can no longer be written: what ran out is in
    ``reason``; the fix is to make room, after which the same command goes on."""
    return Stop(
        StopKind.CHECKPOINT,
        _("{reason}; stopped at once").format(reason=reason),
        fix=_(
            "make room for the checkpoint (free disk space, raise the quota or 'ulimit -f'); "
            "rows that were in flight are then read back first, none is sent twice"
        ),
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
    answer, _tries = await retrying(
        lambda number: client.probe(),
        again=lambda a: a.verdict is not Verdict.SUCCESS and "refused" in a.network,
        tries=3,
        wait=lambda number, a: control.sleep(_REACH_BACKOFF.delay(number)),
    )
    if answer.verdict is Verdict.SUCCESS:
        return None
    return Stop(
        StopKind.UNREACHABLE,
        _("cannot reach ITSM at {target}: {why}; nothing was sent").format(
            target=client.target, why=answer.network or answer.message
        ),
        _(
            "check --base-url (scheme, host, port) and --gateway, the proxy settings "
            "(HTTPS_PROXY / NO_PROXY) and the VPN"
        ),
    )

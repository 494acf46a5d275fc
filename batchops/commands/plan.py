"""``batchops plan``: validate, read every ticket (when there is a target), write the report.

Nothing is sent. Rows that would be sent are ``pending`` with what they would do; rows
the pre-check would skip are ``skipped`` with the reason; invalid rows are ``invalid``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from contextlib import AsyncExitStack
from datetime import datetime

from batchops.errors import FatalAnswerError
from batchops.exits import Exit
from batchops.i18n import _
from batchops.itsm import Tracer, client_for
from batchops.model import Outcome, OutcomeTable, RunSummary, Status
from batchops.report import Kind, Output, default_plan_path, guard_outputs, write_report
from batchops.run import (
    check_reachable,
    counts_by_action,
    iso_time,
    start_sandbox,
    suspended_sns,
    write_summary_json,
)
from batchops.secrets import masked_url
from batchops.send import Precheck, chains_by_sn, read_statuses, simulate
from batchops.settings import PlanConfig, as_path, target_source
from batchops.sheet import (
    Batch,
    add_notes,
    left_out_note,
    load_batch,
    mark_invalid,
    mark_left_out,
)
from batchops.stops import RunControl


def plan(config: PlanConfig, tracer: Tracer | None = None) -> RunSummary:
    """Load → (read the tickets) → judge every row → write the report and sum it up."""
    started, started_at = time.monotonic(), datetime.now().astimezone()
    files = config.files
    batch = load_batch(
        config.input_path,
        sheet=files.sheet,
        encoding=files.encoding,
        include_hidden=files.include_hidden,
        default_message=config.settings.values.default_message,
    )
    report_path = as_path(files.output) or default_plan_path(batch.source)
    summary_json = as_path(files.summary_json)
    named = [Output(_("the plan (--output)"), report_path, Kind.PLAN)]
    if summary_json is not None:
        named.append(Output("--summary-json", summary_json, Kind.SUMMARY, None))
    guard_outputs({_("the input"): batch.source}, named)
    outcomes = OutcomeTable(len(batch))
    mark_invalid(batch, outcomes)
    mark_left_out(batch, outcomes)
    valid = batch.valid_indices()
    statuses: Mapping[str, str] | None = None
    requests = 0
    note = _("not run (no --base-url)") if config.precheck else _("skipped (--no-precheck)")
    note = config.unread or note
    if config.reads and len(valid):
        checked, requests = asyncio.run(_read(config, batch, tracer))
        statuses = checked.statuses
        note = _("{count} tickets read with {method}").format(
            count=len(statuses), method=checked.method
        )
    _judge(batch, outcomes, statuses, note)
    add_notes(batch, outcomes)
    path = write_report(batch.frame, outcomes, report_path, sheet_name=batch.sheet, book=batch.book)
    counts = outcomes.counts()
    summary = RunSummary(
        counts=counts,
        total_rows=len(batch),
        sent_requests=requests,
        elapsed_s=time.monotonic() - started,
        report_path=str(path),
        exit_code=Exit.ROWS_FAILED if counts[Status.INVALID.value] else Exit.OK,
        input_fingerprint=batch.fingerprint,
        counts_by_action=counts_by_action(batch, outcomes),
        note=_summary_note(config, batch, note),
        started_at=iso_time(started_at),
        finished_at=iso_time(datetime.now().astimezone()),
        input_path=str(batch.source),
    )
    if summary_json:
        write_summary_json(summary, summary_json)
    return summary


def _summary_note(config: PlanConfig, batch: Batch, precheck: str) -> str:
    """What the summary says of the plan: nothing sent, the pre-check, the target."""
    said = _("plan only, nothing sent; pre-check: {note}; target: {target}").format(
        note=precheck, target=_target(config)
    )
    return _("; ").join(n for n in (said, left_out_note(batch.left_out_count())) if n)


def _judge(
    batch: Batch, outcomes: OutcomeTable, statuses: Mapping[str, str] | None, note: str
) -> None:
    """Each valid row: skipped (and why), or pending with what it would do."""
    valid = batch.valid_indices()
    verdicts = simulate(batch.action, batch.sn, chains_by_sn(batch.sn, valid), statuses or {})
    shown: dict[str, str] = {}
    for index, status, message in verdicts:
        if statuses is None:
            message = shown.setdefault(
                message, _("{message} (not pre-checked: {note})").format(message=message, note=note)
            )
        outcomes.set(index, Outcome(status, None, message))


def _target(config: PlanConfig) -> str:
    if config.connection.sandbox:
        return _("the embedded sandbox")
    if config.connection.base_url:
        return _("{url} (from {source})").format(
            url=masked_url(config.connection.base_url), source=target_source(config.settings)
        )
    return _("none")


async def _read(config: PlanConfig, batch: Batch, tracer: Tracer | None) -> tuple[Precheck, int]:
    """Every valid row's ticket status, and how many requests that took."""
    connection = config.connection
    async with AsyncExitStack() as stack:
        target = await start_sandbox(stack, batch) if connection.sandbox else None
        client = await stack.enter_async_context(client_for(connection, target, tracer=tracer))
        control = RunControl()
        stop = await check_reachable(client, control)
        if stop is not None:
            raise FatalAnswerError(_("{reason}; {fix}").format(reason=stop.reason, fix=stop.fix))
        valid = batch.valid_indices()
        checked = await read_statuses(
            client,
            (str(batch.sn[i]) for i in valid.tolist()),
            prove_absent=suspended_sns(batch, valid),
            control=control,
        )
        return checked, client.requests_sent

"""How a finished run is summed up for machines and for the spreadsheet handoff.

The same facts three ways: ``--summary-json`` for schedulers, the ``run_finished`` log
event, and the ``Summary`` sheet of an XLSX report (when the run started and ended, its
duration and rate, target and profile, rows per action and status with a chart, the
most frequent failure reasons with an example sn each, the run's settings). No secret
is ever among them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from batchops.errors import InputError
from batchops.i18n import _
from batchops.model import OutcomeTable, RunSummary, Status
from batchops.report import SummarySheet, temp_removed_on_signal
from batchops.version import __version__

if TYPE_CHECKING:
    import numpy as np

TOP_FAILURES = 10


def top_failures(
    outcomes: OutcomeTable,
    sns: np.ndarray | Sequence[str] | None = None,
    limit: int = TOP_FAILURES,
    operators: np.ndarray | Sequence[str] | None = None,
) -> list[tuple[str, int, str]]:
    """The most frequent causes among failed and unknown rows: (reason, rows, the sn of
    the first such row, or "" without ``sns``).

    Rows fail for one cause when their code and message are the same once the row's own
    operator and sn are taken out: ``抱歉，lisi无权操作该单据`` for three operators is one
    cause, shown as ``抱歉，<operator>无权操作该单据``. A cause of one row keeps its
    message as it is.
    """
    tally: Counter[str] = Counter()
    example: dict[str, tuple[str, str]] = {}
    # Only the failed rows are looked at: a million successes cost nothing here.
    for index in outcomes.rows_with(Status.FAILED, Status.UNKNOWN).tolist():
        outcome = outcomes.get(index)
        reason = outcome.message or _("(no message)")
        sn = str(sns[index]) if sns is not None else ""
        operator = str(operators[index]) if operators is not None else ""
        cause = _cause(reason, sn, operator)
        code = f"[{outcome.code}] " if outcome.code is not None else ""
        key = code + cause
        tally[key] += 1
        if key not in example:
            example[key] = (code + reason, sn)
    return [
        (example[key][0] if count == 1 else key, count, example[key][1])
        for key, count in tally.most_common(limit)
    ]


def _cause(message: str, sn: str, operator: str) -> str:
    """A failure message with the row's own sn and operator taken out (longest first, so
    an operator that is part of an sn does not cut it)."""
    for value, mark in sorted(((sn, "<sn>"), (operator, "<operator>")), key=lambda p: -len(p[0])):
        if len(value.strip()) >= 2:
            message = message.replace(value.strip(), mark)
    return message


def _absolute(path: str | None) -> str | None:
    # A scheduler reads the summary from its own working folder, not the run's.
    return os.path.abspath(path) if path else path


def summary_fields(summary: RunSummary) -> dict[str, object]:
    """The run summary as JSON-ready fields: every path absolute."""
    return {
        "version": __version__,
        "started_at": summary.started_at,
        "finished_at": summary.finished_at,
        "exit_code": summary.exit_code,
        "counts": summary.counts,
        "counts_by_action": summary.counts_by_action,
        "total_rows": summary.total_rows,
        "requests": summary.sent_requests,
        "elapsed_s": round(summary.elapsed_s, 3),
        "rows_per_second": round(summary.rows_per_second, 1),
        "input": _absolute(summary.input_path),
        "report": _absolute(summary.report_path),
        "checkpoint": _absolute(summary.checkpoint_path),
        "input_fingerprint": summary.input_fingerprint,
        "stopped_reason": summary.stopped_reason,
        "note": summary.note,
        "top_failures": [
            {"reason": text, "rows": n, "example_sn": sn} for text, n, sn in summary.top_failures
        ],
        "failures_file": _absolute(summary.failures_path),
        "next": summary.advice,
    }


def write_summary_json(summary: RunSummary, path: Path) -> Path:
    """Write ``--summary-json`` atomically, so a scheduler never reads half a file."""
    text = json.dumps(summary_fields(summary), ensure_ascii=False, indent=2) + "\n"
    folder = path.resolve().parent
    with temp_removed_on_signal(path) as guard:
        try:
            handle = guard.create(folder / path.name)
            temp = str(guard.path)
        except OSError as exc:
            raise InputError(
                _("cannot write the summary {path}: {why}; change --summary-json").format(
                    path=path, why=exc.strerror
                )
            ) from None
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temp, path)
            guard.renamed = True
        except BaseException as exc:
            # Never leave the temp file behind, whatever stopped the write.
            with contextlib.suppress(OSError):
                os.unlink(temp)
            if isinstance(exc, OSError):
                raise InputError(
                    _("cannot write the summary {path}: {why}; change --summary-json").format(
                        path=path, why=exc.strerror or exc
                    )
                ) from None
            raise
    return path


def summary_sheet(
    counts: Mapping[str, int],
    by_action: Mapping[str, Mapping[str, int]],
    failures: list[tuple[str, int, str]],
    settings: Mapping[str, object],
    elapsed_s: float,
    stopped: str,
    exit_code: int,
    *,
    ended: datetime | None = None,
) -> SummarySheet:
    """The ``Summary`` sheet of an XLSX report; the run ended ``ended`` (default: now)."""
    ended = (ended or datetime.now()).replace(microsecond=0)
    started = ended - timedelta(seconds=round(elapsed_s))
    rows = sum(counts.values())
    done = rows - counts.get(Status.PENDING.value, 0)
    facts: list[tuple[str, object]] = [
        (_("rows"), rows),
        (_("exit code"), exit_code),
        (_("started"), started),
        (_("ended"), ended),
        (_("duration (s)"), round(elapsed_s, 1)),
        (_("duration"), format_duration(elapsed_s)),
        (_("rate (rows/s)"), round(done / elapsed_s, 1) if elapsed_s > 0 else 0),
        (_("target"), settings.get("target", "")),
        (_("profile"), settings.get("profile") or _("(none)")),
        (_("stopped"), stopped or _("no")),
    ]
    return SummarySheet(facts, by_action, failures, dict(settings))


def format_duration(seconds: float) -> str:
    """``1 h 02 min``, ``3 min 07 s`` or ``4.2 s``: a duration as people read it."""
    if seconds < 60:
        return _("{seconds} s").format(seconds=f"{seconds:.1f}")
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _("{hours} h {minutes} min").format(hours=hours, minutes=f"{minutes:02d}")
    return _("{minutes} min {seconds} s").format(minutes=minutes, seconds=f"{secs:02d}")

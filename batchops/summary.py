"""How a finished run is summed up for machines and for the spreadsheet handoff.

The same facts three ways: ``--summary-json`` for schedulers, the ``run_finished`` log
event, and the ``Summary`` sheet of an XLSX report (counts per status and per action,
the most frequent failure reasons, the run's settings). No secret is ever among them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import InputError
from .model import OutcomeTable, RunSummary, Status

TOP_FAILURES = 10


def top_failures(outcomes: OutcomeTable, limit: int = TOP_FAILURES) -> list[tuple[str, int]]:
    """The most frequent reasons among failed and unknown rows, with their counts."""
    tally: Counter[str] = Counter()
    # Only the failed rows are looked at: a million successes cost nothing here.
    for index in outcomes.rows_with(Status.FAILED, Status.UNKNOWN).tolist():
        outcome = outcomes.get(index)
        reason = outcome.message or "(no message)"
        tally[f"[{outcome.code}] {reason}" if outcome.code is not None else reason] += 1
    return tally.most_common(limit)


def summary_fields(summary: RunSummary) -> dict[str, Any]:
    """The run summary as JSON-ready fields."""
    return {
        "exit_code": summary.exit_code,
        "counts": summary.counts,
        "counts_by_action": summary.counts_by_action,
        "total_rows": summary.total_rows,
        "requests": summary.sent_requests,
        "elapsed_s": round(summary.elapsed_s, 3),
        "rows_per_second": round(summary.rows_per_second, 1),
        "report": summary.report_path,
        "checkpoint": summary.checkpoint_path,
        "input_fingerprint": summary.input_fingerprint,
        "stopped_reason": summary.stopped_reason,
        "note": summary.note,
        "top_failures": [{"reason": text, "rows": n} for text, n in summary.top_failures],
        "failures_file": summary.failures_path,
        "next": summary.advice,
    }


def write_summary_json(summary: RunSummary, path: Path) -> Path:
    """Write ``--summary-json`` atomically, so a scheduler never reads half a file."""
    text = json.dumps(summary_fields(summary), ensure_ascii=False, indent=2) + "\n"
    folder = path.resolve().parent
    try:
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp, path)
    except OSError as exc:
        raise InputError(
            f"cannot write the summary {path}: {exc.strerror}; change --summary-json"
        ) from None
    return path


def summary_sheet(
    counts: Mapping[str, int],
    by_action: Mapping[str, Mapping[str, int]],
    failures: list[tuple[str, int]],
    settings: Mapping[str, object],
    elapsed_s: float,
    stopped: str,
    exit_code: int,
) -> dict[str, object]:
    """The ``Summary`` sheet of an XLSX report: blocks of key/value rows."""
    actions: dict[str, object] = {}
    for action, per in sorted(by_action.items()):
        actions[action] = ", ".join(f"{n} {s}" for s, n in per.items() if n)
    return {
        "rows": sum(counts.values()),
        "exit code": exit_code,
        "elapsed (s)": round(elapsed_s, 1),
        "stopped": stopped or "no",
        "counts per status": {s: n for s, n in counts.items()},
        "counts per action": actions,
        "top failure reasons": failures or [("none", 0)],
        "settings": dict(settings),
    }

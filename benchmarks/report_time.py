"""Time :func:`batchops.report.writing.write_report` for an N-row XLSX report, nothing else.

The bench's ``--sections xlsx`` case also times pandas' reader and ``to_excel``; this
script times only the report, on rows shaped like the bench's (four input columns, every
row a success with a request id and a finish time)::

    python -m benchmarks.report_time [ROWS] [REPEATS]              # 100,000 rows, 3 repeats
    python -m benchmarks.report_time ROWS REPEATS --workbook IN.xlsx

With ``--workbook``, the report of an XLSX input as a run writes it: ``IN.xlsx`` is
loaded and its report written as ``run`` calls ``write_report`` (since issue 23: into
the input's own workbook; before it, a fresh one). The bench runs it with another
checkout's batchops first on ``PYTHONPATH`` for ``--baseline``, so both are timed on
the same file in one run; the last line is the median in seconds.
"""

from __future__ import annotations

import inspect
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from batchops.model import Outcome, OutcomeTable, Status
from batchops.report.writing import write_report

FINISHED = "2025-01-01T12:00:00+08:00"


def outcomes_of(rows: int) -> OutcomeTable:
    """Every row a success with a request id and a finish time."""
    outcomes = OutcomeTable(rows)
    for i in range(rows):
        outcomes.set(i, Outcome(Status.SUCCESS, 0, "success", 1, 200, f"{i:032x}", 21.5, FINISHED))
    return outcomes


def workbook_report_times(source: Path, repeats: int, folder: Path) -> list[float]:
    """Seconds per write of ``source``'s report as ``run`` writes it."""
    from batchops.sheet.loading import load_batch

    batch = load_batch(source)
    outcomes = outcomes_of(len(batch))
    kwargs: dict[str, object] = {"sheet_name": batch.sheet}
    if "book" in inspect.signature(write_report).parameters:
        kwargs["book"] = getattr(batch, "book", None)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        write_report(batch.frame, outcomes, folder / "workbook.report.xlsx", **kwargs)  # type: ignore[arg-type]
        times.append(time.perf_counter() - started)
    return times


def main(argv: list[str]) -> int:
    rows = int(argv[0]) if argv else 100_000
    repeats = int(argv[1]) if len(argv) > 1 else 3
    if len(argv) > 3 and argv[2] == "--workbook":
        with tempfile.TemporaryDirectory() as folder:
            times = workbook_report_times(Path(argv[3]), repeats, Path(folder))
        print(", ".join(f"{t:.3f}" for t in times))
        print(f"{statistics.median(times):.3f}")
        return 0
    frame = pd.DataFrame(
        {
            "sn": [f"X{i:08d}" for i in range(rows)],
            "operator": ["admin"] * rows,
            "action": ["SUSPEND"] * rows,
            "message": [f"工单 {i} 长期未处理" for i in range(rows)],
        },
        dtype=str,
    )
    outcomes = outcomes_of(rows)
    times = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):
            started = time.perf_counter()
            write_report(frame, outcomes, Path(folder) / "report.xlsx")
            times.append(time.perf_counter() - started)
    each = ", ".join(f"{t:.2f}" for t in times)
    print(f"{rows:,} rows: XLSX report in {statistics.median(times):.2f} s (median of {each})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

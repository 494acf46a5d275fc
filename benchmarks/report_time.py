"""Time :func:`batchops.report.writing.write_report` for an N-row XLSX report, nothing else.

The bench's ``--sections xlsx`` case also times pandas' reader and ``to_excel``; this
script times only the report, on rows shaped like the bench's (four input columns, every
row a success with a request id and a finish time)::

    python -m benchmarks.report_time [ROWS] [REPEATS]     # 100,000 rows, 3 repeats
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from batchops.model import Outcome, OutcomeTable, Status
from batchops.report.writing import write_report


def main(argv: list[str]) -> int:
    rows = int(argv[0]) if argv else 100_000
    repeats = int(argv[1]) if len(argv) > 1 else 3
    frame = pd.DataFrame(
        {
            "sn": [f"X{i:08d}" for i in range(rows)],
            "operator": ["admin"] * rows,
            "action": ["SUSPEND"] * rows,
            "message": [f"工单 {i} 长期未处理" for i in range(rows)],
        },
        dtype=str,
    )
    outcomes = OutcomeTable(rows)
    finished = "2025-01-01T12:00:00+08:00"
    for i in range(rows):
        outcomes.set(i, Outcome(Status.SUCCESS, 0, "success", 1, 200, f"{i:032x}", 21.5, finished))
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

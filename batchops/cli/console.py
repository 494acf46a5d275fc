"""What a person (or a cron mail) sees while a run goes: progress, log lines, the summary.

On a terminal, a tqdm bar (rows done, success/failed counts, rate, ETA) redrawn at most
a few times a second. Elsewhere (cron, CI, a pipe), one short line at intervals instead
of bar redraws, so a log file stays readable. ``--quiet`` swaps in a sink that does
nothing, rather than sprinkling ``if quiet`` through the code.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm

from batchops.model import RunSummary, Status

# Re-exported: the protocol lives in progress.py, beside the sinks' callers.
from batchops.run import NullProgress as NullProgress
from batchops.run import ProgressSink as ProgressSink
from batchops.run import say as say

log = logging.getLogger("batchops")


class _Counts:
    def __init__(self) -> None:
        self.by_status = dict.fromkeys(Status, 0)

    def add(self, status: Status) -> None:
        self.by_status[status] += 1

    def postfix(self) -> str:
        c = self.by_status
        parts = [f"ok={c[Status.SUCCESS]}", f"failed={c[Status.FAILED]}"]
        if c[Status.SKIPPED]:
            parts.append(f"skipped={c[Status.SKIPPED]}")
        if c[Status.UNKNOWN]:
            parts.append(f"unknown={c[Status.UNKNOWN]}")
        return " ".join(parts)


class BarProgress:
    """A tqdm bar for terminals; counts are pushed to it only when it redraws."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream or sys.stderr
        self._bar: tqdm[Any] | None = None
        self._counts = _Counts()
        self._pending = 0
        self._next_draw = 0.0

    def start(self, total: int, done: int = 0) -> None:
        from tqdm import tqdm  # a terminal's bar only: cron runs never import it

        # No monitor thread: a thread that does not block SIGINT can take the Ctrl-C
        # meant for a question's blocking read on the main thread (process.py).
        tqdm.monitor_interval = 0
        self._bar = tqdm(
            total=total,
            initial=done,
            unit="row",
            file=self._stream,
            mininterval=0.25,
            dynamic_ncols=True,
            leave=True,
        )

    def write(self, text: str) -> None:
        """A line above the bar, which is redrawn below it."""
        if self._bar is not None:
            self._bar.write(text, file=self._stream)
        else:
            say(text, self._stream)

    def advance(self, status: Status) -> None:
        self._counts.add(status)
        self._pending += 1
        now = time.monotonic()
        # tqdm's own throttle still costs a call per row; batching keeps the bar under 1%.
        if now >= self._next_draw and self._bar is not None:
            self._bar.set_postfix_str(self._counts.postfix(), refresh=False)
            self._bar.update(self._pending)
            self._pending = 0
            self._next_draw = now + 0.2

    def close(self) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(self._counts.postfix(), refresh=False)
            self._bar.update(self._pending)
            self._pending = 0
            self._bar.close()
            self._bar = None


class LineProgress:
    """One progress line every ``interval_s`` seconds, for logs that nobody watches live."""

    def __init__(self, stream: IO[str] | None = None, interval_s: float = 10.0) -> None:
        self._stream = stream or sys.stderr
        self._interval = interval_s
        self._counts = _Counts()
        self._total = 0
        self._done = 0
        self._started = 0.0
        self._next = 0.0

    def write(self, text: str) -> None:
        say(text, self._stream)

    def start(self, total: int, done: int = 0) -> None:
        self._total, self._done = total, done
        self._started = time.monotonic()
        self._next = self._started + self._interval

    def advance(self, status: Status) -> None:
        self._counts.add(status)
        self._done += 1
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._interval
            self._line(now)

    def _line(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = sum(self._counts.by_status.values()) / elapsed
        pct = 100.0 * self._done / self._total if self._total else 100.0
        print(
            f"progress: {self._done}/{self._total} rows ({pct:.0f}%) "
            f"{self._counts.postfix()} {rate:.0f} rows/s",
            file=self._stream,
            flush=True,
        )

    def close(self) -> None:
        return None


def progress_for(stream: IO[str], *, quiet: bool = False, lines: bool = False) -> ProgressSink:
    """The right progress display for where the output goes (``lines``: never a bar, as
    ``--verbose`` writes lines of its own that a bar would overwrite)."""
    if quiet:
        return NullProgress()
    if stream.isatty() and not lines:
        return BarProgress(stream)
    return LineProgress(stream)


def format_problems(summary: RunSummary) -> list[str]:
    """What a person must hear about a run, for stderr: why it stopped, what was not written.

    Kept apart from :func:`format_summary` (stdout): cron mails and log collectors watch
    stderr, and ``--quiet`` silences only the summary.
    """
    lines = []
    if summary.stopped_reason:
        lines.append(f"stopped: {summary.stopped_reason}")
    if summary.report_error:
        lines.append(f"Error: {summary.report_error}")
    return lines


def format_summary(summary: RunSummary) -> str:
    """The closing lines of a run, for stdout: counts per status, elapsed, rate, report path."""
    counts = ", ".join(f"{n} {status}" for status, n in summary.counts.items() if n)
    lines = [f"{summary.note}"] if summary.note else []
    lines += [
        f"{summary.total_rows} rows: {counts or 'nothing to do'}",
        f"elapsed {summary.elapsed_s:.1f} s, {summary.rows_per_second:.0f} rows/s, "
        f"{summary.sent_requests} requests",
    ]
    if summary.report_path:
        lines.append(f"report: {summary.report_path}")
    if summary.failures_path:
        lines.append(f"failures: {summary.failures_path}")
    return "\n".join(lines)

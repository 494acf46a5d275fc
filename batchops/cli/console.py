"""What a person (or a cron mail) sees: the one printer, progress, log lines, the summary.

**The one printer.** Every line a command shows goes out through :func:`echo` (or
:func:`tell`, :func:`warn`, :class:`JsonLog`), and so through :func:`shown`: whatever came
from outside — a server's message, a cell of the sheet, a checkpoint's contents, a file
name — can hold terminal controls (``ESC ] 0 ; … BEL`` retitles the window, OSC 52 writes
the clipboard, CSI moves the cursor or clears the screen), and none of them may reach the
terminal as such. Control characters (but tab and line feed), DEL, C1 controls, format
characters (bidi overrides and isolates, zero widths), line and paragraph separators and
lone surrogates are written as visible escapes (``\\x1b``, ``\\u202e``); every other
character, Chinese included, is written as it is. What the rest of batchops (or a library)
writes to ``sys.stdout`` or ``sys.stderr`` passes the same way: :func:`guarded_output`
puts escaping streams there for the length of a command. Only the bar's own redraws
(``\\r``) and the ``--insecure`` alarm's colours go to the terminal directly.

**Progress.** On a terminal, a tqdm bar (rows done, success/failed counts, rate, ETA)
redrawn at most a few times a second. Elsewhere (cron, CI, a pipe), one short line at
intervals instead of bar redraws, so a log file stays readable. ``--quiet`` swaps in a
sink that does nothing, rather than sprinkling ``if quiet`` through the code.

**The summary and run's terminal.** The closing summary (stdout) and what must be heard
(stderr) are said in the language in use; the status words in reports and JSON stay
English. :class:`RunTerminal` is what ``run`` shows and asks on the terminal.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, TextIO, cast

import click

from batchops.i18n import N_, _
from batchops.model import RunSummary, Status

if TYPE_CHECKING:
    from tqdm import tqdm

    from batchops.run import CanaryReport, Hooks, PlanOverview, ProgressSink

# ------------------------------------------------------------------------ the one printer

#: Runs of characters that are not plain printable ASCII: only these are looked at.
_NOT_PLAIN = re.compile(r"[^\t\n -~]+")

#: Control (but tab and line feed, which are never looked at), format (bidi, zero width),
#: lone surrogate, line and paragraph separator: what moves, rewrites or reorders a line.
_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _escaped(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _json_escaped(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    high, low = divmod(code - 0x10000, 0x400)  # JSON spells it as a surrogate pair
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"


def _sub_unsafe(text: str, escape: Callable[[str], str]) -> str:
    def run(match: re.Match[str]) -> str:
        chars = match.group()
        return "".join(escape(c) if unicodedata.category(c) in _UNSAFE else c for c in chars)

    return _NOT_PLAIN.sub(run, text)


def shown(text: str) -> str:
    """``text`` as it may reach a terminal: every character that could move the cursor,
    talk to the terminal or reorder the line written as a visible escape (``\\x1b``,
    ``\\x07``, ``\\u202e``); tabs, line feeds and every printable character (Chinese,
    emoji, non-breaking spaces) as they are."""
    return _sub_unsafe(text, _escaped)


def json_text(value: object, *, indent: int | None = None) -> str:
    """``value`` as JSON that is safe on a terminal and still readable: non-ASCII text as
    it is (``ensure_ascii=False``), and what :func:`shown` escapes escaped the JSON way
    (``\\u009b``, ``\\u202e``), so the line still parses."""
    text = json.dumps(value, ensure_ascii=False, default=str, indent=indent)
    return _sub_unsafe(text, _json_escaped)


def echo(text: str = "", *, err: bool = False) -> None:
    """The one printer: ``text`` and a line feed on stdout (``err``: stderr), escaped."""
    click.echo(shown(text), err=err)


def tell(text: str) -> None:
    """Anything meant for a person rather than a program goes to stderr."""
    echo(text, err=True)


def warn(text: str) -> None:
    """A warning outside a run, said as a run's notices are ("batchops: ...")."""
    tell(f"batchops: {text}")


def warn_insecure(insecure: bool) -> None:
    """``--insecure``'s alarm, in red on a terminal (so written past the escaping)."""
    if insecure:
        click.secho(
            _(
                "WARNING: --insecure: TLS certificates are NOT verified; the app secret can be "
                "read by anyone between you and the gateway."
            ),
            fg="red",
            bold=True,
            file=raw_stream(sys.stderr),
        )


def ask(question: str) -> bool:
    """Yes/no on the terminal; Ctrl-C or end of input mean no."""
    try:
        return click.confirm(shown(question), default=False, err=True)
    except click.Abort:
        tell("")
        return False


class JsonLog:
    """``--log-json``: one JSON object per line on stderr, for log collectors."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream or sys.stderr

    def __call__(self, event: str, fields: Mapping[str, object]) -> None:
        record = {"ts": datetime.now().astimezone().isoformat(), "event": event, **fields}
        self._stream.write(json_text(record) + "\n")
        self._stream.flush()


class _Escaping:
    """A text stream that writes what it is given through :func:`shown` to ``raw``."""

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # as a text stream refuses bytes (click tests it)
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.raw.write(shown(text))
        return len(text)

    def writelines(self, lines: Iterator[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.raw.flush()

    def isatty(self) -> bool:
        return self.raw.isatty()

    def fileno(self) -> int:
        return self.raw.fileno()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return self.raw.encoding

    @property
    def errors(self) -> str | None:
        return self.raw.errors

    @property
    def closed(self) -> bool:
        return self.raw.closed

    @property
    def name(self) -> object:
        return getattr(self.raw, "name", "<escaping>")


@contextlib.contextmanager
def guarded_output() -> Iterator[None]:
    """For the length of a command, ``sys.stdout`` and ``sys.stderr`` escape what they
    are given: the trace of ``-v``, a run's notices, a library's warning and click's own
    usage errors pass through :func:`shown` like every line of :func:`echo`."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = (
        stream if isinstance(stream, _Escaping) else cast(TextIO, _Escaping(stream))
        for stream in saved
    )
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def raw_stream(stream: IO[str]) -> IO[str]:
    """The terminal behind an escaping stream, for what batchops itself draws there."""
    return stream.raw if isinstance(stream, _Escaping) else stream


def _say(text: str, stream: IO[str]) -> None:
    from batchops.run import say  # the run is loaded by then; --help never needs it

    say(shown(text), stream)


# ------------------------------------------------------------------------------- progress


#: The counts progress shows: always success and failed, the others once there are some.
_PROGRESS_COUNTS: tuple[tuple[Status, str, bool], ...] = (
    (Status.SUCCESS, N_("ok={count}"), True),
    (Status.FAILED, N_("failed={count}"), True),
    (Status.SKIPPED, N_("skipped={count}"), False),
    (Status.UNKNOWN, N_("unknown={count}"), False),
)


class _Counts:
    def __init__(self) -> None:
        self.by_status = dict.fromkeys(Status, 0)

    def add(self, status: Status) -> None:
        self.by_status[status] += 1

    def postfix(self) -> str:
        c = self.by_status
        return " ".join(
            _(text).format(count=c[status])
            for status, text, always in _PROGRESS_COUNTS
            if always or c[status]
        )


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
            unit=_("row"),
            # Its redraws (\r) go to the terminal itself; its lines are escaped in write().
            file=raw_stream(self._stream),
            mininterval=0.25,
            dynamic_ncols=True,
            leave=True,
        )

    def write(self, text: str) -> None:
        """A line above the bar, which is redrawn below it."""
        if self._bar is not None:
            self._bar.write(shown(text), file=raw_stream(self._stream))
        else:
            _say(text, self._stream)

    @contextlib.contextmanager
    def aside(self) -> Iterator[None]:
        """Lines and a question written past the bar (the canary's): the bar is cleared
        first, so they start on a line of their own, and drawn again below them after."""
        if self._bar is None:
            yield
            return
        from tqdm import tqdm

        with tqdm.external_write_mode(file=raw_stream(self._stream)):
            yield

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
        _say(text, self._stream)

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
        from batchops.run import format_duration

        elapsed = max(now - self._started, 1e-9)
        rate = sum(self._counts.by_status.values()) / elapsed
        pct = 100.0 * self._done / self._total if self._total else 100.0
        wall = datetime.now()
        if rate > 0:
            left = max(0, self._total - self._done) / rate
            at = (wall + timedelta(seconds=left)).strftime("%H:%M:%S")
            eta = _("{duration} (about {clock})").format(duration=format_duration(left), clock=at)
        else:
            eta = _("not known yet")
        # A log read afterwards needs the time of each line and when the run will end.
        _say(
            _(
                "progress at {clock}: {done}/{total} rows ({percent}%) {counts}, "
                "{rate} rows/s, ETA {eta}"
            ).format(
                clock=wall.strftime("%H:%M:%S"),
                done=self._done,
                total=self._total,
                percent=f"{pct:.0f}",
                counts=self._counts.postfix(),
                rate=f"{rate:.0f}",
                eta=eta,
            ),
            self._stream,
        )

    def close(self) -> None:
        return None


def progress_for(stream: IO[str], *, quiet: bool = False, lines: bool = False) -> ProgressSink:
    """The right progress display for where the output goes (``lines``: never a bar, as
    ``--verbose`` writes lines of its own that a bar would overwrite)."""
    if quiet:
        from batchops.run import NullProgress

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
        lines.append(_("stopped: {reason}").format(reason=summary.stopped_reason))
    if summary.report_error:
        lines.append(_("Error: {message}").format(message=summary.report_error))
    return lines


#: How the summary counts each status, for a person (the status itself, in reports and
#: JSON, stays the English word whatever the language).
_COUNTED: dict[str, str] = {
    Status.SUCCESS.value: N_("{count} success"),
    Status.FAILED.value: N_("{count} failed"),
    Status.INVALID.value: N_("{count} invalid"),
    Status.SKIPPED.value: N_("{count} skipped"),
    Status.UNKNOWN.value: N_("{count} unknown"),
    Status.PENDING.value: N_("{count} pending"),
}


def _counted(status: str, count: int) -> str:
    text = _COUNTED.get(status)
    return _(text).format(count=count) if text else f"{count} {status}"


def format_summary(summary: RunSummary) -> str:
    """The closing lines of a run, for stdout: counts per status, elapsed, rate, report path."""
    counts = _(", ").join(_counted(status, n) for status, n in summary.counts.items() if n)
    lines = [f"{summary.note}"] if summary.note else []
    lines.append(
        _("{total} rows: {counts}").format(
            total=summary.total_rows, counts=counts or _("nothing to do")
        )
    )
    if summary.rows_sent:
        lines.append(
            _("elapsed {elapsed:.1f} s, {rate:.0f} rows/s, {requests} requests").format(
                elapsed=summary.elapsed_s,
                rate=summary.rows_per_second,
                requests=summary.sent_requests,
            )
        )
    else:
        # No operation went out: no rate (rows judged in microseconds are no throughput).
        lines.append(
            _("elapsed {seconds} s, no operation sent, {requests} requests").format(
                seconds=f"{summary.elapsed_s:.1f}", requests=summary.sent_requests
            )
        )
    if summary.report_path:
        lines.append(_("report: {path}").format(path=summary.report_path))
    if summary.failures_path:
        lines.append(_("failures: {path}").format(path=summary.failures_path))
    return "\n".join(lines)


def show_summary(summary: RunSummary, *, json_out: bool, quiet: bool = False) -> None:
    """The summary for a person (stdout, or stderr when stdout carries the JSON one)."""
    from batchops.run import summary_fields

    for line in format_problems(summary):
        tell(line)
    if json_out:
        echo(json_text(summary_fields(summary), indent=2))
    if not quiet or summary.exit_code:
        echo(format_summary(summary), err=json_out)


# ------------------------------------------------------------------ run's terminal


@dataclass(frozen=True, slots=True)
class Terminal:
    """How ``run`` speaks to the terminal: the options that are no setting of the run."""

    yes: bool = False
    quiet: bool = False
    log_json: bool = False
    verbose: int = 0


class RunTerminal:
    """What ``run`` shows and asks on the terminal (or logs as JSON, with --log-json)."""

    def __init__(self, flags: Terminal) -> None:
        self._quiet = flags.quiet or flags.log_json
        self._log_json = flags.log_json
        self._verbose = flags.verbose
        on_terminal = sys.stdin.isatty() and sys.stderr.isatty()
        self._ask_first = on_terminal and not flags.yes
        # --quiet asked for silence on success: it is told nothing it did not ask for.
        self._unasked = not (on_terminal or flags.yes or flags.quiet)
        # Asked even with --yes: whoever asks for a canary wants to look at it.
        self._ask_canary = on_terminal
        self.events = JsonLog() if flags.log_json else None
        #: --summary-json -: the JSON summary on stdout, the person's one on stderr.
        self.json_out = False
        # --verbose writes lines of its own, which a bar would overwrite.
        self.progress = progress_for(sys.stderr, quiet=self._quiet, lines=bool(flags.verbose))

    def hooks(self) -> Hooks:
        """What the run shows and asks here (Ctrl-C and SIGTERM stop it cleanly)."""
        from batchops.run import Hooks

        return Hooks(
            progress=self.progress,
            confirm=self.confirm,
            confirm_canary=self.confirm_canary,
            events=self.events,
            notice=self.notice,
            handle_signals=True,
            verbose=self._verbose,
            unasked=self._unasked,
        )

    @property
    def confirm(self) -> Callable[[PlanOverview], bool] | None:
        return self._confirm if self._ask_first else None

    @property
    def confirm_canary(self) -> Callable[[CanaryReport], bool] | None:
        return self._confirm_canary if self._ask_canary else None

    @staticmethod
    def _confirm(overview: PlanOverview) -> bool:
        tell(overview.describe())
        return ask(_("Send these operations?"))

    def _confirm_canary(self, report: CanaryReport) -> bool:
        aside = getattr(self.progress, "aside", contextlib.nullcontext)
        with aside():  # the bar has started: its line is cleared, not written into
            tell(report.describe())
            return ask(_("Send the rest?"))

    def notice(self, text: str) -> None:
        if not self._log_json:  # JSON logs carry it as a "notice" event
            self.progress.write(f"batchops: {text}")

    def show(self, summary: RunSummary) -> None:
        show_summary(summary, json_out=self.json_out, quiet=self._quiet)
        if summary.advice and summary.exit_code and self.events is None:
            # (JSON logs carry it in the run_finished event, as "next".)
            tell(summary.advice)

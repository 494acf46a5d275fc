"""Status: how a run stands, read from its checkpoint without disturbing it.

``batchops status CHECKPOINT`` answers what someone asks of a long run: how many rows
per status, how fast over the last minute, when it will be done, whether a process is
still at it, and why the last run stopped. It only reads: the checkpoint is opened
read-only and unlocked (SQLite's WAL lets a reader in while the run commits), and
whether a process holds the run's lock (on the checkpoint's ``.lock`` file) is read from
``/proc/locks`` rather than by taking the lock, which would refuse a run starting at
that instant.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import filelock

from batchops.checkpoint import Checkpoint, RunRecord, lock_path
from batchops.errors import CheckpointError
from batchops.i18n import N_, _
from batchops.model import Status
from batchops.secrets import masked_url

#: Rows per second are measured over this many seconds.
WINDOW_S = 60


@dataclass(frozen=True, slots=True)
class RunStatus:
    """What ``status`` reports; :meth:`as_json` for scripts."""

    checkpoint: str
    input: str
    target: str
    state: str  # running | finished | stopped | died | not started
    pid: int | None
    rows: int
    counts: dict[str, int]
    in_flight: int
    rows_per_second: float
    eta_s: float | None
    run: dict[str, object] = field(default_factory=dict)
    runs: int = 0
    note: str = ""

    @property
    def done(self) -> int:
        return self.rows - self.counts.get(Status.PENDING.value, 0)

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "done": self.done}

    def describe(self) -> str:
        # Status values stay the report's words (success, pending …): --only takes them.
        shown = _(", ").join(f"{n} {s}" for s, n in self.counts.items() if n) or _("none")
        state = _(_STATES.get(self.state, self.state))
        rows = (
            _("rows: {rows}: {counts} ({sending} being sent)")
            if self.in_flight
            else _("rows: {rows}: {counts}")
        )
        lines = [
            _("checkpoint: {path}").format(path=self.checkpoint),
            "  "
            + _("input: {input}; target: {target}").format(input=self.input, target=self.target),
            _("state: {state} (pid {pid})").format(state=state, pid=self.pid)
            if self.pid
            else _("state: {state}").format(state=state),
            rows.format(rows=self.rows, counts=shown, sending=self.in_flight),
        ]
        rate = f"{self.rows_per_second:.1f}"
        if self.state == "running":
            eta = _("unknown (nothing finished in the last minute)")
            if self.eta_s is not None:
                at = datetime.now() + timedelta(seconds=self.eta_s)
                eta = _("{duration} (about {clock})").format(
                    duration=_duration(self.eta_s), clock=f"{at:%H:%M:%S}"
                )
            lines.append(
                _("rate: {rate} rows/s over the last minute; ETA {eta}").format(rate=rate, eta=eta)
            )
        elif self.rows_per_second:
            lines.append(_("rate: {rate} rows/s in the run's last minute").format(rate=rate))
        if self.run:
            lines.append(_last_run(self.run))
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


#: The states as a person reads them (``state`` itself stays English in the JSON).
_STATES = {
    "running": N_("running"),
    "finished": N_("finished"),
    "stopped": N_("stopped"),
    "died": N_("died"),
    "not started": N_("not started"),
}


def _last_run(run: dict[str, object]) -> str:
    """The last run's line: when it started, and when and how it ended if it did."""
    ended, exit_code = run.get("ended_at"), run.get("exit_code")
    if ended and exit_code is not None:
        text = _("last run #{run_id}: started {started}, ended {ended}, exit {exit_code}")
    elif ended:
        text = _("last run #{run_id}: started {started}, ended {ended}")
    elif exit_code is not None:
        text = _("last run #{run_id}: started {started}, exit {exit_code}")
    else:
        text = _("last run #{run_id}: started {started}")
    return text.format(
        run_id=run["run_id"], started=run["started_at"], ended=ended, exit_code=exit_code
    )


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return _("{seconds} s").format(seconds=whole)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return _("{hours} h {minutes} min").format(hours=hours, minutes=f"{minutes:02d}")
    return _("{minutes} min {seconds} s").format(minutes=minutes, seconds=f"{secs:02d}")


def _time_text(when: datetime) -> str:
    """A moment as the checkpoint writes finished_at (local time, to the second)."""
    return when.astimezone().replace(microsecond=0).isoformat()


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.astimezone()


def lock_holder(path: Path) -> tuple[bool, int | None]:
    """Whether a process holds the checkpoint's run lock, and its pid when the system says.

    Linux lists every lock in ``/proc/locks``; reading it disturbs nobody. Elsewhere the
    lock is tried and let go at once (a run starting in that instant would be refused
    and could simply be started again).
    """
    lock_file = lock_path(path)
    if not lock_file.exists():
        return False, None
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return _try_lock(lock_file), None
    info = os.stat(lock_file)
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in text.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF" (blocked waiters have "->")
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device:
            try:
                return True, int(fields[4])
            except ValueError:
                return True, None
    return False, None


def _try_lock(lock_file: Path) -> bool:
    lock = filelock.FileLock(lock_file)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return True
    except OSError:
        return False
    lock.release()
    return False


def read_status(checkpoint: str | os.PathLike[str], *, now: datetime | None = None) -> RunStatus:
    """How the run of ``checkpoint`` stands; raises :class:`CheckpointError` if unreadable."""
    path = Path(checkpoint)
    now = now or datetime.now(UTC)
    store = Checkpoint.open_readonly(path)
    try:
        binding = store.binding()
        if binding is None:
            raise CheckpointError(_("checkpoint {path} has no run recorded yet").format(path=path))
        held, pid = lock_holder(path)
        runs = store.runs()
        last = runs[-1] if runs else None
        # A run that is over is measured over its own last minute, not this one.
        window_end = now
        if not held and last is not None:
            window_end = min(now, _parse(last.ended_at) or now)
        since = _time_text(window_end - timedelta(seconds=WINDOW_S))
        progress = store.progress(since, None if held else _time_text(window_end))
    finally:
        store.close()
    counts = {s.value: progress.counts.get(s.value, 0) for s in Status}
    started = _parse(last.started_at) if last else None
    span = float(WINDOW_S)
    if started is not None:
        span = max(1.0, min(span, (window_end - started).total_seconds()))
    rate = progress.finished_recently / span
    remaining = counts[Status.PENDING.value]
    eta = remaining / rate if held and rate > 0 else None
    state, note = _state(held, last, remaining)
    return RunStatus(
        checkpoint=str(path),
        input=binding.input_path,
        # An older checkpoint may hold the URL's password.
        target=f"{masked_url(binding.base_url)} ({binding.gateway})",
        state=state,
        pid=pid if held else None,
        rows=binding.row_count,
        counts=counts,
        in_flight=progress.sending,
        rows_per_second=round(rate, 1),
        eta_s=round(eta, 1) if eta is not None else None,
        run=asdict(last) if last else {},
        runs=len(runs),
        note=note,
    )


def _state(held: bool, last: RunRecord | None, remaining: int) -> tuple[str, str]:
    """The run's state and, when it stopped, why (in words a person can act on)."""
    if held:
        return "running", ""
    if last is None:
        return "not started", _("no run has started on this checkpoint yet")
    if last.ended_at is None:
        return (
            "died",
            _(
                "the last run ended without finishing (killed or crashed); run the same "
                "command again: rows that were being sent are read back, never resent blind"
            ),
        )
    if last.stopped:
        return "stopped", _("stopped: {reason}").format(reason=last.stopped)
    if remaining:
        return "stopped", _("{count} rows were not sent; run the same command to continue").format(
            count=remaining
        )
    return "finished", ""

"""The machine-wide record of operations in flight: what left and was never settled.

A run's checkpoint says which of its rows were in flight when it died, but only a run
with that checkpoint reads it: the same sheet run again with another ``--checkpoint``,
with ``--no-checkpoint``, or another sheet naming the same tickets, would send a second
SUSPEND while the first may still land (ITSM applies it minutes after the gateway gave
up). So every run also writes, in the machine-wide folder (:mod:`.machine`), one small
file of its own: a line for each operation *before* its request leaves (ticket, action,
the ticket's status before, when it left), and a line when its outcome is known. Any
later run against the same target, whatever its checkpoint, reads the files of the runs
that are over (their process is gone, or they said they ended), takes each operation
that left, was never settled and may still land (it left less than ``--server-timeout``
plus ``--readback-delay`` ago), and parks the ticket's first row it has to send (see
:func:`InFlightLedger.adopt`).

Why a file per run, appended to, and not one shared database: a run writes only its own
file (nobody else may change it: the folder is sticky), so a hostile user cannot remove
another's records, writers never wait for each other, and a line is durable once
``write()`` returned (the page cache outlives a killed process; a power cut is not
covered, as for the checkpoint). Lines are written a group at a time: every row marked in
one event-loop turn waits for one ``write()`` at the start of the next, like the
checkpoint's group commit. A run that ends with nothing in flight removes its file;
the file is rewritten with only what is still open whenever it grows past a megabyte.

Lines (text, tab-separated; a valid sn holds no control character)::

    {"batchops": "in-flight", "pid": …, "start": …, "target": …}   the header
    S  <sent_at>  <action>  <status before>  <sn>                   left
    D  <sent_at>  <action>  <sn>                                    settled
    E                                                               the run ended
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from batchops.errors import CheckpointError
from batchops.i18n import _
from batchops.model import Action, Row
from batchops.settings import RANGES
from batchops.sheet import Batch

from .machine import SharedFolder, alive, process_start
from .resume import InDoubtRow

#: How long a record may matter: the longest landing window any run may be set to.
KEEP_S = RANGES["server_timeout"].high + RANGES["readback_delay"].high
#: Past this many bytes written, the file is rewritten with only what is still open.
COMPACT_BYTES = 1 << 20
#: How long settled lines may wait for a write when no operation leaves meanwhile.
SETTLED_FLUSH_S = 0.5

_HEADER_TAG = "in-flight"
_ACTIONS = frozenset(action.value for action in Action)

#: An operation's identity across files: (sent_at as written, action, sn).
Ident = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class InFlight:
    """An operation an earlier run sent and never settled."""

    sn: str
    action: str
    #: When its request left (wall clock).
    sent_at: float
    #: The ticket's status before it left, when known.
    before: str | None
    stamp: str = field(default="", compare=False)

    @property
    def ident(self) -> Ident:
        return (self.stamp or repr(self.sent_at), self.action, self.sn)


@dataclass(slots=True)
class _Parsed:
    pid: int
    start: str
    ended: bool
    sent: dict[Ident, InFlight]
    settled: set[Ident]
    newest: float


def _target_digest(target: str) -> str:
    return hashlib.sha256(target.encode()).hexdigest()[:16]


class InFlightLedger:
    """This run's file of operations in flight, and what earlier runs left in theirs."""

    def __init__(self, folder: SharedFolder, target: str, name: str, fd: int) -> None:
        self.folder = folder
        self.target = target
        self.name = name
        self._fd: int | None = fd
        self._prefix = f"inflight-{_target_digest(target)}-"
        pid = os.getpid()
        self._header = json.dumps(
            {"batchops": _HEADER_TAG, "pid": pid, "start": process_start(pid), "target": target}
        )
        #: Lines not written yet, and the rows waiting for them.
        self._lines: list[str] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._soon = False
        self._timer: asyncio.TimerHandle | None = None
        #: Each row's operations not settled yet: their identity and their "S" line.
        self._open: dict[int, list[tuple[Ident, str]]] = {}
        #: Operations of earlier runs this one settled (its "D" lines), kept on rewrites.
        self._adopted: set[Ident] = set()
        self._settled_others: dict[Ident, float] = {}
        self._written = 0
        #: Why the file can no longer be written, once a write failed.
        self.broken = ""

    @classmethod
    def start(cls, folder: SharedFolder, target: str) -> InFlightLedger:
        """Create this run's file (readable by every user, writable by this one)."""
        name = f"inflight-{_target_digest(target)}-{os.getpid()}-{secrets.token_hex(4)}.log"
        try:
            fd = folder.create(name, os.O_WRONLY | os.O_APPEND, 0o644)
        except OSError as exc:
            raise CheckpointError(
                _("cannot create the in-flight record {path}: {error}; nothing was sent").format(
                    path=folder.path / name, error=exc.strerror or exc
                )
            ) from None
        ledger = cls(folder, target, name, fd)
        ledger._lines.append(ledger._header + "\n")
        try:
            ledger.flush()
        except CheckpointError:
            ledger.close()
            raise
        return ledger

    # ---------------------------------------------------------------- this run's lines

    def mark(self, row: Row, attempt: int, before: str | None) -> asyncio.Future[None]:
        """Note that ``row``'s request is about to leave: await the result, done once the
        line is written (with every other row marked in this loop turn)."""
        if self.broken:
            raise CheckpointError(self.broken)
        stamp = repr(time.time())
        action = row.action.value
        line = f"S\t{stamp}\t{action}\t{_plain(before)}\t{row.sn}\n"
        self._lines.append(line)
        self._open.setdefault(row.index, []).append(((stamp, action, row.sn), line))
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        if not self._soon:
            self._soon = True
            loop.call_soon(self._write_group)
        return waiter

    def settle(self, index: int) -> None:
        """Row ``index`` has its outcome: none of its operations can land any more."""
        opened = self._open.pop(index, None)
        if not opened:
            return
        for ident, _unused in opened:
            self._lines.append(f"D\t{ident[0]}\t{ident[1]}\t{ident[2]}\n")
            if ident in self._adopted:
                self._settled_others[ident] = float(ident[0])
        if self._soon or self._timer is not None:
            return
        with contextlib.suppress(RuntimeError):  # no loop: flush() or close() writes them
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(SETTLED_FLUSH_S, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        with contextlib.suppress(CheckpointError):
            self.flush()

    def _write_group(self) -> None:
        self._soon = False
        waiters, self._waiters = self._waiters, []
        try:
            self.flush()
        except CheckpointError as exc:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(CheckpointError(str(exc)))
            return
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def flush(self) -> None:
        """Write every line noted so far; raise :class:`CheckpointError` if it cannot be."""
        if self.broken:
            raise CheckpointError(self.broken)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines or self._fd is None:
            return
        data = "".join(self._lines).encode("utf-8", "surrogatepass")
        self._lines = []
        try:
            _write_all(self._fd, data)
            self._written += len(data)
            if self._written > COMPACT_BYTES:
                self._rewrite()
        except OSError as exc:
            self.broken = _("cannot write the in-flight record {path}: {error}").format(
                path=self.folder.path / self.name, error=exc.strerror or exc
            )
            raise CheckpointError(self.broken) from None

    def _rewrite(self) -> None:
        """Replace the file by one with only what still matters (atomically: a reader
        sees the old file or the new one)."""
        now = time.time()
        self._settled_others = {k: t for k, t in self._settled_others.items() if t + KEEP_S > now}
        lines = [self._header + "\n"]
        lines.extend(line for opened in self._open.values() for _, line in opened)
        lines.extend(f"D\t{i[0]}\t{i[1]}\t{i[2]}\n" for i in self._settled_others)
        data = "".join(lines).encode("utf-8", "surrogatepass")
        temporary = f".{self.name}.{secrets.token_hex(4)}"
        fd = self.folder.create(temporary, os.O_WRONLY | os.O_APPEND, 0o644)
        try:
            _write_all(fd, data)
            self.folder.replace(temporary, self.name)
        except BaseException:
            os.close(fd)
            self.folder.unlink(temporary)
            raise
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self._written = len(data)

    def close(self) -> None:
        """The run is over: remove the file when nothing in it can matter any more, else
        say the run ended (its records are then read by the next run at once)."""
        if self._fd is None:
            return
        with contextlib.suppress(CheckpointError):
            self.flush()
        now = time.time()
        keep = bool(self._open) or any(t + KEEP_S > now for t in self._settled_others.values())
        try:
            if keep or self.broken:
                with contextlib.suppress(OSError):
                    _write_all(self._fd, b"E\n")
            else:
                self.folder.unlink(self.name)
        finally:
            os.close(self._fd)
            self._fd = None

    # ---------------------------------------------------------------- earlier runs

    def left_in_flight(self, window_s: float, now: float | None = None) -> list[InFlight]:
        """Operations against this target that runs now over sent and never settled, and
        that may still land (sent less than ``window_s`` ago), oldest first.

        Records of runs still going are not taken (their run settles them); files of
        this user's runs that hold nothing that can matter any more are removed.
        """
        now = time.time() if now is None else now
        sent: dict[Ident, InFlight] = {}
        settled: set[Ident] = set()
        for name in self.folder.names(self._prefix):
            if name == self.name:
                continue
            parsed = _parse(self.folder.read(name), self.target)
            if parsed is None:
                continue
            settled |= parsed.settled
            if not parsed.ended and alive(parsed.pid, parsed.start):
                continue
            sent.update(parsed.sent)
            if parsed.newest + KEEP_S < now:
                self.folder.unlink(name)  # nothing in it can land any more
        found = [
            entry
            for ident, entry in sent.items()
            if ident not in settled and entry.sent_at + window_s > now
        ]
        return sorted(found, key=lambda entry: entry.sent_at)

    def adopt(
        self,
        entries: Sequence[InFlight],
        batch: Batch,
        rows: np.ndarray,
        in_doubt: Sequence[InDoubtRow],
    ) -> list[InDoubtRow]:
        """Park, for each ticket with an operation in flight, the first of its ``rows``
        (this run's rows to send) that nothing else parks already; note them as this run's.

        A row of the same action settles like a row in doubt of this run's own checkpoint
        (read back: landed → success; unchanged once it can no longer land → sent). A row
        of another action waits until the operation in flight shows or can no longer land,
        then goes as usual: nothing is sent to a ticket while an operation may land on it.
        """
        parked_sns = {str(batch.sn[d.index]).casefold() for d in in_doubt}
        latest: dict[str, InFlight] = {}
        for entry in entries:
            key = entry.sn.casefold()
            if key not in parked_sns:
                latest[key] = entry  # entries come oldest first: the last one wins
        if not latest:
            return []
        firsts = _first_rows(batch, rows, set(latest))
        parked: list[InDoubtRow] = []
        for key, index in firsts.items():
            entry = latest[key]
            own = str(batch.action[index]) == entry.action
            parked.append(
                InDoubtRow(
                    index,
                    entry.before,
                    1,
                    entry.sent_at,
                    other_action=None if own else entry.action,
                )
            )
            line = f"S\t{entry.ident[0]}\t{entry.action}\t{_plain(entry.before)}\t{entry.sn}\n"
            self._lines.append(line)
            self._open.setdefault(index, []).append((entry.ident, line))
            self._adopted.add(entry.ident)
        self.flush()
        return sorted(parked, key=lambda doubt: doubt.index)


def _first_rows(batch: Batch, rows: np.ndarray, folded: set[str]) -> dict[str, int]:
    """The first of ``rows`` (file order) of each ticket whose casefolded sn is in ``folded``."""
    ordered = np.sort(np.asarray(rows, dtype=np.int64))
    sns = pd.Series(batch.sn[ordered], dtype=object).astype(str).str.casefold()
    hits = np.flatnonzero(sns.isin(folded).to_numpy())
    firsts: dict[str, int] = {}
    for position in hits.tolist():
        firsts.setdefault(str(sns.iat[position]), int(ordered[position]))
    return firsts


def _plain(status: str | None) -> str:
    """A status as a field of a line ("" when unknown, or when it could break the line)."""
    return status if status and status.isprintable() and "\t" not in status else ""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _parse(data: bytes | None, target: str) -> _Parsed | None:
    """Another run's file, or None when it is not one of this target's."""
    if not data:
        return None
    text = data.decode("utf-8", "replace")
    head, _sep, body = text.partition("\n")
    try:
        header = json.loads(head)
        pid, start = int(header["pid"]), str(header.get("start", ""))
        ok = header.get("batchops") == _HEADER_TAG and header.get("target") == target
    except (ValueError, TypeError, KeyError):
        return None
    if not ok:
        return None
    parsed = _Parsed(pid, start, False, {}, set(), 0.0)
    for line in body.split("\n")[:-1]:  # a last line without its newline is not whole
        _take_line(parsed, line)
    return parsed


def _take_line(parsed: _Parsed, line: str) -> None:
    kind = line[:2]
    if kind == "E":
        parsed.ended = True
        return
    fields = line.split("\t", 4 if kind == "S\t" else 3)
    if kind not in ("S\t", "D\t") or len(fields) != (5 if kind == "S\t" else 4):
        return
    stamp, action, sn = fields[1], fields[2], fields[-1]
    try:
        sent_at = float(stamp)
    except ValueError:
        return
    if not math.isfinite(sent_at) or action not in _ACTIONS or not sn:
        return
    parsed.newest = max(parsed.newest, sent_at)
    ident = (stamp, action, sn)
    if kind == "D\t":
        parsed.settled.add(ident)
    else:
        parsed.sent[ident] = InFlight(sn, action, sent_at, fields[3] or None, stamp)

"""The machine-wide record of operations in flight (:class:`InFlightLedger`): what a run
writes before each request leaves and when it settles, what a later run finds of runs
that are over, and which of its rows it parks; and how a process is told alive."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from batchops.checkpoint import inflight
from batchops.checkpoint.inflight import InFlight, InFlightLedger
from batchops.checkpoint.machine import SharedFolder, alive, process_start
from batchops.checkpoint.resume import InDoubtRow
from batchops.errors import CheckpointError
from batchops.model import Action, Row
from batchops.sheet import Batch, load_batch

from ..helpers import write_csv

TARGET = "http://localhost:8080"
WINDOW = 300.0


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[SharedFolder]:
    shared = SharedFolder.open(tmp_path / "machine")
    yield shared
    shared.close()


def _row(index: int, sn: str, action: Action = Action.SUSPEND) -> Row:
    return Row(index=index, sn=sn, operator="admin", action=action, message="x")


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _plant(
    folder: SharedFolder, lines: list[str], *, pid: int, start: str = "", name: str = ""
) -> str:
    """A record file as another run would have left it."""
    digest = inflight._target_digest(TARGET)
    name = name or f"inflight-{digest}-{pid}-0000.log"
    header = f'{{"batchops": "in-flight", "pid": {pid}, "start": "{start}", "target": "{TARGET}"}}'
    (folder.path / name).write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return name


async def _marked(ledger: InFlightLedger, rows: list[Row]) -> list[bytes]:
    """Mark ``rows`` as one loop turn would; what the file held before and after."""
    path = ledger.folder.path / ledger.name
    waiters = [ledger.mark(row, 1, "RUNNING") for row in rows]
    before = path.read_bytes()
    await asyncio.gather(*waiters)
    return [before, path.read_bytes()]


def test_an_operation_is_written_before_it_may_leave_and_settled_after(
    folder: SharedFolder,
) -> None:
    """Rows marked in one loop turn share one write, done by the time the mark is awaited
    (the request leaves only then); an outcome writes the settling line; a run that ends
    with nothing in flight leaves no file."""
    ledger = InFlightLedger.start(folder, TARGET)
    path = folder.path / ledger.name
    before, after = asyncio.run(_marked(ledger, [_row(0, "A1"), _row(1, "A2")]))
    assert b"A1" not in before
    lines = after.decode().splitlines()
    assert [line.split("\t")[0] for line in lines[1:]] == ["S", "S"]
    assert lines[1].endswith("\tSUSPEND\tRUNNING\tA1")
    ledger.settle(0)
    ledger.flush()
    assert path.read_text().splitlines()[-1].startswith("D\t")
    assert path.read_text().splitlines()[-1].endswith("\tSUSPEND\tA1")
    ledger.settle(1)
    ledger.close()
    assert not path.exists()


def test_a_run_that_ends_with_operations_in_flight_leaves_them_for_the_next(
    folder: SharedFolder,
) -> None:
    """A run stopped with an answer lost keeps its file, says it ended, and the next run
    of this very process (a Python caller) finds the operation at once."""
    first = InFlightLedger.start(folder, TARGET)
    asyncio.run(_marked(first, [_row(0, "B1", Action.WITHDRAW), _row(1, "B2")]))
    first.settle(1)
    first.close()
    second = InFlightLedger.start(folder, TARGET)
    try:
        found = second.left_in_flight(WINDOW)
    finally:
        second.close()
    assert [(e.sn, e.action, e.before) for e in found] == [("B1", "WITHDRAW", "RUNNING")]
    assert abs(found[0].sent_at - time.time()) < 60


def test_only_runs_that_are_over_and_operations_that_may_still_land_are_found(
    folder: SharedFolder,
) -> None:
    """Found: an unsettled operation of a dead process, of a process whose pid now names
    another process (started at another time), of a run that said it ended. Not found: a
    run still going, an operation settled in any file, one older than the landing window,
    another target's, a garbled or half-written line."""
    now = time.time()
    me, my_start = os.getpid(), process_start(os.getpid())
    _plant(folder, [f"S\t{now - 5!r}\tSUSPEND\tRUNNING\tDEAD"], pid=_dead_pid())
    _plant(folder, [f"S\t{now - 4!r}\tSUSPEND\t\tREUSED"], pid=me, start="1", name=_name(1))
    _plant(folder, [f"S\t{now - 3!r}\tTERMINATE\t\tENDED", "E"], pid=me, name=_name(2))
    _plant(folder, [f"S\t{now - 2!r}\tSUSPEND\t\tLIVE"], pid=me, start=my_start, name=_name(3))
    settled = now - 6
    _plant(
        folder,
        [
            f"S\t{settled!r}\tSUSPEND\t\tSETTLED",
            f"S\t{now - WINDOW - 1!r}\tSUSPEND\t\tOLD",
            "S\tnan\tSUSPEND\t\tNAN",
            f"S\t{now!r}\tREBOOT\t\tBADACTION",
            "S\tgarbled",
        ],
        pid=_dead_pid(),
        name=_name(4),
    )
    _plant(folder, [f"D\t{settled!r}\tSUSPEND\tSETTLED"], pid=me, start=my_start, name=_name(5))
    other = folder.path / f"inflight-{inflight._target_digest(TARGET)}-1-half.log"
    other.write_text(
        '{"batchops": "in-flight", "pid": 1, "start": "", "target": "http://other:80"}\n'
        f"S\t{now!r}\tSUSPEND\t\tOTHER\n",
        encoding="utf-8",
    )
    half = _plant(folder, [], pid=_dead_pid(), name=_name(6))
    with open(folder.path / half, "a", encoding="utf-8") as cut:
        cut.write(f"S\t{now!r}\tSUSPEND\t\tHALF")  # killed mid-line: no newline
    ledger = InFlightLedger.start(folder, TARGET)
    try:
        found = ledger.left_in_flight(WINDOW, now=now)
    finally:
        ledger.close()
    assert [e.sn for e in found] == ["DEAD", "REUSED", "ENDED"]


def _name(n: int) -> str:
    return f"inflight-{inflight._target_digest(TARGET)}-{n}-{n:04d}.log"


def test_records_planted_as_links_or_fifos_are_not_followed(folder: SharedFolder) -> None:
    """A symbolic link or a FIFO under a record's name is skipped: nothing hangs, nothing
    outside the folder is read."""
    outside = folder.path.parent / "outside.log"
    outside.write_text(
        f'{{"batchops": "in-flight", "pid": {_dead_pid()}, "target": "{TARGET}"}}\n'
        f"S\t{time.time()!r}\tSUSPEND\t\tOUTSIDE\n",
        encoding="utf-8",
    )
    (folder.path / _name(1)).symlink_to(outside)
    os.mkfifo(folder.path / _name(2))
    ledger = InFlightLedger.start(folder, TARGET)
    try:
        assert ledger.left_in_flight(WINDOW) == []
    finally:
        ledger.close()


def _batch(tmp_path: Path, rows: list[list[str]]) -> Batch:
    return load_batch(write_csv(tmp_path / "t.csv", rows))


def test_the_first_row_of_each_ticket_in_flight_is_parked(
    tmp_path: Path, folder: SharedFolder
) -> None:
    """Of each ticket with an operation in flight, the first row this run sends is
    parked with when it left: a row of the same action settles as if it were its own
    (read back), one of another action waits for it; a ticket whose rows are all done,
    or already parked by the checkpoint, is left alone; sns match in any letter case."""
    batch = _batch(
        tmp_path,
        [
            ["T1", "admin", "SUSPEND", "x"],
            ["T2", "admin", "UNSUSPEND", "x"],
            ["T2", "admin", "SUSPEND", "x"],
            ["T3", "admin", "SUSPEND", "x"],
            ["T4", "admin", "SUSPEND", "x"],
            ["T5", "admin", "SUSPEND", "x"],
        ],
    )
    now = time.time()
    entries = [
        InFlight("t1", "SUSPEND", now - 3, "RUNNING"),
        InFlight("T2", "SUSPEND", now - 2, "RUNNING"),
        InFlight("T3", "SUSPEND", now - 1, None),
        InFlight("T4", "SUSPEND", now - 1, None),
        InFlight("T5", "WITHDRAW", now - 1, None),
    ]
    to_send = np.array([0, 1, 2, 4, 5], dtype=np.int64)  # T3's row is done
    checkpoint_doubt = [InDoubtRow(4, "RUNNING", 1, now - 9)]  # T4: the checkpoint's own
    ledger = InFlightLedger.start(folder, TARGET)
    try:
        parked = ledger.adopt(entries, batch, to_send, checkpoint_doubt)
        text = (folder.path / ledger.name).read_text()
    finally:
        ledger.close()
    assert parked == [
        InDoubtRow(0, "RUNNING", 1, now - 3),
        InDoubtRow(1, "RUNNING", 1, now - 2, other_action="SUSPEND"),
        InDoubtRow(5, None, 1, now - 1, other_action="WITHDRAW"),
    ]
    assert text.count("\nS\t") == 3  # carried over: a kill now loses none of them


def test_an_adopted_operation_once_settled_is_not_found_again(
    tmp_path: Path, folder: SharedFolder
) -> None:
    """The run that parked an earlier run's operation settles it in its own file; a
    third run then finds nothing, though the dead run's file still lists it."""
    sent_at = time.time() - 2
    _plant(folder, [f"S\t{sent_at!r}\tSUSPEND\tRUNNING\tU1"], pid=_dead_pid())
    batch = _batch(tmp_path, [["U1", "admin", "SUSPEND", "x"]])
    second = InFlightLedger.start(folder, TARGET)
    found = second.left_in_flight(WINDOW)
    assert [e.sn for e in found] == ["U1"]
    parked = second.adopt(found, batch, np.array([0], dtype=np.int64), [])
    assert [p.index for p in parked] == [0]
    second.settle(0)
    second.close()
    third = InFlightLedger.start(folder, TARGET)
    try:
        assert third.left_in_flight(WINDOW) == []
    finally:
        third.close()


def test_the_file_is_rewritten_with_only_what_is_open(
    folder: SharedFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its size limit the file is replaced by one holding the header and only the
    operations still in flight (and the earlier runs' it settled): it never grows with
    the number of rows."""
    monkeypatch.setattr(inflight, "COMPACT_BYTES", 2000)
    ledger = InFlightLedger.start(folder, TARGET)
    path = folder.path / ledger.name

    async def many() -> None:
        for i in range(200):
            await ledger.mark(_row(i, f"C{i:03d}"), 1, "RUNNING")
            if i != 7:
                ledger.settle(i)

    asyncio.run(many())
    ledger.flush()
    assert path.stat().st_size < 4000
    assert "\tC007\n" in path.read_text()
    ledger.close()
    reader = InFlightLedger.start(folder, TARGET)
    try:
        assert [e.sn for e in reader.left_in_flight(WINDOW)] == ["C007"]
    finally:
        reader.close()


def test_a_record_that_cannot_be_written_stops_the_send(
    folder: SharedFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk: the mark fails with a CheckpointError naming the file (the pool
    stops the run: nothing leaves that the record does not hold), and so does every
    later mark."""
    ledger = InFlightLedger.start(folder, TARGET)

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(inflight.os, "write", full)

    async def mark() -> None:
        await ledger.mark(_row(0, "F1"), 1, None)

    with pytest.raises(CheckpointError, match="No space left on device"):
        asyncio.run(mark())
    assert ledger.name in ledger.broken
    with pytest.raises(CheckpointError):
        asyncio.run(mark())
    monkeypatch.undo()
    ledger.close()


def test_a_process_is_alive_only_as_itself() -> None:
    """This process is alive; a pid that is gone, a zombie nobody reaped yet, or a pid
    whose start time is not the one recorded (used again) is not."""
    me = os.getpid()
    assert alive(me, process_start(me))
    assert alive(me, "")
    assert not alive(_dead_pid(), "")
    assert not alive(0, "")
    if process_start(me):
        assert not alive(me, "1")
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        try:
            assert not alive(child.pid, "")
        finally:
            child.wait()

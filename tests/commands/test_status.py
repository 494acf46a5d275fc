"""``batchops status``: :func:`read_status` over checkpoints written through the
:class:`Checkpoint` API, then end to end on the checkpoint of a run in progress, a
finished one, one that stopped early and one that was killed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from batchops.checkpoint.store import Binding, Checkpoint
from batchops.commands.status import read_status
from batchops.errors import CheckpointError
from batchops.model import Action, Outcome, Row, Status
from batchops.sandbox import Faults, SandboxThread

from ..helpers import creds_env, host_env, queued_checkpoint, run_cli, running, seed, write_csv

ROWS = 300


# --------------------------------------------------------------------------- read_status

#: Rows of the checkpoints built through the API: 30 finished within the last minute, 5
#: long before, 20 still pending.
RECENT, EARLY, LEFT = 30, 5, 20


def _row(index: int) -> Row:
    return Row(index, f"SN{index}", "admin", Action.SUSPEND, "m")


def _stamp(when: datetime) -> str:
    """A moment as the checkpoint writes ``finished_at``."""
    return when.astimezone().replace(microsecond=0).isoformat()


def _checkpoint(path: Path, *, rows: int = RECENT + EARLY + LEFT) -> Checkpoint:
    """An open checkpoint of ``rows`` queued rows bound to t.csv, with a run begun."""
    return queued_checkpoint(path, rows, base_url="http://itsm.example", input_path="/data/t.csv")


def _finish(store: Checkpoint, indices: range, at: datetime) -> None:
    for i in indices:
        store.record(_row(i), Outcome(Status.SUCCESS, 0, "ok", 1, finished_at=_stamp(at)))
    store.flush()


@pytest.fixture
def half_done(tmp_path: Path) -> Iterator[tuple[Checkpoint, datetime]]:
    """A checkpoint still held by its run: EARLY rows done ten minutes before ``now``,
    RECENT rows 30 s before it, LEFT pending; ``now`` is two minutes from the real now,
    so the rate is measured over a full minute."""
    now = datetime.now(UTC) + timedelta(minutes=2)
    store = _checkpoint(tmp_path / ".batchops" / "t.checkpoint.db")
    _finish(store, range(EARLY), now - timedelta(minutes=10))
    _finish(store, range(EARLY, EARLY + RECENT), now - timedelta(seconds=30))
    try:
        yield store, now
    finally:
        store.close()


def test_a_held_checkpoint_is_running_with_its_pid_rate_and_eta(
    half_done: tuple[Checkpoint, datetime],
) -> None:
    """While a process holds the checkpoint: running, that process's PID, rows per second
    over the last minute only, and the ETA of the pending rows at that rate."""
    store, now = half_done
    status = read_status(store.path, now=now)
    assert (status.state, status.pid) == ("running", os.getpid())
    assert status.counts["success"] == RECENT + EARLY and status.counts["pending"] == LEFT
    assert status.done == RECENT + EARLY and status.rows == RECENT + EARLY + LEFT
    assert status.rows_per_second == RECENT / 60
    assert status.eta_s == LEFT / (RECENT / 60)
    assert (status.input, status.target) == ("/data/t.csv", "http://itsm.example (esb)")
    assert status.as_json()["done"] == RECENT + EARLY
    text = status.describe()
    assert f"state: running (pid {os.getpid()})" in text
    assert "rate: 0.5 rows/s over the last minute; ETA 40 s" in text


def test_rows_being_sent_are_counted_in_flight(half_done: tuple[Checkpoint, datetime]) -> None:
    """A row marked "sending" is in flight, and still pending."""
    store, now = half_done

    async def mark() -> None:
        await store.mark_sending(_row(RECENT + EARLY), 1, "RUNNING")

    asyncio.run(mark())
    status = read_status(store.path, now=now)
    assert status.in_flight == 1 and status.counts["pending"] == LEFT
    assert "(1 being sent)" in status.describe()


def test_a_finished_run_is_measured_over_its_own_last_minute(tmp_path: Path) -> None:
    """Read an hour after it ended, a finished run still shows the rate of its last
    minute, no ETA and no process."""
    store = _checkpoint(tmp_path / "t.db", rows=10)
    _finish(store, range(10), datetime.now(UTC))
    store.end_run(0)
    store.close()
    status = read_status(tmp_path / "t.db", now=datetime.now(UTC) + timedelta(hours=1))
    assert (status.state, status.pid, status.note) == ("finished", None, "")
    assert status.rows_per_second > 0 and status.eta_s is None
    assert status.run["exit_code"] == 0 and status.runs == 1


@pytest.mark.parametrize(
    ("ended", "state", "note"),
    [
        (None, "died", "ended without finishing (killed or crashed)"),
        ((3, "stopped after the canary"), "stopped", "stopped: stopped after the canary"),
        ((0, ""), "stopped", f"{LEFT} rows were not sent; run the same command to continue"),
    ],
    ids=["killed", "stopped-with-reason", "rows-left"],
)
def test_a_run_that_is_over_early_says_why(
    tmp_path: Path, ended: tuple[int, str] | None, state: str, note: str
) -> None:
    """A run that never recorded its end died; one that recorded a reason stopped for it;
    one that ended with rows pending stopped, with what is left."""
    store = _checkpoint(tmp_path / "t.db", rows=LEFT + 1)
    _finish(store, range(1), datetime.now(UTC))
    if ended is not None:
        store.end_run(*ended)
    store.close()
    status = read_status(tmp_path / "t.db")
    assert (status.state, status.pid) == (state, None)
    assert note in status.note and note in status.describe()


def test_a_checkpoint_without_a_run_says_so(tmp_path: Path) -> None:
    """A file that was never bound to an input is refused; one bound but never begun is
    "not started"."""
    Checkpoint.open(tmp_path / "bare.db").close()
    with pytest.raises(CheckpointError, match="has no run recorded yet"):
        read_status(tmp_path / "bare.db")
    store = Checkpoint.open(tmp_path / "bound.db")
    store.initialise(Binding("f" * 64, 0, "esb", "http://itsm.example", "/data/t.csv"), ())
    store.close()
    status = read_status(tmp_path / "bound.db")
    assert (status.state, status.runs, status.run) == ("not started", 0, {})


# --------------------------------------------------------------------------- end to end


def status_of(checkpoint: Path) -> dict[str, Any]:
    out = run_cli(["status", str(checkpoint), "--json"])
    assert out.exit_code == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def start_run(itsm: SandboxThread, tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    """A real batchops process sending ROWS rows, slowly (20 ms a request, 2 at a time)."""
    seed(itsm, *(running(f"ST{i:04d}") for i in range(ROWS)))
    itsm.call(lambda: itsm.state.set_faults(Faults(latency_ms=20)))
    src = write_csv(
        tmp_path / "t.csv", [[f"ST{i:04d}", "admin", "SUSPEND", "x"] for i in range(ROWS)]
    )
    env = host_env()
    env.update(creds_env(itsm.url))
    return subprocess.Popen(
        [sys.executable, "-m", "batchops", "run", str(src), "-c", "2", "--quiet", *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(checkpoint: Path, done_at_least: int, deadline_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if checkpoint.exists():
            result = run_cli(["status", str(checkpoint), "--json"])
            if result.exit_code == 0:
                state: dict[str, Any] = json.loads(result.stdout)
                if state["done"] >= done_at_least:
                    return state
        time.sleep(0.05)
    raise AssertionError(f"the run did not get {done_at_least} rows done in {deadline_s} s")


def test_status_of_a_running_run_grows_and_ends_with_the_final_counts(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """While the run writes: a process holds it, counts grow, a rate and an ETA show;
    once it is over: the final counts, finished, no process."""
    checkpoint = tmp_path / ".batchops" / "t.checkpoint.db"
    proc = start_run(itsm, tmp_path)
    try:
        first = wait_for(checkpoint, 10)
        assert first["state"] == "running" and first["pid"] == proc.pid
        second = wait_for(checkpoint, first["done"] + 20)
        assert second["counts"]["success"] > first["counts"]["success"]
        assert second["counts"]["pending"] < first["counts"]["pending"]
        assert second["rows_per_second"] > 0 and second["eta_s"] is not None
        text = run_cli(["status", str(checkpoint)]).stdout
        assert "state: running" in text and "rows/s over the last minute; ETA" in text
    finally:
        assert proc.wait(timeout=60) == 0
    final = status_of(checkpoint)
    assert final["state"] == "finished" and final["pid"] is None
    assert final["counts"]["success"] == ROWS and final["done"] == ROWS
    assert final["in_flight"] == 0 and final["eta_s"] is None
    assert final["run"]["exit_code"] == 0 and final["run"]["stopped"] == ""
    assert final["rows_per_second"] > 0
    assert "state: finished" in run_cli(["status", str(checkpoint)]).stdout


def test_status_of_an_interrupted_run_says_why(itsm: SandboxThread, tmp_path: Path) -> None:
    """SIGTERM stops the run cleanly: status shows stopped, the reason and what is left."""
    checkpoint = tmp_path / ".batchops" / "t.checkpoint.db"
    proc = start_run(itsm, tmp_path)
    wait_for(checkpoint, 5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 130
    state = status_of(checkpoint)
    assert state["state"] == "stopped"
    assert "interrupted by SIGTERM" in state["note"]
    assert state["counts"]["pending"] > 0 and state["run"]["exit_code"] == 130


def test_status_of_a_killed_run_says_it_died(itsm: SandboxThread, tmp_path: Path) -> None:
    """A run killed outright never ended: status says so, and that resuming is safe."""
    checkpoint = tmp_path / ".batchops" / "t.checkpoint.db"
    proc = start_run(itsm, tmp_path)
    wait_for(checkpoint, 5)
    proc.kill()
    proc.wait(timeout=30)
    state = status_of(checkpoint)
    assert state["state"] == "died" and state["pid"] is None
    assert state["run"]["ended_at"] is None
    assert "read back" in state["note"]


def test_status_never_writes_the_checkpoint(itsm: SandboxThread, tmp_path: Path) -> None:
    """Reading the status leaves the checkpoint file byte for byte as it was."""
    seed(itsm, running("NO1"))
    src = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    assert run_cli(["run", str(src)], creds_env(itsm.url)).exit_code == 0
    checkpoint = tmp_path / ".batchops" / "t.checkpoint.db"
    before = checkpoint.read_bytes()
    assert status_of(checkpoint)["state"] == "finished"
    assert checkpoint.read_bytes() == before


def test_status_of_something_else_is_exit_2(tmp_path: Path) -> None:
    """A missing file or one that is no checkpoint: one Error line, exit 2."""
    assert run_cli(["status", str(tmp_path / "nope.db")]).exit_code == 2
    junk = tmp_path / "junk.db"
    junk.write_text("not sqlite")
    out = run_cli(["status", str(junk)])
    assert out.exit_code == 2 and "not a batchops checkpoint" in out.stderr

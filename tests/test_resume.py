"""Crash and resume, end to end: the real CLI process killed against the stand-in over loopback.

Every test here runs ``python -m batchops run`` as a child process against a stand-in ITSM
server (a :class:`SandboxThread` in this process, or ``python -m batchops.sandbox`` in
another), kills or signals it at a chosen moment, and runs it again. Kill moments are
chosen by watching the server (a request has arrived and not been answered, k answers
given) or the file system (the report's temp file exists), never by sleeping blindly.
The server's latency keeps requests in flight long enough for the kill to land there.

What must hold after every re-run: each row has exactly one final outcome; no row's
operation was applied twice (the server's log has at most one applied operation per
row); the server saw no double SUSPEND; and rows that were in flight at the kill were
settled by reading the ticket back ("confirmed by read-back"), never by a blind resend.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from batchops.errors import CheckpointError
from batchops.sandbox import Faults, SandboxConfig, SandboxState, SandboxThread, Ticket
from batchops.store import Checkpoint, StoredRow

from .helpers import APP_CODE, SECRET, creds_env, read_report, run_cli, running, seed, write_csv

ACTIONS = ("SUSPEND", "TERMINATE", "WITHDRAW")
READ_BACK = "confirmed by read-back"


# --------------------------------------------------------------------------- helpers


def _state(latency_ms: float = 0.0, **faults: Any) -> SandboxState:
    """A stand-in whose app secret is :data:`SECRET`, with the given faults."""
    return SandboxState(
        SandboxConfig(
            app_code=APP_CODE, app_secret=SECRET, faults=Faults(latency_ms=latency_ms, **faults)
        )
    )


def _tickets(state: SandboxState, sns: Sequence[str]) -> None:
    state.seed_tickets(running(sn) for sn in sns)


def _rows(sns: Sequence[str]) -> list[list[str]]:
    """One row per ticket, actions taking turns (none of them needs a confirming read)."""
    return [[sn, "admin", ACTIONS[i % len(ACTIONS)], f"batch {i}"] for i, sn in enumerate(sns)]


def _child_env(tmp_path: Path, url: str, secret: str = SECRET) -> dict[str, str]:
    """The environment of a child CLI: this one without BK_/BATCHOPS_, plus credentials.

    XDG_CONFIG_HOME points at an empty folder so no developer's batchops.toml is read.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BK_", "BATCHOPS_"))}
    env.update(creds_env(url, secret=secret))
    xdg = tmp_path / "xdg"
    xdg.mkdir(exist_ok=True)
    env["XDG_CONFIG_HOME"] = str(xdg)
    return env


_CHILDREN: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_child_left_behind() -> Iterator[None]:
    """A test that fails half-way must not leave its CLI process running (or stopped)."""
    yield
    while _CHILDREN:
        proc = _CHILDREN.pop()
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate()


def _spawn(args: Sequence[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """Start the real CLI: ``python -m batchops ARGS`` (stdin is not a terminal)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchops", *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _CHILDREN.append(proc)
    return proc


@dataclass
class Done:
    """A finished child process."""

    code: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


def _finish(proc: subprocess.Popen[str], timeout: float = 60) -> Done:
    out, err = proc.communicate(timeout=timeout)
    return Done(proc.returncode, out, err)


def _run(args: Sequence[str], env: dict[str, str], cwd: Path) -> Done:
    """Run the real CLI to its end."""
    return _finish(_spawn(args, env, cwd))


def _kill(proc: subprocess.Popen[str]) -> Done:
    """SIGKILL the child (no handler, no cleanup, no flush) and reap it."""
    proc.send_signal(signal.SIGKILL)
    done = _finish(proc)
    assert done.code == -signal.SIGKILL, done.text
    return done


def _wait_until(
    what: str,
    condition: Callable[[], bool],
    proc: subprocess.Popen[str] | None = None,
    timeout: float = 30.0,
) -> None:
    """Poll ``condition`` every 2 ms; fail if ``proc`` ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            done = _finish(proc)
            pytest.fail(f"the run ended (exit {done.code}) before {what}:\n{done.text}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.002)


def _operates_in_flight(stats: Any) -> int:
    """operate_ticket requests the server has received but not answered yet."""
    return int(stats.requests.get("operate_ticket", 0)) - int(stats.operations_total)


def _operates(state: SandboxState) -> int:
    """operate_ticket requests the stand-in has received so far."""
    return int(state.stats.requests.get("operate_ticket", 0))


def _drain(state: SandboxState) -> None:
    """Wait until the server has finished every request (the killed run's included)."""
    _wait_until("the stand-in finished its requests", lambda: state.stats.in_flight == 0)


def _row_states(path: Path) -> dict[int, str]:
    """Each row's state in the checkpoint, read as ``batchops report`` would."""
    store = Checkpoint.open_readonly(path)
    try:
        return {rec.index: rec.state for rec in store.rows()}
    finally:
        store.close()


def _applied(ops: Sequence[Any]) -> Counter[tuple[str, str]]:
    """Applied operations per (sn, action) in a sandbox operation log."""
    return Counter((op.sn, op.action) for op in ops if op.applied)


def _no_secret_in(folder: Path, secret: str) -> None:
    """No file under ``folder`` (checkpoint, its -wal, reports, temp files) holds ``secret``."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.name.endswith("-wal") for p in files)  # the kill left the WAL: it is checked
    for path in files:
        assert secret.encode() not in path.read_bytes(), path


def _assert_once_each(report: list[dict[str, str]], state: SandboxState) -> None:
    """Every row success, applied exactly once; no double suspend, no overlap on one sn."""
    assert [r["status"] for r in report] == ["success"] * len(report), report
    applied = _applied(state.stats.operations)
    for r in report:
        assert applied[(r["sn"], r["action_type"])] == 1, (r, applied)
    assert state.stats.double_suspends == 0
    assert state.stats.concurrent_same_sn == 0


# --------------------------------------------------------------------------- SIGKILL


def test_kill_before_first_answer_settles_the_probe_by_read_back(tmp_path: Path) -> None:
    """SIGKILL while the very first request (no pre-check: the first operation, which goes
    alone) waits for its answer: the re-run reads that ticket back (one get_ticket_status),
    reports it "confirmed by read-back" without resending it, and sends every other row
    exactly once."""
    state = _state(latency_ms=1000)
    sns = [f"PB{i}" for i in range(10)]
    _tickets(state, sns)
    src = write_csv(tmp_path / "t.csv", _rows(sns))
    ckpt = tmp_path / "t.checkpoint.db"
    args = ["run", str(src), "--no-precheck", "-c", "4", "--readback-delay", "0", "--timeout", "2"]
    with SandboxThread(state) as server:
        env = _child_env(tmp_path, server.url)
        proc = _spawn(args, env, tmp_path)
        _wait_until(
            "the first operate_ticket arrives", lambda: _operates_in_flight(state.stats) >= 1, proc
        )
        _kill(proc)
        assert state.stats.operations_total == 0  # no answer had been given
        states = _row_states(ckpt)
        in_doubt = [i for i, s in states.items() if s == "sending"]
        assert len(in_doubt) == 1, states  # the probe goes alone
        assert all(s == "queued" for i, s in states.items() if i not in in_doubt)
        _drain(state)  # the server finishes the probe's work: the ticket has changed
        probe_sn = sns[in_doubt[0]]
        assert _applied(state.stats.operations)[(probe_sn, _rows(sns)[in_doubt[0]][2])] == 1
        server.call(lambda: state.set_faults(Faults()))
        reads = state.stats.requests.get("get_ticket_status", 0)

        again = _run(args, env, tmp_path)

        assert again.code == 0, again.text
        assert "1 in doubt (read back before any resend)" in again.stdout
        assert state.stats.requests.get("get_ticket_status", 0) - reads == 1
    report = read_report(tmp_path / "t.report.csv")
    _assert_once_each(report, state)
    for i, r in enumerate(report):
        assert (READ_BACK in r["message"]) == (i in in_doubt), r


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[tuple[str, Callable[..., Any]]]:
    """``python -m batchops.sandbox`` in its own process: (url, http) where
    ``http(method, path, body=None)`` talks JSON to its /_sandbox/ endpoints."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "batchops.sandbox",
            "--port",
            "0",
            "--latency-ms",
            "200",
            "--generate",
            "MR:40",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "listening on http://" in first, first + (proc.stderr.read() if proc.stderr else "")
        url = first.rsplit(" ", 1)[-1].strip()

        def http(method: str, path: str, body: Any = None) -> Any:
            data = None if body is None else json.dumps(body).encode()
            request = urllib.request.Request(
                url + path, data=data, method=method, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=10) as answer:  # loopback only
                return json.loads(answer.read())

        yield url, http
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_kill_mid_run_with_requests_in_flight(
    tmp_path: Path, sandbox_process: tuple[str, Callable[..., Any]]
) -> None:
    """SIGKILL mid-run (stand-in in another process, watched over /_sandbox/stats) while
    operations are in flight: the re-run settles every in-flight row by read-back, never
    applies a row twice, keeps rows of one ticket in order, and no secret is left on disk."""
    url, http = sandbox_process
    sns = [f"MR{i:07d}" for i in range(1, 41)]
    rows = _rows(sns[:30])
    for i, sn in enumerate(sns[30:]):  # ten tickets with two rows each: SUSPEND, UNSUSPEND
        rows += [[sn, "admin", "SUSPEND", f"pause {i}"], [sn, "admin", "UNSUSPEND", f"go {i}"]]
    src = write_csv(tmp_path / "t.csv", rows)
    ckpt = tmp_path / "t.checkpoint.db"
    env = _child_env(tmp_path, url, secret="sandbox-secret")  # python -m batchops.sandbox's
    env["BK_APP_CODE"] = "batchops-sandbox"
    args = ["run", str(src), "-c", "6", "--readback-delay", "0", "--timeout", "2"]
    proc = _spawn(args, env, tmp_path)

    def mid_run() -> bool:
        stats = http("GET", "/_sandbox/stats?log=0")
        in_flight = stats["requests"].get("operate_ticket", 0) - stats["operations_total"]
        return bool(stats["operations_total"] >= 12 and in_flight >= 1)

    _wait_until("12 answers given and more in flight", mid_run, proc)
    _kill(proc)
    _wait_until(
        "the stand-in finished", lambda: http("GET", "/_sandbox/stats?log=0")["in_flight"] == 0
    )
    states = _row_states(ckpt)
    in_doubt = sorted(i for i, s in states.items() if s == "sending")
    assert in_doubt, states
    assert "queued" in states.values()
    _no_secret_in(tmp_path, "sandbox-secret")
    before = http("GET", "/_sandbox/stats")
    applied_before = Counter(
        (op["sn"], op["action"]) for op in before["operations"] if op["applied"]
    )
    http("POST", "/_sandbox/faults", {"latency_ms": 0})

    again = _run(args, env, tmp_path)

    assert again.code == 0, again.text
    assert f"{len(in_doubt)} in doubt" in again.stdout
    after = http("GET", "/_sandbox/stats")
    assert after["double_suspends"] == 0
    assert after["concurrent_same_sn"] == 0
    reads = after["requests"].get("get_ticket_status", 0) - before["requests"].get(
        "get_ticket_status", 0
    )
    assert reads >= len(in_doubt)
    applied = Counter((op["sn"], op["action"]) for op in after["operations"] if op["applied"])
    report = read_report(tmp_path / "t.report.csv")
    assert [r["status"] for r in report] == ["success"] * len(rows)
    for r in report:
        assert applied[(r["sn"], r["action_type"])] == 1, r
    confirmed = 0
    for i in in_doubt:
        r = report[i]
        if applied_before[(r["sn"], r["action_type"])]:
            assert READ_BACK in r["message"], r  # applied by the killed run: read, not resent
            confirmed += 1
        else:
            assert READ_BACK not in r["message"], r  # marked, not yet sent: sent now, once
    assert confirmed >= 1
    for sn in sns[30:]:  # SUSPEND before UNSUSPEND on every two-row ticket
        order = [op["action"] for op in after["operations"] if op["sn"] == sn and op["applied"]]
        assert order == ["SUSPEND", "UNSUSPEND"], (sn, order)
    tickets = {t["sn"]: t["status"] for t in http("GET", "/_sandbox/tickets")["tickets"]}
    assert all(tickets[sn] == "RUNNING" for sn in sns[30:])


def test_kill_during_report_writing(tmp_path: Path) -> None:
    """SIGKILL while the report is being written (its temp file exists, the report does
    not): the re-run sends nothing again, settles rows whose outcome had not reached the
    checkpoint by read-back, and writes a complete report."""
    state = _state()
    sns = [f"RW{i}" for i in range(8)]
    _tickets(state, sns)
    invalid = [[f"BIG{i}", "", "TERMINATE", "x" * 40] for i in range(15000)]  # blank operator
    src = write_csv(tmp_path / "t.csv", _rows(sns) + invalid)
    out = tmp_path / "out" / "report.xlsx"
    out.parent.mkdir()
    args = ["run", str(src), "-o", str(out), "--readback-delay", "0", "--timeout", "2", "-c", "4"]
    with SandboxThread(state) as server:
        env = _child_env(tmp_path, server.url)
        proc = _spawn(args, env, tmp_path)
        _wait_until(
            "the report's temp file appears", lambda: any(out.parent.glob(".report.xlsx.*")), proc
        )
        _kill(proc)
        assert not out.exists()  # the kill landed inside the report writing
        assert state.stats.operations_total == len(sns)
        states = _row_states(tmp_path / "t.checkpoint.db")
        in_doubt = {i for i, s in states.items() if s == "sending"}
        assert all(states[i] in ("done", "sending") for i in range(len(sns)))
        reads = state.stats.requests.get("get_ticket_status", 0)

        again = _run(args, env, tmp_path)

        assert again.code == 1, again.text  # the invalid rows
        assert state.stats.requests.get("get_ticket_status", 0) - reads == len(in_doubt)
    assert state.stats.operations_total == len(sns)  # nothing sent twice
    frame = pd.read_excel(out, dtype=str, engine="calamine", keep_default_na=False)
    assert len(frame) == len(sns) + len(invalid)
    assert frame["status"].tolist() == ["success"] * len(sns) + ["invalid"] * len(invalid)
    for i in range(len(sns)):
        assert (READ_BACK in frame["message"][i]) == (i in in_doubt)
    assert state.stats.double_suspends == 0


#: A latency value that makes the stand-in hold a request until the test lets it go.
HOLD_MS = 987654.0


@pytest.fixture
def held_requests(monkeypatch: pytest.MonkeyPatch) -> Callable[[SandboxThread], None]:
    """Requests that start while the stand-in's latency is :data:`HOLD_MS` wait, after the
    server validated them and before it writes, until ``release(server)`` is called: a
    backend still working on a request whose client is long gone."""
    from batchops.sandbox import server as stand_in

    gate: dict[str, asyncio.Event] = {}
    slow = stand_in._Server._latency

    async def latency(faults: Faults) -> None:
        if faults.latency_ms == HOLD_MS:
            await gate.setdefault("event", asyncio.Event()).wait()
        else:
            await slow(faults)

    monkeypatch.setattr(stand_in._Server, "_latency", staticmethod(latency))

    def release(server: SandboxThread) -> None:
        server.call(lambda: gate.setdefault("event", asyncio.Event()).set())

    return release


def test_resume_right_after_kill_waits_for_a_request_still_on_the_server(
    tmp_path: Path, held_requests: Callable[[SandboxThread], None]
) -> None:
    """Killed while the server is still working on a SUSPEND, re-run at once: the re-run
    must not send that SUSPEND again while the first one can still land (the server lets
    it land 9 s later, inside the --timeout 10 s the killed run would have waited)."""
    state = _state(latency_ms=HOLD_MS)
    _tickets(state, ["SLOW1"])
    src = write_csv(tmp_path / "t.csv", [["SLOW1", "admin", "SUSPEND", "pause"]])
    args = ["run", str(src), "--no-precheck", "--timeout", "10", "--readback-delay", "0.5"]
    with SandboxThread(state) as server:
        env = _child_env(tmp_path, server.url)
        proc = _spawn(args, env, tmp_path)
        _wait_until("the SUSPEND arrives", lambda: _operates_in_flight(state.stats) >= 1, proc)
        arrived = time.monotonic()
        _kill(proc)
        server.call(lambda: state.set_faults(Faults()))  # new requests are answered at once
        again = _spawn(args, env, tmp_path)
        resent_while_held = False
        while again.poll() is None and time.monotonic() < arrived + 9.0:
            if _operates(state) >= 2:  # sent again while the first is still on the server
                resent_while_held = True
                break
            time.sleep(0.002)
        held_requests(server)  # the killed run's SUSPEND lands now
        done = _finish(again)
        _drain(state)

    assert done.code == 0, done.text
    assert not resent_while_held
    assert _applied(state.stats.operations)[("SLOW1", "SUSPEND")] == 1, state.stats.operations
    assert state.stats.double_suspends == 0
    (row,) = read_report(tmp_path / "t.report.csv")
    assert READ_BACK in row["message"]


# --------------------------------------------------------------------------- refusals


def test_changed_input_names_sheet_rows(itsm: SandboxThread, tmp_path: Path) -> None:
    """The 'input changed' refusal names rows as the sheet numbers them (blank lines
    counted), not by position among the data rows."""
    seed(itsm, running("RN1"), running("RN2"))
    path = tmp_path / "t.csv"
    path.write_text(
        "sn,operator,action_type,action_message\n\nRN1,admin,SUSPEND,x\n\nRN2,admin,SUSPEND,y\n",
        encoding="utf-8",
    )
    env = creds_env(itsm.url)
    assert run_cli(["run", str(path)], env).exit_code == 0
    path.write_text(path.read_text(encoding="utf-8").replace(",y", ",edited"), encoding="utf-8")
    out = run_cli(["run", str(path)], env)
    assert out.exit_code == 2
    assert "1 rows differ (rows 5)" in out.stderr


def test_fresh_says_how_many_rows_were_applied_and_that_the_precheck_decides(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """--fresh without a terminal says on stderr how many rows the old checkpoint had
    recorded as applied and that the pre-check decides what is sent again; in the
    confirmation (API) it is a line of the overview."""
    from batchops import api

    sns = ["FR1", "FR2", "FR3"]
    seed(itsm, *(running(sn) for sn in sns))
    src = write_csv(tmp_path / "t.csv", [[sn, "admin", "SUSPEND", "x"] for sn in sns])
    env = creds_env(itsm.url)
    assert run_cli(["run", str(src)], env).exit_code == 0
    fresh = run_cli(["run", str(src), "--fresh"], env)
    assert fresh.exit_code == 0, fresh.stderr
    assert "recorded 3 rows as applied" in fresh.stderr
    assert "the pre-check reads every ticket's live state" in fresh.stderr
    assert "recorded 3 rows" not in fresh.stdout
    assert itsm.state.stats.operations_total == 3  # the pre-check skipped all three

    shown: list[str] = []

    def confirm(overview: api.PlanOverview) -> bool:
        shown.append(overview.describe())
        return False

    seed(itsm, *(running(sn) for sn in sns[:1]))  # one ticket open again: something to ask
    api.run_batch(src, fresh=True, confirm=confirm, env=env)
    (text,) = shown
    assert "fresh start: the old checkpoint" in text and "recorded 0 rows as applied" in text
    nocheck = run_cli(["run", str(src), "--fresh", "--no-precheck", "--yes"], env)
    assert "with --no-precheck nothing checks the tickets first" in nocheck.stderr


def test_changed_input_is_refused_then_fresh_starts_over(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """An edited or extended input is refused (exit 2, what changed, --fresh named, nothing
    sent); --fresh keeps the old checkpoint as a .bak beside it and sends every row again."""
    sns = ["CH1", "CH2", "CH3", "CH4"]
    seed(itsm, *(running(sn) for sn in sns))
    rows = [[sn, "admin", "TERMINATE", "close"] for sn in sns]
    src = write_csv(tmp_path / "t.csv", rows)
    env = creds_env(itsm.url)
    first = run_cli(["run", str(src)], env)
    assert first.exit_code == 0, first.stdout + first.stderr
    sent = sum(itsm.state.stats.requests.values())

    rows[2][3] = "close, edited"
    write_csv(src, rows)
    edited = run_cli(["run", str(src)], env)
    assert edited.exit_code == 2
    assert "input changed since checkpoint" in edited.stderr
    assert "1 rows differ (rows 4)" in edited.stderr
    assert "--fresh" in edited.stderr

    rows.append(["CH5", "admin", "TERMINATE", "close"])
    write_csv(src, rows)
    longer = run_cli(["run", str(src)], env)
    assert longer.exit_code == 2
    assert "4 rows then, 5 now" in longer.stderr and "--fresh" in longer.stderr
    assert sum(itsm.state.stats.requests.values()) == sent  # refused before any request

    seed(itsm, *(running(sn) for sn in [*sns, "CH5"]))  # the tickets are open again
    fresh = run_cli(["run", str(src), "--fresh"], env)
    assert fresh.exit_code == 0, fresh.stdout + fresh.stderr
    (backup,) = tmp_path.glob("t.checkpoint.db.*.bak")
    assert str(backup) in fresh.stdout
    old = Checkpoint.open_readonly(backup)
    try:
        assert [r.outcome.status.value for r in old.rows()] == ["success"] * 4
    finally:
        old.close()
    assert [r["status"] for r in read_report(tmp_path / "t.report.csv")] == ["success"] * 5
    applied = _applied(itsm.state.stats.operations)
    assert [applied[(sn, "TERMINATE")] for sn in sns] == [2, 2, 2, 2]  # once per run
    assert applied[("CH5", "TERMINATE")] == 1


def test_checkpoint_of_another_input_or_target_is_refused(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A checkpoint made for other rows or another ITSM is refused (exit 2, nothing sent),
    and `batchops report` will not pair it with the wrong input file."""
    seed(itsm, running("A1"), running("A2"), running("B1"), running("B2"))
    shared = tmp_path / "shared.db"
    a = write_csv(
        tmp_path / "a.csv", [["A1", "admin", "SUSPEND", "x"], ["A2", "admin", "SUSPEND", "y"]]
    )
    b = write_csv(
        tmp_path / "b.csv", [["B1", "admin", "SUSPEND", "x"], ["B2", "admin", "SUSPEND", "y"]]
    )
    env = creds_env(itsm.url)
    assert run_cli(["run", str(a), "--checkpoint", str(shared)], env).exit_code == 0
    sent = sum(itsm.state.stats.requests.values())

    other = run_cli(["run", str(b), "--checkpoint", str(shared)], env)
    assert other.exit_code == 2
    assert "input changed since checkpoint" in other.stderr and "--fresh" in other.stderr

    with SandboxThread(_state()) as elsewhere:
        moved = run_cli(["run", str(a), "--checkpoint", str(shared)], creds_env(elsewhere.url))
        assert moved.exit_code == 2
        assert "belongs to a run against" in moved.stderr and itsm.url in moved.stderr
        assert sum(elsewhere.state.stats.requests.values()) == 0

    wrong = run_cli(["report", str(shared), "--input", str(b), "-o", str(tmp_path / "r.csv")])
    assert wrong.exit_code == 2
    assert "no longer holds the rows" in wrong.stderr
    assert not (tmp_path / "r.csv").exists()
    assert sum(itsm.state.stats.requests.values()) == sent
    assert itsm.state.tickets["B1"].status == "RUNNING"


def test_second_run_on_a_checkpoint_in_use_is_refused_at_once(tmp_path: Path) -> None:
    """While a run is sending, a second process on its checkpoint exits 2 at once with a
    clear message and sends nothing (not even a pre-check read); --fresh is refused too;
    the first run then finishes unharmed."""
    state = _state(latency_ms=100)
    sns = [f"LK{i}" for i in range(12)]
    _tickets(state, sns)
    src = write_csv(tmp_path / "t.csv", _rows(sns))
    args = ["run", str(src), "-c", "2", "--readback-delay", "0", "--timeout", "30"]
    with SandboxThread(state) as server:
        env = _child_env(tmp_path, server.url)
        first = _spawn(args, env, tmp_path)
        _wait_until("the first run is sending", lambda: state.stats.operations_total >= 1, first)
        # Frozen mid-run, it keeps its lock for as long as the checks below take, however
        # slow the machine; SIGCONT lets it go on.
        first.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            second = _run(args, env, tmp_path)
            took = time.monotonic() - started
            fresh = run_cli(["run", str(src), "--fresh"], creds_env(server.url))
        finally:
            server.call(lambda: state.set_faults(Faults()))
            first.send_signal(signal.SIGCONT)
        assert second.code == 2, second.text
        assert "in use by another batchops run" in second.stderr
        assert second.stderr.startswith("Error: ") and "Traceback" not in second.stderr
        assert took < 15  # "at once": no waiting for the lock (a CLI start is ~1 s)
        assert fresh.exit_code == 2 and "in use by another batchops run" in fresh.stderr
        assert not list(tmp_path.glob("*.bak"))
        done = _finish(first)
    assert done.code == 0, done.text
    # Neither refused run sent anything: one pre-check read and one operation per row.
    assert state.stats.requests.get("get_tickets") == 1
    assert state.stats.operations_total == len(sns)
    _assert_once_each(read_report(tmp_path / "t.report.csv"), state)


# --------------------------------------------------------------------------- signals


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_exits_130_with_report_then_resumes(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGINT/SIGTERM mid-run: requests in flight finish, exit 130, a report where rows not
    done are pending, a message saying how to resume; the resume completes every row once
    with nothing in doubt."""
    state = _state(latency_ms=120)
    sns = [f"IN{i}" for i in range(60)]  # many: the run must outlast the signal
    _tickets(state, sns)
    src = write_csv(tmp_path / "t.csv", _rows(sns))
    args = ["run", str(src), "-c", "3", "--readback-delay", "0"]
    with SandboxThread(state) as server:
        env = _child_env(tmp_path, server.url)
        proc = _spawn(args, env, tmp_path)
        _wait_until("6 answers given", lambda: state.stats.operations_total >= 6, proc)
        proc.send_signal(sig)
        stopped = _finish(proc, timeout=30)

        assert stopped.code == 130, stopped.text
        assert f"interrupted by {sig.name}" in stopped.stderr
        assert f"interrupted by {sig.name}" not in stopped.stdout
        # The advice names the exact command that continues, on stderr.
        assert f"run: batchops {' '.join(args)}" in stopped.stderr
        report = read_report(tmp_path / "t.report.csv")
        statuses = Counter(r["status"] for r in report)
        assert set(statuses) == {"success", "pending"}, statuses
        assert statuses["success"] == state.stats.applied_total  # in-flight rows finished
        assert set(_row_states(tmp_path / "t.checkpoint.db").values()) == {"done", "queued"}
        reads = state.stats.requests.get("get_ticket_status", 0)
        server.call(lambda: state.set_faults(Faults()))  # the rest needs no latency

        again = _run(args, env, tmp_path)

        assert again.code == 0, again.text
        assert f"{statuses['success']} rows already done" in again.stdout
        assert "in doubt" not in again.stdout
        assert state.stats.requests.get("get_ticket_status", 0) == reads
    _assert_once_each(read_report(tmp_path / "t.report.csv"), state)


# --------------------------------------------------------------------------- batchops report


def test_report_from_checkpoint_during_and_after_a_run(tmp_path: Path) -> None:
    """`batchops report CHECKPOINT -o OUT` while the real run is sending shows done rows,
    rows being sent and rows still to do, without disturbing the run; afterwards it
    rebuilds exactly the run's own report."""
    state = _state(latency_ms=100)
    sns = [f"RP{i}" for i in range(80)]  # many: the run must outlast the report below
    _tickets(state, sns)
    src = write_csv(tmp_path / "t.csv", _rows(sns))
    ckpt = tmp_path / "t.checkpoint.db"
    with SandboxThread(state) as server:
        env = _child_env(tmp_path, server.url)
        proc = _spawn(["run", str(src), "-c", "2", "--readback-delay", "0"], env, tmp_path)

        def mid_run() -> bool:
            return state.stats.operations_total >= 6 and _operates_in_flight(state.stats) >= 1

        _wait_until("6 answers given and more in flight", mid_run, proc)
        during = run_cli(["report", str(ckpt), "-o", str(tmp_path / "progress.csv")])
        server.call(lambda: state.set_faults(Faults()))  # the rest of the run may be quick
        done = _finish(proc)

    assert during.exit_code == 0, during.stdout + during.stderr
    progress = read_report(tmp_path / "progress.csv")
    assert len(progress) == len(sns)
    statuses = Counter(r["status"] for r in progress)
    assert statuses["success"] >= 5 and statuses["pending"] >= 1, statuses  # mid-run
    assert set(statuses) <= {"success", "pending"}
    assert any("being sent" in r["message"] for r in progress if r["status"] == "pending")
    assert done.code == 0, done.text
    _assert_once_each(read_report(tmp_path / "t.report.csv"), state)

    after = run_cli(["report", str(ckpt), "-o", str(tmp_path / "after.csv")])
    assert after.exit_code == 0, after.stdout + after.stderr
    keep = ["sn", "status", "code", "message", "attempts", "request_id"]
    rebuilt = [{k: r[k] for k in keep} for r in read_report(tmp_path / "after.csv")]
    own = [{k: r[k] for k in keep} for r in read_report(tmp_path / "t.report.csv")]
    assert rebuilt == own
    conn = sqlite3.connect(ckpt)
    try:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 1  # report wrote nothing
    finally:
        conn.close()


# --------------------------------------------------------------------------- --retry-failed


def test_retry_failed_resends_failed_and_unknown_keeps_history(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """--retry-failed sends failed and unknown rows again (never invalid or successful
    ones) and keeps their earlier outcome in the checkpoint's history table."""
    sns = [f"RF{i}" for i in range(8)]
    # RF0 and RF3 (SUSPEND rows) are processed by someone else: ITSM refuses admin there.
    refused = {"RF0", "RF3"}
    seed(itsm, *(running(sn, "zhangsan" if sn in refused else "admin") for sn in sns))
    rows = [*_rows(sns), ["RF0", "admin", "TERMINATE", ""]]  # blank message: invalid
    src = write_csv(tmp_path / "t.csv", rows)
    # Seeded answers lost after the server applied them, one request at a time (the same
    # every run), and ticket reads refused: those rows cannot be read back, so unknown.
    itsm.call(
        lambda: itsm.state.set_faults(
            Faults(
                seed=4,
                lost_rate=0.4,
                lost_mode="drop",
                refused_apis=frozenset({"get_ticket_status"}),
            )
        )
    )
    args = ["run", str(src), "-c", "1", "--retries", "0", "--readback-delay", "0"]
    first = run_cli([*args, "--max-failures", "off"], creds_env(itsm.url))
    assert first.exit_code == 1, first.stdout + first.stderr
    # The advice names the command that resends them.
    resend = f"resend them with: batchops {' '.join(args)} --max-failures off --retry-failed"
    assert resend in first.stderr
    before = read_report(tmp_path / "t.report.csv")
    kinds = Counter(r["status"] for r in before)
    assert kinds["failed"] >= 1 and kinds["unknown"] >= 1 and kinds["success"] >= 1, kinds
    assert before[-1]["status"] == "invalid"
    again_rows = [i for i, r in enumerate(before) if r["status"] in ("failed", "unknown")]
    ops_before = Counter(op.sn for op in itsm.state.stats.operations)
    applied_before = _applied(itsm.state.stats.operations)

    itsm.call(lambda: itsm.state.set_faults(Faults()))
    seed(itsm, *(running(sn) for sn in refused))  # admin may now operate them
    retry = run_cli([*args, "--retry-failed"], creds_env(itsm.url))

    assert retry.exit_code == 1, retry.stdout + retry.stderr  # the invalid row remains
    assert f"{len(again_rows)} failed/unknown rows sent again" in retry.stdout
    after = read_report(tmp_path / "t.report.csv")
    # Unknown rows that had been applied after all: the pre-check sees it and skips them.
    landed = [applied_before[(sn, rows[i][2])] == 1 for i, sn in enumerate(sns)]
    expected = ["skipped" if i in again_rows and landed[i] else "success" for i in range(len(sns))]
    assert [r["status"] for r in after] == [*expected, "invalid"]
    ops_after = Counter(op.sn for op in itsm.state.stats.operations)
    for i, sn in enumerate(sns):
        resent = i in again_rows and not landed[i]
        assert ops_after[sn] - ops_before[sn] == (1 if resent else 0), sn
        assert _applied(itsm.state.stats.operations)[(sn, rows[i][2])] == 1, sn
    assert itsm.state.stats.double_suspends == 0
    store = Checkpoint.open_readonly(tmp_path / "t.checkpoint.db")
    try:
        for i in range(len(rows)):
            history = store.history(i)
            if i in again_rows:
                assert [(h[1], h[2]) for h in history] == [
                    (before[i]["status"], before[i]["message"])
                ], i
            else:
                assert history == [], i
    finally:
        store.close()


def test_retry_failed_keeps_a_tickets_rows_in_file_order(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """SUSPEND then UNSUSPEND of one ticket; ITSM refuses the SUSPEND (admin is not its
    processor), so the UNSUSPEND is skipped (ticket not suspended). --retry-failed must
    leave the ticket where the file leads it, RUNNING, with both rows applied in file
    order, not stuck SUSPENDED."""
    seed(itsm, running("RO1", "zhangsan"))
    src = write_csv(
        tmp_path / "t.csv",
        [["RO1", "admin", "SUSPEND", "pause"], ["RO1", "admin", "UNSUSPEND", "go on"]],
    )
    args = ["run", str(src), "-c", "1", "--retries", "0", "--readback-delay", "0"]
    first = run_cli(args, creds_env(itsm.url))
    assert first.exit_code == 1, first.stdout + first.stderr
    assert [r["status"] for r in read_report(tmp_path / "t.report.csv")] == ["failed", "skipped"]
    seed(itsm, running("RO1"))

    retry = run_cli([*args, "--retry-failed"], creds_env(itsm.url))

    assert retry.exit_code == 0, retry.stdout + retry.stderr
    assert [op.action for op in itsm.state.stats.operations if op.applied] == [
        "SUSPEND",
        "UNSUSPEND",
    ]
    assert itsm.state.tickets["RO1"].status == "RUNNING"
    assert [r["status"] for r in read_report(tmp_path / "t.report.csv")] == ["success"] * 2


def test_server_errors_leave_rows_pending_and_the_same_command_finishes(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """HTTP 503 on every operation is not ITSM refusing a row: nothing ends failed, the
    ticket's later row waits for the first (pending too), exit 3, and the same command,
    run once the server is well, applies both rows in file order."""
    seed(itsm, running("RO2"))
    src = write_csv(
        tmp_path / "t.csv",
        [["RO2", "admin", "SUSPEND", "pause"], ["RO2", "admin", "UNSUSPEND", "go on"]],
    )
    args = ["run", str(src), "-c", "1", "--retries", "0", "--readback-delay", "0"]
    itsm.call(lambda: itsm.state.set_faults(Faults(error_5xx_rate=1.0)))
    first = run_cli(args, creds_env(itsm.url))
    assert first.exit_code == 3, first.stdout + first.stderr
    assert [r["status"] for r in read_report(tmp_path / "t.report.csv")] == ["pending"] * 2
    assert f"run: batchops {' '.join(args)}" in first.stderr
    itsm.call(lambda: itsm.state.set_faults(Faults()))

    again = run_cli(args, creds_env(itsm.url))

    assert again.exit_code == 0, again.stdout + again.stderr
    assert [op.action for op in itsm.state.stats.operations if op.applied] == [
        "SUSPEND",
        "UNSUSPEND",
    ]
    assert itsm.state.tickets["RO2"].status == "RUNNING"
    assert [r["status"] for r in read_report(tmp_path / "t.report.csv")] == ["success"] * 2


# --------------------------------------------------------------------------- property


_ZYGOTE = r"""
import json, os, sys, traceback
import batchops.api, batchops.cli  # the CLI imports the API lazily: load both once
for line in sys.stdin:
    job = json.loads(line)
    if job["op"] == "run":
        pid = os.fork()
        if pid == 0:  # the child: one real CLI run, then gone
            code = 70
            try:
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
                for fd, name in ((1, "stdout"), (2, "stderr")):
                    os.dup2(os.open(job[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
                os.environ.clear()
                os.environ.update(job["env"])
                os.chdir(job["cwd"])
                sys.argv = ["batchops", *job["args"]]
                try:
                    batchops.cli.main(prog_name="batchops")
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            except BaseException:
                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        print(json.dumps({"pid": pid, "id": job["id"]}), flush=True)
    else:
        pid, status = os.waitpid(job["pid"], os.WNOHANG if job["op"] == "poll" else 0)
        code = os.waitstatus_to_exitcode(status) if pid else None
        print(json.dumps({"code": code, "id": job["id"]}), flush=True)
"""


@dataclass
class Child:
    """One CLI run forked by the :class:`Zygote`."""

    pid: int
    stdout: Path
    stderr: Path
    code: int | None = None


class Zygote:
    """A fork server: a child process that has imported batchops and forks one child per run.

    Each run is a real, separate process executing the CLI entry point
    (``batchops.cli.main``) and can be SIGKILLed like any other; only the interpreter
    start and the imports (most of a CLI's start-up) are paid once instead of per run,
    which keeps dozens of kill-and-resume runs within the suite's time budget.
    """

    def __init__(self) -> None:
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._runs = 0
        self._asked = 0

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        self._asked += 1
        proc.stdin.write(json.dumps({**message, "id": self._asked}) + "\n")
        proc.stdin.flush()
        while True:  # skip answers to questions an interrupted caller never read
            line = proc.stdout.readline()
            assert line, f"the fork server died (exit {proc.poll()})"
            answer: dict[str, Any] = json.loads(line)
            if answer.pop("id") == self._asked:
                return answer

    def start(self, args: Sequence[str], env: dict[str, str], cwd: Path) -> Child:
        self._runs += 1
        out, err = cwd / f"run{self._runs}.out", cwd / f"run{self._runs}.err"
        job = {"op": "run", "args": list(args), "env": env, "cwd": str(cwd)}
        pid = self._ask({**job, "stdout": str(out), "stderr": str(err)})["pid"]
        return Child(int(pid), out, err)

    def poll(self, child: Child) -> int | None:
        """The child's exit code once it has ended (reaping it), else None."""
        if child.code is None:
            child.code = self._ask({"op": "poll", "pid": child.pid})["code"]
        return child.code

    def wait(self, child: Child) -> Done:
        if child.code is None:
            child.code = int(self._ask({"op": "wait", "pid": child.pid})["code"])
        return Done(child.code, child.stdout.read_text(), child.stderr.read_text())

    def kill(self, child: Child) -> Done:
        if self.poll(child) is None:  # not reaped yet, so the pid is still this child's
            os.kill(child.pid, signal.SIGKILL)
        return self.wait(child)

    def close(self) -> None:
        proc = self._proc
        if proc.stdin is not None:
            proc.stdin.close()
            proc.stdin = None
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    """One :class:`Zygote` shared by the property test's examples."""
    server = Zygote()
    try:
        yield server
    finally:
        server.close()


@dataclass
class Scenario:
    """One random run: tickets, rows, the server's answer pattern and when to kill."""

    rows: list[tuple[int, str, str]]  # (ticket number, action, message)
    suspended: list[bool]  # per ticket: starts SUSPENDED
    faults: Faults
    concurrency: int
    retries: int
    kills: list[int] = field(default_factory=list)  # per run: SIGKILL at its k-th operate
    retry_failed: bool = False


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    tickets = draw(st.integers(1, 5))
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, tickets - 1),
                st.sampled_from(["SUSPEND", "UNSUSPEND", "WITHDRAW", "TERMINATE"]),
                st.sampled_from(["m", "m", "m", ""]),  # "" makes the row invalid
            ),
            min_size=1,
            max_size=10,
        )
    )
    faults = Faults(
        seed=draw(st.integers(0, 2**16)),
        latency_ms=draw(st.sampled_from([5.0, 30.0])),
        lost_rate=draw(st.sampled_from([0.0, 0.2, 0.5])),
        lost_mode="drop",
        error_5xx_rate=draw(st.sampled_from([0.0, 0.2])),
        backend_timeout_rate=draw(st.sampled_from([0.0, 0.2, 0.5])),
    )
    return Scenario(
        rows=rows,
        suspended=draw(st.lists(st.booleans(), min_size=tickets, max_size=tickets)),
        faults=faults,
        concurrency=draw(st.integers(1, 4)),
        retries=draw(st.integers(0, 1)),
        kills=draw(st.lists(st.integers(1, 8), min_size=1, max_size=3)),
        retry_failed=draw(st.booleans()),
    )


def _records_if_any(ckpt: Path) -> list[StoredRow]:
    """The checkpoint's rows; none if the run was killed before it set the file up."""
    try:
        store = Checkpoint.open_readonly(ckpt)
    except CheckpointError:
        return []
    try:
        return list(store.rows()) if store.binding() is not None else []
    finally:
        store.close()


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    # No shrinking: each example costs several runs, and a failure is reported as found
    # (shrinking could take minutes and hit the suite's 120 s timeout).
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_random_kills_and_answers_never_operate_a_row_twice(
    scenario: Scenario, zygote: Zygote
) -> None:
    """Random rows, answer patterns (lost answers, 503s, backend timeouts) and SIGKILL
    points: after the last run every row has one final outcome, a row that was final
    never changes, no row was applied twice, rows of a ticket were applied in file order,
    rows applied by a killed run are settled by read-back, and nothing was suspended twice."""
    with tempfile.TemporaryDirectory(prefix="batchops-prop-") as tmp:
        folder = Path(tmp)
        sns = [f"P{n}" for n in range(len(scenario.suspended))]
        operator = [f"u{i}" for i in range(len(scenario.rows))]  # one per row: op → row
        lines = [[sns[t], operator[i], a, m] for i, (t, a, m) in enumerate(scenario.rows)]
        src = write_csv(folder / "t.csv", lines)
        ckpt = folder / "t.checkpoint.db"
        state = SandboxState(
            SandboxConfig(app_code=APP_CODE, app_secret=SECRET, faults=scenario.faults)
        )
        for n, sn in enumerate(sns):
            mine = [operator[i] for i, row in enumerate(scenario.rows) if row[0] == n]
            withdraws = [
                operator[i] for i, r in enumerate(scenario.rows) if r[0] == n and r[1] == "WITHDRAW"
            ]
            state.seed_tickets(
                [
                    Ticket(
                        sn=sn,
                        status="SUSPENDED" if scenario.suspended[n] else "RUNNING",
                        creator=withdraws[0] if withdraws else "admin",
                        processors=mine or ["admin"],
                    )
                ]
            )
        args = [
            "run", str(src), "-c", str(scenario.concurrency), "--retries", str(scenario.retries),
            "--readback-delay", "0", "--timeout", "1", "--max-failures", "off", "-q",
            # The stand-in never applies a request later than it answers (or loses) it.
            "--server-timeout", "1", "--outage-wait", "5",
        ]  # fmt: skip
        final: dict[int, tuple[str, str]] = {}  # row → its outcome once done
        settled_by_read: set[int] = set()  # rows applied by a run that was then killed
        with SandboxThread(state) as server:
            env = _child_env(folder, server.url)
            for k in scenario.kills:
                seen = _operates(state)
                child = zygote.start(args, env, folder)
                deadline = time.monotonic() + 30
                while zygote.poll(child) is None and _operates(state) - seen < k:
                    assert time.monotonic() < deadline, "run neither ended nor reached k requests"
                    time.sleep(0.001)
                killed = zygote.kill(child)
                assert killed.code in (0, 1, 3, -signal.SIGKILL), killed.text
                _drain(state)
                records = _records_if_any(ckpt)
                applied_rows = {op.operator for op in state.stats.operations if op.applied}
                for rec in records:
                    if rec.state == "done":
                        outcome = (rec.outcome.status.value, rec.outcome.message)
                        assert final.setdefault(rec.index, outcome) == outcome, rec
                    elif rec.state == "sending" and operator[rec.index] in applied_rows:
                        settled_by_read.add(rec.index)
            last = zygote.wait(zygote.start(args, env, folder))
            for _ in range(8):
                # Exit 3: rows left pending because the server kept failing (503s are not
                # ITSM refusing a row); the same command goes on with them.
                if last.code != 3:
                    break
                last = zygote.wait(zygote.start(args, env, folder))
            assert last.code in (0, 1), last.text
            history: dict[int, list[tuple[int | None, str, str]]] = {}
            in_order = len(state.stats.operations)  # --retry-failed reorders (see its test)
            if scenario.retry_failed:
                server.call(lambda: state.set_faults(Faults()))
                retried = zygote.wait(zygote.start([*args, "--retry-failed"], env, folder))
                assert retried.code in (0, 1), retried.text
                store = Checkpoint.open_readonly(ckpt)
                try:
                    history = {i: store.history(i) for i in range(len(lines))}
                finally:
                    store.close()
            _drain(state)

        assert {rec.state for rec in _records_if_any(ckpt)} == {"done"}
        report = read_report(folder / "t.report.csv")
        assert len(report) == len(lines)
        applied = Counter(op.operator for op in state.stats.operations if op.applied)
        for i, r in enumerate(report):
            status = r["status"]
            assert status in ("success", "failed", "unknown", "skipped", "invalid"), r
            assert applied[operator[i]] <= 1, (i, r, state.stats.operations)
            # A plain "success" was the server's own answer, so it applied the row. (A
            # "success, confirmed by read-back" may also be a row whose lost answer was a
            # rejection, an earlier row having already brought the ticket there.)
            if status == "success" and "read-back" not in r["message"]:
                assert applied[operator[i]] == 1, (i, r)
            elif status in ("failed", "skipped", "invalid"):
                assert applied[operator[i]] == 0, (i, r)
            earlier = final.get(i)
            if earlier is not None:
                if history.get(i):
                    assert (history[i][0][1], history[i][0][2]) == earlier, (i, history[i])
                else:
                    assert (status, r["message"]) == earlier, (i, r, earlier)
            if i in settled_by_read:
                assert status == "success" and "read-back" in r["message"], (i, r)
        for sn in sns:  # a ticket's rows were applied in file order, across kills
            ops = state.stats.operations[:in_order]
            order = [int(op.operator[1:]) for op in ops if op.sn == sn and op.applied]
            assert order == sorted(order), (sn, order)
        assert state.stats.double_suspends == 0
        assert state.stats.concurrent_same_sn == 0


# --------------------------------------------------------------------------- no room left


def _limited(limit_bytes: int) -> Callable[[], None]:
    """preexec_fn: a file-size limit ('ulimit -f') in the child, SIGXFSZ ignored (as a
    shell with 'trap "" XFSZ' would), so writes past it fail instead of killing it."""

    def apply() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def test_checkpoint_out_of_room_stops_truthfully_and_the_same_command_finishes(
    tmp_path: Path,
) -> None:
    """A file-size limit the checkpoint outgrows mid-run: the run stops at once with one
    line naming the limit and the file, exit 3 (not 2: operations were sent), a report of
    what is known; the same command without the limit reads the in-flight rows back and
    finishes, every ticket operated exactly once."""
    rows = 1500
    state = _state(latency_ms=5)
    sns = [f"FS{i:05d}" for i in range(rows)]
    _tickets(state, sns)
    src = write_csv(tmp_path / "t.csv", _rows(sns))
    args = ["run", str(src), "-c", "4", "--timeout", "2", "--readback-delay", "0.1"]
    args += ["--server-timeout", "1"]  # the re-run reads back without a long wait
    with SandboxThread(state) as server:
        env = _child_env(tmp_path, server.url)
        proc = subprocess.Popen(
            [sys.executable, "-m", "batchops", *args],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_limited(400_000),
        )
        _CHILDREN.append(proc)
        stopped = _finish(proc, timeout=120)
        sent_first = state.stats.operations_total
        assert stopped.code == 3, stopped.text
        assert 0 < sent_first < rows, "the limit must be hit mid-run for this test to mean much"
        assert "Traceback" not in stopped.text
        (line,) = [x for x in stopped.stderr.splitlines() if "can no longer be written" in x]
        assert "file-size limit (400000 bytes" in line and "t.checkpoint.db" in line
        report = read_report(tmp_path / "t.report.csv")
        counts = Counter(r["status"] for r in report)
        assert set(counts) <= {"success", "pending"}, counts
        assert counts["success"] >= 1

        _drain(state)
        again = _run(args, env, tmp_path)
        assert again.code == 0, again.text
        _assert_once_each(read_report(tmp_path / "t.report.csv"), state)
        assert state.stats.operations_total == rows

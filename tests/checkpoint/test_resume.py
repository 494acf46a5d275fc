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

This file kills and signals runs; ``test_resume_refusals.py`` (checkpoints that do not
fit, ``batchops report``), ``test_resume_retry.py`` (``--retry-failed``, server errors,
a checkpoint out of room) and ``test_resume_property.py`` (random kills) do the rest,
with the helpers of ``children.py``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from batchops.sandbox import Faults, SandboxThread

from ..children import (
    READ_BACK,
    _applied,
    _assert_once_each,
    _child_env,
    _drain,
    _finish,
    _kill,
    _no_secret_in,
    _operates,
    _operates_in_flight,
    _row_states,
    _rows,
    _run,
    _spawn,
    _state,
    _tickets,
    _wait_until,
)
from ..helpers import read_report, write_csv

pytestmark = pytest.mark.usefixtures("no_child_left_behind")


def _ticket_reads(requests: Mapping[str, int]) -> int:
    """Status reads of either API (parked tickets are read back in batches)."""
    return int(requests.get("get_ticket_status", 0)) + int(requests.get("get_tickets", 0))


# --------------------------------------------------------------------------- SIGKILL


def test_kill_before_first_answer_settles_the_probe_by_read_back(tmp_path: Path) -> None:
    """SIGKILL while the very first request (no pre-check: the first operation, which goes
    alone) waits for its answer: the re-run reads that ticket back (one read),
    reports it "confirmed by read-back" without resending it, and sends every other row
    exactly once."""
    state = _state(latency_ms=1000)
    sns = [f"PB{i}" for i in range(10)]
    _tickets(state, sns)
    src = write_csv(tmp_path / "t.csv", _rows(sns))
    ckpt = tmp_path / ".batchops" / "t.checkpoint.db"
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
        reads = _ticket_reads(state.stats.requests)

        again = _run(args, env, tmp_path)

        assert again.code == 0, again.text
        assert "1 in doubt (read back before any resend)" in again.stdout
        assert _ticket_reads(state.stats.requests) - reads == 1
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
    ckpt = tmp_path / ".batchops" / "t.checkpoint.db"
    env = _child_env(tmp_path, url, secret="sandbox-secret")  # python -m batchops.sandbox's
    env["BK_APP_CODE"] = "batchops-sandbox"
    # The stand-in answers within 200 ms: a row marked "sending" whose request never left
    # (killed in between) need not stay parked for the default 5 minutes.
    args = ["run", str(src), "-c", "6", "--readback-delay", "0", "--timeout", "2"]
    args += ["--server-timeout", "5"]
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
    # Parked rows are read back in batches: at least one read, whatever their number.
    assert _ticket_reads(after["requests"]) > _ticket_reads(before["requests"])
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
        states = _row_states(tmp_path / ".batchops" / "t.checkpoint.db")
        in_doubt = {i for i, s in states.items() if s == "sending"}
        assert all(states[i] in ("done", "sending") for i in range(len(sns)))
        reads = _ticket_reads(state.stats.requests)

        again = _run(args, env, tmp_path)

        assert again.code == 1, again.text  # the invalid rows
        assert (_ticket_reads(state.stats.requests) > reads) == bool(in_doubt)
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
        assert set(_row_states(tmp_path / ".batchops" / "t.checkpoint.db").values()) == {
            "done",
            "queued",
        }
        reads = state.stats.requests.get("get_ticket_status", 0)
        server.call(lambda: state.set_faults(Faults()))  # the rest needs no latency

        again = _run(args, env, tmp_path)

        assert again.code == 0, again.text
        assert f"{statuses['success']} rows already done" in again.stdout
        assert "in doubt" not in again.stdout
        assert state.stats.requests.get("get_ticket_status", 0) == reads
    _assert_once_each(read_report(tmp_path / "t.report.csv"), state)

"""The guarantees hostile testing attacked: no double suspend, no secret sent or kept astray.

Each test plays a server that misbehaves in one way (slower than the timeout, unreadable,
redirecting, echoing the request, failing while a signal arrives) over loopback and
checks what the server saw and what batchops wrote: every file and both streams.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

from batchops.sandbox import SandboxThread

from ..helpers import (
    SECRET,
    LoopbackServer,
    applied_suspends,
    cli,
    creds_env,
    envelope,
    host_env,
    read_report,
    report_of,
    rows_for,
    run_cli,
    tickets,
    write_csv,
)

# --------------------------------------------------------------------------- slow backend


def test_backend_slower_than_the_timeout_never_gets_a_second_suspend(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """operate_ticket takes 2.5 s, batchops waits 2 s: every answer is lost, yet the read-back
    keeps reading until the SUSPEND shows (it cannot prove "not applied" before the
    gateway's backend time is up), so every ticket is suspended exactly once."""
    sns = [f"SL{i}" for i in range(20)]
    server = stand_in(tickets("SL", 20), operate_latency_ms=2500)
    src = write_csv(tmp_path / "t.csv", rows_for(sns))
    out = cli(server, src, "--timeout", "2", "--readback-delay", "0.1", "-c", "20")
    assert out.exit_code == 0, out.stdout + out.stderr
    assert applied_suspends(server) == Counter(sns)
    assert server.state.stats.double_suspends == 0
    assert server.state.stats.operations_total == len(sns)
    report = report_of(src)
    assert {r["status"] for r in report} == {"success"}
    assert all("confirmed by read-back" in r["message"] for r in report)


def test_a_lost_answer_is_resent_only_after_the_server_timeout(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """An answer lost for a request that did not run: the ticket reads unchanged, and the
    SUSPEND is sent again only once --server-timeout has passed since it left."""
    server = stand_in(tickets("LT", 1), lost_rate=1.0, lost_mode="drop", seed=3)
    src = write_csv(tmp_path / "t.csv", [["LT0", "nobody", "SUSPEND", "m"]])
    started = time.monotonic()
    out = cli(server, src, "--server-timeout", "2", "--retries", "1", "--no-precheck")
    elapsed = time.monotonic() - started
    ops = server.state.stats.operations
    # The operator may not operate the ticket: nothing applies, every answer is lost.
    assert [op.applied for op in ops] == [False, False], ops
    assert ops[1].t - ops[0].t >= 2.0, [op.t for op in ops]
    # Never known to be refused (every answer was lost), never applied: not done.
    assert out.exit_code == 3, out.stdout + out.stderr
    assert [r["status"] for r in report_of(src)] == ["pending"]
    assert elapsed < 30


# --------------------------------------------------------------------------- unreadable statuses


@pytest.mark.parametrize("fault", ["503", "timeout"])
def test_unreadable_statuses_send_no_suspend(
    stand_in: Callable[..., SandboxThread], tmp_path: Path, fault: str
) -> None:
    """Status reads answer 503 (or never within --timeout): the run stops before sending
    (exit 3), says on stderr how many tickets could not be read and why, and not one
    SUSPEND reaches the server."""
    sns = [f"UR{i}" for i in range(30)]
    faults = (
        {"error_5xx_rate": 1.0, "faults_on_reads": True}
        if fault == "503"
        else {"latency_ms": 1500.0}
    )
    server = stand_in(tickets("UR", 30, "SUSPENDED"), **faults)
    src = write_csv(tmp_path / "t.csv", rows_for(sns))
    # (A mix, where some tickets are read and only SUSPEND tickets are not, is the next test.)
    out = cli(server, src, "--timeout", "1", "-c", "30")
    assert out.exit_code == 3, out.stdout + out.stderr
    assert server.state.stats.operations_total == 0
    assert "could not read any of 30 tickets" in out.stderr
    assert {r["status"] for r in report_of(src)} == {"pending"}
    assert server.state.stats.double_suspends == 0


def test_unreadable_suspend_tickets_stop_even_when_others_were_read(tmp_path: Path) -> None:
    """Status reads fail for two tickets only (the rest read fine): their SUSPEND rows are
    never sent blind; the run stops before sending anything, naming how many and why."""

    def handler(request: web.Request, body: bytes) -> web.Response:
        if "get_tickets" in request.path:
            return web.Response(status=503, text="busy")
        if "get_ticket_status" in request.path:
            sn = request.query["sn"]
            if sn in ("MX1", "MX2"):
                return web.Response(status=503, text="busy")
            return envelope(data={"current_status": "RUNNING"})
        if "/itsm/" not in request.path:
            return web.Response(status=404)
        return envelope()

    rows = rows_for(["MX0", "MX1", "MX2", "MX3"])
    src = write_csv(tmp_path / "t.csv", rows)
    with LoopbackServer(handler) as server:
        out = run_cli(["run", str(src), "--yes"], creds_env(server.url))
        operations = [r for r in server.requests if "operate_ticket" in r[1]]
    assert out.exit_code == 3, out.stdout + out.stderr
    assert operations == []
    assert "could not read the status of 2 tickets with SUSPEND rows" in out.stderr
    assert {r["status"] for r in report_of(src)} == {"pending"}


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("gateway", ["esb", "apigw"])
@pytest.mark.parametrize("precheck", ["--precheck", "--no-precheck"])
def test_a_redirect_never_carries_the_secret_away(
    tmp_path: Path, gateway: str, precheck: str
) -> None:
    """The target answers 307/308 towards another host: that host receives nothing, the
    run stops (exit 3) and says which --base-url the redirect pointed at."""
    with LoopbackServer(lambda request, body: envelope()) as elsewhere:

        def redirect(request: web.Request, body: bytes) -> web.Response:
            status = 307 if request.method == "POST" else 308
            return web.Response(status=status, headers={"Location": elsewhere.url + request.path})

        with LoopbackServer(redirect) as target:
            src = write_csv(tmp_path / "t.csv", rows_for(["RD1", "RD2"]))
            out = run_cli(
                ["run", str(src), "--yes", "--gateway", gateway, precheck],
                creds_env(target.url),
            )
            assert out.exit_code == 3, out.stdout + out.stderr
            assert elsewhere.requests == []
            assert any(SECRET.encode() in body or SECRET in str(headers)
                       for _, _, headers, body in target.requests)  # fmt: skip
            assert f"set --base-url to {elsewhere.url}" in out.stderr
            assert {r["status"] for r in report_of(src)} == {"pending"}


# --------------------------------------------------------------------------- echoes


def _echo(request: web.Request, body: bytes) -> web.Response:
    """A server that repeats the request back in every field it can."""
    echo = f"{request.path_qs} {dict(request.headers)} {body.decode('utf-8', 'replace')}"
    if "get_tickets" in request.path:
        sns = json.loads(body)["sns"]
        items = [{"sn": sn, "current_status": "RUNNING"} for sn in sns]
        return envelope(data={"items": items}, request_id=echo)
    if "get_ticket_status" in request.path:
        return envelope(data={"current_status": "RUNNING"}, request_id=echo)
    sn = json.loads(body)["sn"]
    if sn == "E-STOP":
        return envelope(1306000, f"app authentication failed: {echo}", request_id=echo)
    return envelope(3900004, f"rejected: {echo}", request_id=echo)


@pytest.mark.parametrize("gateway", ["esb", "apigw"])
def test_an_echoing_server_leaves_the_secret_in_no_file_and_no_stream(
    tmp_path: Path, gateway: str
) -> None:
    """Every answer repeats the request (body, headers, query) in its message and request
    id, and the last one is an authentication stop: the secret is in none of the report
    (CSV and XLSX), failures file, summary JSON, checkpoint, stdout or stderr."""
    rows = [[f"E{i}", "admin", "SUSPEND", "m"] for i in range(6)] + [
        ["E-STOP", "admin", "SUSPEND", "m"]
    ]
    src = write_csv(tmp_path / "t.csv", rows)
    with LoopbackServer(_echo) as server:
        outs = []
        for n, (suffix, extra) in enumerate([("csv", []), ("xlsx", ["--log-json"])]):
            args = ["run", str(src), "--yes", "--gateway", gateway, "-c", "1", *extra]
            args += ["--output", str(tmp_path / f"r{n}.{suffix}")]
            args += ["--failures", str(tmp_path / f"f{n}.{suffix}")]
            args += ["--summary-json", str(tmp_path / f"s{n}.json")]
            args += ["--checkpoint", str(tmp_path / f"c{n}.db")]
            outs.append(run_cli(args, creds_env(server.url)))
        assert any(SECRET.encode() in body or SECRET in str(headers)
                   for _, _, headers, body in server.requests)  # fmt: skip
    for out in outs:
        assert out.exit_code == 3, out.stdout + out.stderr
        assert SECRET not in out.stdout + out.stderr
    files = [p for p in tmp_path.iterdir() if p.is_file()]
    assert len(files) >= 8, files
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    report = read_report(tmp_path / "r0.csv")
    assert any("***" in r["message"] for r in report)


# --------------------------------------------------------------------------- stop means stop


def test_sigterm_during_backoff_stops_within_seconds(tmp_path: Path) -> None:
    """Every operation answers 503, so the row waits in backoff; SIGTERM then ends the run
    with exit 130 within 15 s, no request leaves more than 1 s after the signal, and the
    row is pending (not sent twice, not failed), ready for the same command."""
    from batchops.sandbox import Faults, SandboxConfig, SandboxState

    from ..helpers import APP_CODE

    state = SandboxState(
        SandboxConfig(app_code=APP_CODE, app_secret=SECRET, faults=Faults(error_5xx_rate=1.0))
    )
    state.seed_tickets(tickets("BO", 1))
    src = write_csv(tmp_path / "t.csv", rows_for(["BO0"]))
    with SandboxThread(state) as server:
        env = host_env()
        env.update(creds_env(server.url), XDG_CONFIG_HOME=str(tmp_path))
        proc = subprocess.Popen(
            [sys.executable, "-m", "batchops", "run", str(src), "--retries", "20"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while state.stats.operations_total < 4:  # backoff now 2-3 s and growing
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - signalled
        assert proc.returncode == 130, out + err
        assert took < 15
        late = [op for op in state.stats.operations if op.t > signalled + 1.0]
        assert late == []
    assert [r["status"] for r in report_of(src)] == ["pending"]
    assert "interrupted by SIGTERM" in out + err


# --------------------------------------------------------------------------- resources


def test_high_concurrency_under_a_low_open_files_limit_is_no_traceback(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """-c 1000 with 'ulimit -n 200' (hard): the connection pool stays within what the
    process may open, the run completes, and there is no traceback."""
    sns = [f"FD{i}" for i in range(300)]
    itsm.state.seed_tickets(tickets("FD", 300))
    src = write_csv(tmp_path / "t.csv", rows_for(sns))

    def low_limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))

    env = host_env()
    env.update(creds_env(itsm.url), XDG_CONFIG_HOME=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "batchops", "run", str(src), "-c", "1000", "-q"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=low_limit,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    assert Counter(r["status"] for r in report_of(src)) == {"success": 300}


# --------------------------------------------------------------------------- reports fed back


def test_a_fixed_row_before_a_done_suspend_is_not_a_second_suspend(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """Row 2 was invalid (no message), row 3 suspended the ticket. Fixing row 2 and feeding
    the report back, even without the pre-check, sends no second SUSPEND: row 2 repeats
    the done row 3, and row 3 keeps its success."""
    from ..helpers import running, seed

    seed(itsm, running("FB1"))
    src = write_csv(
        tmp_path / "t.csv", [["FB1", "admin", "SUSPEND", ""], ["FB1", "admin", "SUSPEND", "x"]]
    )
    assert run_cli(["run", str(src)], creds_env(itsm.url)).exit_code == 1
    report = tmp_path / "t.report.csv"
    report.write_text(
        report.read_text(encoding="utf-8-sig").replace(
            "FB1,admin,SUSPEND,,", "FB1,admin,SUSPEND,y,"
        ),
        encoding="utf-8-sig",
    )

    again = run_cli(["run", str(report), "--no-precheck"], creds_env(itsm.url))

    assert applied_suspends(itsm)["FB1"] == 1, again.stderr
    rows = read_report(tmp_path / "t.report-2.csv")
    assert rows[0]["status"] == "invalid"
    assert rows[0]["message"].startswith("repeats SUSPEND of row 3 for the same sn")
    assert rows[1]["status"] == "success"

"""When the environment fails: unreachable targets, outages mid-run, hostile answers.

The rule under test: a row ends ``failed`` only when ITSM answered and refused it. A
refused port, an unknown host, a server that goes away and comes back, a Retry-After of
years or a body no parser can read never spend rows: batchops stops or waits as a whole,
says why on stderr, and the same command finishes the work.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

from batchops.sandbox import SandboxThread

from ..helpers import (
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ops_per_sn(server: SandboxThread) -> Counter[str]:
    return Counter(op.sn for op in server.state.stats.operations)


# --------------------------------------------------------------------------- unreachable


@pytest.mark.parametrize("precheck", ["--precheck", "--no-precheck"])
def test_a_refused_port_stops_in_seconds_with_nothing_failed(tmp_path: Path, precheck: str) -> None:
    """Nothing listens on the port: exit 3 within seconds, every row pending, and stderr
    names the address, the cause and what to check."""
    src = write_csv(tmp_path / "t.csv", rows_for([f"RP{i}" for i in range(30)]))
    url = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    out = run_cli(["run", str(src), "--yes", precheck], creds_env(url))
    assert time.monotonic() - started < 10
    assert out.exit_code == 3, out.stdout + out.stderr
    assert {r["status"] for r in report_of(src)} == {"pending"}
    text = out.stderr
    assert f"cannot reach ITSM at {url}" in text
    assert "connection refused" in text
    assert "--base-url" in out.stderr and "HTTPS_PROXY" in out.stderr


def test_plan_with_an_address_checks_it_too(tmp_path: Path) -> None:
    """`plan` with an unreachable address says so (exit 3) instead of pre-checking nothing."""
    src = write_csv(tmp_path / "t.csv", rows_for(["PL1"]))
    out = run_cli(["plan", str(src)], creds_env(f"http://127.0.0.1:{_free_port()}"))
    assert out.exit_code == 3, out.stdout + out.stderr
    assert "cannot reach ITSM" in out.stderr


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_an_unresolvable_host_stops_in_seconds(tmp_path: Path) -> None:
    """An unknown host name: exit 3 within seconds, nothing failed. The run happens in a
    network namespace of its own with no network at all, so no DNS query leaves this
    machine."""
    src = write_csv(tmp_path / "t.csv", rows_for(["DN1", "DN2"]))
    env = host_env()
    env.update(creds_env("http://itsm.batchops-test.invalid"), XDG_CONFIG_HOME=str(tmp_path))
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("cannot make a network namespace here")
    started = time.monotonic()
    done = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "batchops", "run", str(src), "--yes"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert time.monotonic() - started < 15
    assert done.returncode == 3, done.stdout + done.stderr
    assert "DNS lookup failed for itsm.batchops-test.invalid" in done.stderr
    assert {r["status"] for r in report_of(src)} == {"pending"}


# --------------------------------------------------------------------------- outages mid-run


def _outage_after(
    server: SandboxThread, operations: int, seconds: float | None
) -> threading.Thread:
    """Take the server down once it has answered ``operations`` operations; bring it back
    ``seconds`` later (never, for None)."""

    def run() -> None:
        deadline = time.monotonic() + 60
        while server.state.stats.operations_total < operations and time.monotonic() < deadline:
            time.sleep(0.005)
        server.go_down()
        if seconds is not None:
            time.sleep(seconds)
            server.come_back()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_an_eight_second_outage_is_waited_out_and_every_row_succeeds_once(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """300 SUSPEND rows; the server refuses connections and drops open ones for 8 s, then
    comes back on the same port: the run waits, says so on stderr, reads back what was in
    flight, and ends exit 0 with every ticket suspended exactly once."""
    sns = [f"OU{i}" for i in range(300)]
    server = stand_in(tickets("OU", 300), latency_ms=20)
    src = write_csv(tmp_path / "t.csv", rows_for(sns))
    outage = _outage_after(server, 60, 8.0)
    # The stand-in applies a request within its latency: a lost one can no longer land
    # two seconds after it left.
    out = cli(server, src, "-c", "10", "--server-timeout", "2")
    outage.join(5)
    assert out.exit_code == 0, out.stdout + out.stderr
    assert "ITSM unreachable since" in out.stderr
    assert "answers again" in out.stderr
    assert {r["status"] for r in report_of(src)} == {"success"}
    assert applied_suspends(server) == Counter(sns)
    assert server.state.stats.double_suspends == 0
    # Rows never count an outage as theirs: no row needed more than a couple of attempts.
    assert max(int(r["attempts"]) for r in report_of(src)) <= 3


def test_an_outage_longer_than_outage_wait_stops_and_the_same_command_finishes(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """The server stays away past --outage-wait: exit 3, no row failed, stderr says since
    when and that the same command continues; that command, once the server is back,
    ends exit 0 with every ticket suspended exactly once."""
    sns = [f"OL{i}" for i in range(120)]
    server = stand_in(tickets("OL", 120), latency_ms=20)
    src = write_csv(tmp_path / "t.csv", rows_for(sns))
    args = ["-c", "8", "--server-timeout", "2", "--outage-wait", "3"]
    outage = _outage_after(server, 30, None)
    first = cli(server, src, *args)
    outage.join(5)
    assert first.exit_code == 3, first.stdout + first.stderr
    assert "ITSM unreachable since" in first.stderr
    assert "longer than --outage-wait 3 s" in first.stderr
    statuses = Counter(r["status"] for r in report_of(src))
    assert set(statuses) <= {"success", "pending"}, statuses
    assert statuses["pending"] > 0
    assert "to continue" in first.stderr and f"run: batchops run {src}" in first.stderr

    server.come_back()
    again = cli(server, src, *args)

    assert again.exit_code == 0, again.stdout + again.stderr
    assert {r["status"] for r in report_of(src)} == {"success"}
    assert applied_suspends(server) == Counter(sns)
    assert server.state.stats.double_suspends == 0


# --------------------------------------------------------------------------- hostile answers


def _reads_running(request: web.Request, body: bytes) -> web.Response | None:
    """Pre-check reads: every ticket RUNNING; the probe of the base URL: a 404."""
    if "get_tickets" in request.path:
        import json

        sns = json.loads(body)["sns"]
        return envelope(data={"items": [{"sn": sn, "current_status": "RUNNING"} for sn in sns]})
    if "/itsm/" not in request.path:
        return web.Response(status=404)
    return None


def test_a_retry_after_of_years_stops_within_outage_wait(tmp_path: Path) -> None:
    """429 with Retry-After: 999999999 on every operation: shown and bounded; the run stops
    (exit 3, resumable) within --outage-wait plus a few seconds, no row failed."""

    def handler(request: web.Request, body: bytes) -> web.Response:
        read = _reads_running(request, body)
        if read is not None:
            return read
        return web.json_response(
            {"result": False, "code": 1642902, "message": "rate limited", "data": None},
            status=429,
            headers={"Retry-After": "999999999"},
        )

    src = write_csv(tmp_path / "t.csv", rows_for(["RA1", "RA2", "RA3"]))
    with LoopbackServer(handler) as server:
        started = time.monotonic()
        out = run_cli(
            ["run", str(src), "--yes", "--gateway", "apigw", "--outage-wait", "4"],
            creds_env(server.url),
        )
        took = time.monotonic() - started
    assert out.exit_code == 3, out.stdout + out.stderr
    assert took < 4 + 6
    assert "longer than --outage-wait 4 s" in out.stderr
    assert {r["status"] for r in report_of(src)} == {"pending"}


def test_a_code_no_column_can_hold_fails_the_row_not_the_run(tmp_path: Path) -> None:
    """operate_ticket answers a 31-digit code: the row fails naming it, and the report and
    the checkpoint are written (exit 1), where a 64-bit column used to overflow."""
    huge = 10**30

    def handler(request: web.Request, body: bytes) -> web.Response:
        read = _reads_running(request, body)
        if read is not None:
            return read
        return web.json_response({"result": False, "code": huge, "message": "odd", "data": None})

    src = write_csv(tmp_path / "t.csv", rows_for(["BIG1", "BIG2"]))
    with LoopbackServer(handler) as server:
        out = run_cli(["run", str(src), "--yes"], creds_env(server.url))
    assert out.exit_code == 1, out.stdout + out.stderr
    report = report_of(src)
    assert [(r["status"], r["code"]) for r in report] == [("failed", "")] * 2
    assert all(r["message"] == f"odd (code {huge})" for r in report)
    again = run_cli(["status", str(tmp_path / ".batchops" / "t.checkpoint.db")])
    assert again.exit_code == 0, again.stdout + again.stderr


def test_a_deeply_nested_answer_is_in_doubt_not_a_traceback(tmp_path: Path) -> None:
    """A body of 100,000 nested brackets: no parser reads it, so the row is in doubt and
    read back (here: the ticket shows SUSPENDED, so success), never a crash."""
    operated: list[bool] = []

    def handler(request: web.Request, body: bytes) -> web.Response:
        if operated and "get_ticket" in request.path:
            # After the operation (whatever its answer said) the ticket is SUSPENDED.
            if "get_tickets" in request.path:
                item = {"sn": "NJ1", "current_status": "SUSPENDED"}
                return envelope(data={"items": [item]})
            return envelope(data={"current_status": "SUSPENDED"})
        read = _reads_running(request, body)
        if read is not None:
            return read
        operated.append(True)
        return web.Response(body=b"[" * 100_000 + b"]" * 100_000, content_type="application/json")

    src = write_csv(tmp_path / "t.csv", rows_for(["NJ1"]))
    with LoopbackServer(handler) as server:
        out = run_cli(["run", str(src), "--yes", "--readback-delay", "0"], creds_env(server.url))
    assert "Traceback" not in out.stdout + out.stderr
    assert out.exit_code == 0, out.stdout + out.stderr
    (row,) = report_of(src)
    assert row["status"] == "success"
    assert "confirmed by read-back" in row["message"]


def test_http_500_on_every_request_is_an_outage_not_row_failures(tmp_path: Path) -> None:
    """Every operation and ticket read answers HTTP 500: not one row ends failed; the run
    waits --outage-wait, then stops with exit 3 and every row pending."""

    def handler(request: web.Request, body: bytes) -> web.Response:
        if "get_tickets" in request.path or "/itsm/" not in request.path:
            return _reads_running(request, body) or web.Response(status=404)
        return web.Response(status=500, text="Internal Server Error")

    src = write_csv(tmp_path / "t.csv", rows_for([f"H{i}" for i in range(12)], "TERMINATE"))
    with LoopbackServer(handler) as server:
        out = run_cli(
            ["run", str(src), "--yes", "--outage-wait", "3", "-c", "4"], creds_env(server.url)
        )
    assert out.exit_code == 3, out.stdout + out.stderr
    statuses = {r["status"] for r in read_report(src.with_name("t.report.csv"))}
    assert "failed" not in statuses
    assert statuses <= {"pending", "unknown"}
    assert "ITSM unreachable since" in out.stderr


# --------------------------------------------------------------------------- advice


def test_a_wrong_secret_says_which_credential_from_where_before_any_rerun(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """The gateway refuses the app secret: exit 3, and stderr says to fix the credentials
    first and where each came from (the variable a profile named, the profile file), not
    merely "run the same command again"."""
    itsm.state.seed_tickets(tickets("WS", 2))
    config = tmp_path / "ops.toml"
    config.write_text(
        '[profiles.prod]\napp_code = "batchops-sandbox"\nsecret_env = "PROD_BK_SECRET"\n',
        encoding="utf-8",
    )
    src = write_csv(tmp_path / "t.csv", rows_for(["WS0", "WS1"]))
    env = creds_env(itsm.url, PROD_BK_SECRET="not-the-secret")
    del env["BK_APP_SECRET"], env["BK_APP_CODE"]
    out = run_cli(["run", str(src), "--yes", "--config", str(config), "--profile", "prod"], env)
    assert out.exit_code == 3, out.stdout + out.stderr
    assert itsm.state.stats.operations_total == 0
    fix = out.stderr.split("fix this first: ", 1)[1]
    assert "the environment variable PROD_BK_SECRET" in fix
    assert f"profile prod ({config})" in fix
    assert "not-the-secret" not in out.stdout + out.stderr
    assert out.stderr.index("fix this first") < out.stderr.index("to continue")

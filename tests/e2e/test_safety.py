"""Safety of a bulk run against a misbehaving server: faults in, every row accounted for.

The end-to-end tests run the real CLI (in-process, via :func:`tests.helpers.run_cli`)
over loopback HTTP against the stand-in ITSM with injected faults, and then read the
stand-in's own counters and operation log: what the server saw is the proof, not what
batchops says about itself. The executor's own tests, over an in-memory transport, are
in ``test_executor.py``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from batchops.sandbox import Faults, SandboxThread, Ticket

from ..helpers import (
    FAST,
    applied_suspends,
    cli,
    creds_env,
    read_report,
    report_of,
    rows_for,
    run_cli,
    ticket,
    tickets,
    total_requests,
    write_csv,
)

# --------------------------------------------------------------------------- transient faults


def test_503s_are_retried_until_every_row_succeeds(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """25% HTTP 503: every row ends success, resends are counted in 'attempts'."""
    sns = [f"R{i}" for i in range(40)]
    server = stand_in(tickets("R", 40), error_5xx_rate=0.25, seed=1)
    src = write_csv(tmp_path / "t.csv", rows_for(sns))
    out = cli(server, src, "--concurrency", "4", "--retries", "8")
    assert out.exit_code == 0, out.stdout + out.stderr
    report = report_of(src)
    assert {r["status"] for r in report} == {"success"}
    attempts = [int(r["attempts"]) for r in report]
    assert max(attempts) > 1
    stats = server.state.stats
    assert stats.faults_injected["error_5xx"] > 0
    # each attempt is one operate_ticket at the server, and only one of them applied
    assert sum(attempts) == stats.operations_total
    assert applied_suspends(server) == Counter(sns)
    assert stats.double_suspends == 0


@pytest.mark.parametrize("gateway", ["esb", "apigw"])
def test_rate_limits_are_waited_out_by_the_whole_run(
    stand_in: Callable[..., SandboxThread], tmp_path: Path, gateway: str
) -> None:
    """20% rate limits (HTTP 200 + 1642902 on the ESB, 429 on the gateway): all success.

    (That the stand-in answers each gateway's way is checked in test_client.py.)

    After a rate-limit answer the whole run waits the reset time (1 s here), not only the
    worker that got it: no operation reaches the server in the middle of that second.
    """
    sns = [f"L{i}" for i in range(12)]
    latency_s = 0.04  # keeps the other workers busy while one waits out a rate limit
    server = stand_in(tickets("L", 12), rate_limit_rate=0.2, seed=7, latency_ms=latency_s * 1000)
    src = write_csv(tmp_path / "t.csv", rows_for(sns))
    out = cli(server, src, "--gateway", gateway, "--concurrency", "3", "--retries", "8")
    assert out.exit_code == 0, out.stdout + out.stderr
    report = report_of(src)
    assert {r["status"] for r in report} == {"success"}
    assert max(int(r["attempts"]) for r in report) > 1
    ops = server.state.stats.operations
    limited = [op.t for op in ops if op.code == 1642902]
    assert limited
    for t0 in limited:
        # requests already on their way when the answer came are logged by t0 + latency
        inside = [op for op in ops if t0 + latency_s + 0.2 < op.t < t0 + 0.9]
        assert not inside, f"sent during the pause after a rate limit: {inside}"
    assert applied_suspends(server) == Counter(sns)


@pytest.mark.parametrize(("mode", "precheck"), [("hang", "--precheck"), ("drop", "--no-precheck")])
def test_lost_answers_are_confirmed_by_read_back(
    stand_in: Callable[..., SandboxThread], tmp_path: Path, mode: str, precheck: str
) -> None:
    """20% of answers lost after the action ran: success by read-back, never a double suspend."""
    sns = [f"H{i}" for i in range(24)]
    server = stand_in(tickets("H", 24), lost_rate=0.2, lost_mode=mode, lost_hang_s=3.0, seed=11)
    rows = rows_for(sns[:12])
    for sn in sns[12:18]:  # suspend and resume: read-back must judge each in turn
        rows += [[sn, "admin", "SUSPEND", "s"], [sn, "admin", "UNSUSPEND", "u"]]
    rows += rows_for(sns[18:], "TERMINATE")
    src = write_csv(tmp_path / "t.csv", rows)
    started = time.monotonic()
    out = cli(server, src, "--timeout", "1", "--concurrency", "6", precheck)
    elapsed = time.monotonic() - started
    assert out.exit_code == 0, out.stdout + out.stderr
    report = report_of(src)
    assert {r["status"] for r in report} == {"success"}
    confirmed = [r for r in report if "confirmed by read-back" in r["message"]]
    stats = server.state.stats
    lost = stats.faults_injected.get("lost", 0)
    assert lost > 0
    assert len(confirmed) >= lost  # (more only if a loaded machine also timed out)
    assert stats.double_suspends == 0
    assert applied_suspends(server) == Counter(sns[:18])
    assert all(server.state.tickets[sn].status == "SUSPENDED" for sn in sns[:12])
    assert all(server.state.tickets[sn].status == "RUNNING" for sn in sns[12:18])
    assert all(server.state.tickets[sn].status == "TERMINATED" for sn in sns[18:])
    if mode == "hang":
        assert elapsed < 3.0  # --timeout 1 cut every 3 s hang short


@pytest.mark.parametrize("gateway", ["esb", "apigw"])
def test_backend_timeouts_are_read_back_never_blindly_resent(
    stand_in: Callable[..., SandboxThread], tmp_path: Path, gateway: str
) -> None:
    """1306201 / 504 timeouts, applied or not: read back, then success or a resend.

    Every timeout is followed by exactly one read of that ticket (reads are not faulted
    here), and every SUSPEND is applied exactly once.
    """
    sns = [f"B{i}" for i in range(30)]
    server = stand_in(tickets("B", 30), backend_timeout_rate=0.3, seed=5)
    src = write_csv(tmp_path / "t.csv", rows_for(sns))
    # The stand-in answers its timeouts at once and never applies late, so the smallest
    # --server-timeout there is (1 s) is enough here.
    out = cli(
        server,
        src,
        *("--gateway", gateway, "--concurrency", "5", "--retries", "8"),
        *("--server-timeout", "1"),
    )
    assert out.exit_code == 0, out.stdout + out.stderr
    report = report_of(src)
    assert {r["status"] for r in report} == {"success"}
    stats = server.state.stats
    code = 1306201 if gateway == "esb" else 1650401
    timeouts = [op for op in stats.operations if op.code == code]
    applied = {op.sn for op in timeouts if op.applied}
    not_applied = {op.sn for op in timeouts if not op.applied}
    assert applied and not_applied
    # Read back after the timeouts (parked tickets are read in batches, beside the
    # pre-check's one get_tickets call).
    assert stats.requests.get("get_ticket_status", 0) + stats.requests["get_tickets"] > 1
    by_sn = {r["sn"]: r for r in report}
    for sn in applied:
        assert "confirmed by read-back" in by_sn[sn]["message"]
    for sn in not_applied - applied:
        assert int(by_sn[sn]["attempts"]) >= 2
    assert applied_suspends(server) == Counter(sns)
    assert stats.double_suspends == 0


def test_timeout_with_unreadable_ticket_is_unknown_and_never_resent(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """Backend timeouts on every call, reads too: an outage. SUSPEND sent only once per
    ticket, no row failed, and the run stops (exit 3) once --outage-wait is over."""
    server = stand_in(tickets("U", 3), backend_timeout_rate=1.0, faults_on_reads=True)
    src = write_csv(tmp_path / "t.csv", rows_for(["U0", "U1", "U2"]))
    out = cli(
        server,
        src,
        "--no-precheck",
        "--concurrency",
        "3",
        "--outage-wait",
        "2",
        "--server-timeout",
        "2",
    )
    assert out.exit_code == 3, out.stdout + out.stderr
    assert "ITSM unreachable since" in out.stderr
    report = report_of(src)
    assert {r["status"] for r in report} <= {"unknown", "pending"}
    for r in report:
        assert "could not be read back" in r["message"] or "in doubt" in r["message"]
    assert Counter(op.sn for op in server.state.stats.operations) == Counter(["U0", "U1", "U2"])


# --------------------------------------------------------------------------- stop the run


@pytest.mark.parametrize("gateway", ["esb", "apigw"])
@pytest.mark.parametrize("precheck", ["--precheck", "--no-precheck"])
def test_wrong_secret_stops_within_concurrency_plus_two_requests(
    stand_in: Callable[..., SandboxThread], tmp_path: Path, gateway: str, precheck: str
) -> None:
    """A wrong secret: exit 3 after at most --concurrency + 2 requests, reads included."""
    sns = [f"W{i}" for i in range(80)]
    server = stand_in(tickets("W", 80))
    src = write_csv(tmp_path / "t.csv", rows_for(sns))
    out = cli(server, src, "--gateway", gateway, "--concurrency", "10", precheck, secret="nope")
    assert out.exit_code == 3, out.stdout + out.stderr
    assert total_requests(server) <= 10 + 2
    assert server.state.stats.applied_total == 0
    assert {r["status"] for r in report_of(src)} == {"pending"}
    assert "authentication" in out.stderr and "authentication" not in out.stdout
    assert "nope" not in out.stdout + out.stderr


@pytest.mark.parametrize(("precheck", "first_wave"), [("--precheck", 8), ("--no-precheck", 7)])
def test_first_operation_goes_alone_only_when_no_read_proved_the_credentials(
    stand_in: Callable[..., SandboxThread], tmp_path: Path, precheck: str, first_wave: int
) -> None:
    """Without a pre-check the first operation is a probe, sent alone; after a pre-check
    the server has taken the credentials already, so all of --concurrency go at once."""
    server = stand_in(tickets("F", 8), latency_ms=300)
    src = write_csv(tmp_path / "t.csv", rows_for([f"F{i}" for i in range(8)]))
    out = cli(server, src, "--concurrency", "8", precheck)
    assert out.exit_code == 0, out.stdout + out.stderr
    assert server.state.stats.applied_total == 8
    assert server.state.stats.max_in_flight == first_wave


@pytest.mark.parametrize("precheck", ["--precheck", "--no-precheck"])
def test_service_off_stops_with_exit_3(
    stand_in: Callable[..., SandboxThread], tmp_path: Path, precheck: str
) -> None:
    """ITSM switched off (an HTML page with HTTP 200): exit 3, few requests, cause named."""
    server = stand_in(tickets("O", 40), service_off=True)
    src = write_csv(tmp_path / "t.csv", rows_for([f"O{i}" for i in range(40)]))
    out = cli(server, src, "--concurrency", "8", precheck)
    assert out.exit_code == 3, out.stdout + out.stderr
    assert total_requests(server) <= 8 + 2
    assert "HTML" in out.stderr
    assert {r["status"] for r in report_of(src)} == {"pending"}


@pytest.mark.parametrize(
    ("limit", "low", "high"),
    [("5", 6, 8), ("10%", 3, 12), ("0", 1, 3), ("0%", 1, 3), (None, 50, 52)],
    ids=["count", "percent", "zero", "zero-percent", "default"],
)
def test_failure_brake_stops_with_exit_3_and_leaves_rows_pending(
    stand_in: Callable[..., SandboxThread],
    tmp_path: Path,
    limit: str | None,
    low: int,
    high: int,
) -> None:
    """--max-failures N, P% and the default brake (50 in a row): exit 3, the rest pending.

    Every third row names a ticket the server does not know (or every row, for the
    default brake, which counts failures in a row).
    """
    count = 90
    known = tickets("K", count)
    rows = []
    for i in range(count):
        unknown = limit is None or i % 3 == 0
        rows.append([f"NOPE{i}" if unknown else f"K{i}", "admin", "SUSPEND", "x"])
    server = stand_in(known)
    src = write_csv(tmp_path / "t.csv", rows)
    args = ["--concurrency", "3", "--no-precheck"]
    if limit is not None:
        args += ["--max-failures", limit]
    out = cli(server, src, *args)
    assert out.exit_code == 3, out.stdout + out.stderr
    assert "failure brake" in out.stderr
    statuses = Counter(r["status"] for r in report_of(src))
    assert low <= statuses["failed"] <= high, statuses
    assert statuses["pending"] > 0
    assert statuses["failed"] + statuses["success"] + statuses["pending"] == count
    assert server.state.stats.operations_total == statuses["failed"] + statuses["success"]


def test_failure_brake_not_tripped_at_the_limit(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """Exactly N failures with --max-failures N is allowed: exit 1, nothing left pending."""
    rows = rows_for(["K0", "K1", "K2"]) + rows_for(["NOPE1", "NOPE2"])
    server = stand_in(tickets("K", 3))
    src = write_csv(tmp_path / "t.csv", rows)
    out = cli(server, src, "--max-failures", "2", "--concurrency", "2")
    assert out.exit_code == 1, out.stdout + out.stderr
    assert Counter(r["status"] for r in report_of(src)) == {"success": 3, "failed": 2}


# --------------------------------------------------------------------------- rate


def test_rate_caps_every_one_second_window(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """--rate 40 over 200 rows: no 1-second window (sliding or whole) holds more than 48 ops."""
    sns = [f"Q{i}" for i in range(200)]
    server = stand_in(tickets("Q", 200))
    src = write_csv(tmp_path / "t.csv", rows_for(sns))
    started = time.monotonic()
    out = cli(server, src, "--rate", "40", "--concurrency", "20")
    elapsed = time.monotonic() - started
    assert out.exit_code == 0, out.stdout + out.stderr
    stats = server.state.stats
    times = sorted(op.t for op in stats.operations)
    assert len(times) == 200
    busiest = max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))
    assert busiest <= 48, busiest
    assert max(stats.per_second.values()) <= 48, stats.per_second
    assert elapsed >= 200 / 48  # the limiter really held the run back


# --------------------------------------------------------------------------- pre-check


def precheck_fixture() -> tuple[list[Ticket], list[list[str]], list[str]]:
    """Tickets, rows and each row's expected status for the pre-check tests."""
    seeded = [
        ticket("SUS", "SUSPENDED", previous="RUNNING"),
        ticket("REV", "REVOKED"),
        ticket("TER", "TERMINATED"),
        ticket("RUN"),
        ticket("CHAIN"),
    ]
    rows = [
        ["SUS", "admin", "SUSPEND", "again?"],  # already suspended: never sent
        ["REV", "admin", "WITHDRAW", "again?"],  # already withdrawn
        ["TER", "admin", "TERMINATE", "again?"],  # already terminated
        ["RUN", "admin", "UNSUSPEND", "resume?"],  # not suspended: nothing to resume
        ["SUS", "admin", "UNSUSPEND", "resume"],  # after the skip, this one is sent
        ["CHAIN", "admin", "UNSUSPEND", "1"],  # RUNNING: skipped
        ["CHAIN", "admin", "SUSPEND", "2"],  # sent → SUSPENDED
        ["CHAIN", "admin", "UNSUSPEND", "3"],  # sent → RUNNING
        ["CHAIN", "admin", "SUSPEND", "4"],  # sent → SUSPENDED
        ["CHAIN", "admin", "TERMINATE", "5"],  # sent → TERMINATED
        ["CHAIN", "admin", "WITHDRAW", "6"],  # sent, refused: the ticket is over
        ["CHAIN", "admin", "TERMINATE", "7"],  # already TERMINATED: skipped
    ]
    expected = ["skipped"] * 4 + ["success", "skipped"] + ["success"] * 4 + ["failed", "skipped"]
    return seeded, rows, expected


def test_precheck_skips_rows_and_sends_nothing_for_them(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """Skipped rows never reach the server; one ticket's rows are judged in file order."""
    seeded, rows, expected = precheck_fixture()
    server = stand_in(seeded)
    src = write_csv(tmp_path / "t.csv", rows)
    out = cli(server, src, "--concurrency", "4")
    assert out.exit_code == 1, out.stdout + out.stderr  # the WITHDRAW of a closed ticket
    report = report_of(src)
    assert [r["status"] for r in report] == expected
    for row in report:
        if row["status"] == "skipped":
            assert row["message"].startswith("skipped: "), row
            assert row["attempts"] == "0"
    assert "second SUSPEND" in report[0]["message"]
    sent = Counter((op.sn, op.action) for op in server.state.stats.operations)
    assert sent == Counter(
        [
            ("SUS", "UNSUSPEND"),
            ("CHAIN", "SUSPEND"),
            ("CHAIN", "UNSUSPEND"),
            ("CHAIN", "SUSPEND"),
            ("CHAIN", "TERMINATE"),
            ("CHAIN", "WITHDRAW"),
        ]
    )
    chain = [op.action for op in server.state.stats.ops_for("CHAIN")]
    assert chain == ["SUSPEND", "UNSUSPEND", "SUSPEND", "TERMINATE", "WITHDRAW"]
    assert server.state.stats.double_suspends == 0
    assert server.state.stats.requests["get_tickets"] == 1


def test_plan_shows_the_precheck_outcome_and_sends_nothing(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """`batchops plan` reports skipped/pending per row from real reads, and operates nothing."""
    seeded, rows, expected = precheck_fixture()
    server = stand_in(seeded)
    src = write_csv(tmp_path / "t.csv", rows)
    out = run_cli(["plan", str(src)], creds_env(server.url))
    assert out.exit_code == 0, out.stdout + out.stderr
    report = read_report(src.with_name(src.stem + ".plan.csv"))
    planned = ["skipped" if e == "skipped" else "pending" for e in expected]
    assert [r["status"] for r in report] == planned
    assert "ITSM will refuse it" in report[10]["message"]
    assert "would send SUSPEND (ticket RUNNING)" in report[6]["message"]
    # One probe of the base URL (no API, so "unknown" to the stand-in), one status read.
    assert server.state.stats.requests == {"unknown": 1, "get_tickets": 1}
    before = {t.sn: (t.status, t.previous_status) for t in precheck_fixture()[0]}
    after = {t.sn: (t.status, t.previous_status) for t in server.state.tickets.values()}
    assert after == before


@pytest.mark.parametrize("gateway", ["esb", "apigw"])
def test_get_tickets_refused_falls_back_to_get_ticket_status(
    stand_in: Callable[..., SandboxThread],
    tmp_path: Path,
    gateway: str,
) -> None:
    """get_tickets refused: the pre-check reads each ticket instead, and skips still work."""
    seeded, rows, expected = precheck_fixture()
    server = stand_in(seeded, refused_apis=frozenset({"get_tickets"}))
    src = write_csv(tmp_path / "t.csv", rows)
    planned = run_cli(["plan", str(src), "--gateway", gateway], creds_env(server.url))
    assert planned.exit_code == 0, planned.stdout + planned.stderr
    planned_rows = read_report(src.with_name(src.stem + ".plan.csv"))
    assert [r["status"] for r in planned_rows][:4] == ["skipped"] * 4
    assert "read with get_ticket_status" in planned.stdout + planned.stderr
    assert server.state.stats.requests == {
        "unknown": 1,  # the reachability probe of the base URL
        "get_tickets": 1,
        "get_ticket_status": len(seeded),
    }
    server.call(server.state.reset_stats)

    out = cli(server, src, "--gateway", gateway, "--concurrency", "4")
    assert out.exit_code == 1, out.stdout + out.stderr
    assert [r["status"] for r in report_of(src)] == expected
    requests = server.state.stats.requests
    assert requests["get_tickets"] == 1
    # one read per ticket, plus the confirmation of each UNSUSPEND that answered success
    assert requests["get_ticket_status"] == len(seeded) + 2
    assert server.state.stats.double_suspends == 0


# --------------------------------------------------------------------------- double suspend


@pytest.mark.parametrize("precheck", ["--precheck", "--no-precheck"])
def test_unsuspend_of_a_double_suspended_ticket_is_failed_with_the_reason(
    stand_in: Callable[..., SandboxThread], tmp_path: Path, precheck: str
) -> None:
    """A ticket suspended twice before: UNSUSPEND answers success, yet the row is failed."""
    server = stand_in([ticket("DS", "SUSPENDED", previous="SUSPENDED"), ticket("OK", "SUSPENDED")])
    src = write_csv(tmp_path / "t.csv", rows_for(["DS", "OK"], "UNSUSPEND"))
    out = cli(server, src, precheck)
    assert out.exit_code == 1, out.stdout + out.stderr
    stuck, fine = report_of(src)
    assert stuck["status"] == "failed"
    assert "still SUSPENDED" in stuck["message"]
    assert "suspended twice" in stuck["message"]
    assert fine["status"] == "success"
    assert "RUNNING" in fine["message"]
    answered = {op.sn: (op.code, op.applied) for op in server.state.stats.operations}
    assert answered == {"DS": (0, True), "OK": (0, True)}
    assert server.state.tickets["DS"].status == "SUSPENDED"


@pytest.mark.parametrize("precheck", ["--precheck", "--no-precheck"])
def test_suspend_after_a_failed_unsuspend_is_not_sent_again(
    stand_in: Callable[..., SandboxThread], tmp_path: Path, precheck: str
) -> None:
    """SUSPEND, a refused UNSUSPEND, SUSPEND: the ticket is still suspended, so the last
    row is skipped — also with --no-precheck, where only this run's own answers are known.
    """
    server = stand_in([ticket("X")])
    rows = [
        ["X", "admin", "SUSPEND", "wait"],
        ["X", "bob", "UNSUSPEND", "bob may not"],  # 抱歉，bob无权操作该单据
        ["X", "admin", "SUSPEND", "wait again"],
    ]
    src = write_csv(tmp_path / "t.csv", rows)
    out = cli(server, src, precheck)
    assert out.exit_code == 1, out.stdout + out.stderr
    assert [r["status"] for r in report_of(src)] == ["success", "failed", "skipped"]
    assert server.state.stats.double_suspends == 0
    assert [op.action for op in server.state.stats.ops_for("X")] == ["SUSPEND", "UNSUSPEND"]


def test_a_row_held_back_by_an_unknown_row_is_skipped_and_retried_with_it(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """UNSUSPEND's answer lost and the ticket unreadable: the SUSPEND after it is not sent
    blind, and its row says so as ``skipped``, not ``failed`` (ITSM never saw it). The same
    command again sends nothing; the advised --retry-failed, once reads work, sends that
    ticket's rows again in file order, each on the ticket's real state."""
    server = stand_in(
        [ticket("X", "SUSPENDED")],
        lost_rate=1.0,
        lost_mode="drop",
        refused_apis=frozenset({"get_ticket_status", "get_tickets"}),
    )
    rows = [["X", "admin", "UNSUSPEND", "go on"], ["X", "admin", "SUSPEND", "wait"]]
    src = write_csv(tmp_path / "t.csv", rows)
    first = cli(server, src, "--no-precheck", "--server-timeout", "1")
    assert first.exit_code == 1, first.stdout + first.stderr
    unsuspend, suspend = report_of(src)
    assert (unsuspend["status"], suspend["status"]) == ("unknown", "skipped")
    assert suspend["message"].startswith("not sent: an earlier row of this ticket ended unknown")
    assert "--retry-failed" in first.stderr + first.stdout
    assert [op.action for op in server.state.stats.ops_for("X")] == ["UNSUSPEND"]

    server.call(lambda: server.state.set_faults(Faults()))
    again = cli(server, src, "--no-precheck", "--server-timeout", "1")
    assert "nothing left to send" in again.stdout, again.stdout + again.stderr
    assert [op.action for op in server.state.stats.ops_for("X")] == ["UNSUSPEND"]

    retry = cli(server, src, "--retry-failed", "--server-timeout", "1")
    assert retry.exit_code == 0, retry.stdout + retry.stderr
    assert [r["status"] for r in report_of(src)] == ["skipped", "success"]
    assert [op.action for op in server.state.stats.ops_for("X")] == ["UNSUSPEND", "SUSPEND"]
    assert server.state.tickets["X"].status == "SUSPENDED"
    assert server.state.stats.double_suspends == 0


# --------------------------------------------------------------------------- TLS


def test_insecure_prints_a_loud_warning(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """--insecure warns on stderr before anything is sent; the run itself goes on."""
    server = stand_in([ticket("T1")])
    src = write_csv(tmp_path / "t.csv", rows_for(["T1"]))
    out = cli(server, src, "--insecure")
    assert out.exit_code == 0, out.stdout + out.stderr
    assert "WARNING" in out.stderr
    assert "--insecure" in out.stderr
    assert "NOT verified" in out.stderr


@pytest.mark.parametrize(
    "content",
    [b"this is not a certificate\n", b"", b"0\x82\x01\x0a\x02\x82\x01\x01\x00\xff"],
    ids=["text", "empty", "binary"],
)
@pytest.mark.parametrize("command", ["run", "plan"])
def test_ca_bundle_that_is_not_pem_is_a_one_line_error(
    stand_in: Callable[..., SandboxThread], tmp_path: Path, content: bytes, command: str
) -> None:
    """--ca-bundle with a file that is not PEM: exit 2, one 'Error:' line, nothing sent."""
    server = stand_in([ticket("T1")])
    src = write_csv(tmp_path / "t.csv", rows_for(["T1"]))
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(content)
    extra = FAST if command == "run" else []
    out = run_cli([command, str(src), *extra, "--ca-bundle", str(bundle)], creds_env(server.url))
    assert out.exit_code == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("Error: ")
    assert "--ca-bundle" in lines[0]
    assert "PEM" in lines[0]
    assert "Traceback" not in out.stdout + out.stderr
    assert total_requests(server) == 0

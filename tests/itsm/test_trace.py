"""``--verbose``: a line per request and answer, bodies with -vv, never a credential."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchops.sandbox import Faults, SandboxThread
from batchops.secrets import MASK

from ..helpers import SECRET, creds_env, run_cli, running, seed, write_csv

TOKEN = "bk-token-VALUE-that-must-never-leak-93d2"


def _rows(itsm: SandboxThread, tmp_path: Path, prefix: str) -> Path:
    seed(itsm, running(f"{prefix}1"), running(f"{prefix}2"))
    return write_csv(
        tmp_path / f"{prefix}.csv",
        [
            [f"{prefix}1", "admin", "SUSPEND", "x"],
            [f"{prefix}2", "admin", "TERMINATE", "y"],
            [f"{prefix}1", "admin", "UNSUSPEND", ""],
        ],
    )


def _trace_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("batchops: ")]


@pytest.mark.parametrize("gateway", ["esb", "apigw"])
def test_verbose_writes_one_line_per_exchange_without_a_secret(
    itsm: SandboxThread, tmp_path: Path, gateway: str
) -> None:
    """-v: one stderr line per request the server saw, with the API, sn, action, HTTP
    status, code, ms and attempt; neither the app secret nor the token anywhere."""
    src = _rows(itsm, tmp_path, "V" + gateway[0].upper())
    out = run_cli(
        ["run", str(src), "-v", "--yes", "--gateway", gateway, "--no-checkpoint"],
        creds_env(itsm.url, BK_TOKEN=TOKEN),
    )
    assert out.exit_code == 0, out.stdout + out.stderr
    lines = _trace_lines(out.stderr)
    assert len(lines) == sum(itsm.state.stats.requests.values())
    operate = [line for line in lines if " operate_ticket " in line]
    assert len(operate) == 3
    first = next(line for line in operate if "action=SUSPEND" in line)
    sn = src.stem + "1"
    assert f"sn={sn} action=SUSPEND http=200 code=0 ms=" in first
    assert first.endswith("attempt=1 success")
    assert any(" get_tickets sn=(2 tickets) action=- http=200 code=0" in line for line in lines)
    # An UNSUSPEND is confirmed by reading the ticket back: that read is a line too.
    assert any(f" get_ticket_status sn={sn} " in line for line in lines)
    # The reachability probe (a bare GET of the base URL, no credentials) is a line too.
    assert any(" probe sn=- action=- http=" in line for line in lines)
    for secret in (SECRET, TOKEN):
        assert secret not in out.stdout + out.stderr


def test_very_verbose_shows_bodies_and_headers_masked(itsm: SandboxThread, tmp_path: Path) -> None:
    """-vv adds the request (URL with query, headers, body) and the answer's body; the
    credential fields show as *** in the ESB body, the auth header and everywhere else."""
    src = _rows(itsm, tmp_path, "VV")
    out = run_cli(["run", str(src), "-vv", "--no-checkpoint"], creds_env(itsm.url, BK_TOKEN=TOKEN))
    assert out.exit_code == 0, out.stdout + out.stderr
    text = out.stderr
    assert '"bk_app_secret": "***"' in text  # the ESB body and the read header
    assert '"bk_token": "***"' in text
    assert "  > X-Bkapi-Authorization: " in text
    assert "  > User-Agent: batchops/" in text
    assert '"action_type": "SUSPEND"' in text
    assert "get_ticket_status/?sn=VV1" in text  # the query string of a read
    assert '  < {"result": true, "code": 0' in text
    assert SECRET not in text and TOKEN not in text


def test_verbose_with_log_json_writes_http_events(itsm: SandboxThread, tmp_path: Path) -> None:
    """--log-json -vv: each exchange is an 'http' JSON event with the same fields and the
    masked request; no secret in any line."""
    src = _rows(itsm, tmp_path, "VJ")
    out = run_cli(
        ["run", str(src), "-vv", "--log-json", "--no-checkpoint"],
        creds_env(itsm.url, BK_TOKEN=TOKEN),
    )
    assert out.exit_code == 0, out.stdout + out.stderr
    events = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    http = [e for e in events if e["event"] == "http"]
    assert len(http) == sum(itsm.state.stats.requests.values())
    first = next(e for e in http if e["api"] == "operate_ticket")
    assert {"ts", "sn", "action", "http_status", "code", "ms", "attempt", "result"} <= set(first)
    assert first["http_status"] == 200 and first["code"] == 0 and first["attempt"] == 1
    assert json.loads(first["request"]["body"])["bk_app_secret"] == MASK
    assert SECRET not in out.stderr and TOKEN not in out.stderr


def test_verbose_counts_attempts_and_shows_what_went_wrong(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A rate-limited operation is resent: its lines say attempt=1 then attempt=2, each with
    the rate limit's code and what batchops made of it."""
    seed(itsm, running("RL1"))
    itsm.call(lambda: itsm.state.set_faults(Faults(rate_limit_rate=1.0)))
    src = write_csv(tmp_path / "rl.csv", [["RL1", "admin", "SUSPEND", "x"]])
    out = run_cli(
        ["run", str(src), "-v", "--no-checkpoint", "--no-precheck", "--retries", "1"],
        creds_env(itsm.url),
    )
    assert out.exit_code != 0, out.stdout + out.stderr
    operate = [line for line in _trace_lines(out.stderr) if " operate_ticket " in line]
    assert len(operate) == 2, operate
    assert " code=1642902 " in operate[0] and "attempt=1 retry: gateway: rate" in operate[0]
    assert "attempt=2 retry: " in operate[1]


def test_plan_verbose_traces_its_reads(itsm: SandboxThread, tmp_path: Path) -> None:
    """`plan -v` traces the pre-check reads it makes (and sends no operation)."""
    src = _rows(itsm, tmp_path, "PV")
    out = run_cli(["plan", str(src), "-v"], creds_env(itsm.url))
    assert out.exit_code == 0, out.stdout + out.stderr
    lines = _trace_lines(out.stderr)
    assert any(" get_tickets " in line for line in lines)
    assert all(" get_tickets " in line or " probe " in line for line in lines)
    assert SECRET not in out.stdout + out.stderr

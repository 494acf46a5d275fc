"""Runs nobody watches: what ``--log-json``, the progress lines and ``--summary-json`` tell.

A run under cron or CI is read afterwards, from its log: it must be told apart from a
hung one while it waits (an outage, a rate-limit pause), and its summary must say when
it ran, which batchops ran it and where its files are, wherever the log is read.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from batchops.sandbox import SandboxThread

from ..helpers import cli, rows_for, tickets, write_csv
from .test_outages import _outage_after


def _events(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def _at(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["ts"])).timestamp()


@pytest.mark.slow
def test_log_json_beats_at_least_every_12_s_through_a_25_s_outage(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """ITSM goes away for 25 s mid-run: heartbeats keep coming (at most 12 s apart), say
    the run waits for the outage, and carry counts, rate and ETA; the run then ends 0."""
    sns = [f"HB{i}" for i in range(200)]
    server = stand_in(tickets("HB", 200), latency_ms=20)
    src = write_csv(tmp_path / "t.csv", rows_for(sns))
    outage = _outage_after(server, 40, 25.0)
    out = cli(server, src, "-c", "4", "--server-timeout", "2", "--outage-wait", "60", "--log-json")
    outage.join(5)
    assert out.exit_code == 0, out.stdout + out.stderr
    events = _events(out.stderr)
    notices = [e for e in events if e["event"] == "notice"]
    began = next(_at(e) for e in notices if "ITSM unreachable since" in str(e["message"]))
    ended = next(_at(e) for e in notices if "answers again" in str(e["message"]))
    assert ended - began > 20
    beats = [e for e in events if e["event"] == "heartbeat"]
    during = [e for e in beats if began < _at(e) < ended]
    assert len(during) >= 2, beats
    assert {e["waiting"] for e in during} == {"outage"}
    assert all(0 < float(str(e["wait_left_s"])) <= 60 for e in during)
    times = [began, *(_at(e) for e in during), ended]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) <= 12, gaps
    beat = during[-1]
    assert set(beat) >= {"counts", "done", "to_send", "rate_rows_s", "eta_s"}
    counts = beat["counts"]
    assert isinstance(counts, dict) and counts["success"] >= 30
    assert beat["to_send"] == 200 and float(str(beat["rate_rows_s"])) > 0
    assert isinstance(beat["eta_s"], int)


@pytest.mark.parametrize(
    ("gateway", "status", "code"), [("esb", 200, 1642902), ("apigw", 429, 1642902)]
)
def test_log_json_names_the_gateways_throttling(
    stand_in: Callable[..., SandboxThread],
    tmp_path: Path,
    gateway: str,
    status: int,
    code: int | None,
) -> None:
    """The gateway says it rate-limits some operations (the ESB with its code and HTTP
    200, the API gateway with HTTP 429): a ``throttled`` event names the HTTP status, the
    code and the pause; every row still succeeds."""
    sns = [f"TH{i}" for i in range(12)]
    server = stand_in(tickets("TH", 12), rate_limit_rate=0.3, seed=7)
    src = write_csv(tmp_path / "t.csv", rows_for(sns))
    out = cli(server, src, "-c", "2", "--log-json", "--gateway", gateway)
    assert out.exit_code == 0, out.stdout + out.stderr
    throttled = [e for e in _events(out.stderr) if e["event"] == "throttled"]
    assert throttled, out.stderr
    first = throttled[0]
    assert (first["http_status"], first["code"]) == (status, code), first
    assert float(str(first["pause_s"])) > 0

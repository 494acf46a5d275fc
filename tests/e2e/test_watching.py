"""Runs nobody watches: what ``--log-json``, the progress lines and ``--summary-json`` tell.

A run under cron or CI is read afterwards, from its log: it must be told apart from a
hung one while it waits (an outage, a rate-limit pause), and its summary must say when
it ran, which batchops ran it and where its files are, wherever the log is read.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp import web

from batchops.sandbox import SandboxThread
from batchops.version import __version__

from ..helpers import (
    LoopbackServer,
    cli,
    creds_env,
    report_of,
    rows_for,
    run_cli,
    tickets,
    write_csv,
)
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


def _check_times_and_paths(fields: dict[str, object], folder: Path) -> None:
    started = datetime.fromisoformat(str(fields["started_at"]))
    finished = datetime.fromisoformat(str(fields["finished_at"]))
    assert started.utcoffset() is not None and finished.utcoffset() is not None
    assert started <= finished
    assert fields["version"] == __version__
    for key in ("input", "report"):
        path = Path(str(fields[key]))
        assert path.is_absolute() and path.parent == folder.resolve(), (key, path)


def test_summary_json_dash_is_the_one_document_on_stdout(
    stand_in: Callable[..., SandboxThread], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--summary-json -`` run from the input's folder with relative paths: stdout is
    exactly one JSON document with start and end times (with their offset), the version
    and absolute paths; the human summary went to stderr; no file named ``-``."""
    server = stand_in(tickets("SJ", 3))
    write_csv(tmp_path / "t.csv", rows_for(["SJ0", "SJ1", "SJ2"]))
    monkeypatch.chdir(tmp_path)
    out = cli(server, Path("t.csv"), "--summary-json", "-")
    assert out.exit_code == 0, out.stdout + out.stderr
    fields = json.loads(out.stdout)
    _check_times_and_paths(fields, tmp_path)
    assert Path(str(fields["checkpoint"])).is_absolute()
    assert fields["counts"]["success"] == 3
    assert "3 rows: 3 success" in out.stderr
    assert not (tmp_path / "-").exists()


def test_plan_summary_json_dash_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``plan --summary-json -`` (validation only): the same one document on stdout."""
    write_csv(tmp_path / "t.csv", rows_for(["PJ0", "PJ1"]))
    monkeypatch.chdir(tmp_path)
    out = run_cli(["plan", "t.csv", "--summary-json", "-"], {"BATCHOPS_BASE_URL": ""})
    assert out.exit_code == 0, out.stdout + out.stderr
    fields = json.loads(out.stdout)
    _check_times_and_paths(fields, tmp_path)
    assert fields["counts"]["pending"] == 2
    assert "2 rows: 2 pending" in out.stderr
    assert not (tmp_path / "-").exists()


def test_without_a_terminal_or_yes_one_line_says_it_sends_without_asking(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """stdin is not a terminal and --yes was not given: the run sends (as before) and one
    stderr line says so; with --yes the line is not there."""
    server = stand_in(tickets("NA", 2))
    src = write_csv(tmp_path / "t.csv", rows_for(["NA0", "NA1"]))
    out = run_cli(["run", str(src), "--readback-delay", "0"], creds_env(server.url))
    assert out.exit_code == 0, out.stdout + out.stderr
    assert out.stderr.count("sending without asking") == 1, out.stderr
    again = write_csv(tmp_path / "u.csv", rows_for(["NA0"], "UNSUSPEND"))
    quiet = run_cli(["run", str(again), "--yes"], creds_env(server.url))
    assert quiet.exit_code == 0, quiet.stdout + quiet.stderr
    assert "sending without asking" not in quiet.stderr


def test_a_run_that_sends_nothing_shows_no_rate(tmp_path: Path) -> None:
    """Every row invalid: nothing is sent, and the summary says so instead of a rate of
    tens of thousands of rows a second (rows judged in microseconds)."""
    src = write_csv(tmp_path / "t.csv", [["", "admin", "SUSPEND", "x"], ["S1", "", "NOPE", ""]])
    out = run_cli(["run", str(src), "--sandbox", "--yes", "--summary-json", "-"])
    assert out.exit_code == 1, out.stdout + out.stderr
    assert "rows/s" not in out.stderr
    assert "no operation sent" in out.stderr
    assert json.loads(out.stdout)["rows_per_second"] == 0


@pytest.mark.parametrize("relative", [True, False])
def test_the_sandbox_advice_names_no_placeholder_and_runs_as_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relative: bool
) -> None:
    """The sample against the sandbox (no checkpoint: the report is the way back): the
    advice after its failure is a command without a placeholder that, pasted as it is,
    runs the report's failed rows against the sandbox again (exit 1: the row fails again
    there, as it is the demo's business failure), writing a report of its own."""
    sample = Path(__file__).parents[2] / "samples" / "tickets.csv"
    src = tmp_path / "tickets.csv"
    src.write_bytes(sample.read_bytes())
    monkeypatch.chdir(tmp_path)
    given = "tickets.csv" if relative else str(src)
    out = run_cli(["run", given, "--sandbox", "-o", "out.csv", "--yes"])
    assert out.exit_code == 1, out.stdout + out.stderr
    advice = next(
        line.split("resend them with: ", 1)[1]
        for line in out.stderr.splitlines()
        if "resend them with: " in line
    )
    assert "REPORT" not in advice
    words = shlex.split(advice)
    assert words[:3] == ["batchops", "run", "out.csv"], words
    again = run_cli(words[1:])
    assert again.exit_code == 1, again.stdout + again.stderr
    assert "Error" not in again.stderr
    assert "1 failed" in again.stdout
    assert (tmp_path / "out.report.csv").is_file()


def test_plan_help_names_the_file_plan_writes(tmp_path: Path) -> None:
    """``plan --help`` names the default output plan really writes (x.plan.csv), not
    the run's report."""
    shown = run_cli(["plan", "--help"])
    assert "'-' writes it to stdout" in " ".join(shown.stdout.split())
    assert "tickets.plan.csv" in shown.stdout and "tickets.report.csv" not in shown.stdout
    src = write_csv(tmp_path / "tickets.csv", rows_for(["PH1"]))
    out = run_cli(["plan", str(src)], {"BATCHOPS_BASE_URL": ""})
    assert out.exit_code == 0, out.stdout + out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tickets.csv", "tickets.plan.csv"]


def test_the_sandbox_banner_gives_the_exact_base_url_each_gateway_takes(tmp_path: Path) -> None:
    """``batchops sandbox`` prints, for each gateway, the value --base-url takes: each one,
    pasted into a run with its --gateway, sends the rows (exit 0)."""
    seed = write_csv(tmp_path / "seed.csv", rows_for(["BU1", "BU2"]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchops.sandbox", "--port", "0", "--seed", str(seed)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = [proc.stdout.readline() for _unused in range(3)]
        given = {
            line.split(":", 1)[0].strip(): shlex.split(line.split(":", 1)[1]) for line in banner[1:]
        }
        assert set(given) == {"ESB (the default)", "API gateway"}, banner
        env = {"BK_APP_CODE": "batchops-sandbox", "BK_APP_SECRET": "sandbox-secret"}
        env |= {"BK_USERNAME": "admin", "BATCHOPS_BASE_URL": ""}
        for number, words in enumerate(given.values()):
            action = "SUSPEND" if number == 0 else "UNSUSPEND"
            src = write_csv(tmp_path / f"t{number}.csv", rows_for(["BU1", "BU2"], action))
            out = run_cli(["run", str(src), "--yes", *words], env)
            assert out.exit_code == 0, (words, out.stdout + out.stderr)
            assert "2 success" in out.stdout
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_a_404_page_names_the_form_each_gateway_takes_and_the_likely_one(
    tmp_path: Path,
) -> None:
    """--base-url holds the API's own URL (pasted whole) and every API call answers a 404
    HTML page: exit 3, nothing sent, and the fix names what --base-url takes for each
    gateway and the likely right value, not the same address again."""

    def handler(request: web.Request, body: bytes) -> web.Response:
        page = "<html><body><h1>404 Not Found</h1></body></html>"
        return web.Response(status=404, text=page, content_type="text/html")

    src = write_csv(tmp_path / "t.csv", rows_for(["NF1"]))
    with LoopbackServer(handler) as server:
        pasted = f"{server.url}/api/c/compapi/v2/itsm/operate_ticket/"
        out = run_cli(["run", str(src), "--yes", "--base-url", pasted], creds_env(server.url))
    assert out.exit_code == 3, out.stdout + out.stderr
    fix = next(line for line in out.stderr.splitlines() if line.startswith("fix this first"))
    assert "https://paas.example.com" in fix
    assert "https://bkapi.example.com/api/bk-itsm/prod" in fix
    assert fix.endswith(f"likely right here: --gateway esb --base-url {server.url}"), fix
    assert {r["status"] for r in report_of(src)} == {"pending"}


def test_a_default_profile_does_not_make_a_validation_only_plan_demand_a_secret(
    tmp_path: Path,
) -> None:
    """~/.config/batchops/batchops.toml names a default profile with an ITSM address, and
    no secret is set: ``plan INPUT`` (nothing named on the command line) validates, says
    it did not pre-check and why, and writes the plan (exit 0). Naming the profile asks
    for its pre-check: then the missing secret is an error (exit 2), as before."""
    folder = Path(os.environ["XDG_CONFIG_HOME"]) / "batchops"
    folder.mkdir(parents=True)
    (folder / "batchops.toml").write_text(
        'default_profile = "prod"\n[profiles.prod]\nbase_url = "https://paas.example.invalid"\n'
        'app_code = "ops-app"\nusername = "admin"\n',
        encoding="utf-8",
    )
    src = write_csv(tmp_path / "t.csv", rows_for(["DP1", "DP2"]))
    out = run_cli(["plan", str(src)])
    assert out.exit_code == 0, out.stdout + out.stderr
    assert "validation only; pre-check not run: the ITSM address comes from the default" in (
        out.stderr
    )
    assert "BK_APP_SECRET" in out.stderr
    assert "2 rows: 2 pending" in out.stdout
    assert (tmp_path / "t.plan.csv").is_file()
    named = run_cli(["plan", str(src), "--profile", "prod"])
    assert named.exit_code == 2, named.stdout + named.stderr
    assert "BK_APP_SECRET" in named.stderr


def test_in_chinese_the_unasked_line_and_the_404_fix_are_chinese_and_machine_words_stay(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """--lang zh: the line that says the run sends without asking, and the fix of a 404,
    are in Chinese; option names, URLs and the JSON summary's field names stay as they are."""
    server = stand_in(tickets("ZH", 1))
    src = write_csv(tmp_path / "t.csv", rows_for(["ZH0"]))
    out = run_cli(
        ["run", str(src), "--lang", "zh", "--readback-delay", "0", "--summary-json", "-"],
        creds_env(server.url),
    )
    assert out.exit_code == 0, out.stdout + out.stderr
    assert "不经确认直接发送" in out.stderr and "--yes" in out.stderr
    fields = json.loads(out.stdout)
    assert fields["counts"]["success"] == 1 and "started_at" in fields

    def handler(request: web.Request, body: bytes) -> web.Response:
        return web.Response(status=404, text="<html>404</html>", content_type="text/html")

    with LoopbackServer(handler) as wrong:
        out = run_cli(
            ["run", str(src), "--yes", "--lang", "zh", "--gateway", "apigw", "--fresh"],
            creds_env(wrong.url),
        )
    assert out.exit_code == 3, out.stdout + out.stderr
    assert "那里没有 ITSM 接口" in out.stderr
    assert f"这里应该是：--gateway apigw --base-url {wrong.url}/api/bk-itsm/prod" in out.stderr

"""Finishing a run, end to end: ``--retry-failed``, rows left pending by server errors,
and a checkpoint that runs out of room, each finished by the same command run again."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from batchops.checkpoint.store import Checkpoint
from batchops.sandbox import Faults, SandboxThread

from ..children import (
    _CHILDREN,
    _applied,
    _assert_once_each,
    _child_env,
    _drain,
    _finish,
    _rows,
    _run,
    _state,
    _tickets,
)
from ..helpers import creds_env, read_report, run_cli, running, seed, write_csv

pytestmark = pytest.mark.usefixtures("no_child_left_behind")

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
                refused_apis=frozenset({"get_ticket_status", "get_tickets"}),
            )
        )
    )
    # A short --server-timeout: an unreadable row is read until its request could no
    # longer land, which the stand-in (answering at once) makes a moment after it left.
    args = ["run", str(src), "-c", "1", "--retries", "0", "--readback-delay", "0"]
    args += ["--server-timeout", "1"]
    # No pre-check in the first run: it would find the ticket reads refused and stop.
    first_only = ["--no-precheck", "--max-failures", "off"]
    first = run_cli([*args, *first_only], creds_env(itsm.url))
    assert first.exit_code == 1, first.stdout + first.stderr
    # The advice names the command that resends them.
    resend = f"resend them with: batchops {' '.join([*args, *first_only])} --retry-failed"
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
    store = Checkpoint.open_readonly(tmp_path / ".batchops" / "t.checkpoint.db")
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


@pytest.mark.parametrize("again", ["retry_failed", "fresh", "report"])
def test_a_rerun_reads_an_unknown_rows_ticket_only_once_its_request_cannot_land(
    tmp_path: Path, again: str
) -> None:
    """A SUSPEND whose answer was lost and whose read-back showed a status it does not
    explain ends unknown at once. Its request may still land, so ``--retry-failed`` (or
    ``--fresh``) right after reads the ticket no sooner than --server-timeout after that
    request left, and says why it waits. So does the report fed back as the input of a run
    without a checkpoint (the report's time bounds when the request left)."""
    import json
    import time

    from aiohttp import web

    import batchops

    from ..helpers import LoopbackServer, envelope

    events: list[tuple[float, str]] = []

    def handler(request: web.Request, body: bytes) -> web.Response:
        if "/itsm/" not in request.path:
            return web.Response(status=404)
        api = request.path.rstrip("/").rsplit("/", 1)[-1]
        # RUNNING until the SUSPEND, then NEW: what a SUSPEND does not explain.
        status = "NEW" if any(each == "operate_ticket" for _, each in events) else "RUNNING"
        events.append((time.time(), api))
        if "get_tickets" in request.path:
            return envelope(data={"items": [{"sn": "A", "current_status": status}]})
        if "get_ticket_status" in request.path:
            return envelope(data={"current_status": status})
        assert json.loads(body)["action_type"] == "SUSPEND"
        return web.Response(status=502, text="Bad Gateway")

    src = write_csv(tmp_path / "t.csv", [["A", "admin", "SUSPEND", "x"]])
    env = {"BK_APP_SECRET": "s3cret-value"}
    said: list[str] = []
    with LoopbackServer(handler) as server:
        options = batchops.RunOptions(
            base_url=server.url, app_code="app", username="admin", server_timeout=2.0
        )
        files = batchops.Files(use_checkpoint=again != "report")
        first = batchops.run_batch(src, options, files=files, env=env)
        assert first.counts["unknown"] == 1
        sent_at = max(t for t, api in events if api == "operate_ticket")
        events.clear()
        rerun = src.with_name("t.report.csv") if again == "report" else src
        batchops.run_batch(
            rerun,
            options,
            files=files,
            choices=batchops.RunChoices(**({} if again == "report" else {again: True})),
            hooks=batchops.Hooks(notice=said.append),
            env=env,
        )
    first_read = min(t for t, api in events if api.startswith("get_ticket"))
    assert first_read >= sent_at + 2.0
    assert any("may still land" in line for line in said), said

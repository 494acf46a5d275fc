"""Resume refusals, end to end: a checkpoint that belongs to another input or target, or
is in use, is refused with a way out; ``batchops report`` reads a checkpoint during and
after a run."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from batchops.checkpoint.store import Checkpoint
from batchops.sandbox import Faults, SandboxThread

from ..children import (
    _applied,
    _assert_once_each,
    _child_env,
    _finish,
    _operates_in_flight,
    _rows,
    _run,
    _spawn,
    _state,
    _tickets,
    _wait_until,
)
from ..helpers import FAST, creds_env, read_report, run_cli, running, seed, write_csv

pytestmark = pytest.mark.usefixtures("no_child_left_behind")

# --------------------------------------------------------------------------- refusals


def test_changed_input_names_sheet_rows(itsm: SandboxThread, tmp_path: Path) -> None:
    """The refusal of an edited done row names it as the sheet numbers it (blank lines
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
    assert "row 5 (sn 'RN2', SUSPEND, success): its operator or action_message changed" in (
        out.stderr
    )


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
    api.run_batch(
        src, choices=api.RunChoices(fresh=True), hooks=api.Hooks(confirm=confirm), env=env
    )
    (text,) = shown
    assert "fresh start: the old checkpoint" in text and "recorded 0 rows as applied" in text
    nocheck = run_cli(["run", str(src), "--fresh", "--no-precheck", "--yes"], env)
    assert "with --no-precheck nothing checks the tickets first" in nocheck.stderr


def test_changed_input_is_refused_then_fresh_starts_over(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A done row edited, or moved by a row deleted above it, is refused (exit 2, each row
    named, --fresh named, nothing sent); a row added at the end is just sent; --fresh keeps
    the old checkpoint as a .bak beside it and sends every row again."""
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
    assert "row 4 (sn 'CH3', TERMINATE, success): its operator or action_message" in (edited.stderr)
    assert "--fresh" in edited.stderr
    assert sum(itsm.state.stats.requests.values()) == sent  # refused before any request

    rows[2][3] = "close"
    write_csv(src, [rows[0], *rows[2:]])  # CH2 deleted: the rows below it move up
    moved = run_cli(["run", str(src)], env)
    assert moved.exit_code == 2
    assert "row 3 (sn 'CH2', TERMINATE, success): its sn is now 'CH3'" in moved.stderr
    assert "the row as sent is now row 3: a row was inserted or deleted above it" in (
        moved.stderr
    ), moved.stderr
    assert sum(itsm.state.stats.requests.values()) == sent

    seed(itsm, running("CH5"))
    rows.append(["CH5", "admin", "TERMINATE", "close"])
    write_csv(src, rows)
    longer = run_cli(["run", str(src)], env)
    assert longer.exit_code == 0, longer.stdout + longer.stderr
    assert "1 row added since the last run" in longer.stdout
    assert _applied(itsm.state.stats.operations) == Counter(
        {(sn, "TERMINATE"): 1 for sn in [*sns, "CH5"]}
    )

    seed(itsm, *(running(sn) for sn in [*sns, "CH5"]))  # the tickets are open again
    fresh = run_cli(["run", str(src), "--fresh"], env)
    assert fresh.exit_code == 0, fresh.stdout + fresh.stderr
    (backup,) = (tmp_path / ".batchops").glob("t.checkpoint.db.*.bak")
    assert str(backup) in fresh.stdout
    old = Checkpoint.open_readonly(backup)
    try:
        assert [r.outcome.status.value for r in old.rows()] == ["success"] * 5
    finally:
        old.close()
    assert [r["status"] for r in read_report(tmp_path / "t.report.csv")] == ["success"] * 5
    applied = _applied(itsm.state.stats.operations)
    assert [applied[(sn, "TERMINATE")] for sn in [*sns, "CH5"]] == [2] * 5  # once per run


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


@pytest.mark.parametrize("kept", [0, -1], ids=["empty", "one-byte-short"])
def test_an_empty_or_truncated_checkpoint_is_refused_not_taken_as_fresh(
    itsm: SandboxThread, tmp_path: Path, kept: int
) -> None:
    """The default checkpoint of a sheet, emptied to 0 bytes or cut short by one byte:
    the run is refused in one line with the way out (exit 2), and nothing is sent, not
    even a read, instead of starting over and sending every row again."""
    seed(itsm, running("E1"), running("E2"))
    src = write_csv(
        tmp_path / "t.csv", [["E1", "admin", "SUSPEND", "x"], ["E2", "admin", "UNSUSPEND", "y"]]
    )
    env = creds_env(itsm.url)
    assert run_cli(["run", str(src)], env).exit_code == 0
    ckpt = tmp_path / ".batchops" / "t.checkpoint.db"
    damaged = ckpt.read_bytes()[:kept] if kept else b""
    ckpt.write_bytes(damaged)
    sent = sum(itsm.state.stats.requests.values())

    out = run_cli(["run", str(src)], env)
    assert out.exit_code == 2, out.stdout + out.stderr
    assert out.stderr.startswith("Error: ") and out.stderr.count("\n") == 1
    assert "is not a batchops checkpoint" in out.stderr and "--fresh" in out.stderr
    assert sum(itsm.state.stats.requests.values()) == sent
    assert ckpt.read_bytes() == damaged  # left as it was, for whoever looks into it


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


# --------------------------------------------------------------------------- batchops report


def test_report_from_checkpoint_during_and_after_a_run(tmp_path: Path) -> None:
    """`batchops report CHECKPOINT -o OUT` while the real run is sending shows done rows,
    rows being sent and rows still to do, without disturbing the run; afterwards it
    rebuilds exactly the run's own report."""
    state = _state(latency_ms=100)
    sns = [f"RP{i}" for i in range(80)]  # many: the run must outlast the report below
    _tickets(state, sns)
    src = write_csv(tmp_path / "t.csv", _rows(sns))
    ckpt = tmp_path / ".batchops" / "t.checkpoint.db"
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


# --------------------------------------------------------------------------- older checkpoints


def _older_checkpoint(itsm: SandboxThread, tmp_path: Path, sn: str, *changes: str) -> Path:
    """An input whose row 3 writes row 2's sn in lower case (invalid today), and the
    checkpoint a batchops whose rules let it through wrote for it: both rows queued,
    then ``changes`` (SQL) applied to it. Returns the input."""
    import numpy as np

    from batchops.checkpoint.resume import open_checkpoint
    from batchops.model import OutcomeTable
    from batchops.sheet.loading import load_batch

    seed(itsm, running(sn))
    src = write_csv(
        tmp_path / "t.csv",
        [[sn, "admin", "SUSPEND", "x"], [sn.lower(), "admin", "UNSUSPEND", "back"]],
    )
    batch = load_batch(src)
    assert batch.invalid[1] != ""  # today's rules refuse row 3
    path = tmp_path / ".batchops" / "t.checkpoint.db"
    store, work = open_checkpoint(
        batch,
        OutcomeTable(len(batch)),
        np.ones(len(batch), dtype=bool),
        path,
        fresh=False,
        retry_failed=False,
        gateway="esb",
        base_url=itsm.url,
    )
    store.close()
    assert work.to_send.tolist() == [0, 1]
    # A connection's own "with" commits but does not close it (Python 3.13 warns).
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        for change in changes:
            conn.execute(change)
    return src


def test_a_row_queued_by_an_older_batchops_and_invalid_now_is_not_sent(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """A checkpoint written by a batchops whose rules let a row through (here one sn in two
    letter cases) resumes without sending that row and without a traceback: the row
    shows why it is invalid now."""
    src = _older_checkpoint(itsm, tmp_path, "CASE1")

    out = run_cli(["run", str(src), *FAST], creds_env(itsm.url))

    assert out.exit_code == 1, out.stderr  # an invalid row: done, with rows not sent
    rows = read_report(tmp_path / "t.report.csv")
    assert rows[0]["status"] == "success"
    assert rows[1]["status"] == "invalid"
    assert "in other letter case" in rows[1]["message"]
    assert itsm.state.stats.operations_total == 1
    assert "Traceback" not in out.stderr


def test_a_row_in_doubt_from_an_older_batchops_and_invalid_now_stops_with_a_way_out(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """Such a row may have landed: it is neither sent again nor silently dropped. The
    resume stops before anything is sent and says what to check and how to go on."""
    # The older run died with row 3's request out.
    src = _older_checkpoint(
        itsm,
        tmp_path,
        "CASE2",
        "UPDATE rows SET state='sending', attempts=1, sent_at=0 WHERE idx=1",
    )

    out = run_cli(["run", str(src), *FAST], creds_env(itsm.url))

    assert out.exit_code == 2, out.stderr
    assert "row 3 (sn 'case2') was being sent when an earlier run stopped" in out.stderr
    assert (
        "check ticket 'case2' in ITSM, fix the file (and remove the rows already done), "
        "then run with --fresh" in out.stderr
    )
    assert "Traceback" not in out.stderr
    assert itsm.state.stats.operations_total == 0


def test_retry_failed_keeps_an_unknown_row_that_is_invalid_now(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """--retry-failed over an older checkpoint does not turn an unknown row that today's
    rules refuse into "invalid": its request may have landed, and the report keeps
    saying so."""
    src = _older_checkpoint(
        itsm,
        tmp_path,
        "CASE3",
        "UPDATE rows SET state='done', status='success', attempts=1 WHERE idx=0",
        "UPDATE rows SET state='done', status='unknown', message='answer lost', "
        "attempts=1, sent_at=0 WHERE idx=1",
    )

    out = run_cli(["run", str(src), "--retry-failed", *FAST], creds_env(itsm.url))

    assert "Traceback" not in out.stderr
    rows = read_report(tmp_path / "t.report.csv")
    assert [r["status"] for r in rows] == ["success", "unknown"], out.stderr
    assert rows[1]["message"] == "answer lost"
    assert itsm.state.stats.operations_total == 0
    assert out.exit_code == 1


def test_a_row_spelled_like_a_done_one_in_an_older_checkpoint_is_not_sent(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """In a checkpoint from before such files were refused, row 3 (``case4``) was done
    and row 2 (``CASE4``, valid today) still queued. ITSM may take both for one ticket,
    so row 2 is not sent, even without the pre-check, and row 3 keeps its result."""
    src = _older_checkpoint(
        itsm,
        tmp_path,
        "CASE4",
        "UPDATE rows SET state='done', status='success', message='success', attempts=1 WHERE idx=1",
    )

    out = run_cli(["run", str(src), "--no-precheck", *FAST], creds_env(itsm.url))

    assert "Traceback" not in out.stderr
    assert itsm.state.stats.requests.get("operate_ticket", 0) == 0, out.stderr
    rows = read_report(tmp_path / "t.report.csv")
    assert [r["status"] for r in rows] == ["invalid", "success"]
    assert rows[0]["message"].startswith(
        "sn 'CASE4' is row 3's sn 'case4' in other letter case, whose row an earlier run "
        "already ran"
    )
    assert out.exit_code == 1

"""Operations that land after their answer was lost, against the stand-in's slow backend.

The gateway gives up after 30 s and answers "backend timeout", but ITSM's worker goes on
and applies the operation later (``Faults.backend_delay_s``). A ticket whose answer was
lost is parked: read back until the operation shows, and sent again only once it can no
longer land (``--server-timeout``, 5 minutes by default). What the stand-in applied is the
proof, not what batchops says about itself.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from batchops.sandbox import Faults, SandboxConfig, SandboxState, SandboxThread

from ..children import _child_env, _finish, _kill, _operates, _spawn, _wait_until
from ..helpers import (
    APP_CODE,
    SECRET,
    applied_suspends,
    creds_env,
    read_report,
    run_cli,
    running,
    write_csv,
)

pytestmark = pytest.mark.usefixtures("no_child_left_behind")


def _slow_backend(sns: list[str], **faults: float) -> SandboxState:
    state = SandboxState(
        SandboxConfig(app_code=APP_CODE, app_secret=SECRET, faults=Faults(**faults))
    )
    state.seed_tickets(running(sn) for sn in sns)
    return state


def _suspends(sns: list[str]) -> list[list[str]]:
    return [[sn, "admin", "SUSPEND", "freeze"] for sn in sns]


def test_an_operation_applied_after_the_gateway_gave_up_is_not_sent_again(
    tmp_path: Path,
) -> None:
    """ITSM applies each SUSPEND 45 s after it arrived; the gateway answered "backend
    timeout" at 30 s. With the default settings every ticket is suspended once, never
    twice, and no row is ``failed``."""
    sns = [f"LATE{i}" for i in range(5)]
    state = _slow_backend(sns, backend_delay_s=45.0, gateway_timeout_s=30.0)
    src = write_csv(tmp_path / "t.csv", _suspends(sns))
    with SandboxThread(state) as server:
        out = run_cli(["run", str(src), "--yes"], creds_env(server.url))
        time.sleep(0.5)  # nothing is left in flight to land after the run
    assert out.exit_code in (0, 1), out.stdout + out.stderr
    report = read_report(tmp_path / "t.report.csv")
    assert {r["status"] for r in report} <= {"success", "unknown"}, report
    assert applied_suspends(server) == Counter(sns)
    assert state.stats.double_suspends == 0
    assert all(r["status"] == "success" for r in report), report


def test_a_rerun_after_kill_9_sends_the_rest_at_once(tmp_path: Path) -> None:
    """SIGKILL with SUSPENDs in flight, then the same command at once: the rows that were
    not in flight go out within seconds (only the in-flight tickets are parked and read
    back), and no ticket is suspended twice."""
    sns = [f"K{i:02d}" for i in range(30)]
    state = _slow_backend(sns, backend_delay_s=3.0)
    src = write_csv(tmp_path / "t.csv", _suspends(sns))
    # A row marked "sending" whose request had not reached the stand-in when the run was
    # killed can never land: 20 s, not the default 5 minutes, before it is sent again.
    args = ["run", str(src), "-c", "5", "--no-precheck", "--server-timeout", "20"]
    with SandboxThread(state) as server:
        env = _child_env(tmp_path, server.url)
        proc = _spawn(args, env, tmp_path)
        _wait_until("five SUSPENDs are in flight", lambda: _operates(state) >= 5, proc)
        _kill(proc)
        sent_before = _operates(state)
        started = time.monotonic()
        rerun = _spawn(args, env, tmp_path)
        _wait_until(
            "the re-run sends a row that was not in flight",
            lambda: _operates(state) > sent_before,
            rerun,
            timeout=60,
        )
        first_new = time.monotonic() - started
        finished = _finish(rerun, timeout=120)
        time.sleep(3.5)  # whatever was still on its way in the stand-in lands
    assert finished.code == 0, finished.text
    assert first_new < 10, f"the first new operation left {first_new:.1f} s after the re-run"
    assert applied_suspends(server) == Counter(sns)
    assert state.stats.double_suspends == 0


@pytest.mark.parametrize(
    "rerun_args",
    [["--checkpoint", "other.checkpoint.db"], ["--no-checkpoint"]],
    ids=["other-checkpoint", "no-checkpoint"],
)
def test_suspends_in_flight_at_kill_9_are_not_resent_by_a_run_without_their_checkpoint(
    tmp_path: Path, rerun_args: list[str]
) -> None:
    """SIGKILL with 20 slow SUSPENDs in flight (the stand-in applies each 4 s after it
    arrived), then at once the same sheet with another checkpoint, or none: the new run
    learns from the machine-wide record what is still in flight, parks those tickets and
    reads them back until the SUSPEND shows. Each ticket is suspended once, never twice."""
    sns = [f"IF{i:02d}" for i in range(20)]
    state = _slow_backend(sns, backend_delay_s=4.0)
    src = write_csv(tmp_path / "t.csv", _suspends(sns))
    with SandboxThread(state) as server:
        env = _child_env(tmp_path, server.url)
        proc = _spawn(["run", str(src), "-c", "20"], env, tmp_path)
        _wait_until("20 SUSPENDs are in flight", lambda: _operates(state) >= 20, proc)
        _kill(proc)
        rerun = _finish(_spawn(["run", str(src), *rerun_args], env, tmp_path), timeout=120)
        time.sleep(4.5)  # whatever was still on its way in the stand-in lands
    assert state.stats.double_suspends == 0
    assert applied_suspends(server) == Counter(sns)
    assert rerun.code == 0, rerun.text
    assert "in flight from an earlier batchops run" in rerun.stderr
    report = read_report(tmp_path / "t.report.csv")
    assert [r["status"] for r in report] == ["success"] * len(sns), report
    assert all("confirmed by read-back" in r["message"] for r in report), report


def test_another_sheets_rows_wait_for_a_suspend_still_in_flight(tmp_path: Path) -> None:
    """SIGKILL with SUSPENDs in flight; then, at once, another sheet that UNSUSPENDs those
    tickets, without a checkpoint. No UNSUSPEND goes out while the SUSPEND may still land
    (else it would be judged "nothing to resume" and the late SUSPEND would leave the
    ticket suspended): each ticket is suspended once, then resumed once, and ends RUNNING."""
    sns = [f"OA{i}" for i in range(5)]
    state = _slow_backend(sns, backend_delay_s=4.0)
    first = write_csv(tmp_path / "freeze.csv", _suspends(sns))
    second = write_csv(tmp_path / "thaw.csv", [[sn, "admin", "UNSUSPEND", "thaw"] for sn in sns])
    with SandboxThread(state) as server:
        env = _child_env(tmp_path, server.url)
        proc = _spawn(["run", str(first), "-c", "5"], env, tmp_path)
        _wait_until("5 SUSPENDs are in flight", lambda: _operates(state) >= 5, proc)
        _kill(proc)
        server.call(lambda: state.set_faults(Faults(backend_delay_s=0.0)))
        rerun = _finish(_spawn(["run", str(second), "--no-checkpoint"], env, tmp_path), 120)
        time.sleep(4.5)  # whatever was still on its way in the stand-in lands
        statuses = server.call(lambda: {sn: state.tickets[sn].status for sn in sns})
    assert statuses == dict.fromkeys(sns, "RUNNING"), rerun.text
    assert applied_suspends(server) == Counter(sns)
    assert state.stats.double_suspends == 0
    assert rerun.code == 0, rerun.text
    report = read_report(tmp_path / "thaw.report.csv")
    assert [r["status"] for r in report] == ["success"] * len(sns), report

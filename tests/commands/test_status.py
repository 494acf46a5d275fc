"""End to end: ``batchops status`` on the checkpoint of a run in progress, a finished one,
one that stopped early and one that was killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from batchops.sandbox import Faults, SandboxThread

from ..helpers import creds_env, run_cli, running, seed, write_csv

ROWS = 300


def status_of(checkpoint: Path) -> dict[str, Any]:
    out = run_cli(["status", str(checkpoint), "--json"])
    assert out.exit_code == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def start_run(itsm: SandboxThread, tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    """A real batchops process sending ROWS rows, slowly (20 ms a request, 2 at a time)."""
    seed(itsm, *(running(f"ST{i:04d}") for i in range(ROWS)))
    itsm.call(lambda: itsm.state.set_faults(Faults(latency_ms=20)))
    src = write_csv(
        tmp_path / "t.csv", [[f"ST{i:04d}", "admin", "SUSPEND", "x"] for i in range(ROWS)]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BK_", "BATCHOPS_"))}
    env.update(creds_env(itsm.url))
    return subprocess.Popen(
        [sys.executable, "-m", "batchops", "run", str(src), "-c", "2", "--quiet", *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(checkpoint: Path, done_at_least: int, deadline_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if checkpoint.exists():
            result = run_cli(["status", str(checkpoint), "--json"])
            if result.exit_code == 0:
                state: dict[str, Any] = json.loads(result.stdout)
                if state["done"] >= done_at_least:
                    return state
        time.sleep(0.05)
    raise AssertionError(f"the run did not get {done_at_least} rows done in {deadline_s} s")


def test_status_of_a_running_run_grows_and_ends_with_the_final_counts(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """While the run writes: a process holds it, counts grow, a rate and an ETA show;
    once it is over: the final counts, finished, no process."""
    checkpoint = tmp_path / "t.checkpoint.db"
    proc = start_run(itsm, tmp_path)
    try:
        first = wait_for(checkpoint, 10)
        assert first["state"] == "running" and first["pid"] == proc.pid
        second = wait_for(checkpoint, first["done"] + 20)
        assert second["counts"]["success"] > first["counts"]["success"]
        assert second["counts"]["pending"] < first["counts"]["pending"]
        assert second["rows_per_second"] > 0 and second["eta_s"] is not None
        text = run_cli(["status", str(checkpoint)]).stdout
        assert "state: running" in text and "rows/s over the last minute; ETA" in text
    finally:
        assert proc.wait(timeout=60) == 0
    final = status_of(checkpoint)
    assert final["state"] == "finished" and final["pid"] is None
    assert final["counts"]["success"] == ROWS and final["done"] == ROWS
    assert final["in_flight"] == 0 and final["eta_s"] is None
    assert final["run"]["exit_code"] == 0 and final["run"]["stopped"] == ""
    assert final["rows_per_second"] > 0
    assert "state: finished" in run_cli(["status", str(checkpoint)]).stdout


def test_status_of_an_interrupted_run_says_why(itsm: SandboxThread, tmp_path: Path) -> None:
    """SIGTERM stops the run cleanly: status shows stopped, the reason and what is left."""
    checkpoint = tmp_path / "t.checkpoint.db"
    proc = start_run(itsm, tmp_path)
    wait_for(checkpoint, 5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 130
    state = status_of(checkpoint)
    assert state["state"] == "stopped"
    assert "interrupted by SIGTERM" in state["note"]
    assert state["counts"]["pending"] > 0 and state["run"]["exit_code"] == 130


def test_status_of_a_killed_run_says_it_died(itsm: SandboxThread, tmp_path: Path) -> None:
    """A run killed outright never ended: status says so, and that resuming is safe."""
    checkpoint = tmp_path / "t.checkpoint.db"
    proc = start_run(itsm, tmp_path)
    wait_for(checkpoint, 5)
    proc.kill()
    proc.wait(timeout=30)
    state = status_of(checkpoint)
    assert state["state"] == "died" and state["pid"] is None
    assert state["run"]["ended_at"] is None
    assert "read back" in state["note"]


def test_status_never_writes_the_checkpoint(itsm: SandboxThread, tmp_path: Path) -> None:
    """Reading the status leaves the checkpoint file byte for byte as it was."""
    seed(itsm, running("NO1"))
    src = write_csv(tmp_path / "t.csv", [["NO1", "admin", "SUSPEND", "x"]])
    assert run_cli(["run", str(src)], creds_env(itsm.url)).exit_code == 0
    checkpoint = tmp_path / "t.checkpoint.db"
    before = checkpoint.read_bytes()
    assert status_of(checkpoint)["state"] == "finished"
    assert checkpoint.read_bytes() == before


def test_status_of_something_else_is_exit_2(tmp_path: Path) -> None:
    """A missing file or one that is no checkpoint: one Error line, exit 2."""
    assert run_cli(["status", str(tmp_path / "nope.db")]).exit_code == 2
    junk = tmp_path / "junk.db"
    junk.write_text("not sqlite")
    out = run_cli(["status", str(junk)])
    assert out.exit_code == 2 and "not a batchops checkpoint" in out.stderr

"""One run per sheet and target at a time, with two real batchops processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchops.sandbox import Faults, SandboxThread

from ..helpers import creds_env, running, seed, write_csv

ROWS = 12


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BK_", "BATCHOPS_"))}
    env.update(creds_env(url))
    return env


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "batchops", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(cwd),
    )


def _wait_for_operations(server: SandboxThread, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while server.state.stats.operations_total == 0:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first run never started sending"
        time.sleep(0.05)


@pytest.mark.parametrize(
    "second_args",
    [["--no-checkpoint"], ["--checkpoint", "other.db"]],
    ids=["no-checkpoint", "other-checkpoint"],
)
def test_second_run_of_the_same_sheet_is_refused(
    itsm: SandboxThread, tmp_path: Path, second_args: list[str]
) -> None:
    """While one process runs a sheet, a second one on the same sheet and target (whatever
    its checkpoint) exits 2 naming the first one's PID, and sends nothing: every ticket is
    operated exactly once."""
    sns = [f"LK{i:03d}" for i in range(ROWS)]
    seed(itsm, *(running(sn) for sn in sns))
    itsm.call(lambda: itsm.state.set_faults(Faults(latency_ms=1000)))
    sheet = write_csv(tmp_path / "t.csv", [[sn, "admin", "SUSPEND", "x"] for sn in sns])
    env = _env(itsm.url)
    first = _start(["run", str(sheet), "-c", "2", "--checkpoint", "first.db"], env, tmp_path)
    try:
        _wait_for_operations(itsm, first)
        second = subprocess.run(
            [sys.executable, "-m", "batchops", "run", str(sheet), "-c", "2", *second_args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            cwd=str(tmp_path),
            timeout=60,
        )
        still_running = first.poll() is None
    finally:
        out, err = first.communicate(timeout=60)
    assert still_running, "the test needs the first run to outlast the second"
    assert second.returncode == 2, second.stderr
    assert f"PID {first.pid}" in second.stderr
    assert "nothing was sent" in second.stderr
    assert first.returncode == 0, out + err
    assert itsm.state.stats.operations_total == ROWS
    assert all(len(itsm.state.stats.ops_for(sn)) == 1 for sn in sns)
    assert itsm.state.stats.double_suspends == 0


def test_lock_is_released_when_a_run_ends(itsm: SandboxThread, tmp_path: Path) -> None:
    """After a run ends (here: killed), the next run of the same sheet is let in."""
    seed(itsm, running("LK1"))
    itsm.call(lambda: itsm.state.set_faults(Faults(latency_ms=2000)))
    sheet = write_csv(tmp_path / "t.csv", [["LK1", "admin", "SUSPEND", "x"]])
    env = _env(itsm.url)
    first = _start(["run", str(sheet), "--no-precheck"], env, tmp_path)
    _wait_for_operations(itsm, first)
    first.kill()
    first.communicate(timeout=30)
    itsm.call(lambda: itsm.state.set_faults(Faults()))
    again = subprocess.run(
        [sys.executable, "-m", "batchops", "run", str(sheet), "--timeout", "3"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    assert "in use by another" not in again.stderr

"""benchmarks/phases.py: the real command runs as usual and a table of its steps follows."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from batchops.sandbox import SandboxThread

from ..helpers import creds_env, host_env, running, write_csv

PROJECT = Path(__file__).resolve().parents[2]


def phases(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks.phases ARGS`` in ``folder``, with only the given credentials."""
    child_env = host_env()
    child_env.update(env or {})
    child_env["PYTHONPATH"] = str(PROJECT)
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.phases", *args],
        cwd=folder,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def steps_of(stderr: str) -> dict[str, int]:
    """The step table's rows: label -> calls."""
    return {
        m.group(1).strip(): int(m.group(2))
        for m in re.finditer(r"^ *(\S[^\d\n]*?)\s+(\d+)\s+[\d.]+\s+[\d.]+$", stderr, re.M)
    }


def test_a_timed_run_does_the_same_work_and_then_names_its_steps(tmp_path: Path) -> None:
    source = tmp_path / "tickets.csv"
    shutil.copy(PROJECT / "samples" / "tickets.csv", source)
    done = phases(tmp_path, "run", source.name, "--sandbox", "--yes")
    # The samples hold one row ITSM refuses: exit 1, as `batchops run` gives.
    assert done.returncode == 1, done.stderr
    assert "9 rows: 6 success, 1 failed, 2 invalid" in done.stdout
    assert (tmp_path / "tickets.report.csv").exists()
    assert steps_of(done.stderr) == {
        "load and validate": 1,
        "open the checkpoint": 1,
        "reachability probe": 1,
        "pre-check": 1,
        "send": 1,
        "write the results": 1,
    }
    assert re.search(r"^whole process\s+[\d.]+\s+[\d.]+$", done.stderr, re.M)


def test_with_a_checkpoint_its_commits_and_its_closing_are_timed_too(
    stand_in: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    server = stand_in([running(f"PH{i}") for i in range(5)])
    src = write_csv(tmp_path / "t.csv", [[f"PH{i}", "admin", "SUSPEND", "x"] for i in range(5)])
    done = phases(tmp_path, "run", src.name, "--yes", env=creds_env(server.url))
    assert done.returncode == 0, done.stderr
    assert server.state.stats.operations_total == 5
    steps = steps_of(done.stderr)
    assert steps["close the checkpoint"] == 1
    assert steps["checkpoint commits (all)"] >= 1
    assert (tmp_path / ".batchops" / "t.checkpoint.db").exists()

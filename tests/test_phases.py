"""benchmarks/phases.py: the real command runs as usual and a table of its steps follows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def test_a_timed_run_does_the_same_work_and_then_names_its_steps(tmp_path: Path) -> None:
    source = tmp_path / "tickets.csv"
    shutil.copy(PROJECT / "samples" / "tickets.csv", source)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BK_", "BATCHOPS_"))}
    env["PYTHONPATH"] = str(PROJECT)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.phases", "run", source.name, "--sandbox", "--yes"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # The samples hold one row ITSM refuses: exit 1, as `batchops run` gives.
    assert done.returncode == 1, done.stderr
    assert "9 rows: 6 success, 1 failed, 2 invalid" in done.stdout
    assert (tmp_path / "tickets.report.csv").exists()
    steps = {
        m.group(1).strip(): int(m.group(2))
        for m in re.finditer(r"^(\S[^\d\n]*?)\s+(\d+)\s+[\d.]+\s+[\d.]+$", done.stderr, re.M)
    }
    assert steps == {
        "load and validate": 1,
        "open the checkpoint": 1,
        "reachability probe": 1,
        "pre-check": 1,
        "send": 1,
        "write the results": 1,
    }
    assert re.search(r"^whole process\s+[\d.]+\s+[\d.]+$", done.stderr, re.M)

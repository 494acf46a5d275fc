"""A stop stops, whatever ``--rate``: the real CLI as a child process, signalled mid-run.

Under a slow ``--rate`` most of a run is waiting for turns; SIGTERM must end those waits
at once (exit 130 within seconds) and no request may reach ITSM after it, rather than
letting every queued worker take its turn first (20 workers at ``--rate 0.05``: 400 s).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from batchops.sandbox import SandboxState, SandboxThread

from ..children import _child_env, _rows, _spawn, _state, _tickets, _wait_until
from ..helpers import read_report, write_csv

pytestmark = pytest.mark.usefixtures("no_child_left_behind")


def _arrivals(state: SandboxState) -> list[float]:
    """When (``time.monotonic()``) each request reaches the stand-in, from now on."""
    arrivals: list[float] = []
    count_request = state._count_request

    def counted(api: str) -> None:
        arrivals.append(time.monotonic())
        count_request(api)

    state._count_request = counted  # type: ignore[method-assign]
    return arrivals


@pytest.mark.parametrize("rate", ["0.05", "0.2"])
def test_sigterm_under_a_slow_rate_exits_130_at_once_and_sends_nothing_after(
    tmp_path: Path, rate: str
) -> None:
    """Twenty workers queued for their turn of --rate: SIGTERM exits 130 within 5 s, no
    request reaches the stand-in more than 1 s after it, and the rows not sent stay
    pending for the same command."""
    state = _state()
    sns = [f"RT{i}" for i in range(40)]
    _tickets(state, sns)
    arrivals = _arrivals(state)
    src = write_csv(tmp_path / "t.csv", _rows(sns))
    with SandboxThread(state) as server:
        args = ["run", str(src), "--yes", "--rate", rate, "-c", "20"]
        proc = _spawn(args, _child_env(tmp_path, server.url), tmp_path)
        _wait_until("the first operation was answered", lambda: state.stats.operations_total, proc)
        time.sleep(0.3)  # the other workers now wait for their turns
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 5 s after SIGTERM under --rate {rate}")
        late = [round(t - signalled, 2) for t in arrivals if t > signalled + 1]
    assert proc.returncode == 130, out + err
    assert "interrupted by SIGTERM" in err
    assert late == [], f"requests arrived this long after SIGTERM: {late}"
    statuses = Counter(r["status"] for r in read_report(tmp_path / "t.report.csv"))
    assert statuses["success"] == state.stats.applied_total
    assert statuses["pending"] == len(sns) - statuses["success"] > 0

"""Helpers of the crash-and-resume tests: the real CLI as a child process (started,
killed, waited for), stand-in states, and the checks every re-run must pass.

Every child started here is listed in :data:`_CHILDREN`; the ``no_child_left_behind``
fixture (conftest) kills what a failed test left running.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from batchops.checkpoint.store import Checkpoint
from batchops.sandbox import Faults, SandboxConfig, SandboxState

from .helpers import APP_CODE, SECRET, creds_env, host_env, running

ACTIONS = ("SUSPEND", "TERMINATE", "WITHDRAW")
READ_BACK = "confirmed by read-back"


# --------------------------------------------------------------------------- helpers


def _state(latency_ms: float = 0.0, **faults: Any) -> SandboxState:
    """A stand-in whose app secret is :data:`SECRET`, with the given faults."""
    return SandboxState(
        SandboxConfig(
            app_code=APP_CODE, app_secret=SECRET, faults=Faults(latency_ms=latency_ms, **faults)
        )
    )


def _tickets(state: SandboxState, sns: Sequence[str]) -> None:
    state.seed_tickets(running(sn) for sn in sns)


def _rows(sns: Sequence[str]) -> list[list[str]]:
    """One row per ticket, actions taking turns (none of them needs a confirming read)."""
    return [[sn, "admin", ACTIONS[i % len(ACTIONS)], f"batch {i}"] for i, sn in enumerate(sns)]


def _child_env(tmp_path: Path, url: str, secret: str = SECRET) -> dict[str, str]:
    """The environment of a child CLI: this one without BK_/BATCHOPS_, plus credentials.

    XDG_CONFIG_HOME points at an empty folder so no developer's batchops.toml is read.
    """
    env = host_env()
    env.update(creds_env(url, secret=secret))
    xdg = tmp_path / "xdg"
    xdg.mkdir(exist_ok=True)
    env["XDG_CONFIG_HOME"] = str(xdg)
    return env


_CHILDREN: list[subprocess.Popen[str]] = []


def _spawn(args: Sequence[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """Start the real CLI: ``python -m batchops ARGS`` (stdin is not a terminal)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchops", *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _CHILDREN.append(proc)
    return proc


@dataclass
class Done:
    """A finished child process."""

    code: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


def _finish(proc: subprocess.Popen[str], timeout: float = 60) -> Done:
    out, err = proc.communicate(timeout=timeout)
    return Done(proc.returncode, out, err)


def _run(args: Sequence[str], env: dict[str, str], cwd: Path) -> Done:
    """Run the real CLI to its end."""
    return _finish(_spawn(args, env, cwd))


def _kill(proc: subprocess.Popen[str]) -> Done:
    """SIGKILL the child (no handler, no cleanup, no flush) and reap it."""
    proc.send_signal(signal.SIGKILL)
    done = _finish(proc)
    assert done.code == -signal.SIGKILL, done.text
    return done


def _wait_until(
    what: str,
    condition: Callable[[], bool],
    proc: subprocess.Popen[str] | None = None,
    timeout: float = 30.0,
) -> None:
    """Poll ``condition`` every 2 ms; fail if ``proc`` ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            done = _finish(proc)
            pytest.fail(f"the run ended (exit {done.code}) before {what}:\n{done.text}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.002)


def _operates_in_flight(stats: Any) -> int:
    """operate_ticket requests the server has received but not answered yet."""
    return int(stats.requests.get("operate_ticket", 0)) - int(stats.operations_total)


def _operates(state: SandboxState) -> int:
    """operate_ticket requests the stand-in has received so far."""
    return int(state.stats.requests.get("operate_ticket", 0))


def _drain(state: SandboxState) -> None:
    """Wait until the server has finished every request (the killed run's included)."""
    _wait_until("the stand-in finished its requests", lambda: state.stats.in_flight == 0)


def _row_states(path: Path) -> dict[int, str]:
    """Each row's state in the checkpoint, read as ``batchops report`` would."""
    store = Checkpoint.open_readonly(path)
    try:
        return {rec.index: rec.state for rec in store.rows()}
    finally:
        store.close()


def _applied(ops: Sequence[Any]) -> Counter[tuple[str, str]]:
    """Applied operations per (sn, action) in a sandbox operation log."""
    return Counter((op.sn, op.action) for op in ops if op.applied)


def _no_secret_in(folder: Path, secret: str) -> None:
    """No file under ``folder`` (checkpoint, its -wal, reports, temp files) holds ``secret``."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.name.endswith("-wal") for p in files)  # the kill left the WAL: it is checked
    for path in files:
        assert secret.encode() not in path.read_bytes(), path


def _assert_once_each(report: list[dict[str, str]], state: SandboxState) -> None:
    """Every row success, applied exactly once; no double suspend, no overlap on one sn."""
    assert [r["status"] for r in report] == ["success"] * len(report), report
    applied = _applied(state.stats.operations)
    for r in report:
        assert applied[(r["sn"], r["action_type"])] == 1, (r, applied)
    assert state.stats.double_suspends == 0
    assert state.stats.concurrent_same_sn == 0

"""Windows conditions, proven here: no ``fcntl``, no ``loop.add_signal_handler``, a GBK console.

The real CLI runs as a child process under a wrapper that makes the interpreter look like
Windows' where batchops could tell: ``import fcntl`` fails, as it does there, and the
event loop's ``add_signal_handler`` raises NotImplementedError, as the Proactor loop's
does. (The lock then falls to filelock's portable soft lock, since this machine has no
``msvcrt``; on Windows filelock uses ``msvcrt.locking``.) A ``PYTHONIOENCODING=gbk``
console stands for a Chinese Windows console's code page.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import xlsxwriter

from batchops.sandbox import Faults, SandboxConfig, SandboxState, SandboxThread

from ..helpers import APP_CODE, SECRET, creds_env, host_env, read_report, running, write_csv

SAMPLES = Path(__file__).resolve().parents[2] / "samples"

#: Run ``python -m batchops`` as if on Windows: no fcntl, no loop signal handlers.
AS_ON_WINDOWS = """
import os, sys
sys.modules["fcntl"] = None  # "import fcntl" raises ImportError, as on Windows
for name in filter(None, os.environ.get("TEST_BLOCK_MODULES", "").split(",")):
    sys.modules[name] = None
import asyncio.unix_events as loops

def _not_here(self, *args, **kwargs):
    raise NotImplementedError("no loop signal handlers (as on Windows)")

loops._UnixSelectorEventLoop.add_signal_handler = _not_here
loops._UnixSelectorEventLoop.remove_signal_handler = _not_here
import runpy
sys.argv[0] = "batchops"
try:
    runpy.run_module("batchops", run_name="__main__", alter_sys=True)
finally:
    assert sys.modules.get("fcntl") is None, "something imported fcntl"
"""

_CHILDREN: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_child_left_behind() -> Iterator[None]:
    yield
    while _CHILDREN:
        proc = _CHILDREN.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = host_env()
    xdg = tmp_path / "xdg"
    xdg.mkdir(exist_ok=True)
    env["XDG_CONFIG_HOME"] = str(xdg)
    env.update(extra)
    return env


def _spawn(args: Sequence[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", AS_ON_WINDOWS, *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    _CHILDREN.append(proc)
    return proc


def _run(args: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    proc = _spawn(args, env, cwd)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def test_sandbox_run_end_to_end_without_fcntl_or_loop_signals_on_a_gbk_console(
    tmp_path: Path,
) -> None:
    """The sample sheet, renamed with an emoji a GBK console cannot show, runs end to end:
    the report is written, exit 1 as for the sample, no traceback, and the path is printed
    escaped instead of crashing the console."""
    src = tmp_path / "工单😀.csv"
    shutil.copy(SAMPLES / "tickets.csv", src)
    code, out, err = _run(
        ["run", src.name, "--sandbox", "--yes"], _env(tmp_path, PYTHONIOENCODING="gbk"), tmp_path
    )
    assert code == 1, out + err
    assert "Traceback" not in err
    assert "9 rows: 6 success, 1 failed, 2 invalid" in out
    assert "\\U0001f600.report.csv" in out
    report = read_report(tmp_path / "工单😀.report.csv")
    assert Counter(r["status"] for r in report) == {"success": 6, "failed": 1, "invalid": 2}


def test_checkpointed_run_and_resume_without_fcntl(tmp_path: Path) -> None:
    """With a checkpoint (locked without fcntl) the run works and a second run finds every row
    done."""
    src = tmp_path / "t.csv"
    shutil.copy(SAMPLES / "tickets.csv", src)
    args = ["run", src.name, "--sandbox", "--yes", "--checkpoint", "t.db"]
    code, out, err = _run(args, _env(tmp_path), tmp_path)
    assert code == 1, out + err
    assert (tmp_path / "t.db").exists()
    again_code, again_out, again_err = _run(args, _env(tmp_path), tmp_path)
    assert again_code == 1, again_out + again_err
    assert "9 rows already done; nothing left to send" in again_out, again_out


def _state(latency_ms: float) -> SandboxState:
    return SandboxState(
        SandboxConfig(app_code=APP_CODE, app_secret=SECRET, faults=Faults(latency_ms=latency_ms))
    )


def _sheet(state: SandboxState, tmp_path: Path, n: int) -> Path:
    sns = [f"W{i}" for i in range(n)]
    state.seed_tickets(running(sn) for sn in sns)
    return write_csv(tmp_path / "t.csv", [[sn, "admin", "SUSPEND", "x"] for sn in sns])


def _wait_until(what: str, condition: object, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not condition():  # type: ignore[operator]
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}:\n{out}{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.005)


def test_ctrl_c_without_loop_signal_handlers_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) mid-run through the signal.signal fallback: requests in flight
    finish, the report is written with the rest pending, exit 130; the same command
    then finishes every row."""
    state = _state(latency_ms=100)
    src = _sheet(state, tmp_path, 40)
    args = ["run", src.name, "-c", "2", "--readback-delay", "0"]
    with SandboxThread(state) as server:
        env = _env(tmp_path, **creds_env(server.url))
        proc = _spawn(args, env, tmp_path)
        _wait_until("4 answers given", lambda: state.stats.operations_total >= 4, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, out + err
        assert "interrupted by SIGINT" in err
        assert "Traceback" not in err
        statuses = Counter(r["status"] for r in read_report(tmp_path / "t.report.csv"))
        assert set(statuses) == {"success", "pending"}, statuses
        assert statuses["success"] == state.stats.applied_total

        server.call(lambda: state.set_faults(Faults()))
        code, out, err = _run(args, env, tmp_path)
    assert code == 0, out + err
    rows = read_report(tmp_path / "t.report.csv")
    assert [r["status"] for r in rows] == ["success"] * 40
    assert state.stats.applied_total == 40


def test_second_ctrl_c_leaves_at_once(tmp_path: Path) -> None:
    """A second Ctrl-C while the first waits for slow answers ends the process at once
    (exit 130), long before those answers could arrive."""
    state = _state(latency_ms=30_000)
    src = _sheet(state, tmp_path, 4)
    with SandboxThread(state) as server:
        env = _env(tmp_path, **creds_env(server.url))
        proc = _spawn(["run", src.name, "-c", "2", "--no-precheck"], env, tmp_path)
        _wait_until("an operation in flight", lambda: state.stats.in_flight >= 1, proc)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert proc.poll() is None  # the first one waits for the answers in flight
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
        took = time.monotonic() - started
        server.call(lambda: state.set_faults(Faults()))
    assert proc.returncode == 130
    assert took < 10


def test_xlsx_in_and_out_without_openpyxl(tmp_path: Path) -> None:
    """An XLSX sheet in, an XLSX report out, under the same conditions and with openpyxl
    unimportable: it is only a test and benchmark extra, nothing at run time needs it."""
    src = tmp_path / "t.xlsx"
    book = xlsxwriter.Workbook(str(src))
    sheet = book.add_worksheet()
    for r, row in enumerate([["sn", "operator", "action_type"], ["X1", "admin", "WITHDRAW"]]):
        sheet.write_row(r, 0, row)
    book.close()
    code, out, err = _run(
        ["run", src.name, "--sandbox"], _env(tmp_path, TEST_BLOCK_MODULES="openpyxl"), tmp_path
    )
    assert code == 0, out + err
    assert (tmp_path / "t.report.xlsx").stat().st_size > 0

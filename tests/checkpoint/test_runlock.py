"""One run per sheet and target at a time: :class:`RunLock` and its key in this process,
then with two real batchops processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchops.checkpoint.runlock import RunLock, lock_key, state_dir
from batchops.errors import RunInProgressError
from batchops.sandbox import Faults, SandboxThread

from ..helpers import creds_env, running, seed, write_csv

ROWS = 12
URL = "http://itsm.example:8080"


def test_the_key_names_the_sheet_and_the_target_not_the_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same file reached from another folder, and the same URL written with another
    case or a trailing slash, give one key; another file, gateway or host another."""
    sheet = write_csv(tmp_path / "t.csv", [["S1", "admin", "SUSPEND", "x"]])
    key = lock_key(sheet, "esb", URL)
    monkeypatch.chdir(tmp_path)
    assert lock_key(Path("t.csv"), "esb", " HTTP://ITSM.example:8080/ ") == key
    assert lock_key(tmp_path / "u.csv", "esb", URL) != key
    assert lock_key(sheet, "apigw", URL) != key
    assert lock_key(sheet, "esb", "http://itsm.example:8081") != key


def test_a_second_lock_on_one_key_is_refused_naming_the_holder(tmp_path: Path) -> None:
    """While one RunLock holds the sheet and target, another is refused with the holder's
    PID and that nothing was sent; release() lets the next one in."""
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    sheet = tmp_path / "t.csv"
    first = RunLock(sheet, "esb", URL, env).acquire()
    second = RunLock(sheet, "esb", URL + "/", env)
    assert second.path == first.path
    assert second.path.parent == tmp_path / "state" / "batchops" / "locks"
    with pytest.raises(RunInProgressError) as refused:
        second.acquire()
    assert f"PID {os.getpid()}" in str(refused.value)
    assert "nothing was sent" in str(refused.value)
    RunLock(tmp_path / "other.csv", "esb", URL, env).acquire().release()  # other keys go on
    first.release()
    first.release()  # a second release is harmless
    second.acquire()
    second.release()


@pytest.mark.parametrize("pid_file", [None, "12ab\n"], ids=["missing", "garbled"])
def test_a_holder_whose_pid_cannot_be_read_is_named_as_unknown(
    tmp_path: Path, pid_file: str | None
) -> None:
    """A refusal while the holder's PID file is missing (it is written just after the
    lock is taken) or unreadable says the PID is not known yet, never a wrong one."""
    env = {"XDG_STATE_HOME": str(tmp_path)}
    first = RunLock(tmp_path / "t.csv", "esb", URL, env).acquire()
    try:
        holder = next(first.folder.glob("*.pid"))
        if pid_file is None:
            holder.unlink()
        else:
            holder.write_text(pid_file, encoding="utf-8")
        with pytest.raises(RunInProgressError, match="PID not known yet"):
            RunLock(tmp_path / "t.csv", "esb", URL, env).acquire()
    finally:
        first.release()


def test_the_lock_folder_follows_xdg_state_home_else_home(tmp_path: Path) -> None:
    """$XDG_STATE_HOME/batchops, else ~/.local/state/batchops; a folder that cannot be
    made is a refusal that says which variable to set."""
    assert state_dir({"XDG_STATE_HOME": "/x/state", "HOME": "/h"}) == Path("/x/state/batchops")
    assert state_dir({"HOME": "/h"}) == Path("/h/.local/state/batchops")
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(RunInProgressError, match="set XDG_STATE_HOME"):
        RunLock(tmp_path / "t.csv", "esb", URL, {"XDG_STATE_HOME": str(blocked)}).acquire()


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

"""The process-wide changes: each made in batchops.process, and each put back or kept as said.

The ones that end the process (a signal while an output is written, the exit without
teardown) run in a child interpreter.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from batchops.process import (
    current_umask,
    default_sigint,
    fewer_young_collections,
    raise_open_files_limit,
)


def _child(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )


def test_fewer_young_collections_during_the_block_and_the_threshold_put_back() -> None:
    before = gc.get_threshold()
    with fewer_young_collections():
        during = gc.get_threshold()
    assert during[0] >= 20_000 and during[1:] == before[1:]
    assert gc.get_threshold() == before


def test_reading_the_umask_leaves_it_as_it_was() -> None:
    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        assert current_umask() == 0o027
    finally:
        os.umask(old)


@pytest.mark.skipif(sys.platform == "win32", reason="no open-files limit on Windows")
def test_the_open_files_limit_is_raised_towards_what_is_wanted() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        wanted = soft + 10 if hard == resource.RLIM_INFINITY else min(hard, soft + 10)
        now = raise_open_files_limit(wanted)
        assert now == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert now is not None and now >= wanted
        assert raise_open_files_limit(1) == now  # never lowered
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_ctrl_c_is_a_keyboard_interrupt_inside_default_sigint_only() -> None:
    def mine(signum: int, frame: object) -> None:
        raise AssertionError("the handler outside the block ran")

    previous = signal.signal(signal.SIGINT, mine)
    try:
        with pytest.raises(KeyboardInterrupt), default_sigint():
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM cannot be caught on Windows")
def test_a_signal_inside_leave_on_signal_cleans_up_and_exits_130(tmp_path: Path) -> None:
    done = _child(
        """
        import os, signal
        from pathlib import Path
        from batchops.process import leave_on_signal

        with leave_on_signal(lambda name: Path("left").write_text(name)):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pause()
        """,
        tmp_path,
    )
    assert done.returncode == 130, done.stderr
    assert (tmp_path / "left").read_text() == "SIGTERM"


@pytest.mark.parametrize(
    ("status", "code", "stderr"),
    [("None", 0, ""), ("4", 4, ""), ("'no such file'", 1, "no such file\n")],
)
def test_leaving_without_teardown_exits_as_sys_exit_would_but_skips_atexit(
    tmp_path: Path, status: str, code: int, stderr: str
) -> None:
    """Output is flushed, the status read as a SystemExit's; atexit handlers do not run."""
    done = _child(
        f"""
        import atexit, sys
        from batchops.process import ignore_file_size_signal, leave_without_teardown

        atexit.register(lambda: print("atexit ran"))
        ignore_file_size_signal()
        import signal
        print("xfsz", getattr(signal, "SIGXFSZ", None) is None
              or signal.getsignal(signal.SIGXFSZ) is signal.SIG_IGN, end="")
        leave_without_teardown({status})
        """,
        tmp_path,
    )
    assert done.returncode == code
    assert done.stdout == "xfsz True"
    assert done.stderr == stderr

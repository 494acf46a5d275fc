"""Tests of batchops.report.atomic: the atomic write (the old report survives any failure,
no temp file is left) and the one-line errors of a report that cannot be written."""

from __future__ import annotations

import csv
import errno
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import xlsxwriter
from xlsxwriter.exceptions import FileCreateError

from batchops.errors import InputError
from batchops.report import atomic as report_file
from batchops.report import csv_file as report_csv
from batchops.report import xlsx as report_xlsx
from batchops.report.outputs import TempFile
from batchops.report.writing import write_report

from ..helpers import host_env, write_csv
from ..report_sheets import make_frame, make_outcomes, ok


def test_csv_failure_mid_write_keeps_the_old_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that dies halfway leaves the previous report byte for byte and no temp file."""
    target = tmp_path / "r.csv"
    frame = make_frame({"sn": ["A", "B"]})
    write_report(frame, make_outcomes([ok(), ok()]), target)
    before = target.read_bytes()

    real_writer = csv.writer

    class BrokenWriter:
        """Writes the header and half a row, then fails."""

        def __init__(self, handle: io.TextIOBase, **kwargs: Any) -> None:
            self._inner = real_writer(handle, **kwargs)
            self._handle = handle

        def writerow(self, row: Sequence[str]) -> None:
            self._inner.writerow(row)

        def writerows(self, rows: Any) -> None:
            self._handle.write("A,")
            raise RuntimeError("disk on fire")

    monkeypatch.setattr(report_csv.csv, "writer", BrokenWriter)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_report(frame, make_outcomes([None, None]), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]


def test_xlsx_failure_on_close_is_an_input_error_and_keeps_the_old_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk while saving the workbook: InputError, old report intact, no temp file."""
    target = tmp_path / "r.xlsx"
    frame = make_frame({"sn": ["A"]})
    write_report(frame, make_outcomes([ok()]), target)
    before = target.read_bytes()
    real_close = xlsxwriter.Workbook.close

    def full_disk_close(self: Any) -> None:
        real_close(self)
        raise FileCreateError(OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(xlsxwriter.Workbook, "close", full_disk_close)
    with pytest.raises(InputError, match="disk is full") as caught:
        write_report(frame, make_outcomes([None]), target)
    assert str(target) in str(caught.value)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.xlsx"]


def test_xlsx_failure_mid_rows_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while writing rows removes the half-written workbook and propagates."""

    def broken_rows(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(report_xlsx, "_write_xlsx_rows", broken_rows)
    with pytest.raises(RuntimeError, match="boom"):
        write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), tmp_path / "r.xlsx")
    assert list(tmp_path.iterdir()) == []


def test_replace_refused_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The target locked by another program (EACCES on rename) gives a one-line InputError."""
    target = tmp_path / "r.csv"
    target.write_text("old report")

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(report_file.os, "replace", refuse)
    with pytest.raises(InputError) as caught:
        write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), target)
    message = str(caught.value)
    assert str(target) in message and "permission denied" in message and "\n" not in message
    assert target.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]


def test_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    """A report in a folder that does not exist names the path and says to create it."""
    target = tmp_path / "nope" / "r.csv"
    with pytest.raises(InputError) as caught:
        write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), target)
    message = str(caught.value)
    assert str(target) in message and "does not exist" in message and "\n" not in message


def test_target_that_is_a_folder_is_an_input_error(tmp_path: Path) -> None:
    """A report path naming a folder fails cleanly and leaves no temp file."""
    (tmp_path / "r.csv").mkdir()
    with pytest.raises(InputError, match="folder"):
        write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), tmp_path / "r.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores modes")
def test_read_only_folder_is_an_input_error(tmp_path: Path) -> None:
    """A folder the user may not write in gives an InputError that says so."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(InputError, match="permission denied"):
            write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), folder / "r.csv")
    finally:
        folder.chmod(0o700)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_report_gets_ordinary_file_permissions(tmp_path: Path) -> None:
    """A new report is readable like any file the user creates; a rewrite keeps its mode."""
    umask = os.umask(0o022)
    os.umask(umask)
    fresh = write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), tmp_path / "r.csv")
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask

    fresh.chmod(0o640)
    write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), fresh)
    assert fresh.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_while_writing_leaves_no_temp_file(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGTERM or Ctrl-C while the report's temp file is being written: the temp file is
    removed, the report is not half-written, exit 130 with a line on stderr."""
    rows = [[f"SIG{i:06d}", "admin", "SUSPEND", "x" * 40] for i in range(60_000)]
    src = write_csv(tmp_path / "big.csv", rows)
    out = tmp_path / "big.plan.xlsx"
    env = host_env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchops", "plan", str(src), "-o", str(out)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".big.plan.xlsx.*.tmp")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the report was never written"
            time.sleep(0.002)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert f"interrupted by {sig.name} while writing {out}" in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv"]


def _dead_pid() -> int:
    """The pid of a process that has ended (and was waited for)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_next_write_removes_temp_files_of_writers_that_are_gone(tmp_path: Path) -> None:
    """Temp files beside the report that a dead writer of this machine left, or that no
    one touched for an hour, are removed by the next write of that report; those of live
    writers (this process, its parent), fresh ones of unknown writers and those of other
    outputs stay."""
    target = tmp_path / "r.csv"
    dead = TempFile.name_for(target, _dead_pid())
    live = [TempFile.name_for(target, os.getpid()), TempFile.name_for(target, os.getppid())]
    unknown_old, unknown_fresh = ".r.csv.0badc0de.tmp", ".r.csv.5eed5eed.tmp"
    others = [TempFile.name_for(tmp_path / "other.csv", _dead_pid()), ".r.csv.notes.tmp"]
    for name in (dead, *live, unknown_old, unknown_fresh, *others):
        (tmp_path / name).write_bytes(b"half a report")
    hours_ago = time.time() - 2 * 3600
    os.utime(tmp_path / unknown_old, (hours_ago, hours_ago))

    write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), target)

    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["r.csv", *live, unknown_fresh, *others])


def test_a_temp_file_left_by_kill_9_is_removed_by_the_next_write(tmp_path: Path) -> None:
    """SIGKILL while the plan's workbook is written leaves its temp file (nothing can
    remove it then); the next plan of the same output removes it and writes the plan."""
    rows = [[f"K{i:06d}", "admin", "SUSPEND", "x" * 40] for i in range(60_000)]
    src = write_csv(tmp_path / "big.csv", rows)
    out = tmp_path / "big.plan.xlsx"
    env = host_env()
    command = [sys.executable, "-m", "batchops", "plan", str(src), "-o", str(out)]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".big.plan.xlsx.*.tmp")):
            assert proc.poll() is None, "the plan ended before writing"
            assert time.monotonic() < deadline, "the plan was never written"
            time.sleep(0.002)
        proc.kill()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (left,) = tmp_path.glob(".big.plan.xlsx.*.tmp")
    assert not out.exists()

    again = subprocess.run(command, stdin=subprocess.DEVNULL, env=env, capture_output=True)
    assert again.returncode == 0, again.stderr
    assert out.exists() and not left.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv", "big.plan.xlsx"]

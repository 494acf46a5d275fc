"""End to end: ``select -o`` and ``undo -o`` never write over a run's files.

A real run against the stand-in leaves its input, its report and its checkpoint (one at
the default path, one given a ``.csv`` name with ``--checkpoint``). Pointing ``select``
or ``undo`` at any of them is refused (exit 2, one ``Error:`` line) with or without
``--force``, and each file stays byte for byte as the run left it; any other existing
file is refused without ``--force`` and replaced with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from batchops.sandbox import SandboxThread

from ..helpers import CliRun, creds_env, read_report, run_cli, running, seed, write_csv


@dataclass(frozen=True)
class RunFiles:
    """What one finished run left in its folder."""

    input: Path
    report: Path
    checkpoint: Path
    #: A second run's checkpoint, kept under a name that looks like a sheet.
    checkpoint_named_csv: Path

    def all(self) -> list[Path]:
        return [self.input, self.report, self.checkpoint, self.checkpoint_named_csv]


@pytest.fixture
def run_files(itsm: SandboxThread, tmp_path: Path) -> RunFiles:
    seed(itsm, *(running(f"G{i}") for i in range(4)))
    src = write_csv(tmp_path / "t.csv", [[f"G{i}", "admin", "SUSPEND", "x"] for i in range(2)])
    assert run_cli(["run", str(src)], creds_env(itsm.url)).exit_code == 0
    other = write_csv(tmp_path / "u.csv", [[f"G{i}", "admin", "SUSPEND", "x"] for i in (2, 3)])
    odd = tmp_path / "u.state.csv"
    assert (
        run_cli(["run", str(other), "--checkpoint", str(odd)], creds_env(itsm.url)).exit_code == 0
    )
    files = RunFiles(
        src, tmp_path / "t.report.csv", tmp_path / ".batchops" / "t.checkpoint.db", odd
    )
    assert all(path.is_file() for path in files.all())
    return files


def _refused(out: CliRun) -> str:
    """The one Error line of a refusal (exit 2, nothing on stdout)."""
    assert out.exit_code == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), out.stderr
    assert out.stdout == ""
    return lines[0]


def _select(itsm: SandboxThread, output: Path, *extra: str) -> CliRun:
    return run_cli(["select", "--creator", "admin", "-o", str(output), *extra], creds_env(itsm.url))


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_select_never_writes_over_a_runs_input_report_or_checkpoint(
    itsm: SandboxThread, run_files: RunFiles, force: list[str]
) -> None:
    """select -o on the run's input, report or checkpoint (also one named *.csv): exit 2
    before any request, the file unchanged, whatever --force says."""
    reads = itsm.state.stats.requests.get("get_tickets", 0)
    for target in run_files.all():
        before = target.read_bytes()
        assert str(target) in _refused(_select(itsm, target, *force))
        assert target.read_bytes() == before, target
    # --all with the report of a run (the filter does not matter to the guard).
    before = run_files.report.read_bytes()
    assert "a run's report" in _refused(_select(itsm, run_files.report, "--all", *force))
    assert run_files.report.read_bytes() == before
    assert itsm.state.stats.requests.get("get_tickets", 0) == reads


def test_select_replaces_an_existing_file_only_with_force(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """An existing sheet that is nothing of a run's: refused without --force (unchanged),
    replaced with it."""
    seed(itsm, running("N1"))
    sheet = tmp_path / "mine.csv"
    sheet.write_text("notes\nkeep me\n", encoding="utf-8")
    assert "already exists; pass --force" in _refused(_select(itsm, sheet))
    assert sheet.read_text(encoding="utf-8") == "notes\nkeep me\n"
    replaced = _select(itsm, sheet, "--force")
    assert replaced.exit_code == 0, replaced.stderr
    assert [r["sn"] for r in read_report(sheet)] == ["N1"]


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_select_never_writes_over_its_sn_file(
    itsm: SandboxThread, tmp_path: Path, force: list[str]
) -> None:
    """The --sn-file is select's input: -o on it is refused, whatever --force says."""
    sns = tmp_path / "sns.csv"
    sns.write_text("sn\nN1\n", encoding="utf-8")
    assert "would overwrite --sn-file" in _refused(
        _select(itsm, sns, "--sn-file", str(sns), *force)
    )
    assert sns.read_text(encoding="utf-8") == "sn\nN1\n"


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_undo_never_writes_over_a_runs_input_report_or_checkpoint(
    run_files: RunFiles, force: list[str]
) -> None:
    """undo REPORT -o on the run's input, on the report it reads, on another run's files or
    on a checkpoint: exit 2, every file unchanged, whatever --force says."""
    for target in run_files.all():
        before = {path: path.read_bytes() for path in run_files.all()}
        out = run_cli(["undo", str(run_files.report), "-o", str(target), *force])
        assert str(target) in _refused(out)
        assert {path: path.read_bytes() for path in run_files.all()} == before, target
    assert not list(run_files.input.parent.glob("*.irreversible.csv"))


def test_undo_replaces_an_existing_sheet_only_with_force(run_files: RunFiles) -> None:
    """A second undo of the same report meets its first sheet: refused without --force
    (unchanged), replaced with it."""
    first = run_cli(["undo", str(run_files.report)])
    assert first.exit_code == 0, first.stderr
    sheet = run_files.report.with_name("t.report.undo.csv")
    sheet.write_text("edited by hand\n", encoding="utf-8")
    assert "already exists; pass --force" in _refused(run_cli(["undo", str(run_files.report)]))
    assert sheet.read_text(encoding="utf-8") == "edited by hand\n"
    again = run_cli(["undo", str(run_files.report), "--force"])
    assert again.exit_code == 0, again.stderr
    assert [r["action_type"] for r in read_report(sheet)] == ["UNSUSPEND", "UNSUSPEND"]

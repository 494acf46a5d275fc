"""Outputs: checked before the first operation, truthful when they fail after it; plan
writes its own file; results on stdout, everything for people on stderr; and the one
guard every command's outputs pass (:func:`batchops.report.guard_outputs`), unit by unit.

Every end-to-end test counts requests on the stand-in ITSM server over loopback, so
"nothing was sent" is measured.
"""

from __future__ import annotations

import contextlib
import shlex
import threading
import time
from pathlib import Path

import pytest

from batchops.errors import ConfigError
from batchops.report import Kind, Output, guard_outputs, run_file
from batchops.sandbox import Faults, SandboxThread

from ..helpers import creds_env, read_report, run_cli, running, seed, write_csv


def _requests(server: SandboxThread) -> int:
    return sum(server.state.stats.requests.values())


def _sheet(server: SandboxThread, folder: Path, n: int = 3) -> Path:
    sns = [f"OUT{i}" for i in range(n)]
    seed(server, *(running(sn) for sn in sns))
    return write_csv(folder / "t.csv", [[sn, "admin", "SUSPEND", "x"] for sn in sns])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-o", "report.txt"], "name it *.csv or *.xlsx"),
        (["-o", "no/such/folder/r.csv"], "does not exist"),
        (["-o", "afolder"], "is a directory"),  # click's own check
        (["-o", "t.csv"], "would overwrite the input"),
        (["--failures", "t.csv"], "would overwrite the input"),
        (["--failures", "t.report.csv"], "would overwrite the report"),
        (["--failures", "todo.txt"], "name it *.csv or *.xlsx"),
        (["--failures", "no/such/todo.csv"], "does not exist"),
        (["--summary-json", "t.report.csv"], "would overwrite the report"),
        (["--summary-json", "t.csv"], "would overwrite the input"),
        (["--summary-json", "afolder"], "is a directory"),
        (["--summary-json", "no/such/s.json"], "does not exist"),
        (["--checkpoint", "no/such/c.db"], "does not exist"),
        (["--checkpoint", "afolder"], "is a directory"),
        (["--checkpoint", "t.csv"], "would overwrite the input"),
        (["-o", "r.csv", "--failures", "r.csv"], "would overwrite the report"),
    ],
)
def test_bad_output_exits_2_before_any_request(
    itsm: SandboxThread,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    needle: str,
) -> None:
    """Each unusable output path: an Error line, exit 2, zero requests, input untouched."""
    monkeypatch.chdir(tmp_path)
    src = _sheet(itsm, tmp_path)
    (tmp_path / "afolder").mkdir()
    before = src.read_bytes()
    out = run_cli(["run", "t.csv", *args], creds_env(itsm.url))
    assert out.exit_code == 2, out.stdout + out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: ") and needle in line
    assert "Traceback" not in out.stderr
    assert _requests(itsm) == 0
    assert src.read_bytes() == before
    assert out.stdout == ""


def _turn_into_folder_once_sending(server: SandboxThread, path: Path) -> threading.Thread:
    """Make ``path`` a folder as soon as the first operation arrives (a file that became
    unwritable mid-run, as when Excel opens it)."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while server.state.stats.operations_total == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        path.mkdir()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_report_unwritable_after_sending_exits_4_and_says_how_to_rebuild(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """The report cannot be written after operations went out: exit 4 (never 2), stderr
    says the results are in the checkpoint and gives the command, which rebuilds it."""
    src = _sheet(itsm, tmp_path, 5)
    itsm.call(lambda: itsm.state.set_faults(Faults(latency_ms=150)))
    watcher = _turn_into_folder_once_sending(itsm, tmp_path / "t.report.csv")
    out = run_cli(["run", str(src), "-c", "1"], creds_env(itsm.url))
    watcher.join()
    assert out.exit_code == 4, out.stdout + out.stderr
    assert itsm.state.stats.operations_total == 5
    assert "nothing was sent" not in out.stderr + out.stdout
    assert "Operations WERE sent" in out.stderr
    assert "5 rows: 5 success" in out.stdout
    command = out.stderr.split("with: ")[1].split(" (or another")[0]
    argv = shlex.split(command)
    assert argv[:2] == ["batchops", "report"]
    rebuilt = run_cli(argv[1:])
    assert rebuilt.exit_code == 0, rebuilt.stderr
    assert [r["status"] for r in read_report(Path(argv[-1]))] == ["success"] * 5


def test_summary_json_unwritable_after_sending_exits_4(itsm: SandboxThread, tmp_path: Path) -> None:
    """--summary-json failing after sending: exit 4 too, the report itself is written."""
    src = _sheet(itsm, tmp_path, 3)
    itsm.call(lambda: itsm.state.set_faults(Faults(latency_ms=150)))
    watcher = _turn_into_folder_once_sending(itsm, tmp_path / "s.json")
    out = run_cli(
        ["run", str(src), "-c", "1", "--summary-json", str(tmp_path / "s.json")],
        creds_env(itsm.url),
    )
    watcher.join()
    assert out.exit_code == 4, out.stdout + out.stderr
    assert "cannot write the summary" in out.stderr and "batchops report" in out.stderr
    assert [r["status"] for r in read_report(tmp_path / "t.report.csv")] == ["success"] * 3
    assert not list(tmp_path.glob(".s.json.*")), "no temp file left behind"


def test_report_unwritable_without_checkpoint_says_so(itsm: SandboxThread, tmp_path: Path) -> None:
    """Without a checkpoint there is nothing to rebuild from, and batchops says that."""
    src = _sheet(itsm, tmp_path, 3)
    itsm.call(lambda: itsm.state.set_faults(Faults(latency_ms=150)))
    watcher = _turn_into_folder_once_sending(itsm, tmp_path / "t.report.csv")
    out = run_cli(["run", str(src), "-c", "1", "--no-checkpoint"], creds_env(itsm.url))
    watcher.join()
    assert out.exit_code == 4, out.stdout + out.stderr
    assert "no checkpoint was kept" in out.stderr
    assert "3 rows: 3 success" in out.stdout


def test_plan_after_run_leaves_the_run_report_byte_for_byte(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """plan writes x.plan.csv; the run's x.report.csv is not touched."""
    src = _sheet(itsm, tmp_path, 3)
    run = run_cli(["run", str(src)], creds_env(itsm.url))
    assert run.exit_code == 0, run.stderr
    report = tmp_path / "t.report.csv"
    before = report.read_bytes()
    planned = run_cli(["plan", str(src)], creds_env(itsm.url))
    assert planned.exit_code == 0, planned.stderr
    assert report.read_bytes() == before
    assert [r["status"] for r in read_report(tmp_path / "t.plan.csv")] == ["skipped"] * 3
    assert str(tmp_path / "t.plan.csv") in planned.stdout


def test_plan_never_writes_over_a_runs_report_or_checkpoint(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """plan -o (or --summary-json) on a run's report or checkpoint: exit 2, unchanged."""
    src = _sheet(itsm, tmp_path, 2)
    assert run_cli(["run", str(src)], creds_env(itsm.url)).exit_code == 0
    report, checkpoint = tmp_path / "t.report.csv", tmp_path / ".batchops" / "t.checkpoint.db"
    kept = {path: path.read_bytes() for path in (report, checkpoint)}
    for args in (["-o", str(report)], ["--summary-json", str(report)]):
        out = run_cli(["plan", str(src), *args])
        assert out.exit_code == 2 and "is a run's report" in out.stderr, out.stderr
    out = run_cli(["plan", str(src), "--summary-json", str(checkpoint)])
    assert out.exit_code == 2 and "is a run's checkpoint" in out.stderr, out.stderr
    assert {path: path.read_bytes() for path in kept} == kept


def test_plan_of_a_workbook_writes_plan_xlsx(tmp_path: Path) -> None:
    """An XLSX input gets x.plan.xlsx."""
    import xlsxwriter

    src = tmp_path / "t.xlsx"
    book = xlsxwriter.Workbook(str(src))
    sheet = book.add_worksheet()
    for r, row in enumerate(
        [["sn", "operator", "action_type", "action_message"], ["A1", "admin", "SUSPEND", "x"]]
    ):
        sheet.write_row(r, 0, row)
    book.close()
    out = run_cli(["plan", str(src)])
    assert out.exit_code == 0, out.stderr
    assert (tmp_path / "t.plan.xlsx").is_file()
    assert not (tmp_path / "t.report.xlsx").exists()


# --------------------------------------------------------------------------- streams


def test_stop_reason_on_stderr_also_with_quiet(itsm: SandboxThread, tmp_path: Path) -> None:
    """A fatal stop is said on stderr, with and without --quiet; stdout holds only the
    summary (counts, report path), never the stop reason."""
    src = _sheet(itsm, tmp_path, 2)
    for extra in ([], ["--quiet"]):
        out = run_cli(["run", str(src), *extra], creds_env(itsm.url, secret="wrong"))
        assert out.exit_code == 3
        assert "stopped:" in out.stderr and "authentication" in out.stderr
        assert "stopped" not in out.stdout
        assert "report:" in out.stdout and "report:" not in out.stderr


def test_errors_and_warnings_never_on_stdout(tmp_path: Path) -> None:
    """A usage error and the --insecure warning go to stderr; stdout stays empty."""
    src = write_csv(tmp_path / "t.csv", [["A1", "admin", "SUSPEND", "x"]])
    out = run_cli(["run", str(src), "--insecure", "--base-url", "ftp://x"])
    assert out.exit_code == 2
    assert out.stdout == ""
    assert "WARNING: --insecure" in out.stderr and "Error: " in out.stderr


def test_declined_confirmation_notice_on_stderr(itsm: SandboxThread, tmp_path: Path) -> None:
    """'not confirmed; nothing was sent' is a notice for the person: stderr."""
    from batchops import api

    src = _sheet(itsm, tmp_path, 1)
    hooks = api.Hooks(confirm=lambda overview: False)
    summary = api.run_batch(src, env=creds_env(itsm.url), hooks=hooks)
    assert summary.exit_code == 1
    from batchops.cli.console import format_problems, format_summary

    assert "not confirmed" in "\n".join(format_problems(summary))
    assert "not confirmed" not in format_summary(summary)


def test_report_command_refuses_to_overwrite_the_input_or_the_checkpoint(
    itsm: SandboxThread, tmp_path: Path
) -> None:
    """batchops report -o pointing at the input or at the checkpoint is refused (exit 2),
    and both files are left as they were."""
    src = _sheet(itsm, tmp_path, 2)
    assert run_cli(["run", str(src)], creds_env(itsm.url)).exit_code == 0
    checkpoint = tmp_path / ".batchops" / "t.checkpoint.db"
    for target, needle in ((src, "would overwrite the input"), (checkpoint, "name it *.csv")):
        before = target.read_bytes()
        out = run_cli(["report", str(checkpoint), "-o", str(target)])
        assert out.exit_code == 2
        assert needle in out.stderr
        assert target.read_bytes() == before


# --------------------------------------------------------------------------- the guard


def _checkpoint_at(path: Path) -> Path:
    """A real SQLite database at ``path`` (a checkpoint kept under any name)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.commit()
    return path


def _report_at(path: Path) -> Path:
    from batchops.report import write_report

    from ..report_sheets import make_frame, make_outcomes, ok

    frame = make_frame({"sn": ["A1"], "operator": ["admin"], "action_type": ["SUSPEND"]})
    return Path(write_report(frame, make_outcomes([ok()]), path, sheet_name="Tickets"))


def _refusal(output: Output, *, force: bool = False, **inputs: Path) -> str | None:
    """The guard's one-line refusal of ``output`` (None when it lets it through); the
    folder holds exactly what it held before, either way."""
    folder = output.path.parent
    before = {p: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    try:
        guard_outputs({k.replace("_", " "): v for k, v in inputs.items()}, [output], force=force)
    except ConfigError as error:
        message = str(error)
        assert "\n" not in message
        return message
    finally:
        assert {p: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    return None


ALL_KINDS = list(Kind)


@pytest.mark.parametrize("kind", ALL_KINDS, ids=[k.value for k in ALL_KINDS])
def test_no_output_but_the_checkpoint_replaces_a_checkpoint(tmp_path: Path, kind: Kind) -> None:
    """A checkpoint is known by its content (SQLite), whatever its name: only a run's own
    checkpoint may be at its path (the checkpoint resumes or refuses it); --force or not."""
    state = _checkpoint_at(tmp_path / "state.csv")
    refusal = _refusal(Output("-o", state, kind), force=True)
    what = "a run's checkpoint (an SQLite database)"
    if kind is Kind.CHECKPOINT:
        assert refusal is None and run_file(state, kind) is None
    else:
        assert refusal == f"-o {state} is {what}; choose another path"
        assert run_file(state, kind) == what


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_report_is_replaced_only_by_a_report_or_a_plan(tmp_path: Path, suffix: str) -> None:
    """A file ending in the result columns is a run's report: a run (its report, its
    --failures, a rebuilt report) replaces it, and so may a plan (whose own file has the
    same columns); --summary-json and select's and undo's sheets never do, even forced."""
    done = _report_at(tmp_path / f"done{suffix}")
    for kind in (Kind.REPORT, Kind.PLAN):
        assert _refusal(Output("-o", done, kind)) is None
    for kind in (Kind.SUMMARY, Kind.SHEET):
        refusal = _refusal(Output("-o", done, kind, None), force=True)
        assert refusal is not None and "a run's report (it ends in the result columns)" in refusal


def test_a_file_named_as_a_report_is_never_a_plan_or_a_sheet(tmp_path: Path) -> None:
    """x.report.csv is a run's report by its name alone: a plan over it would put "pending"
    where a run's outcomes were."""
    named = tmp_path / "x.report.csv"
    named.write_text("anything\n", encoding="utf-8")
    for kind in (Kind.PLAN, Kind.SUMMARY, Kind.SHEET):
        refusal = _refusal(Output("-o", named, kind), force=True)
        assert refusal is not None and "a run's report (by its name)" in refusal
    assert _refusal(Output("-o", named, Kind.REPORT)) is None


@pytest.mark.parametrize(
    "left_beside", [".batchops/t.checkpoint.db", "t.checkpoint.db", "t.report.csv"]
)
def test_a_runs_input_is_known_by_what_the_run_left_beside_it(
    tmp_path: Path, left_beside: str
) -> None:
    """A sheet beside which a run left its checkpoint or its report is that run's input: a
    select or undo sheet never replaces it (the run resumes from it); a run's own outputs
    are not asked."""
    source = write_csv(tmp_path / "t.csv", [["A1", "admin", "SUSPEND", "x"]])
    (tmp_path / left_beside).parent.mkdir(exist_ok=True)
    (tmp_path / left_beside).write_bytes(b"x")
    refusal = _refusal(Output("the sheet (-o)", source, Kind.SHEET), force=True)
    assert refusal == (
        f"the sheet (-o) {source} is a run's input ({Path(left_beside).name} is beside it); "
        "choose another path"
    )
    assert _refusal(Output("-o", source, Kind.REPORT)) is None


def test_an_existing_file_is_replaced_by_a_sheet_only_when_forced(tmp_path: Path) -> None:
    """select's and undo's sheets replace nothing unasked; a run's report replaces its own
    earlier one as before."""
    mine = write_csv(tmp_path / "mine.csv", [["A1", "admin", "SUSPEND", "x"]])
    assert _refusal(Output("the sheet (-o)", mine, Kind.SHEET)) == (
        f"the sheet (-o) {mine} already exists; pass --force to replace it, or choose another path"
    )
    assert _refusal(Output("the sheet (-o)", mine, Kind.SHEET), force=True) is None
    assert _refusal(Output("-o", mine, Kind.REPORT)) is None
    assert run_file(mine) is None
    assert _refusal(Output("the sheet (-o)", tmp_path / "new.csv", Kind.SHEET)) is None


def test_inputs_and_other_outputs_are_never_replaced_even_forced(tmp_path: Path) -> None:
    """The command's own inputs and each of its outputs are taken, --force or not."""
    report = _report_at(tmp_path / "r.csv")
    refusal = _refusal(
        Output("the undo sheet (-o)", report, Kind.SHEET), force=True, the_report=report
    )
    assert refusal == (
        f"the undo sheet (-o) {report} would overwrite the report ({report}); choose another path"
    )
    sheet = tmp_path / "u.csv"
    with pytest.raises(ConfigError, match="would overwrite the sheet"):
        guard_outputs(
            {}, [Output("the sheet", sheet, Kind.SHEET), Output("the list", sheet, Kind.SHEET)]
        )
    assert not sheet.exists()

"""Tests of batchops.report.paths: where a run's files go, and what a report's suffix means."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchops.errors import InputError
from batchops.report.paths import default_checkpoint_path, is_report_name
from batchops.report.writing import default_report_path, write_report

from ..report_sheets import make_frame, make_outcomes, ok, read_csv_rows


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("tickets.csv", "tickets.report.csv"),
        ("x.xlsx", "x.report.xlsx"),
        ("old.xls", "old.report.xlsx"),
        ("data.CSV", "data.report.csv"),
        ("list.txt", "list.report.csv"),
        ("tickets.report.csv", "tickets.report-2.csv"),
        ("tickets.report-2.csv", "tickets.report-3.csv"),
        ("T.REPORT.CSV", "T.report-2.csv"),
        ("x.report.xls", "x.report.xlsx"),
        ("my.tickets.v2.csv", "my.tickets.v2.report.csv"),
    ],
)
def test_default_report_path(tmp_path: Path, source: str, expected: str) -> None:
    """The report sits beside the input, in its format, and never on the input itself."""
    assert default_report_path(tmp_path / source) == tmp_path / expected


@settings(max_examples=200)
@given(
    stem=st.text(
        st.characters(exclude_categories=("Cs",), exclude_characters="/\x00"),
        min_size=1,
        max_size=30,
    ),
    suffix=st.sampled_from([".csv", ".xlsx", ".CSV", ".report.csv", ".Report.XLSX", ""]),
)
def test_default_report_path_never_names_the_input(stem: str, suffix: str) -> None:
    """Whatever the input is called, the default report is another file beside it."""
    source = Path("/data") / f"{stem}{suffix}"
    target = default_report_path(source)
    assert target.parent == source.parent
    assert target.name.casefold() != source.name.casefold()
    assert target.suffix in (".csv", ".xlsx")


# --- the format a suffix names -----------------------------------------------------------


def test_unknown_suffix_needs_an_explicit_format(tmp_path: Path) -> None:
    """``r.txt`` alone is refused with a hint; with fmt="csv" it is written as CSV."""
    frame, outcomes = make_frame({"sn": ["A"]}), make_outcomes([ok()])
    with pytest.raises(InputError, match=r"\*\.csv or \*\.xlsx"):
        write_report(frame, outcomes, tmp_path / "r.txt")
    path = write_report(frame, outcomes, tmp_path / "r.txt", fmt="csv")
    assert read_csv_rows(path)[1][0] == "A"


def test_default_checkpoint_path_is_in_the_state_folder_beside_the_input(tmp_path: Path) -> None:
    """tickets.csv → .batchops/tickets.checkpoint.db; one an older batchops left beside
    the input is used where it is (its run resumes from it)."""
    source = tmp_path / "tickets.csv"
    assert default_checkpoint_path(source) == tmp_path / ".batchops" / "tickets.checkpoint.db"
    (tmp_path / "tickets.checkpoint.db").write_bytes(b"")
    assert default_checkpoint_path(source) == tmp_path / "tickets.checkpoint.db"


@pytest.mark.parametrize(
    ("name", "named_as_report"),
    [
        ("t.report.csv", True),
        ("t.report-3.xlsx", True),
        ("T.REPORT.CSV", True),
        ("t.report.undo.csv", False),
        ("t.plan.csv", False),
        ("report.csv", False),
        ("t.report.json", False),
        ("t.csv", False),
    ],
)
def test_a_run_report_is_known_by_its_default_name(name: str, named_as_report: bool) -> None:
    """The names default_report_path gives, and only those, are a run's report by name."""
    assert is_report_name(Path(name)) is named_as_report

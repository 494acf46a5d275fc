"""Tests of batchops.report.writing: write_report's arguments and the outcome table it reads."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchops.model import Outcome, OutcomeTable, Status
from batchops.report.writing import write_report

from ..report_sheets import make_frame, make_outcomes, ok


def test_explicit_xlsx_format_wins_over_suffix(tmp_path: Path) -> None:
    """fmt="xlsx" writes a workbook whatever the file is called."""
    path = write_report(
        make_frame({"sn": ["A"]}), make_outcomes([ok()]), tmp_path / "r.out", fmt="xlsx"
    )
    assert zipfile.is_zipfile(path)


def test_outcomes_must_match_the_rows() -> None:
    """A frame and an outcome table of different lengths is a programming error."""
    with pytest.raises(ValueError, match="2 input rows but 1 outcomes"):
        write_report(make_frame({"sn": ["A", "B"]}), OutcomeTable(1), Path("unused.csv"))


@settings(max_examples=200, deadline=None)
@given(
    ids=st.lists(
        st.one_of(
            st.text(max_size=50),
            st.uuids().map(str),
            st.uuids().map(lambda u: u.hex),
            st.just("abc\x00"),
        ),
        min_size=1,
        max_size=12,
    ),
    start=st.integers(0, 12),
)
def test_outcome_table_gives_back_every_request_id(ids: list[str], start: int) -> None:
    """Request ids are kept as fixed-width bytes where they fit; any text comes back as
    it went in, row by row and a chunk at a time."""
    table = OutcomeTable(len(ids))
    for index, request_id in enumerate(ids):
        table.set(index, Outcome(Status.SUCCESS, 0, "success", 1, 200, "old-id-" + "x" * 40))
        table.set(index, Outcome(Status.SUCCESS, 0, "success", 1, 200, request_id))
    assert [table.get(i).request_id for i in range(len(ids))] == ids
    assert table.columns()["request_id"] == ids
    assert table.columns(start, len(ids))["request_id"] == ids[start:]

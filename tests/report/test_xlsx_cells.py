"""Tests of batchops.report.xlsx_cells: the workbook options, Excel's limits, and awkward text
that must come back from a cell exactly as written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import xlsxwriter

from batchops.errors import InputError
from batchops.report import xlsx_cells
from batchops.report.writing import write_report

from ..report_sheets import AWKWARD, cut_to_cell, make_frame, make_outcomes, ok, sheet_rows


def test_xlsx_too_many_rows_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More rows than a sheet holds fails before writing anything, pointing at CSV."""
    monkeypatch.setattr(xlsx_cells, "XLSX_MAX_ROWS", 2)
    frame = make_frame({"sn": ["A", "B", "C"]})
    with pytest.raises(InputError, match=r"\.csv"):
        write_report(frame, make_outcomes([None] * 3), tmp_path / "r.xlsx")
    assert list(tmp_path.iterdir()) == []


def test_xlsx_workbook_switches_off_conversions_and_streams_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workbook refuses string conversions and streams rows (constant_memory).

    Cells go through ``write_string`` today, which never converts; the options are the
    safety net should a later change use ``write``/``write_row``, and constant_memory is
    what keeps memory flat for a million rows.
    """
    seen: list[dict[str, object]] = []
    real_init = xlsxwriter.Workbook.__init__

    def spy_init(self: Any, filename: Any, options: dict[str, object] | None = None) -> None:
        seen.append(dict(options or {}))
        real_init(self, filename, options)

    monkeypatch.setattr(xlsxwriter.Workbook, "__init__", spy_init)
    write_report(make_frame({"sn": ["A"]}), make_outcomes([ok()]), tmp_path / "r.xlsx")
    assert seen and all(
        seen[0].get(key) is value
        for key, value in [
            ("strings_to_formulas", False),
            ("strings_to_numbers", False),
            ("strings_to_urls", False),
            ("constant_memory", True),
        ]
    )


def test_awkward_xlsx_cells_come_back_as_written(tmp_path: Path) -> None:
    """Blanks, entities, line breaks, control characters, ``_xHHHH_`` look-alikes, wide and
    over-long texts come back from the XLSX as written (cut at Excel's cell limit)."""
    frame = make_frame({"sn": AWKWARD, "note": list(reversed(AWKWARD))})
    outcomes = make_outcomes([ok(request_id=text) for text in AWKWARD])
    rows = sheet_rows(write_report(frame, outcomes, tmp_path / "a.xlsx"))
    want = [cut_to_cell(text) or None for text in AWKWARD]
    assert [row[0] for row in rows[1:]] == want
    assert [row[1] for row in rows[1:]] == list(reversed(want))
    request_id = rows[0].index("request_id")
    assert [row[request_id] for row in rows[1:]] == want


def test_xlsx_text_that_looks_like_rich_text_xml_stays_text(tmp_path: Path) -> None:
    """xlsxwriter writes a cell "<r>…</r>" as raw XML (losing or injecting text); not here."""
    texts = ["<r>x</r>", "<r><t>injected</t></r>"]
    path = write_report(make_frame({"sn": texts}), make_outcomes([ok(), ok()]), tmp_path / "r.xlsx")
    assert [row[0] for row in sheet_rows(path)[1:]] == texts

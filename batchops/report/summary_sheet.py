"""The Summary sheet of an XLSX report: a run's facts, rows per action and status with a
stacked column chart, the top failure reasons, the settings; or plain key/value rows.

What goes into it is decided in :mod:`batchops.run.summary`; this module only draws it. A CSV
report has no room for it.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from batchops.i18n import _
from batchops.model import Status

from .xlsx_cells import (
    DATE_WIDTH,
    EXCEL_EPOCH,
    MAX_WIDTH,
    MIN_WIDTH,
    STATUS_COLOURS,
    Looks,
    Sheet,
    Workbook,
    display_width,
)

SUMMARY_SHEET = "Summary"


@dataclass(frozen=True, slots=True)
class SummarySheet:
    """The Summary sheet of a run's XLSX report.

    ``facts`` are key/value rows (a ``datetime`` becomes a date cell); ``by_action`` is
    the table of rows per action and status, drawn as a stacked column chart beside it;
    ``failures`` are the top failure reasons as (reason, rows, one example sn);
    ``settings`` the run's settings, never a secret.
    """

    facts: Sequence[tuple[str, object]]
    by_action: Mapping[str, Mapping[str, int]]
    failures: Sequence[tuple[str, int, str]] = ()
    settings: Mapping[str, object] = field(default_factory=dict)


def add_summary_sheet(
    workbook: Workbook,
    results_sheet: str,
    summary: SummarySheet | Mapping[str, object],
    bold: object,
    looks: Looks,
    *,
    name: str | None = None,
) -> None:
    """The Summary sheet after the results sheet (renamed should the results have its
    name; ``name`` when the caller chose it).

    Printed, it fits one page wide (landscape, as many pages down as it takes), so the
    chart beside the table is never cut in two.
    """
    if name is None:
        name = SUMMARY_SHEET
        if results_sheet.casefold() == SUMMARY_SHEET.casefold():
            name = f"{SUMMARY_SHEET} (batchops)"
    sheet = workbook.add_worksheet(name)
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    if isinstance(summary, SummarySheet):
        _write_run_summary(workbook, sheet, summary, bold, looks)
    else:
        _write_summary(sheet, summary, bold)


def _write_summary(sheet: Sheet, summary: Mapping[str, object], bold: object) -> None:
    """Key/value rows; a mapping or a list of pairs becomes a titled block of rows."""
    keys = [str(k) for k in summary]
    for value in summary.values():
        if isinstance(value, Mapping):
            keys += [f"  {k}" for k in value]
    _set_key_width(sheet, keys)
    sheet.set_column(1, 1, 40)
    row = 0
    for key, value in summary.items():
        sheet.write_string(row, 0, str(key), bold)
        pairs: list[tuple[object, object]] | None = None
        if isinstance(value, Mapping):
            pairs = list(value.items())
        elif isinstance(value, list) and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            pairs = list(value)
        if pairs is None:
            _write_summary_value(sheet, row, value)
            row += 1
            continue
        row += 1
        for sub_key, sub_value in pairs:
            sheet.write_string(row, 0, f"  {sub_key}")
            _write_summary_value(sheet, row, sub_value)
            row += 1
        row += 1


def _write_run_summary(
    workbook: Workbook, sheet: Sheet, summary: SummarySheet, bold: object, looks: Looks
) -> None:
    """Facts, the action × status table with its chart, failure reasons, settings."""
    statuses = [
        s.value for s in Status if any(per.get(s.value) for per in summary.by_action.values())
    ]
    actions = sorted(summary.by_action)
    keys = [k for k, _value in summary.facts] + actions + [f"  {k}" for k in summary.settings]
    keys += [reason for reason, _count, _example in summary.failures]
    _set_key_width(sheet, keys)
    sheet.set_column(1, 1, DATE_WIDTH + 2)
    sheet.set_column(2, max(2, len(statuses) + 1), 11)
    row = 0
    for key, value in summary.facts:
        sheet.write_string(row, 0, key, bold)
        _write_summary_value(sheet, row, value, looks.date)
        row += 1
    header_row = row + 2
    row = _write_action_table(sheet, header_row - 1, summary, statuses, bold, looks)
    if actions and statuses:
        _insert_chart(workbook, sheet, header_row, len(actions), statuses, len(statuses) + 3)
    row = _write_failure_reasons(sheet, row + 2, summary.failures, bold, looks)
    row += 2
    sheet.write_string(row, 0, _("settings"), bold)
    for key, value in summary.settings.items():
        row += 1
        sheet.write_string(row, 0, f"  {key}")
        _write_summary_value(sheet, row, value, looks.date)


def _set_key_width(sheet: Sheet, keys: Sequence[str]) -> None:
    """The first column, wide enough for its keys (within bounds)."""
    sheet.set_column(
        0, 0, min(MAX_WIDTH, max([MIN_WIDTH * 2, *(display_width(k) + 2 for k in keys)]))
    )


def _write_action_table(
    sheet: Sheet,
    row: int,
    summary: SummarySheet,
    statuses: list[str],
    bold: object,
    looks: Looks,
) -> int:
    """Rows per action and status from ``row`` on, with totals; return its last row."""
    sheet.write_string(row, 0, _("rows per action and status"), bold)
    row += 1
    sheet.write_string(row, 0, _("action"), bold)
    for col, status in enumerate(statuses, start=1):
        sheet.write_string(row, col, status, looks.status.get(status, bold))
    sheet.write_string(row, len(statuses) + 1, _("total"), bold)
    totals = dict.fromkeys(statuses, 0)
    for action in sorted(summary.by_action):
        row += 1
        per = summary.by_action[action]
        sheet.write_string(row, 0, action)
        for col, status in enumerate(statuses, start=1):
            sheet.write_number(row, col, per.get(status, 0))
            totals[status] += per.get(status, 0)
        sheet.write_number(row, len(statuses) + 1, sum(per.get(s, 0) for s in statuses))
    row += 1
    sheet.write_string(row, 0, _("total"), bold)
    for col, status in enumerate(statuses, start=1):
        sheet.write_number(row, col, totals[status], bold)
    sheet.write_number(row, len(statuses) + 1, sum(totals.values()), bold)
    return row


def _write_failure_reasons(
    sheet: Sheet,
    row: int,
    failures: Sequence[tuple[str, int, str]],
    bold: object,
    looks: Looks,
) -> int:
    """The top failure reasons (or "none") from ``row`` on; return its last row."""
    sheet.write_string(row, 0, _("top failure reasons"), bold)
    row += 1
    for col, title in enumerate((_("reason"), _("rows"), _("example sn"))):
        sheet.write_string(row, col, title, bold)
    for reason, count, example in failures or [(_("none"), 0, "")]:
        row += 1
        sheet.write_string(row, 0, reason, looks.wrap)
        sheet.write_number(row, 1, count)
        if example:
            sheet.write_string(row, 2, example)
    return row


def _insert_chart(
    workbook: Workbook,
    sheet: Sheet,
    header_row: int,
    actions: int,
    statuses: list[str],
    column: int,
) -> None:
    """A native stacked column chart of the action × status table, beside the facts."""
    chart = workbook.add_chart({"type": "column", "subtype": "stacked"})
    name = sheet.get_name()
    first, last = header_row + 1, header_row + actions
    colours = {s.value: c for s, c in STATUS_COLOURS.items()}
    for col, status in enumerate(statuses, start=1):
        background, line = colours[status]
        chart.add_series(
            {
                "name": [name, header_row, col],
                "categories": [name, first, 0, last, 0],
                "values": [name, first, col, last, col],
                "fill": {"color": background},
                "border": {"color": line},
            }
        )
    chart.set_title({"name": _("Rows per action and status")})
    chart.set_y_axis({"name": _("rows"), "major_gridlines": {"visible": True}})
    chart.set_legend({"position": "bottom"})
    sheet.insert_chart(0, column, chart)


def _write_summary_value(sheet: Sheet, row: int, value: object, date_format: object = None) -> None:
    if value is None:
        return
    if isinstance(value, datetime):
        serial = (value.replace(tzinfo=None) - EXCEL_EPOCH).total_seconds() / 86400.0
        sheet.write_number(row, 1, serial, date_format)
    elif isinstance(value, bool):
        sheet.write_boolean(row, 1, value)
    elif isinstance(value, numbers.Real):
        if math.isfinite(value):
            sheet.write_number(row, 1, value)
        elif value == value:  # infinity as text; NaN stays blank
            sheet.write_string(row, 1, str(value))
    elif isinstance(value, Mapping | list | tuple):
        sheet.write_string(row, 1, json.dumps(value, ensure_ascii=False, default=str))
    else:
        sheet.write_string(row, 1, str(value))

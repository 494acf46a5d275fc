"""Where a run's files go and what format a report path means.

Unless the user names them, the report and the checkpoint go beside the input, the
report in the input's format and never onto the input itself; a plan never lands on a
run's report. A report path must end in ``.csv`` or ``.xlsx``: the suffix decides the
format. The output guard (:mod:`.outputs`) knows a run's files by these names.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from batchops.errors import InputError
from batchops.i18n import _

ReportFormat = Literal["csv", "xlsx"]

_REPORT_STEM = re.compile(r"^(?P<base>.*)\.report(?:-(?P<generation>\d+))?$", re.IGNORECASE)
_EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"})


def default_report_path(source: Path) -> Path:
    """Where the report of ``source`` goes unless the user says otherwise.

    Beside the input, in its format: ``tickets.csv`` gives ``tickets.report.csv`` and
    ``x.xlsx`` (or ``.xls``) gives ``x.report.xlsx``. The input is never the report: a
    report fed back in (``tickets.report.csv``) gives ``tickets.report-2.csv``, that one
    ``tickets.report-3.csv``, and so on.
    """
    suffix = ".xlsx" if source.suffix.lower() in _EXCEL_SUFFIXES else ".csv"
    match = _REPORT_STEM.match(source.stem)
    if match:
        base, generation = match["base"], int(match["generation"] or 1)
    else:
        base, generation = source.stem, 1
    while True:
        label = ".report" if generation == 1 else f".report-{generation}"
        candidate = source.with_name(f"{base}{label}{suffix}")
        # Case-insensitively, as Windows and macOS compare names.
        if candidate.name.casefold() != source.name.casefold():
            return candidate
        generation += 1


def is_report_name(path: Path) -> bool:
    """Whether ``path`` is named as a run's default report (``x.report.csv``,
    ``x.report-2.xlsx``)."""
    return path.suffix.lower() in (".csv", ".xlsx") and bool(_REPORT_STEM.match(path.stem))


#: The folder beside an input where batchops keeps its own state of that input's runs
#: (checkpoint, its lock, its backups, SQLite's -wal/-shm), so that the folder people
#: share holds only their sheets and the reports.
STATE_FOLDER = ".batchops"


def default_checkpoint_path(source: Path) -> Path:
    """In the state folder beside the input: ``tickets.csv`` →
    ``.batchops/tickets.checkpoint.db``.

    A checkpoint an older batchops left beside the input (``tickets.checkpoint.db``) is
    used where it is: the rerun that resumes it must see what that run applied.
    """
    beside = source.with_name(f"{source.stem}.checkpoint.db")
    if beside.exists():
        return beside
    return source.parent / STATE_FOLDER / beside.name


def default_plan_path(source: Path) -> Path:
    """Where ``batchops plan`` writes unless told: ``tickets.plan.csv`` / ``x.plan.xlsx``.

    Never the run's report: a plan written over ``tickets.report.csv`` would replace a
    run's real outcomes with "pending" (and under ``--sandbox`` nothing could rebuild it).
    """
    suffix = ".xlsx" if source.suffix.lower() in _EXCEL_SUFFIXES else ".csv"
    candidate = source.with_name(f"{source.stem}.plan{suffix}")
    if candidate.name.casefold() == source.name.casefold():
        candidate = source.with_name(f"{source.stem}.plan-2{suffix}")
    return candidate


def format_of(path: Path) -> ReportFormat:
    """The report format a path's suffix names; any other suffix is an InputError."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".xlsx":
        return "xlsx"
    raise InputError(
        _("cannot tell the report format of {path}: name the report file *.csv or *.xlsx").format(
            path=path
        )
    )

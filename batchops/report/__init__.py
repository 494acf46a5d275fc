"""The results report (CSV and XLSX, its Summary sheet), where outputs go, and the one
guard every command's outputs pass before anything is written.
"""

from __future__ import annotations

from .outputs import (
    Kind,
    Output,
    Outputs,
    check_outputs,
    guard_outputs,
    run_file,
    temp_removed_on_signal,
    unwritten_after_sending,
)
from .paths import STATE_FOLDER, default_checkpoint_path, default_plan_path, default_report_path
from .summary_sheet import SummarySheet
from .tables import Table, write_tables
from .writing import write_failures, write_report

__all__ = [
    "STATE_FOLDER",
    "Kind",
    "Output",
    "Outputs",
    "SummarySheet",
    "Table",
    "check_outputs",
    "default_checkpoint_path",
    "default_plan_path",
    "default_report_path",
    "guard_outputs",
    "run_file",
    "temp_removed_on_signal",
    "unwritten_after_sending",
    "write_failures",
    "write_report",
    "write_tables",
]

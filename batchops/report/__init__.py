"""The results report (CSV and XLSX, its Summary sheet), where outputs go, and the one
guard every command's outputs pass before anything is written.
"""

from __future__ import annotations

from .outputs import Outputs, check_outputs, temp_removed_on_signal, unwritten_after_sending
from .paths import default_plan_path, default_report_path
from .summary_sheet import SummarySheet
from .tables import Table, write_tables
from .writing import write_failures, write_report

__all__ = [
    "Outputs",
    "SummarySheet",
    "Table",
    "check_outputs",
    "default_plan_path",
    "default_report_path",
    "temp_removed_on_signal",
    "unwritten_after_sending",
    "write_failures",
    "write_report",
    "write_tables",
]

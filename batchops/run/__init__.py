"""One run: its flow from load to finish, the run's context as one record, its end.

:mod:`.flow` reads top to bottom (load → select → checkpoint → settle → pre-check →
confirm → send → finish); :mod:`.network` holds the steps that talk to ITSM.
"""

from __future__ import annotations

from .context import Hooks, Run, RunHooks
from .finish import counts_by_action, exit_code_of, iso_time
from .flow import run_steps
from .network import check_reachable, start_sandbox, suspended_sns
from .notify import Notifier
from .progress import NullProgress, ProgressSink, say
from .prompts import CanaryReport, CanaryRow, Confirm, ConfirmCanary, PlanOverview
from .recorder import Events
from .summary import format_duration, summary_fields, write_summary_json

__all__ = [
    "CanaryReport",
    "CanaryRow",
    "Confirm",
    "ConfirmCanary",
    "Events",
    "Hooks",
    "Notifier",
    "NullProgress",
    "PlanOverview",
    "ProgressSink",
    "Run",
    "RunHooks",
    "check_reachable",
    "counts_by_action",
    "exit_code_of",
    "format_duration",
    "iso_time",
    "run_steps",
    "say",
    "start_sandbox",
    "summary_fields",
    "suspended_sns",
    "write_summary_json",
]

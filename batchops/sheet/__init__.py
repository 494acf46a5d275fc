"""The input sheet: reading its cells, finding its columns, validating every row, and
choosing which rows a run may send.
"""

from __future__ import annotations

from .columns import FIELD_ALIASES, is_report
from .loading import DONE_BEFORE, Batch, load_batch
from .reading import show
from .selection import (
    NOT_DONE,
    add_notes,
    mark_invalid,
    mark_not_sent,
    previous_statuses,
    select_rows,
)
from .validation import ACTION_ALIASES, one_letter_case

__all__ = [
    "ACTION_ALIASES",
    "DONE_BEFORE",
    "FIELD_ALIASES",
    "NOT_DONE",
    "Batch",
    "add_notes",
    "is_report",
    "load_batch",
    "mark_invalid",
    "mark_not_sent",
    "one_letter_case",
    "previous_statuses",
    "select_rows",
    "show",
]

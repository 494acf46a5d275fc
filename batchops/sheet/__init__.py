"""The input sheet: reading its cells (and which rows a person hid), finding its columns,
validating every row, and choosing which rows a run may send.
"""

from __future__ import annotations

from .columns import FIELD_ALIASES, is_report
from .hidden import sheet_part, workbook_part
from .loading import DONE_BEFORE, Batch, SourceBook, load_batch
from .reading import show
from .selection import (
    FOOTER_MESSAGE,
    LEFT_OUT_MESSAGE,
    NOT_DONE,
    add_notes,
    left_out_note,
    mark_invalid,
    mark_left_out,
    mark_not_sent,
    previous_statuses,
    select_rows,
)
from .validation import ACTION_ALIASES, AMBIGUOUS_ACTIONS, action_of, one_letter_case

__all__ = [
    "ACTION_ALIASES",
    "AMBIGUOUS_ACTIONS",
    "DONE_BEFORE",
    "FIELD_ALIASES",
    "FOOTER_MESSAGE",
    "LEFT_OUT_MESSAGE",
    "NOT_DONE",
    "Batch",
    "SourceBook",
    "action_of",
    "add_notes",
    "is_report",
    "left_out_note",
    "load_batch",
    "mark_invalid",
    "mark_left_out",
    "mark_not_sent",
    "one_letter_case",
    "previous_statuses",
    "select_rows",
    "sheet_part",
    "show",
    "workbook_part",
]

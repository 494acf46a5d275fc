"""The commands other than ``run``, one module each: ``plan``, ``select``, ``undo``, ``status``.

Each reads its settings as a typed record and uses the same homes as a run: the one way
to an ITSM client, the one output guard, the one wait a stop ends.
"""

from __future__ import annotations

from . import plan, select
from .status import read_status
from .undo import undo_report

__all__ = [
    "plan",
    "read_status",
    "select",
    "undo_report",
]

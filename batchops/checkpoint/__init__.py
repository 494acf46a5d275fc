"""The checkpoint: one SQLite file that remembers every row across crashes, its group
commit, the resume built on it, and the run lock (in the folder every run of the
machine shares).
"""

from __future__ import annotations

from .file import lock_path
from .resume import InDoubtRow, Work, open_checkpoint, row_keys, rows_fingerprint
from .runlock import RunLock
from .store import Checkpoint, RunRecord

__all__ = [
    "Checkpoint",
    "InDoubtRow",
    "RunLock",
    "RunRecord",
    "Work",
    "lock_path",
    "open_checkpoint",
    "row_keys",
    "rows_fingerprint",
]

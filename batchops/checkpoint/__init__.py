"""The checkpoint: one SQLite file that remembers every row across crashes, its group
commit, the resume built on it, and what every run of the machine shares: the run lock
and the record of operations in flight, in one machine-wide folder.
"""

from __future__ import annotations

from .file import lock_path
from .inflight import InFlight, InFlightLedger
from .resume import InDoubtRow, Work, open_checkpoint, row_keys, rows_fingerprint
from .runlock import RunLock
from .store import Checkpoint, RunRecord, StoredRow

__all__ = [
    "Checkpoint",
    "InDoubtRow",
    "InFlight",
    "InFlightLedger",
    "RunLock",
    "RunRecord",
    "StoredRow",
    "Work",
    "lock_path",
    "open_checkpoint",
    "row_keys",
    "rows_fingerprint",
]

"""Sending rows: the pool, one row's delivery, the outage guard, the pre-check and the
ticket rules (where each action leads; what could double-suspend a ticket).
"""

from __future__ import annotations

from .delivery import BeforeSend
from .pool import Executor, InDoubt
from .precheck import GET_TICKETS_LIMIT, Precheck, StatusTable, read_statuses
from .tickets import chains_by_sn, simulate

__all__ = [
    "GET_TICKETS_LIMIT",
    "BeforeSend",
    "Executor",
    "InDoubt",
    "Precheck",
    "StatusTable",
    "chains_by_sn",
    "read_statuses",
    "simulate",
]

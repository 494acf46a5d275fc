"""ITSM as batchops sees it: the transport interface, the aiohttp client behind it, the
one way to that client from the settings, the code table every answer is read by, and
``--verbose``'s trace.
"""

from __future__ import annotations

from .client import ItsmClient
from .connect import Target, client_for, client_settings, configured_target
from .trace import Tracer
from .transport import Answer, Transport, Verdict

__all__ = [
    "Answer",
    "ItsmClient",
    "Target",
    "Tracer",
    "Transport",
    "Verdict",
    "client_for",
    "client_settings",
    "configured_target",
]

"""ITSM as batchops sees it: the transport interface, the aiohttp client behind it, the
one way to that client from the settings, the code table every answer is read by, and
``--verbose``'s trace.
"""

from __future__ import annotations

from .answers import refused_credentials, refused_this_api_only
from .client import ItsmClient, likely_base_url
from .connect import Target, client_for, client_settings, configured_target
from .fake import FakeTicket, FakeTransport
from .trace import Tracer
from .transport import Answer, Transport, Verdict

__all__ = [
    "Answer",
    "FakeTicket",
    "FakeTransport",
    "ItsmClient",
    "Target",
    "Tracer",
    "Transport",
    "Verdict",
    "client_for",
    "client_settings",
    "configured_target",
    "likely_base_url",
    "refused_credentials",
    "refused_this_api_only",
]

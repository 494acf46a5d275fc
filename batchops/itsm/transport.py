"""The executor's view of ITSM: the :class:`Transport` interface and its vocabulary.

An :class:`Answer` is one classified answer of the server (or of the network, when there
was none); its :class:`Verdict` says what may be done next. The executor, the pre-check
and the outage guard speak only these; :class:`batchops.itsm.client.ItsmClient` is the real
transport over HTTP, and tests may pass an in-memory fake.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from batchops.model import Row


class Verdict(enum.StrEnum):
    SUCCESS = "success"
    REJECTED = "rejected"
    FATAL = "fatal"
    RETRY = "retry"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True, slots=True)
class Answer:
    """One classified answer of the server (or of the network, when there was none)."""

    verdict: Verdict
    code: int | None
    message: str
    http_status: int | None = None
    request_id: str = ""
    data: object = None
    rate_limited: bool = False
    retry_after_s: float | None = None
    #: Why no server answered at all ("connection refused", "DNS lookup failed", "timeout",
    #: ...), or "" when a server (ITSM, a gateway or a proxy) did answer. An outage is
    #: told apart from one ticket's trouble by this, never by the message's wording.
    network: str = ""
    #: The answer was an HTTP 5xx from something in front of ITSM or from ITSM itself.
    server_error: bool = False
    #: False when no connection could be made at all (refused, DNS, TLS, proxy): never one
    #: ticket's problem, and the request certainly never left.
    connected: bool = True

    @property
    def environmental(self) -> bool:
        """Nothing here is about the ticket: the way to ITSM, or ITSM as a whole, failed."""
        return bool(self.network) or self.server_error


class Transport(Protocol):
    """What the executor and the pre-check need from a client. Never raises for a bad answer."""

    async def operate(self, row: Row) -> Answer: ...

    async def read_ticket_status(self, sn: str) -> Answer: ...

    async def read_tickets(self, sns: Iterable[str]) -> Answer: ...

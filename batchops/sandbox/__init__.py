"""An embedded, faithful stand-in of the BlueKing ITSM API, served by aiohttp.

This module owns the *server* side of batchops' world: ticket state, the rules
``operate_ticket`` applies (in the server's order, with its bugs), the two gateways'
credential checks and error envelopes, fault injection, and the counters that tests and
benchmarks read back. It follows the project's notes on the real server (``docs/itsm.md``,
read from the server's source), never the client code: it imports nothing from the rest
of :mod:`batchops`, so it cannot share the client's mistakes.

Routes (every API under all three prefixes; unknown APIs answer like the gateway would)::

    /api/c/compapi/v2/itsm/<api>/        ESB: credentials in the X-Bkapi-Authorization
                                          header, else in the body (POST) or query (GET)
    /v2/itsm/<api>/                       API gateway: the header is the only source
    /api/bk-itsm/prod/v2/itsm/<api>/      API gateway, full stage path

    <api>: operate_ticket (POST), get_ticket_status (GET ?sn=), get_ticket_info (GET ?sn=),
           get_tickets (POST {"sns": [...], "page": 1, "page_size": ..., filters...})

    GET  /_sandbox/stats [?log=0]   counters and the operation log; DELETE resets them
    GET  /_sandbox/tickets [?sn=]   ticket states
    POST /_sandbox/tickets          {"tickets": [...], "generate": {...}, "clear": bool}
    GET/POST /_sandbox/faults       read / change the fault switches (re-seeds the RNG)

Concurrency is modelled the way the real server behaves: it takes no lock, so
``operate_ticket`` validates against the ticket as it was when the request arrived,
then spends ``latency_ms``, then writes. Two overlapping requests for one sn can both
pass validation; the sandbox counts such overlaps in ``concurrent_same_sn``.

Run it with ``batchops sandbox --port 8765`` (``python -m batchops.sandbox`` is the same
command). The package: :mod:`.state` (vocabulary, tickets, faults, counters),
:mod:`.answers` (envelopes and data shapes), :mod:`.server` (the handlers and the rules),
:mod:`.running` (the app, a background thread, :func:`serve`). Only ``__main__`` reaches
outside, to the one ``sandbox`` command in :mod:`batchops.cli.main`.
"""

from __future__ import annotations

from .running import SandboxThread, make_app, serve, start_sandbox
from .state import (
    ACTIONS,
    ACTIVE_STATUSES,
    DEFAULT_APP_CODE,
    DEFAULT_APP_SECRET,
    DEFAULT_PORT,
    ESB_PREFIX,
    FINAL_STATUSES,
    GATEWAY_PREFIXES,
    Faults,
    OpRecord,
    SandboxConfig,
    SandboxState,
    SandboxStats,
    Ticket,
)

__all__ = [
    "ACTIONS",
    "ACTIVE_STATUSES",
    "DEFAULT_APP_CODE",
    "DEFAULT_APP_SECRET",
    "DEFAULT_PORT",
    "ESB_PREFIX",
    "FINAL_STATUSES",
    "GATEWAY_PREFIXES",
    "Faults",
    "OpRecord",
    "SandboxConfig",
    "SandboxState",
    "SandboxStats",
    "SandboxThread",
    "Ticket",
    "make_app",
    "serve",
    "start_sandbox",
]

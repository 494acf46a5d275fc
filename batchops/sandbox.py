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

Run it standalone with ``python -m batchops.sandbox --port 8765``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import json
import math
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, NamedTuple, TypeVar

from aiohttp import web

__all__ = [
    "ACTIONS",
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
    "Faults",
    "OpRecord",
    "SandboxConfig",
    "SandboxState",
    "SandboxStats",
    "SandboxThread",
    "Ticket",
    "main",
    "make_app",
    "serve",
    "start_sandbox",
]

_T = TypeVar("_T")

# --------------------------------------------------------------------------- vocabulary

ACTIONS: Final = ("SUSPEND", "UNSUSPEND", "WITHDRAW", "TERMINATE")
ACTIVE_STATUSES: Final = frozenset({"NEW", "RUNNING", "SUSPENDED"})
FINAL_STATUSES: Final = frozenset({"FINISHED", "TERMINATED", "REVOKED"})
SYSTEM_ACCOUNT: Final = "admin"
MAX_ACTION_MESSAGE: Final = 255
MAX_PAGE_SIZE: Final = 10000
#: DRF's page size when the caller sends none (inferred, not confirmed in code).
DEFAULT_PAGE_SIZE: Final = 10

DEFAULT_APP_CODE: Final = "batchops-sandbox"
DEFAULT_APP_SECRET: Final = "sandbox-secret"
DEFAULT_PORT: Final = 8765

ESB_PREFIX: Final = "/api/c/compapi/v2/itsm/"
GATEWAY_PREFIXES: Final = ("/v2/itsm/", "/api/bk-itsm/prod/v2/itsm/")

# ITSM codes
CODE_OK: Final = 0
CODE_NOT_FOUND: Final = 3900022
CODE_BUSINESS: Final = 3900004
CODE_LEGACY_PARAM: Final = 3900005
# ESB codes (HTTP 200)
CODE_ESB_AUTH: Final = 1306000
CODE_ESB_APP_NO_PERMISSION: Final = 1306403
CODE_ESB_BACKEND_TIMEOUT: Final = 1306201
CODE_ESB_NO_COMPONENT: Final = 1306404
CODE_ESB_BAD_ARGUMENT: Final = 1306406
# API gateway codes
CODE_GW_AUTH: Final = 1640001
CODE_GW_NO_PERMISSION: Final = 1640301
CODE_GW_NOT_FOUND: Final = 1640401
CODE_GW_RATE_LIMIT: Final = 1642902
CODE_GW_BACKEND_TIMEOUT: Final = 1650401

AUTH_HEADER: Final = "X-Bkapi-Authorization"
ERROR_CODE_HEADER: Final = "X-Bkapi-Error-Code"

MSG_NOT_FOUND: Final = "没有找到对应的单据"
MSG_APP_AUTH: Final = "APP认证失败: app_code或app_secret不正确"
MSG_RATE_LIMIT: Final = "Request rate limit exceeded: API rate limit exceeded by stage strategy"
SERVICE_OFF_HTML: Final = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>ITSM</title></head>"
    "<body><h1>ITSM 服务已关闭</h1><p>服务维护中，请联系管理员。</p></body></html>"
)
FORBIDDEN_TEXT: Final = "Forbidden: the request did not come through the API gateway (no valid JWT)"
UNAVAILABLE_TEXT: Final = "Service Unavailable"

_STATUS_DISPLAY: Final = {
    "NEW": "新",
    "RUNNING": "处理中",
    "SUSPENDED": "挂起",
    "FINISHED": "已结束",
    "TERMINATED": "被终止",
    "REVOKED": "已撤销",
}
_OPERATION_NAMES: Final = {"WITHDRAW": "撤单", "SUSPEND": "挂起", "UNSUSPEND": "恢复"}

_dumps = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------- records


#: How the server writes times (``create_at``, ``end_at``), and how filters take them.
TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"


def _now_text() -> str:
    return datetime.now().strftime(TIME_FORMAT)


@dataclass(slots=True)
class Ticket:
    """One ticket as the server stores it (mutable: the sandbox changes it in place).

    ``create_at`` and ``end_at`` are the server's local time as ``YYYY-MM-DD HH:MM:SS``;
    a ticket seeded without ``create_at`` gets the time it was seeded, and ``end_at`` is
    set when WITHDRAW or TERMINATE ends it. Drafts and deleted tickets exist but are
    never listed by ``get_tickets``.
    """

    sn: str
    status: str
    creator: str
    processors: list[str] = field(default_factory=list)
    previous_status: str | None = None
    is_child: bool = False
    withdraw_allowed: bool = True
    title: str = ""
    service_id: int = 1
    bk_biz_id: int = -1
    create_at: str = ""
    end_at: str | None = None
    tag: str = ""
    project_key: str = "0"
    is_draft: bool = False
    is_deleted: bool = False

    @property
    def is_final(self) -> bool:
        """Whether the ticket is over (no action can change it any more)."""
        return self.status in FINAL_STATUSES

    def to_json(self) -> dict[str, Any]:
        """The ticket as a JSON-ready mapping (the shape ``/_sandbox/tickets`` uses)."""
        return {
            "sn": self.sn,
            "status": self.status,
            "creator": self.creator,
            "processors": list(self.processors),
            "previous_status": self.previous_status,
            "is_child": self.is_child,
            "withdraw_allowed": self.withdraw_allowed,
            "title": self.title,
            "service_id": self.service_id,
            "bk_biz_id": self.bk_biz_id,
            "create_at": self.create_at,
            "end_at": self.end_at,
            "tag": self.tag,
            "project_key": self.project_key,
            "is_draft": self.is_draft,
            "is_deleted": self.is_deleted,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Ticket:
        """Build a ticket from a seeding mapping; raises ValueError when it is unusable."""
        sn = raw.get("sn")
        if not isinstance(sn, str) or not sn:
            raise ValueError(f"ticket needs a non-empty string 'sn': {dict(raw)!r}")
        status = raw.get("status", "RUNNING")
        if not isinstance(status, str) or not status:
            raise ValueError(f"ticket {sn}: 'status' must be a non-empty string")
        processors_raw = raw.get("processors")
        creator = raw.get("creator")
        if processors_raw is None:
            processors: list[str] = [creator] if isinstance(creator, str) and creator else []
        elif isinstance(processors_raw, list) and all(isinstance(p, str) for p in processors_raw):
            processors = list(processors_raw)
        else:
            raise ValueError(f"ticket {sn}: 'processors' must be a list of strings")
        if creator is None:
            creator = processors[0] if processors else SYSTEM_ACCOUNT
        if not isinstance(creator, str):
            raise ValueError(f"ticket {sn}: 'creator' must be a string")
        previous = raw.get("previous_status")
        if previous is not None and not isinstance(previous, str):
            raise ValueError(f"ticket {sn}: 'previous_status' must be a string or null")
        texts = {name: raw.get(name, default) for name, default in _TEXT_FIELDS.items()}
        for name, value in texts.items():
            if not isinstance(value, str):
                raise ValueError(f"ticket {sn}: {name!r} must be a string")
        numbers = {name: raw.get(name, default) for name, default in _INT_FIELDS.items()}
        for name, value in numbers.items():
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"ticket {sn}: {name!r} must be an integer")
        end_at = raw.get("end_at")
        for name, when in (("create_at", texts["create_at"]), ("end_at", end_at or "")):
            if when and not _is_time_text(when):
                raise ValueError(f"ticket {sn}: {name!r} must be 'YYYY-MM-DD HH:MM:SS'")
        return cls(
            sn=sn,
            status=status,
            creator=creator,
            processors=processors,
            previous_status=previous,
            is_child=bool(raw.get("is_child", False)),
            withdraw_allowed=bool(raw.get("withdraw_allowed", True)),
            end_at=end_at,
            is_draft=bool(raw.get("is_draft", False)),
            is_deleted=bool(raw.get("is_deleted", False)),
            **texts,
            **numbers,
        )


_TEXT_FIELDS: Final = {"title": "", "create_at": "", "tag": "", "project_key": "0"}
_INT_FIELDS: Final = {"service_id": 1, "bk_biz_id": -1}


def _is_time_text(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return datetime.strptime(value, TIME_FORMAT).strftime(TIME_FORMAT) == value
    except ValueError:
        return False


@dataclass(frozen=True)
class Faults:
    """Fault switches; every random decision comes from ``random.Random(seed)``.

    The rates apply to ``operate_ticket`` only unless ``faults_on_reads`` is set;
    ``latency_ms``, ``service_off`` and ``gateway_forbidden`` apply to every API.
    Precedence when several rates fire for one request: rate limit, 5xx, backend
    timeout, lost answer.
    """

    seed: int = 0
    latency_ms: float = 0.0
    #: Extra time operate_ticket alone spends between validating and writing (a slow
    #: backend): the write happens even if the caller gave up waiting meanwhile.
    operate_latency_ms: float = 0.0
    error_5xx_rate: float = 0.0
    rate_limit_rate: float = 0.0
    lost_rate: float = 0.0
    lost_mode: Literal["hang", "drop"] = "hang"
    lost_hang_s: float = 30.0
    backend_timeout_rate: float = 0.0
    service_off: bool = False
    gateway_forbidden: bool = False
    faults_on_reads: bool = False
    #: APIs the app has no permission for, refused the gateways' way (ESB: 1306403 with
    #: HTTP 200; gateway: 1640301 with HTTP 403), e.g. ``frozenset({"get_tickets"})``.
    refused_apis: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("error_5xx_rate", "rate_limit_rate", "lost_rate", "backend_timeout_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0 and 1, got {value!r}")
        for name in ("latency_ms", "operate_latency_ms"):
            value = getattr(self, name)
            if value < 0 or not math.isfinite(value):
                raise ValueError(f"Faults.{name} must be >= 0, got {value!r}")
        if self.lost_hang_s < 0 or not math.isfinite(self.lost_hang_s):
            raise ValueError(f"Faults.lost_hang_s must be >= 0, got {self.lost_hang_s!r}")
        if self.lost_mode not in ("hang", "drop"):
            raise ValueError(f"Faults.lost_mode must be 'hang' or 'drop', got {self.lost_mode!r}")

    @property
    def any_random(self) -> bool:
        """Whether any rate is non-zero (only then is the RNG consulted)."""
        return (
            self.error_5xx_rate > 0
            or self.rate_limit_rate > 0
            or self.lost_rate > 0
            or self.backend_timeout_rate > 0
        )

    def updated(self, changes: Mapping[str, Any]) -> Faults:
        """A copy with ``changes`` applied; unknown keys or wrong types raise ValueError."""
        known = {f.name: f for f in dataclasses.fields(self)}
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown fault switch {key!r}; known: {', '.join(known)}")
            current = getattr(self, key)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"fault switch {key!r} must be true or false")
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"fault switch {key!r} must be an integer")
            elif isinstance(current, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"fault switch {key!r} must be a number")
                value = float(value)
            elif isinstance(current, frozenset):
                if not isinstance(value, (list, tuple, set, frozenset)) or not all(
                    isinstance(v, str) for v in value
                ):
                    raise ValueError(f"fault switch {key!r} must be a list of API names")
                value = frozenset(value)
            clean[key] = value
        return dataclasses.replace(self, **clean)

    def to_json(self) -> dict[str, Any]:
        """The switches as a JSON-ready mapping."""
        out = dataclasses.asdict(self)
        out["refused_apis"] = sorted(self.refused_apis)
        return out


@dataclass
class SandboxConfig:
    """How the stand-in server authenticates callers and which faults it injects."""

    app_code: str = DEFAULT_APP_CODE
    app_secret: str = DEFAULT_APP_SECRET
    #: Apps on the ESB skip-user-auth whitelist may name a user with plain bk_username.
    whitelisted: bool = True
    #: bk_token values that the login service rejects (any other non-empty token is valid).
    bad_tokens: frozenset[str] = frozenset()
    #: Servers before 2022: business errors as 3900005 with the clean reason.
    legacy_codes: bool = False
    #: Keep the per-request operation log (turn off for million-request benchmarks).
    record_log: bool = True
    faults: Faults = Faults()


class OpRecord(NamedTuple):
    """One ``operate_ticket`` request as the sandbox answered it.

    ``code`` is the envelope code answered (or that would have been answered, for a lost
    answer); for non-JSON answers it is the HTTP status (503, 403, and 200 for the
    service-off page). ``operator`` is the identity used in the permission check.
    """

    sn: str
    action: str
    operator: str
    code: int
    applied: bool
    t: float


@dataclass
class SandboxStats:
    """Counters kept by the sandbox; read them directly or via ``GET /_sandbox/stats``."""

    requests: dict[str, int] = field(default_factory=dict)
    operations: list[OpRecord] = field(default_factory=list)
    operations_total: int = 0
    applied_total: int = 0
    double_suspends: int = 0
    concurrent_same_sn: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    #: operate_ticket requests per whole second of ``time.monotonic()``.
    per_second: dict[int, int] = field(default_factory=dict)
    faults_injected: dict[str, int] = field(default_factory=dict)
    auth_failures: int = 0

    def ops_for(self, sn: str) -> list[OpRecord]:
        """The logged operations for one sn, in arrival order of their answers."""
        return [op for op in self.operations if op.sn == sn]

    def as_dict(self, *, include_log: bool = True) -> dict[str, Any]:
        """The counters as a JSON-ready mapping."""
        out: dict[str, Any] = {
            "requests": dict(self.requests),
            "operations_total": self.operations_total,
            "applied_total": self.applied_total,
            "double_suspends": self.double_suspends,
            "concurrent_same_sn": self.concurrent_same_sn,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "per_second": {str(k): v for k, v in self.per_second.items()},
            "max_per_second": max(self.per_second.values(), default=0),
            "faults_injected": dict(self.faults_injected),
            "auth_failures": self.auth_failures,
        }
        if include_log:
            out["operations"] = [op._asdict() for op in self.operations]
        return out


# --------------------------------------------------------------------------- state


class SandboxState:
    """Tickets, counters and the fault RNG of one sandbox server.

    Mutate it from the server's event loop (or while no request is in flight); the
    HTTP endpoints under ``/_sandbox/`` do exactly that.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config if config is not None else SandboxConfig()
        self.tickets: dict[str, Ticket] = {}
        self.stats = SandboxStats()
        self._seq: dict[str, int] = {}
        self._next_seq = 1
        self._rng = random.Random(self.config.faults.seed)
        self._in_flight_sn: dict[str, int] = {}

    # -- faults

    @property
    def faults(self) -> Faults:
        """The fault switches in force."""
        return self.config.faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault switches and re-seed the RNG from ``faults.seed``."""
        self.config.faults = faults
        self._rng = random.Random(faults.seed)

    # -- seeding

    def seed_tickets(self, tickets: Iterable[Ticket], *, clear: bool = False) -> int:
        """Add or replace tickets (by sn); ``clear`` drops all others first. Returns the count."""
        if clear:
            self.tickets.clear()
            self._seq.clear()
        count = 0
        now = _now_text()
        for ticket in tickets:
            if not ticket.create_at:
                ticket.create_at = now
            if ticket.sn not in self._seq:
                self._seq[ticket.sn] = self._next_seq
                self._next_seq += 1
            self.tickets[ticket.sn] = ticket
            count += 1
        return count

    def generate_tickets(
        self, prefix: str, count: int, operator: str = SYSTEM_ACCOUNT, status: str = "RUNNING"
    ) -> int:
        """Seed ``count`` tickets ``PREFIX0000001``… created and processed by ``operator``."""
        if count < 0:
            raise ValueError("count must be >= 0")
        return self.seed_tickets(
            Ticket(sn=f"{prefix}{i:07d}", status=status, creator=operator, processors=[operator])
            for i in range(1, count + 1)
        )

    def seed_from_rows(self, rows: Iterable[tuple[str, str]]) -> int:
        """Seed one RUNNING ticket per sn of an input file's (sn, operator) rows.

        The first operator named for an sn becomes its creator and only processor, so a
        later row for that sn with another operator fails with ``无权操作`` — the demo's
        business failure. Rows with a blank sn are skipped. Returns the tickets seeded.
        """
        first: dict[str, str] = {}
        for sn, operator in rows:
            sn = sn.strip()
            operator = operator.strip()
            if not sn:
                continue
            if operator and not first.get(sn):
                first[sn] = operator
            else:
                first.setdefault(sn, "")
        return self.seed_tickets(
            Ticket(
                sn=sn,
                status="RUNNING",
                creator=op or SYSTEM_ACCOUNT,
                processors=[op or SYSTEM_ACCOUNT],
            )
            for sn, op in first.items()
        )

    def reset_stats(self) -> None:
        """Zero every counter and empty the operation log (tickets are kept)."""
        in_flight = self.stats.in_flight
        self.stats = SandboxStats(in_flight=in_flight, max_in_flight=in_flight)

    def order_key(self, sn: str) -> int:
        """Creation order of a ticket (newer tickets have larger keys)."""
        return self._seq.get(sn, 0)

    # -- bookkeeping used by the app

    def _count_request(self, api: str) -> None:
        requests = self.stats.requests
        requests[api] = requests.get(api, 0) + 1

    def _enter(self, sn: str | None) -> None:
        stats = self.stats
        stats.in_flight += 1
        if stats.in_flight > stats.max_in_flight:
            stats.max_in_flight = stats.in_flight
        if sn is not None:
            busy = self._in_flight_sn.get(sn, 0)
            if busy:
                stats.concurrent_same_sn += 1
            self._in_flight_sn[sn] = busy + 1
            second = int(time.monotonic())
            stats.per_second[second] = stats.per_second.get(second, 0) + 1

    def _leave_sn(self, sn: str) -> None:
        busy = self._in_flight_sn.get(sn, 0) - 1
        if busy > 0:
            self._in_flight_sn[sn] = busy
        else:
            self._in_flight_sn.pop(sn, None)

    def _fault(self, name: str) -> None:
        injected = self.stats.faults_injected
        injected[name] = injected.get(name, 0) + 1

    def _record(self, sn: str, action: str, operator: str, code: int, applied: bool) -> None:
        stats = self.stats
        stats.operations_total += 1
        if applied:
            stats.applied_total += 1
        if self.config.record_log:
            stats.operations.append(OpRecord(sn, action, operator, code, applied, time.monotonic()))

    def _draw(self) -> tuple[float, float, float, float, float]:
        """Five draws per faultable request, so the sequence never depends on the rates."""
        r = self._rng.random
        return r(), r(), r(), r(), r()


# --------------------------------------------------------------------------- answers


def _envelope(result: bool, code: int, message: str, data: Any) -> dict[str, Any]:
    return {
        "result": result,
        "code": code,
        "message": message,
        "data": data,
        "request_id": uuid.uuid4().hex,
    }


def _json_response(
    payload: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_dumps(payload).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


def _error(code: int, message: str, status: int = 200, gateway_error: bool = False) -> web.Response:
    headers = {ERROR_CODE_HEADER: str(code)} if gateway_error else None
    return _json_response(_envelope(False, code, message, None), status, headers)


def _ok(data: Any) -> web.Response:
    return _json_response(_envelope(True, CODE_OK, "success", data))


class _Verdict(NamedTuple):
    """What operate_ticket decided before writing: an error, or the write to make."""

    code: int
    message: str
    # the status the request validated against, and the ticket's previous_status then
    seen_status: str = ""
    seen_previous: str | None = None


@dataclass
class _Call:
    """One API request after routing and credential parsing."""

    api: str
    gateway: bool  # True on the API-gateway path, False on the ESB path
    params: dict[str, Any]
    #: scheme://host the caller used, for the ticket links get_tickets answers
    site: str = ""


_APIS: Final[dict[str, str]] = {
    "operate_ticket": "POST",
    "get_ticket_status": "GET",
    "get_ticket_info": "GET",
    "get_tickets": "POST",
}


# --------------------------------------------------------------------------- the app

_SHUTDOWN: Final = web.AppKey("sandbox_shutdown", asyncio.Event)


class _Server:
    """Request handlers bound to one :class:`SandboxState`."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    # -- routing -------------------------------------------------------------------

    async def api(self, request: web.Request) -> web.StreamResponse:
        gateway = not request.path.startswith(ESB_PREFIX)
        api = request.match_info["api"]
        if _APIS.get(api) != request.method:
            return self._no_such_api(request, gateway)
        state = self.state
        state._count_request(api)

        if request.method == "GET":
            params: dict[str, Any] = dict(request.query)
        else:
            params = await self._read_body(request, gateway)

        sn: str | None = None
        if api == "operate_ticket":
            raw_sn = params.get("sn")
            sn = raw_sn if isinstance(raw_sn, str) else ("" if raw_sn is None else str(raw_sn))
        state._enter(sn)
        holding_sn = sn is not None

        def release_sn() -> None:
            nonlocal holding_sn
            if holding_sn and sn is not None:
                holding_sn = False
                state._leave_sn(sn)

        try:
            call = _Call(api, gateway, params, f"{request.scheme}://{request.host}")
            return await self._serve(request, call, sn or "", release_sn)
        finally:
            state.stats.in_flight -= 1
            release_sn()

    async def unknown(self, request: web.Request) -> web.StreamResponse:
        return self._no_such_api(request, not request.path.startswith("/api/c/compapi/"))

    def _no_such_api(self, request: web.Request, gateway: bool) -> web.Response:
        self.state._count_request("unknown")
        if gateway:
            return _error(
                CODE_GW_NOT_FOUND,
                f"API not found [method={request.method}, path={request.path}]",
                404,
                gateway_error=True,
            )
        return _error(
            CODE_ESB_NO_COMPONENT,
            f"组件不存在 (component not found): {request.method} {request.path}",
        )

    @staticmethod
    async def _read_body(request: web.Request, gateway: bool) -> dict[str, Any]:
        raw = await request.read()
        # The gateway only forwards a body it recognises as JSON; without the header the
        # backend sees an empty body (and operate_ticket answers "ticket not found").
        if gateway and request.content_type != "application/json":
            return {}
        if not raw:
            return {}
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    # -- credentials ---------------------------------------------------------------

    def _authenticate(self, request: web.Request, call: _Call) -> web.Response | None:
        """None when the caller may proceed, else the gateway's or ESB's refusal."""
        header = request.headers.get(AUTH_HEADER)
        creds: Any
        if header is not None:
            try:
                creds = json.loads(header)
            except ValueError:
                creds = None
            if not isinstance(creds, dict):
                return self._auth_failure(
                    call,
                    f"{AUTH_HEADER} is not a valid JSON object",
                    esb_code=CODE_ESB_BAD_ARGUMENT,
                    esb_message=f"参数错误: 请求头 {AUTH_HEADER} 不是合法的 JSON 对象",
                )
        elif call.gateway:
            return self._auth_failure(call, f"please provide the {AUTH_HEADER} header")
        else:
            creds = call.params

        config = self.state.config
        if creds.get("bk_app_code") != config.app_code or (
            creds.get("bk_app_secret") != config.app_secret
        ):
            return self._auth_failure(
                call, "bk_app_code or bk_app_secret is incorrect", esb_message=MSG_APP_AUTH
            )

        username = creds.get("bk_username")
        token = creds.get("bk_token")
        if config.whitelisted and isinstance(username, str) and username:
            return None
        if isinstance(token, str) and token:
            if token in config.bad_tokens:
                return self._auth_failure(
                    call,
                    "bk_token is invalid or expired",
                    esb_message="用户认证失败: 用户登录态无效 (bk_token is invalid)",
                )
            return None
        if isinstance(username, str) and username:
            return self._auth_failure(
                call,
                "the app is not whitelisted to skip user authentication; provide bk_token",
                esb_message="用户认证失败: 应用不在免用户认证白名单中，请提供 bk_token",
            )
        return self._auth_failure(
            call,
            "please provide a user identity (bk_token or bk_username)",
            esb_message="用户认证失败: 请提供 bk_token 或 bk_username",
        )

    def _auth_failure(
        self,
        call: _Call,
        reason: str,
        *,
        esb_code: int = CODE_ESB_AUTH,
        esb_message: str | None = None,
    ) -> web.Response:
        self.state.stats.auth_failures += 1
        if call.gateway:
            return _error(
                CODE_GW_AUTH,
                f'App or user authentication failed [reason="{reason}"]',
                400,
                gateway_error=True,
            )
        # ESB's own errors travel in the body only (no X-Bkapi-Error-Code header)
        return _error(esb_code, esb_message or f"APP认证失败: {reason}")

    # -- the common path -----------------------------------------------------------

    async def _serve(
        self, request: web.Request, call: _Call, sn: str, release_sn: Callable[[], None]
    ) -> web.StreamResponse:
        state = self.state
        faults = state.faults
        operate = call.api == "operate_ticket"
        action, operator = "", ""
        if operate:
            action = _as_text(call.params.get("action_type"))
            operator = _as_text(call.params.get("operator"))
            if call.gateway and "username" in call.params:
                # The trap: on the gateway path a body key "username" replaces operator.
                operator = _as_text(call.params["username"])

        def record(code: int, applied: bool) -> None:
            if operate:
                state._record(sn, action, operator, code, applied)

        refusal = self._authenticate(request, call)
        if refusal is None and call.api in faults.refused_apis:
            state._fault("refused_api")
            refusal = self._no_permission(call)
        if refusal is not None:
            record(_code_of(refusal), False)
            return refusal

        draw = None
        if (operate or faults.faults_on_reads) and faults.any_random:
            draw = state._draw()
        if draw is not None and draw[0] < faults.rate_limit_rate:
            state._fault("rate_limit")
            record(CODE_GW_RATE_LIMIT, False)
            return self._rate_limited(call)
        if draw is not None and draw[1] < faults.error_5xx_rate:
            state._fault("error_5xx")
            record(503, False)
            return web.Response(status=503, text=UNAVAILABLE_TEXT)
        if faults.service_off:
            state._fault("service_off")
            record(200, False)
            return web.Response(text=SERVICE_OFF_HTML, content_type="text/html", charset="utf-8")
        if faults.gateway_forbidden:
            state._fault("gateway_forbidden")
            record(403, False)
            return web.Response(status=403, text=FORBIDDEN_TEXT)

        timed_out = draw is not None and draw[2] < faults.backend_timeout_rate
        lost = not timed_out and draw is not None and draw[3] < faults.lost_rate

        if operate:
            ticket = state.tickets.get(sn)
            verdict = self._validate(ticket, action, operator, call.params)
            await self._latency(faults)
            if faults.operate_latency_ms > 0:
                await asyncio.sleep(faults.operate_latency_ms / 1000.0)
            # a timed-out backend may or may not have written: a seeded coin decides
            coin = draw[4] if draw is not None else 0.0
            applied = verdict.code == CODE_OK and not (timed_out and coin >= 0.5)
            if applied and ticket is not None:
                self._apply(ticket, action, verdict)
            if timed_out:
                state._fault("backend_timeout")
                record(_timeout_code(call), applied)
                return self._backend_timeout(call)
            record(verdict.code, applied)
            response = _ok([]) if verdict.code == CODE_OK else _error(verdict.code, verdict.message)
        else:
            await self._latency(faults)
            if timed_out:
                state._fault("backend_timeout")
                return self._backend_timeout(call)
            response = self._read(call)

        if lost:
            state._fault("lost")
            # the server's work is done; only the answer is missing
            release_sn()
            return await self._lose(request, response, faults)
        return response

    @staticmethod
    async def _latency(faults: Faults) -> None:
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000.0)

    @staticmethod
    def _no_permission(call: _Call) -> web.Response:
        if call.gateway:
            return _error(
                CODE_GW_NO_PERMISSION,
                f'App has no permission to the resource [api="{call.api}"]',
                403,
                gateway_error=True,
            )
        return _error(
            CODE_ESB_APP_NO_PERMISSION, f"应用没有访问该组件的权限 (component {call.api})"
        )

    def _rate_limited(self, call: _Call) -> web.Response:
        headers = {
            ERROR_CODE_HEADER: str(CODE_GW_RATE_LIMIT),
            "X-Bkapi-RateLimit-Limit": "10",
            "X-Bkapi-RateLimit-Remaining": "0",
            "X-Bkapi-RateLimit-Reset": "1",
        }
        payload = _envelope(False, CODE_GW_RATE_LIMIT, MSG_RATE_LIMIT, None)
        return _json_response(payload, 429 if call.gateway else 200, headers)

    @staticmethod
    def _backend_timeout(call: _Call) -> web.Response:
        if call.gateway:
            return _error(
                CODE_GW_BACKEND_TIMEOUT,
                'Request backend service timeout [reason="backend timed out"]',
                504,
                gateway_error=True,
            )
        return _error(
            CODE_ESB_BACKEND_TIMEOUT,
            "请求第三方系统接口超时 (backend timed out after 30 seconds)",
        )

    async def _lose(
        self, request: web.Request, response: web.Response, faults: Faults
    ) -> web.StreamResponse:
        if faults.lost_mode == "drop":
            transport = request.transport
            if transport is not None:
                transport.abort()
            return response  # aiohttp drops it quietly: the connection is gone
        shutdown = request.app[_SHUTDOWN]
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(shutdown.wait(), faults.lost_hang_s)
        return response

    # -- operate_ticket ------------------------------------------------------------

    def _business(self, reason: str) -> _Verdict:
        if self.state.config.legacy_codes:
            return _Verdict(CODE_LEGACY_PARAM, reason)
        return _Verdict(
            CODE_BUSINESS,
            f"接口异常，请检查请求参数: [ErrorDetail(string='{reason}', code='invalid')]",
        )

    def _validate(
        self, ticket: Ticket | None, action: str, operator: str, params: Mapping[str, Any]
    ) -> _Verdict:
        """The server's checks, in the server's order (docs/itsm.md §3)."""
        if ticket is None:
            return _Verdict(CODE_NOT_FOUND, MSG_NOT_FOUND)
        if action not in ACTIONS:
            return _Verdict(CODE_BUSINESS, f"单据操作失败，不支持的操作类型: {action}")
        if action == "WITHDRAW":
            if operator != ticket.creator and operator != SYSTEM_ACCOUNT:
                return self._business("抱歉，你无权撤销单据")
            if ticket.is_final:
                return self._business("抱歉，单据已经结束，无法撤销")
            if not ticket.withdraw_allowed:
                return self._business("抱歉，当前流程配置无法撤单，请联系服务负责人")
        else:
            if ticket.is_final:
                return self._business("抱歉，单据已关闭，无法操作")
            if ticket.is_child:
                return self._business("抱歉，子单为只读状态，无法操作")
            if operator not in ticket.processors:
                return self._business(f"抱歉，{operator}无权操作该单据")
        if action == "UNSUSPEND" and ticket.status != "SUSPENDED":
            return self._business("抱歉，该单据不在挂起中，无法操作")
        if "action_message" not in params:
            return _Verdict(CODE_BUSINESS, "接口异常，请检查请求参数: 'action_message'")
        message = params["action_message"]
        if message is None or (isinstance(message, str) and not message.strip()):
            return self._business("action_message 不能为空")
        if not isinstance(message, str):
            return self._business("action_message 必须是字符串")
        if len(message) > MAX_ACTION_MESSAGE:
            return self._business(f"action_message 长度不能超过 {MAX_ACTION_MESSAGE} 个字符")
        return _Verdict(CODE_OK, "success", ticket.status, ticket.previous_status)

    def _apply(self, ticket: Ticket, action: str, verdict: _Verdict) -> None:
        """Write the action, based on the ticket as it was validated (the server's way)."""
        if action == "SUSPEND":
            # The double-suspend bug: a SUSPENDED ticket passes the "is running" check,
            # and records SUSPENDED as the status to go back to.
            if verdict.seen_status == "SUSPENDED":
                self.state.stats.double_suspends += 1
            ticket.previous_status = verdict.seen_status
            ticket.status = "SUSPENDED"
        elif action == "UNSUSPEND":
            ticket.status = verdict.seen_previous or "RUNNING"
        elif action == "WITHDRAW":
            ticket.status = "REVOKED"
            ticket.end_at = _now_text()
        else:
            ticket.status = "TERMINATED"
            ticket.end_at = _now_text()

    # -- reads ---------------------------------------------------------------------

    def _read(self, call: _Call) -> web.Response:
        if call.api == "get_tickets":
            return self._get_tickets(call.params, call.site)
        ticket = self.state.tickets.get(_as_text(call.params.get("sn")))
        if ticket is None:
            return _error(CODE_NOT_FOUND, MSG_NOT_FOUND)
        if call.api == "get_ticket_status":
            return _ok(_status_data(ticket))
        return _ok(_info_data(ticket, self.state.order_key(ticket.sn)))

    def _get_tickets(self, params: Mapping[str, Any], site: str) -> web.Response:
        """The ticket list (docs/itsm.md §5): filters, newest first, paged."""
        state = self.state
        page = _as_int(params.get("page"), 1)
        page_size = min(_as_int(params.get("page_size"), DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
        page = max(page, 1)
        page_size = max(page_size, 1)
        try:
            keep = _TicketFilter.from_params(params).keeps
        except ValueError as exc:
            # (inferred) the ORM refuses a time it cannot parse; the view answers an error.
            return _error(CODE_BUSINESS, f"接口异常，请检查请求参数: {exc}")
        sns = params.get("sns")
        if isinstance(sns, list) and sns:
            wanted = {sn for sn in sns if isinstance(sn, str)}
            candidates: Iterable[Ticket] = (
                state.tickets[sn] for sn in wanted if sn in state.tickets
            )
        else:
            # An empty or missing sns is no filter at all: every ticket is a candidate.
            candidates = state.tickets.values()
        found = [t for t in candidates if keep(t)]
        found.sort(key=lambda t: state.order_key(t.sn), reverse=True)  # newest first (-id)
        start = (page - 1) * page_size
        items = [
            _list_item(t, state.order_key(t.sn), site) for t in found[start : start + page_size]
        ]
        return _ok(
            {
                "page": page,
                "total_page": max(1, -(-len(found) // page_size)),
                "count": len(found),
                "next": None,
                "previous": None,
                "items": items,
            }
        )

    # -- /_sandbox/ ----------------------------------------------------------------

    async def get_stats(self, request: web.Request) -> web.Response:
        include_log = request.query.get("log", "1") not in ("0", "false", "no")
        return _json_response(self.state.stats.as_dict(include_log=include_log))

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.state.reset_stats()
        return _json_response({"reset": True})

    async def get_tickets(self, request: web.Request) -> web.Response:
        tickets = self.state.tickets
        sn = request.query.get("sn")
        if sn is not None:
            chosen = [tickets[sn]] if sn in tickets else []
        else:
            chosen = list(tickets.values())
        return _json_response({"tickets": [t.to_json() for t in chosen]})

    async def post_tickets(self, request: web.Request) -> web.Response:
        body = await _admin_body(request)
        if isinstance(body, web.Response):
            return body
        state = self.state
        try:
            tickets_raw = body.get("tickets", [])
            if not isinstance(tickets_raw, list) or not all(
                isinstance(t, dict) for t in tickets_raw
            ):
                raise ValueError("'tickets' must be a list of objects")
            tickets = [Ticket.from_json(t) for t in tickets_raw]
            generate = body.get("generate")
            if generate is not None and not isinstance(generate, dict):
                raise ValueError("'generate' must be an object")
            if generate is not None:
                prefix, count = generate.get("prefix", "BENCH"), generate.get("count", 0)
                operator = generate.get("operator", SYSTEM_ACCOUNT)
                status = generate.get("status", "RUNNING")
                if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                    raise ValueError("'generate.count' must be a non-negative integer")
                if not all(isinstance(v, str) and v for v in (prefix, operator, status)):
                    raise ValueError("generate prefix/operator/status must be non-empty strings")
        except ValueError as exc:
            return _json_response({"error": str(exc)}, 400)
        seeded = state.seed_tickets(tickets, clear=bool(body.get("clear", False)))
        if generate is not None:
            seeded += state.generate_tickets(prefix, count, operator, status)
        return _json_response({"seeded": seeded, "total": len(state.tickets)})

    async def get_faults(self, request: web.Request) -> web.Response:
        return _json_response(self.state.faults.to_json())

    async def post_faults(self, request: web.Request) -> web.Response:
        body = await _admin_body(request)
        if isinstance(body, web.Response):
            return body
        try:
            faults = self.state.faults.updated(body)
        except (TypeError, ValueError) as exc:
            return _json_response({"error": str(exc)}, 400)
        self.state.set_faults(faults)
        return _json_response(faults.to_json())


async def _admin_body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json()
    except ValueError:
        return _json_response({"error": "the body must be a JSON object"}, 400)
    if not isinstance(body, dict):
        return _json_response({"error": "the body must be a JSON object"}, 400)
    return body


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _as_int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value)
    return default


def _code_of(response: web.Response) -> int:
    body = response.body
    if isinstance(body, bytes):
        with contextlib.suppress(ValueError):
            code = json.loads(body).get("code")
            if isinstance(code, int):
                return code
    return response.status


def _timeout_code(call: _Call) -> int:
    return CODE_GW_BACKEND_TIMEOUT if call.gateway else CODE_ESB_BACKEND_TIMEOUT


def _in_values(raw: Any) -> frozenset[str] | None:
    """An ``__in`` filter's values as text, or None when the filter is empty (not applied).

    The ORM iterates whatever it is given: a list gives its items, but a string gives its
    characters, so ``"RUNNING,SUSPENDED"`` looks for statuses "R", "U", … and finds none.
    """
    if raw is None or raw == "" or raw == []:
        return None
    if isinstance(raw, str | list | tuple):
        return frozenset(str(v) for v in raw)
    return frozenset({str(raw)})


def _time_bound(raw: Any, name: str) -> str | None:
    """A time filter as ``YYYY-MM-DD HH:MM:SS`` text (stored times compare as text)."""
    if raw is None or raw == "":
        return None
    try:
        return datetime.fromisoformat(str(raw)).strftime(TIME_FORMAT)
    except ValueError:
        raise ValueError(f"{name} '{raw}' is not a time (YYYY-MM-DD HH:MM:SS)") from None


@dataclass(frozen=True)
class _TicketFilter:
    """get_tickets' filters, each applied only when it was given non-empty."""

    equal: tuple[tuple[str, str], ...] = ()
    within: tuple[tuple[str, frozenset[str]], ...] = ()
    not_before: tuple[tuple[str, str], ...] = ()
    not_after: tuple[tuple[str, str], ...] = ()
    todo_of: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> _TicketFilter:
        equal = tuple(
            (name, str(params[name]))
            for name in ("creator", "tag", "project_key")
            if params.get(name) not in (None, "")
        )
        within = []
        for name, attribute in (
            ("service_id__in", "service_id"),
            ("bk_biz_id__in", "bk_biz_id"),
            ("current_status__in", "status"),
        ):
            values = _in_values(params.get(name))
            if values is not None:
                within.append((attribute, values))
        bounds: dict[str, list[tuple[str, str]]] = {"gte": [], "lte": []}
        for attribute in ("create_at", "end_at"):
            for op in ("gte", "lte"):
                bound = _time_bound(params.get(f"{attribute}__{op}"), f"{attribute}__{op}")
                if bound is not None:
                    bounds[op].append((attribute, bound))
        username = params.get("username")
        return cls(
            equal,
            tuple(within),
            tuple(bounds["gte"]),
            tuple(bounds["lte"]),
            None if username in (None, "") else str(username),
        )

    def keeps(self, ticket: Ticket) -> bool:
        if ticket.is_draft or ticket.is_deleted:
            return False
        if any(getattr(ticket, a) != v for a, v in self.equal):
            return False
        if any(str(getattr(ticket, a)) not in v for a, v in self.within):
            return False
        # A ticket without the time (one not ended) never matches, as NULL in SQL.
        if any(not getattr(ticket, a) or getattr(ticket, a) < b for a, b in self.not_before):
            return False
        if any(not getattr(ticket, a) or getattr(ticket, a) > b for a, b in self.not_after):
            return False
        return self.todo_of is None or (
            ticket.status == "RUNNING" and self.todo_of in ticket.processors
        )


def _list_item(ticket: Ticket, ticket_id: int, site: str) -> dict[str, Any]:
    """One ticket as get_tickets lists it (no processors)."""
    return {
        "id": ticket_id,
        "sn": ticket.sn,
        "title": ticket.title or f"sandbox ticket {ticket.sn}",
        "catalog_id": 1,
        "service_id": ticket.service_id,
        "service_type": "request",
        "flow_id": 1,
        "current_status": ticket.status,
        "comment_id": "",
        "is_commented": False,
        "updated_by": ticket.creator,
        "update_at": ticket.end_at or ticket.create_at,
        "end_at": ticket.end_at,
        "creator": ticket.creator,
        "create_at": ticket.create_at,
        "bk_biz_id": ticket.bk_biz_id,
        "tag": ticket.tag,
        "project_key": ticket.project_key,
        "ticket_url": f"{site}/#/ticket/detail?id={ticket_id}",
    }


def _status_data(ticket: Ticket) -> dict[str, Any]:
    final = ticket.is_final
    operations: list[dict[str, str]] = []
    if not final and ticket.withdraw_allowed:
        operations.append({"key": "WITHDRAW", "name": _OPERATION_NAMES["WITHDRAW"]})
    if ticket.status == "RUNNING":
        operations.append({"key": "SUSPEND", "name": _OPERATION_NAMES["SUSPEND"]})
    elif ticket.status == "SUSPENDED":
        operations.append({"key": "UNSUSPEND", "name": _OPERATION_NAMES["UNSUSPEND"]})
    steps = (
        []
        if final
        else [
            {
                "id": 1,
                "tag": "DEFAULT",
                "name": "处理",
                "state_id": 1,
                "processors": ",".join(ticket.processors),
                "processors_type": "PERSON",
            }
        ]
    )
    return {
        "current_status": ticket.status,
        "current_status_display": _STATUS_DISPLAY.get(ticket.status, ticket.status),
        "is_commented": False,
        "current_steps": steps,
        "operations": operations,
    }


def _info_data(ticket: Ticket, ticket_id: int) -> dict[str, Any]:
    return {
        "id": ticket_id,
        "sn": ticket.sn,
        "title": ticket.title or f"sandbox ticket {ticket.sn}",
        "current_status": ticket.status,
        "creator": ticket.creator,
        "is_child": ticket.is_child,
        "fields": [],
    }


def make_app(state: SandboxState) -> web.Application:
    """The aiohttp application serving ``state`` (see the module docstring for routes)."""
    server = _Server(state)
    app = web.Application()
    shutdown = asyncio.Event()
    app[_SHUTDOWN] = shutdown

    async def on_shutdown(_app: web.Application) -> None:
        shutdown.set()  # wakes answers held back by lost_mode="hang"

    app.on_shutdown.append(on_shutdown)
    router = app.router
    for prefix in (ESB_PREFIX, *GATEWAY_PREFIXES):
        router.add_route("*", prefix + "{api}/", server.api)
    router.add_get("/_sandbox/stats", server.get_stats)
    router.add_delete("/_sandbox/stats", server.reset_stats)
    router.add_get("/_sandbox/tickets", server.get_tickets)
    router.add_post("/_sandbox/tickets", server.post_tickets)
    router.add_get("/_sandbox/faults", server.get_faults)
    router.add_post("/_sandbox/faults", server.post_faults)
    router.add_route("*", "/{tail:.*}", server.unknown)
    return app


async def start_sandbox(
    state: SandboxState, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Serve ``state`` on ``host:port`` (0 picks a free port); the caller cleans up the runner."""
    runner = web.AppRunner(make_app(state), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
    except BaseException:
        await runner.cleanup()
        raise
    shown = f"[{host}]" if ":" in host else host
    return runner, f"http://{shown}:{bound_port}"


class SandboxThread:
    """Run a sandbox in a background thread with its own event loop.

    ::

        with SandboxThread() as sandbox:
            sandbox.state.generate_tickets("T", 10)
            ...  # talk to sandbox.url
    """

    def __init__(
        self,
        state: SandboxState | None = None,
        *,
        config: SandboxConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if state is not None and config is not None:
            raise ValueError("pass either a state or a config, not both")
        self.state = state if state is not None else SandboxState(config)
        self.url = ""
        self._host = host
        self._port = port
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, name="batchops-sandbox", daemon=True)

    def __enter__(self) -> SandboxThread:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server and join the thread (idempotent)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive():
            self._thread.join()

    def go_down(self) -> None:
        """An outage: stop listening (connections are refused) and drop open connections.

        Requests being handled are cut off with their connection; the server's work on
        them goes on or not as the handler is (the state is not rolled back).
        """
        self._on_loop(self._go_down())

    def come_back(self) -> None:
        """End an outage: listen again on the same address and port."""
        self._on_loop(self._come_back())

    async def _go_down(self) -> None:
        runner = self._runner
        assert runner is not None
        for site in list(runner.sites):
            await site.stop()
        server = runner.server
        if server is not None:
            for handler in list(server.connections):
                transport = handler.transport
                if transport is not None:
                    transport.abort()

    async def _come_back(self) -> None:
        runner = self._runner
        assert runner is not None
        host, _, port = self.url.removeprefix("http://").rpartition(":")
        site = web.TCPSite(runner, host.strip("[]"), int(port))
        await site.start()

    def _on_loop(self, work: Coroutine[Any, Any, None]) -> None:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the sandbox is not running")
        asyncio.run_coroutine_threadsafe(work, loop).result()

    def call(self, func: Callable[[], _T]) -> _T:
        """Run ``func`` on the server's loop thread (safe state changes mid-run)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the sandbox is not running")

        async def run() -> _T:
            return func()

        return asyncio.run_coroutine_threadsafe(run(), loop).result()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to __enter__ when startup fails
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                raise

    async def _main(self) -> None:
        runner, self.url = await start_sandbox(self.state, self._host, self._port)
        self._runner = runner
        try:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()


# --------------------------------------------------------------------------- CLI


def serve(
    host: str,
    port: int,
    config: SandboxConfig,
    seed_rows: Iterable[tuple[str, str]] | None = None,
    *,
    generate: Sequence[tuple[str, int]] = (),
) -> None:
    """Serve a sandbox until Ctrl-C, printing where it listens and how to authenticate.

    ``seed_rows`` are (sn, operator) pairs of an input file (see
    :meth:`SandboxState.seed_from_rows`); ``generate`` holds (prefix, count) pairs.
    """
    state = SandboxState(config)
    if seed_rows is not None:
        state.seed_from_rows(seed_rows)
    for prefix, count in generate:
        state.generate_tickets(prefix, count)

    async def run() -> None:
        runner, url = await start_sandbox(state, host, port)
        try:
            secret_hint = (
                f"the demo secret {DEFAULT_APP_SECRET!r}"
                if config.app_secret == DEFAULT_APP_SECRET
                else "the one this sandbox was configured with"
            )
            user_hint = (
                "bk_username accepted (app is whitelisted)"
                if config.whitelisted
                else "a non-empty bk_token is required"
            )
            print(f"batchops sandbox: ITSM stand-in listening on {url}", flush=True)
            print(f"  ESB base URL:     {url}{ESB_PREFIX}", flush=True)
            print(f"  gateway base URL: {url}{GATEWAY_PREFIXES[1]}", flush=True)
            print(f"  app code: {config.app_code}; app secret: {secret_hint}", flush=True)
            print(f"  user: {user_hint}; tickets seeded: {len(state.tickets)}", flush=True)
            print(f"  stats: {url}/_sandbox/stats    (Ctrl-C to stop)", flush=True)
            stop = asyncio.Event()
            with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def _generate_spec(text: str) -> tuple[str, int]:
    prefix, sep, count = text.rpartition(":")
    if not sep or not prefix or not count.isdigit():
        raise argparse.ArgumentTypeError(f"expected PREFIX:COUNT, got {text!r}")
    return prefix, int(count)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m batchops.sandbox``: run the stand-in ITSM server from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m batchops.sandbox", description="Serve a stand-in BlueKing ITSM API."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--app-code", default=DEFAULT_APP_CODE)
    parser.add_argument("--not-whitelisted", action="store_true", help="require bk_token")
    parser.add_argument("--legacy-codes", action="store_true", help="answer 3900005 (pre-2022)")
    parser.add_argument("--no-log", action="store_true", help="keep counters, no operation log")
    parser.add_argument(
        "--generate",
        type=_generate_spec,
        action="append",
        default=[],
        metavar="PREFIX:COUNT",
        help="seed COUNT RUNNING tickets PREFIX0000001… owned by admin (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0, help="fault RNG seed")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--error-5xx-rate", type=float, default=0.0)
    parser.add_argument("--rate-limit-rate", type=float, default=0.0)
    parser.add_argument("--backend-timeout-rate", type=float, default=0.0)
    parser.add_argument("--lost-rate", type=float, default=0.0)
    parser.add_argument("--lost-mode", choices=("hang", "drop"), default="hang")
    parser.add_argument("--lost-hang-s", type=float, default=30.0)
    args = parser.parse_args(argv)
    try:
        faults = Faults(
            seed=args.seed,
            latency_ms=args.latency_ms,
            error_5xx_rate=args.error_5xx_rate,
            rate_limit_rate=args.rate_limit_rate,
            backend_timeout_rate=args.backend_timeout_rate,
            lost_rate=args.lost_rate,
            lost_mode=args.lost_mode,
            lost_hang_s=args.lost_hang_s,
        )
    except ValueError as exc:
        parser.error(str(exc))
    config = SandboxConfig(
        app_code=args.app_code,
        whitelisted=not args.not_whitelisted,
        legacy_codes=args.legacy_codes,
        record_log=not args.no_log,
        faults=faults,
    )
    serve(args.host, args.port, config, generate=args.generate)


if __name__ == "__main__":
    main()

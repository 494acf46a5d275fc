"""The stand-in's world: the ITSM vocabulary, tickets, fault switches, counters, state.

Names and codes are the real server's (docs/itsm.md); :class:`SandboxState` holds the
tickets and the counters that tests and benchmarks read back, and applies an action the
way the server's database would.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, NamedTuple, TypeVar

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
    #: ITSM gets to an operate_ticket request only this long after it arrived, and then
    #: validates and applies it, whatever the gateway answered meanwhile: with more than
    #: ``gateway_timeout_s``, the gateway answers "backend timeout" (1306201 / 1650401)
    #: first, and the operation lands later all the same.
    backend_delay_s: float = 0.0
    #: How long the gateway waits for ITSM before it answers "backend timeout".
    gateway_timeout_s: float = 30.0
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
        for name in ("latency_ms", "operate_latency_ms", "backend_delay_s", "gateway_timeout_s"):
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
    #: The most items get_tickets puts on a page, whatever page_size asks for (a
    #: deployment's paginator may cap pages far below the API's 10,000).
    max_page_size: int = MAX_PAGE_SIZE
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
    #: The ``action_message`` the request carried.
    message: str = ""


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

    def _record(
        self, sn: str, action: str, operator: str, code: int, applied: bool, message: str = ""
    ) -> None:
        stats = self.stats
        stats.operations_total += 1
        if applied:
            stats.applied_total += 1
        if self.config.record_log:
            stats.operations.append(
                OpRecord(sn, action, operator, code, applied, time.monotonic(), message)
            )

    def _draw(self) -> tuple[float, float, float, float, float]:
        """Five draws per faultable request, so the sequence never depends on the rates."""
        r = self._rng.random
        return r(), r(), r(), r(), r()

"""How the stand-in answers: envelopes, error responses, and the data shapes of the read
APIs; request-argument parsing and the ``get_tickets`` filter (docs/itsm.md §2 and §5).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple

from aiohttp import web

from .state import (
    _OPERATION_NAMES,
    _STATUS_DISPLAY,
    CODE_ESB_BACKEND_TIMEOUT,
    CODE_GW_BACKEND_TIMEOUT,
    CODE_OK,
    ERROR_CODE_HEADER,
    TIME_FORMAT,
    Ticket,
    _dumps,
)

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

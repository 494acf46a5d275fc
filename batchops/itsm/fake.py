"""An in-memory ITSM behind the :class:`~batchops.itsm.transport.Transport` interface.

For tests of code that sends rows (batchops' own, and users' tests of their use of
:func:`batchops.run_batch`'s parts), like httpx's ``MockTransport``: no sockets, no
threads. It answers as the real server does (docs/itsm.md, the server-behaviour notes):
the same checks in the same order, the same codes and Chinese messages, the
double-suspend bug included. Every answer is an envelope read by
:func:`~batchops.itsm.answers.classify_answer`, so verdicts come from the one code table,
never from here. ``script`` answers a request itself first when a test needs a lost
answer, a rate limit or an outage.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from batchops.model import FINAL_TICKET_STATUSES, Row

from .answers import classify_answer
from .transport import Answer

#: ITSM's codes and messages (bk-itsm), as the fake answers them.
NOT_FOUND = 3900022
REFUSED = 3900004
_ACTIONS = ("SUSPEND", "UNSUSPEND", "WITHDRAW", "TERMINATE")
_SYSTEM_ACCOUNT = "admin"


@dataclass(slots=True)
class FakeTicket:
    """One ticket: its status, who may operate it, and what a SUSPEND remembered."""

    status: str = "RUNNING"
    processors: frozenset[str] = frozenset({"admin"})
    creator: str = "admin"
    #: The status an UNSUSPEND goes back to; SUSPENDED after the double-suspend bug.
    suspended_from: str | None = None


@dataclass(slots=True)
class FakeTransport:
    """Tickets by sn, the requests seen, and an optional script that answers first."""

    tickets: dict[str, FakeTicket] = field(default_factory=dict)
    #: Called with (call, row or sn); an Answer it returns is the answer, None lets the
    #: fake ITSM answer.
    script: Callable[[str, Row | str], Answer | None] | None = None
    #: ``(call, sn, action)`` of every request, in arrival order.
    requests: list[tuple[str, str, str]] = field(default_factory=list)

    async def operate(self, row: Row) -> Answer:
        self.requests.append(("operate", row.sn, row.action))
        scripted = self.script("operate", row) if self.script else None
        if scripted is not None:
            return scripted
        code, message = self._apply(row)
        return _answer(code, message)

    async def read_ticket_status(self, sn: str) -> Answer:
        self.requests.append(("read", sn, ""))
        scripted = self.script("read", sn) if self.script else None
        if scripted is not None:
            return scripted
        ticket = self.tickets.get(sn)
        if ticket is None:
            return _answer(NOT_FOUND, "没有找到对应的单据")
        return _answer(0, "success", {"current_status": ticket.status})

    async def read_tickets(self, sns: Iterable[str]) -> Answer:
        wanted = list(sns)
        self.requests.extend(("read", sn, "") for sn in wanted)
        items = [
            {"sn": sn, "current_status": t.status, "creator": t.creator}
            for sn in wanted
            if (t := self.tickets.get(sn)) is not None
        ]
        return _answer(0, "success", {"items": items, "count": len(items), "page": 1})

    def operations(self, sn: str) -> list[str]:
        """The actions requested for one ticket, in order."""
        return [action for call, each, action in self.requests if call == "operate" and each == sn]

    def _apply(self, row: Row) -> tuple[int, str]:
        """ITSM's checks in its order (lookup, action, permission, state, message)."""
        ticket = self.tickets.get(row.sn)
        if ticket is None:
            return NOT_FOUND, "没有找到对应的单据"
        if row.action not in _ACTIONS:
            return REFUSED, f"单据操作失败，不支持的操作类型: {row.action}"
        refusal = _refusal(ticket, row)
        if refusal:
            return REFUSED, f"接口异常，请检查请求参数: [ErrorDetail(string='{refusal}')]"
        if not row.message.strip():
            return REFUSED, "接口异常，请检查请求参数: 'action_message'"
        _move(ticket, row.action)
        return 0, "success"


def _refusal(ticket: FakeTicket, row: Row) -> str:
    over = ticket.status in FINAL_TICKET_STATUSES
    if row.action == "WITHDRAW":
        if row.operator not in {ticket.creator, _SYSTEM_ACCOUNT}:
            return "抱歉，你无权撤销单据"
        return "抱歉，单据已经结束，无法撤销" if over else ""
    if over:
        return "抱歉，单据已关闭，无法操作"
    if row.operator not in ticket.processors:
        return f"抱歉，{row.operator}无权操作该单据"
    if row.action == "UNSUSPEND" and ticket.status != "SUSPENDED":
        return "抱歉，该单据不在挂起中，无法操作"
    return ""


def _move(ticket: FakeTicket, action: str) -> None:
    if action == "SUSPEND":
        # ITSM's bug: a second SUSPEND is accepted and remembers SUSPENDED as the status
        # to go back to, so every later UNSUSPEND leaves the ticket suspended.
        ticket.suspended_from = ticket.status
        ticket.status = "SUSPENDED"
    elif action == "UNSUSPEND":
        ticket.status = ticket.suspended_from or "RUNNING"
        ticket.suspended_from = None
    else:
        ticket.status = "REVOKED" if action == "WITHDRAW" else "TERMINATED"


def _answer(code: int, message: str, data: Mapping[str, object] | None = None) -> Answer:
    envelope = {"result": code == 0, "code": code, "message": message, "data": data}
    body = json.dumps(envelope, ensure_ascii=False).encode()
    return classify_answer(200, body, content_type="application/json")

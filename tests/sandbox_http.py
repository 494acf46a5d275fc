"""Talking to the stand-in ITSM over real loopback HTTP, for the sandbox's own tests.

``send`` uses ``http.client``, which sends exactly the headers it is given, so the
Content-Type trap can be tested; the others are the calls a client makes, written out.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from batchops.sandbox import SandboxConfig, SandboxThread, Ticket

ESB = "/api/c/compapi/v2/itsm/"
GW = "/api/bk-itsm/prod/v2/itsm/"
GW_SHORT = "/v2/itsm/"
APP = {"bk_app_code": "batchops-sandbox", "bk_app_secret": "sandbox-secret"}
AUTH_ADMIN = {**APP, "bk_username": "admin"}
WRAPPED = "接口异常，请检查请求参数: [ErrorDetail(string='{}', code='invalid')]"


@dataclass
class Answer:
    """One HTTP answer as the client saw it."""

    status: int
    headers: http.client.HTTPMessage
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def code(self) -> int:
        code = self.json["code"]
        assert isinstance(code, int)
        return code

    @property
    def message(self) -> str:
        message = self.json["message"]
        assert isinstance(message, str)
        return message


def send(
    url: str,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    content_type: str | None = "application/json",
    timeout: float = 5.0,
) -> Answer:
    """Send one request with exactly the given headers (nothing added behind our back)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        all_headers = dict(headers or {})
        payload = None
        if body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            if content_type is not None:
                all_headers["Content-Type"] = content_type
        conn.request(method, path, body=payload, headers=all_headers)
        resp = conn.getresponse()
        return Answer(resp.status, resp.headers, resp.read().decode())
    finally:
        conn.close()


def auth_header(**creds: str) -> dict[str, str]:
    """The X-Bkapi-Authorization header carrying ``creds``."""
    return {"X-Bkapi-Authorization": json.dumps(creds)}


def operate(
    sb: SandboxThread,
    sn: str,
    operator: str,
    action: str,
    message: str | None = "batch",
    **extra: Any,
) -> Answer:
    """operate_ticket on the ESB path, credentials in the body (the documented way)."""
    body: dict[str, Any] = {**AUTH_ADMIN, "sn": sn, "operator": operator, "action_type": action}
    if message is not None:
        body["action_message"] = message
    body.update(extra)
    return send(sb.url, "POST", ESB + "operate_ticket/", body)


def operate_gw(sb: SandboxThread, body: dict[str, Any], **kwargs: Any) -> Answer:
    """operate_ticket on the API-gateway path, credentials in the header."""
    return send(sb.url, "POST", GW + "operate_ticket/", body, auth_header(**AUTH_ADMIN), **kwargs)


def get_read(sb: SandboxThread, api: str, sn: str, *, prefix: str = ESB) -> Answer:
    """A GET read API; ESB credentials as query parameters, gateway ones in the header."""
    if prefix == ESB:
        return send(sb.url, "GET", f"{ESB}{api}/?{urlencode({**AUTH_ADMIN, 'sn': sn})}")
    return send(sb.url, "GET", f"{prefix}{api}/?sn={sn}", headers=auth_header(**AUTH_ADMIN))


def seed(
    sb: SandboxThread,
    sn: str,
    status: str = "RUNNING",
    *,
    creator: str = "alice",
    processors: tuple[str, ...] = ("bob",),
    previous_status: str | None = None,
    is_child: bool = False,
    withdraw_allowed: bool = True,
) -> Ticket:
    """Seed one ticket (the server thread is idle between requests)."""
    ticket = Ticket(
        sn, status, creator, list(processors), previous_status, is_child, withdraw_allowed
    )
    sb.state.seed_tickets([ticket])
    return ticket


def status_of(sb: SandboxThread, sn: str) -> str:
    return sb.state.tickets[sn].status


def sandbox_with(**config: Any) -> SandboxThread:
    """A sandbox (to use as a context manager) with the given configuration."""
    return SandboxThread(config=SandboxConfig(**config))

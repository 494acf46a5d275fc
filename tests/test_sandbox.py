"""Tests for the stand-in ITSM server, always over real loopback HTTP.

Each test starts its own sandbox (a background thread with its own event loop) and
talks to it with ``http.client`` — which sends exactly the headers it is given, so the
Content-Type trap can be tested — or with aiohttp when requests must overlap.
"""

from __future__ import annotations

import ast
import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import pytest

from batchops import sandbox as sandbox_module
from batchops.sandbox import (
    Faults,
    SandboxConfig,
    SandboxState,
    SandboxThread,
    Ticket,
    start_sandbox,
)

from .helpers import run_cli

ESB = "/api/c/compapi/v2/itsm/"
GW = "/api/bk-itsm/prod/v2/itsm/"
GW_SHORT = "/v2/itsm/"
APP = {"bk_app_code": "batchops-sandbox", "bk_app_secret": "sandbox-secret"}
AUTH_ADMIN = {**APP, "bk_username": "admin"}
WRAPPED = "接口异常，请检查请求参数: [ErrorDetail(string='{}', code='invalid')]"


# --------------------------------------------------------------------------- helpers


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


@pytest.fixture
def sb() -> Iterator[SandboxThread]:
    """A sandbox with default configuration and no tickets."""
    with SandboxThread() as running:
        yield running


def sandbox_with(**config: Any) -> SandboxThread:
    """A sandbox (to use as a context manager) with the given configuration."""
    return SandboxThread(config=SandboxConfig(**config))


# --------------------------------------------------------------------------- success & shape


def test_success_envelope_and_suspend_effect(sb: SandboxThread) -> None:
    """A valid SUSPEND answers the exact success envelope and records the prior status."""
    seed(sb, "S1")
    answer = operate(sb, "S1", "bob", "SUSPEND")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json
    assert set(body) == {"result", "code", "message", "data", "request_id"}
    assert (body["result"], body["code"], body["message"], body["data"]) == (
        True,
        0,
        "success",
        [],
    )
    assert len(body["request_id"]) == 32
    int(body["request_id"], 16)
    ticket = sb.state.tickets["S1"]
    assert (ticket.status, ticket.previous_status) == ("SUSPENDED", "RUNNING")


def test_unsuspend_restores_the_status_before_the_suspend(sb: SandboxThread) -> None:
    """UNSUSPEND goes back to whatever the ticket was before SUSPEND (here NEW)."""
    seed(sb, "S1", "NEW")
    assert operate(sb, "S1", "bob", "SUSPEND").code == 0
    assert operate(sb, "S1", "bob", "UNSUSPEND").code == 0
    assert status_of(sb, "S1") == "NEW"


def test_terminate_and_withdraw_effects(sb: SandboxThread) -> None:
    """TERMINATE works from SUSPENDED; WITHDRAW by the creator revokes the ticket."""
    seed(sb, "T1", "SUSPENDED", previous_status="RUNNING")
    seed(sb, "W1")
    assert operate(sb, "T1", "bob", "TERMINATE").code == 0
    assert operate(sb, "W1", "alice", "WITHDRAW").code == 0
    assert status_of(sb, "T1") == "TERMINATED"
    assert status_of(sb, "W1") == "REVOKED"


# --------------------------------------------------------------------------- check order


def test_unknown_sn_wins_over_every_other_error(sb: SandboxThread) -> None:
    """An unknown sn answers 3900022 even with a bad action and no message."""
    answer = operate(sb, "NOPE", "nobody", "suspend", message=None)
    assert answer.status == 200
    assert (answer.code, answer.message, answer.json["data"]) == (
        3900022,
        "没有找到对应的单据",
        None,
    )
    assert answer.json["result"] is False


@pytest.mark.parametrize("action", ["suspend", "Suspend", "CLOSE", ""])
def test_action_type_is_case_sensitive_and_checked_before_permission(
    sb: SandboxThread, action: str
) -> None:
    """A wrong action_type is rejected (unwrapped 3900004) before the permission check."""
    seed(sb, "S1")
    answer = operate(sb, "S1", "mallory", action)
    assert answer.code == 3900004
    assert answer.message == f"单据操作失败，不支持的操作类型: {action}"
    assert status_of(sb, "S1") == "RUNNING"


def test_permission_is_checked_before_state(sb: SandboxThread) -> None:
    """UNSUSPEND of a RUNNING ticket by a non-processor fails on permission, not state."""
    seed(sb, "S1")
    answer = operate(sb, "S1", "mallory", "UNSUSPEND")
    assert answer.message == WRAPPED.format("抱歉，mallory无权操作该单据")


def test_state_is_checked_before_the_message(sb: SandboxThread) -> None:
    """UNSUSPEND of a RUNNING ticket without a message fails on state first."""
    seed(sb, "S1")
    answer = operate(sb, "S1", "bob", "UNSUSPEND", message=None)
    assert answer.code == 3900004
    assert answer.message == WRAPPED.format("抱歉，该单据不在挂起中，无法操作")


@pytest.mark.parametrize(
    ("action", "status", "operator"),
    [
        ("SUSPEND", "RUNNING", "bob"),
        ("UNSUSPEND", "SUSPENDED", "bob"),
        ("WITHDRAW", "RUNNING", "alice"),
        ("TERMINATE", "RUNNING", "bob"),
    ],
)
def test_missing_action_message_fails_for_every_action(
    sb: SandboxThread, action: str, status: str, operator: str
) -> None:
    """Omitting action_message fails with the KeyError text, even where the docs say optional."""
    seed(sb, "S1", status, previous_status="RUNNING")
    answer = operate(sb, "S1", operator, action, message=None)
    assert (answer.code, answer.message) == (3900004, "接口异常，请检查请求参数: 'action_message'")
    assert status_of(sb, "S1") == status


@pytest.mark.parametrize("message", ["", "   ", "x" * 256])
def test_blank_or_too_long_message_is_a_wrapped_business_error(
    sb: SandboxThread, message: str
) -> None:
    """A blank or over-255-character message is rejected with the wrapped 3900004."""
    seed(sb, "S1")
    answer = operate(sb, "S1", "bob", "SUSPEND", message=message)
    assert answer.code == 3900004
    assert answer.message.startswith("接口异常，请检查请求参数: [ErrorDetail(string='")
    assert "action_message" in answer.message
    assert status_of(sb, "S1") == "RUNNING"


def test_message_of_exactly_255_characters_is_accepted(sb: SandboxThread) -> None:
    """The 255-character limit is inclusive."""
    seed(sb, "S1")
    assert operate(sb, "S1", "bob", "SUSPEND", message="x" * 255).code == 0


# --------------------------------------------------------------------------- permission rules


def test_withdraw_needs_the_creator_not_a_processor(sb: SandboxThread) -> None:
    """A processor who is not the creator may not WITHDRAW; the creator may."""
    seed(sb, "W1")
    assert operate(sb, "W1", "bob", "WITHDRAW").message == WRAPPED.format("抱歉，你无权撤销单据")
    assert operate(sb, "W1", "alice", "WITHDRAW").code == 0


def test_withdraw_by_the_system_account(sb: SandboxThread) -> None:
    """``admin`` may withdraw a ticket it did not create."""
    seed(sb, "W1")
    assert operate(sb, "W1", "admin", "WITHDRAW").code == 0
    assert status_of(sb, "W1") == "REVOKED"


def test_withdraw_of_a_finished_ticket(sb: SandboxThread) -> None:
    """WITHDRAW of a final ticket (e.g. a repeated WITHDRAW) says it is over."""
    seed(sb, "W1")
    assert operate(sb, "W1", "alice", "WITHDRAW").code == 0
    again = operate(sb, "W1", "alice", "WITHDRAW")
    assert again.message == WRAPPED.format("抱歉，单据已经结束，无法撤销")


def test_withdraw_when_the_flow_forbids_it(sb: SandboxThread) -> None:
    """A flow without withdrawal answers the flow-configuration reason."""
    seed(sb, "W1", withdraw_allowed=False)
    answer = operate(sb, "W1", "alice", "WITHDRAW")
    assert answer.message == WRAPPED.format("抱歉，当前流程配置无法撤单，请联系服务负责人")
    assert status_of(sb, "W1") == "RUNNING"


@pytest.mark.parametrize("action", ["SUSPEND", "UNSUSPEND", "TERMINATE"])
def test_closed_ticket_is_checked_before_child_and_processor(
    sb: SandboxThread, action: str
) -> None:
    """A final child ticket with a foreign operator reports 已关闭 first."""
    seed(sb, "F1", "TERMINATED", is_child=True)
    answer = operate(sb, "F1", "mallory", action)
    assert answer.message == WRAPPED.format("抱歉，单据已关闭，无法操作")


def test_child_ticket_is_checked_before_processor(sb: SandboxThread) -> None:
    """A child ticket is read-only, whoever asks."""
    seed(sb, "C1", is_child=True)
    answer = operate(sb, "C1", "mallory", "SUSPEND")
    assert answer.message == WRAPPED.format("抱歉，子单为只读状态，无法操作")


def test_creator_is_not_enough_for_suspend(sb: SandboxThread) -> None:
    """SUSPEND needs a current processor; the creator alone is refused, naming them."""
    seed(sb, "S1")
    answer = operate(sb, "S1", "alice", "SUSPEND")
    assert answer.message == WRAPPED.format("抱歉，alice无权操作该单据")


def test_repeated_terminate_is_refused(sb: SandboxThread) -> None:
    """A second TERMINATE finds the ticket closed."""
    seed(sb, "T1")
    assert operate(sb, "T1", "bob", "TERMINATE").code == 0
    assert operate(sb, "T1", "bob", "TERMINATE").message == WRAPPED.format(
        "抱歉，单据已关闭，无法操作"
    )


def test_legacy_codes_answer_3900005_with_the_clean_reason() -> None:
    """With legacy_codes, business errors are 3900005 and unwrapped; other codes stay."""
    with sandbox_with(legacy_codes=True) as sb:
        seed(sb, "S1")
        refused = operate(sb, "S1", "mallory", "SUSPEND")
        assert (refused.code, refused.message) == (3900005, "抱歉，mallory无权操作该单据")
        assert operate(sb, "S1", "bob", "PAUSE").code == 3900004
        assert operate(sb, "NOPE", "bob", "SUSPEND").code == 3900022
        assert operate(sb, "S1", "bob", "SUSPEND", message=None).code == 3900004


# --------------------------------------------------------------------------- double suspend


def test_double_suspend_bug(sb: SandboxThread) -> None:
    """A second SUSPEND is accepted; afterwards UNSUSPEND says success but stays SUSPENDED."""
    seed(sb, "S1")
    assert operate(sb, "S1", "bob", "SUSPEND").code == 0
    assert operate(sb, "S1", "bob", "SUSPEND").code == 0
    assert sb.state.tickets["S1"].previous_status == "SUSPENDED"
    assert sb.state.stats.double_suspends == 1
    assert operate(sb, "S1", "bob", "UNSUSPEND").code == 0
    assert status_of(sb, "S1") == "SUSPENDED"
    assert operate(sb, "S1", "bob", "UNSUSPEND").code == 0
    assert status_of(sb, "S1") == "SUSPENDED"


def test_single_suspend_is_not_a_double_suspend(sb: SandboxThread) -> None:
    """SUSPEND, UNSUSPEND, SUSPEND is healthy and counts no double suspend."""
    seed(sb, "S1")
    for action in ("SUSPEND", "UNSUSPEND", "SUSPEND"):
        assert operate(sb, "S1", "bob", action).code == 0
    assert sb.state.stats.double_suspends == 0
    assert sb.state.tickets["S1"].previous_status == "RUNNING"


# --------------------------------------------------------------------------- credentials: ESB


def test_esb_body_credentials_wrong_secret(sb: SandboxThread) -> None:
    """A wrong secret in the body is ESB 1306000 with HTTP 200 and no error header."""
    seed(sb, "S1")
    answer = operate(sb, "S1", "bob", "SUSPEND", bk_app_secret="wrong")
    assert (answer.status, answer.code) == (200, 1306000)
    assert "APP认证失败" in answer.message
    assert "X-Bkapi-Error-Code" not in answer.headers
    assert status_of(sb, "S1") == "RUNNING"
    assert sb.state.stats.auth_failures == 1


def test_esb_reads_the_header_before_the_body(sb: SandboxThread) -> None:
    """On ESB a present header is used instead of the body's credentials."""
    seed(sb, "S1")
    body = {**AUTH_ADMIN, "sn": "S1", "operator": "bob", "action_type": "SUSPEND"}
    body["action_message"] = "m"
    bad_header = auth_header(bk_app_code="batchops-sandbox", bk_app_secret="x", bk_username="a")
    assert send(sb.url, "POST", ESB + "operate_ticket/", body, bad_header).code == 1306000
    only_header = {k: v for k, v in body.items() if not k.startswith("bk_")}
    good = send(sb.url, "POST", ESB + "operate_ticket/", only_header, auth_header(**AUTH_ADMIN))
    assert good.code == 0


def test_esb_bad_header_json_is_1306406(sb: SandboxThread) -> None:
    """An auth header that is not JSON is ESB's argument error, HTTP 200."""
    seed(sb, "S1")
    answer = send(
        sb.url,
        "POST",
        ESB + "operate_ticket/",
        {"sn": "S1"},
        {"X-Bkapi-Authorization": "{bk_app_code: nope"},
    )
    assert (answer.status, answer.code) == (200, 1306406)


def test_esb_get_credentials_in_query(sb: SandboxThread) -> None:
    """GET reads on ESB take credentials from query parameters."""
    seed(sb, "S1")
    assert get_read(sb, "get_ticket_status", "S1").code == 0
    no_creds = send(sb.url, "GET", ESB + "get_ticket_status/?sn=S1")
    assert no_creds.code == 1306000


def test_not_whitelisted_app_needs_a_valid_bk_token() -> None:
    """Without the whitelist, bk_username is refused; a good token passes, a bad one not."""
    with sandbox_with(whitelisted=False, bad_tokens=frozenset({"expired"})) as sb:
        seed(sb, "S1")
        assert operate(sb, "S1", "bob", "SUSPEND").code == 1306000
        base = {**APP, "sn": "S1", "operator": "bob", "action_type": "SUSPEND"}
        base["action_message"] = "m"
        bad = send(sb.url, "POST", ESB + "operate_ticket/", {**base, "bk_token": "expired"})
        assert bad.code == 1306000
        empty = send(sb.url, "POST", ESB + "operate_ticket/", {**base, "bk_token": ""})
        assert empty.code == 1306000
        good = send(sb.url, "POST", ESB + "operate_ticket/", {**base, "bk_token": "tok"})
        assert good.code == 0


def test_whitelisted_app_accepts_a_token_too(sb: SandboxThread) -> None:
    """A whitelisted app may still authenticate with a bk_token."""
    seed(sb, "S1")
    body = {**APP, "bk_token": "abc", "sn": "S1", "operator": "bob", "action_type": "SUSPEND"}
    body["action_message"] = "m"
    assert send(sb.url, "POST", ESB + "operate_ticket/", body).code == 0


# --------------------------------------------------------------------------- credentials: gateway


@pytest.mark.parametrize("prefix", [GW, GW_SHORT])
def test_gateway_prefixes_accept_header_credentials(sb: SandboxThread, prefix: str) -> None:
    """Both gateway prefixes serve operate_ticket with header credentials."""
    seed(sb, "S1")
    body = {"sn": "S1", "operator": "bob", "action_type": "SUSPEND", "action_message": "m"}
    answer = send(sb.url, "POST", prefix + "operate_ticket/", body, auth_header(**AUTH_ADMIN))
    assert answer.code == 0
    assert status_of(sb, "S1") == "SUSPENDED"


def test_gateway_ignores_body_credentials(sb: SandboxThread) -> None:
    """On the gateway only the header counts: body credentials get HTTP 400 / 1640001."""
    seed(sb, "S1")
    body = {**AUTH_ADMIN, "sn": "S1", "operator": "bob", "action_type": "SUSPEND"}
    answer = send(sb.url, "POST", GW + "operate_ticket/", body)
    assert (answer.status, answer.code) == (400, 1640001)
    assert "X-Bkapi-Authorization" in answer.message
    assert answer.headers["X-Bkapi-Error-Code"] == "1640001"
    assert status_of(sb, "S1") == "RUNNING"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("not json", "not a valid JSON object"),
        (json.dumps({**APP, "bk_app_secret": "bad", "bk_username": "a"}), "incorrect"),
        (json.dumps(APP), "user identity"),
    ],
)
def test_gateway_bad_header_is_400_with_the_reason(
    sb: SandboxThread, header: str, reason: str
) -> None:
    """Broken JSON, a wrong secret or a missing user all answer 400/1640001 with a reason."""
    answer = send(
        sb.url, "POST", GW + "operate_ticket/", {"sn": "x"}, {"X-Bkapi-Authorization": header}
    )
    assert (answer.status, answer.code) == (400, 1640001)
    assert reason in answer.message


def test_gateway_not_whitelisted_bad_token() -> None:
    """The gateway applies the same user rules: a rejected bk_token is 400/1640001."""
    with sandbox_with(whitelisted=False, bad_tokens=frozenset({"old"})) as sb:
        seed(sb, "S1")
        body = {"sn": "S1", "operator": "bob", "action_type": "SUSPEND", "action_message": "m"}
        bad = send(sb.url, "POST", GW + "operate_ticket/", body, auth_header(**APP, bk_token="old"))
        assert (bad.status, bad.code) == (400, 1640001)
        good = send(
            sb.url, "POST", GW + "operate_ticket/", body, auth_header(**APP, bk_token="new")
        )
        assert good.code == 0


def test_gateway_username_key_replaces_operator(sb: SandboxThread) -> None:
    """The trap: on the gateway a body key ``username`` replaces operator in the check."""
    seed(sb, "S1")
    body = {
        "sn": "S1",
        "operator": "bob",
        "username": "mallory",
        "action_type": "SUSPEND",
        "action_message": "m",
    }
    answer = operate_gw(sb, body)
    assert answer.message == WRAPPED.format("抱歉，mallory无权操作该单据")
    assert sb.state.stats.operations[-1].operator == "mallory"
    # the ESB path has no such trap
    esb = send(sb.url, "POST", ESB + "operate_ticket/", {**AUTH_ADMIN, **body})
    assert esb.code == 0


def test_gateway_without_json_content_type_sees_an_empty_body(sb: SandboxThread) -> None:
    """Without Content-Type: application/json the gateway path answers ticket-not-found."""
    seed(sb, "S1")
    body = {"sn": "S1", "operator": "bob", "action_type": "SUSPEND", "action_message": "m"}
    for content_type in (None, "text/plain"):
        answer = operate_gw(sb, body, content_type=content_type)
        assert answer.code == 3900022
    assert status_of(sb, "S1") == "RUNNING"


def test_esb_parses_the_body_without_content_type(sb: SandboxThread) -> None:
    """The ESB path reads a JSON body even without the Content-Type header."""
    seed(sb, "S1")
    body = {**AUTH_ADMIN, "sn": "S1", "operator": "bob", "action_type": "SUSPEND"}
    body["action_message"] = "m"
    answer = send(sb.url, "POST", ESB + "operate_ticket/", body, content_type=None)
    assert answer.code == 0


# --------------------------------------------------------------------------- unknown APIs


@pytest.mark.parametrize(
    "path",
    [ESB + "no_such_api/", ESB + "operate_ticket", "/api/c/compapi/v2/itsm/x/y/"],
)
def test_unknown_api_on_esb_is_1306404_with_http_200(sb: SandboxThread, path: str) -> None:
    """Unknown ESB components (including a missing trailing slash) answer 1306404."""
    answer = send(sb.url, "POST", path, AUTH_ADMIN)
    assert (answer.status, answer.code) == (200, 1306404)


@pytest.mark.parametrize("path", [GW + "no_such_api/", GW_SHORT + "operate_ticket", "/elsewhere"])
def test_unknown_api_on_gateway_is_1640401_with_http_404(sb: SandboxThread, path: str) -> None:
    """Unknown gateway resources answer HTTP 404 with 1640401."""
    answer = send(sb.url, "POST", path, {}, auth_header(**AUTH_ADMIN))
    assert (answer.status, answer.code) == (404, 1640401)
    assert answer.headers["X-Bkapi-Error-Code"] == "1640401"


def test_wrong_method_is_an_unknown_api(sb: SandboxThread) -> None:
    """operate_ticket is POST only; a GET is not routed to it."""
    seed(sb, "S1")
    answer = send(sb.url, "GET", ESB + "operate_ticket/?" + urlencode(AUTH_ADMIN))
    assert answer.code == 1306404
    assert status_of(sb, "S1") == "RUNNING"


# --------------------------------------------------------------------------- read APIs


def test_get_ticket_status_shapes(sb: SandboxThread) -> None:
    """Status, steps with processors, and operations per state; TERMINATE never listed."""
    seed(sb, "R1", processors=("bob", "carol"))
    seed(sb, "S1", "SUSPENDED", previous_status="RUNNING")
    seed(sb, "N1", "NEW", withdraw_allowed=False)
    seed(sb, "F1", "FINISHED")
    running = get_read(sb, "get_ticket_status", "R1").json["data"]
    assert running["current_status"] == "RUNNING"
    assert "bob" in running["current_steps"][0]["processors"]
    assert "carol" in running["current_steps"][0]["processors"]
    assert [op["key"] for op in running["operations"]] == ["WITHDRAW", "SUSPEND"]
    suspended = get_read(sb, "get_ticket_status", "S1", prefix=GW).json["data"]
    assert [op["key"] for op in suspended["operations"]] == ["WITHDRAW", "UNSUSPEND"]
    new = get_read(sb, "get_ticket_status", "N1", prefix=GW_SHORT).json["data"]
    assert new["operations"] == []
    finished = get_read(sb, "get_ticket_status", "F1").json["data"]
    assert (finished["operations"], finished["current_steps"]) == ([], [])


@pytest.mark.parametrize("api", ["get_ticket_status", "get_ticket_info"])
def test_single_ticket_reads_unknown_sn(sb: SandboxThread, api: str) -> None:
    """An unknown sn answers 3900022 with data null on both gateways."""
    for prefix in (ESB, GW):
        answer = get_read(sb, api, "NOPE", prefix=prefix)
        assert (answer.status, answer.code, answer.json["data"]) == (200, 3900022, None)


def test_get_ticket_info_has_creator_and_status(sb: SandboxThread) -> None:
    """get_ticket_info carries creator and current_status."""
    seed(sb, "R1", creator="zoe")
    data = get_read(sb, "get_ticket_info", "R1").json["data"]
    assert (data["sn"], data["creator"], data["current_status"]) == ("R1", "zoe", "RUNNING")


def test_get_tickets_lists_known_sns_only(sb: SandboxThread) -> None:
    """get_tickets answers items for known sns (no processors); unknown ones are absent."""
    seed(sb, "A1", creator="ann")
    seed(sb, "B1", "SUSPENDED")
    body = {**AUTH_ADMIN, "sns": ["A1", "B1", "ZZ"], "page": 1, "page_size": 10000}
    data = send(sb.url, "POST", ESB + "get_tickets/", body).json["data"]
    assert data["count"] == 2 and data["page"] == 1
    items = {item["sn"]: item for item in data["items"]}
    assert set(items) == {"A1", "B1"}
    assert items["A1"]["creator"] == "ann"
    assert items["B1"]["current_status"] == "SUSPENDED"
    assert "processors" not in items["A1"]


def test_get_tickets_pages_and_caps_page_size(sb: SandboxThread) -> None:
    """Pages are page_size long; page_size is capped at 10,000 (over the gateway too)."""
    sb.state.generate_tickets("P", 25)
    sns = [f"P{i:07d}" for i in range(1, 26)]
    header = auth_header(**AUTH_ADMIN)
    page3 = send(
        sb.url, "POST", GW + "get_tickets/", {"sns": sns, "page": 3, "page_size": 10}, header
    )
    assert page3.json["data"]["count"] == 25
    assert len(page3.json["data"]["items"]) == 5
    seen: set[str] = set()
    for page in (1, 2, 3):
        body = {"sns": sns, "page": page, "page_size": 10}
        answer = send(sb.url, "POST", GW + "get_tickets/", body, header)
        seen |= {item["sn"] for item in answer.json["data"]["items"]}
    assert seen == set(sns)
    sb.state.generate_tickets("Q", 10001)
    big = send(sb.url, "POST", GW + "get_tickets/", {"page_size": 20000}, header)
    assert len(big.json["data"]["items"]) == 10000


# --------------------------------------------------------------------------- faults


def test_faults_reject_bad_values() -> None:
    """Rates outside [0, 1], negative times and unknown modes are refused."""
    with pytest.raises(ValueError, match="between 0 and 1"):
        Faults(error_5xx_rate=1.5)
    with pytest.raises(ValueError, match="latency_ms"):
        Faults(latency_ms=-1)
    with pytest.raises(ValueError, match="lost_mode"):
        Faults(lost_mode="vanish")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown fault switch"):
        Faults().updated({"explode": True})


def test_latency_delays_every_api(sb: SandboxThread) -> None:
    """latency_ms is spent on reads as well as on operate_ticket."""
    seed(sb, "S1")
    sb.state.set_faults(Faults(latency_ms=150))
    start = time.monotonic()
    assert operate(sb, "S1", "bob", "SUSPEND").code == 0
    assert time.monotonic() - start >= 0.14
    start = time.monotonic()
    assert get_read(sb, "get_ticket_info", "S1").code == 0
    assert time.monotonic() - start >= 0.14


def test_concurrent_requests_for_one_sn_are_counted(sb: SandboxThread) -> None:
    """Overlapping operate_ticket requests for one sn are counted; other sns are not."""
    seed(sb, "S1")
    seed(sb, "S2")
    seed(sb, "S3")
    sb.state.set_faults(Faults(latency_ms=200))

    async def burst() -> list[int]:
        async with aiohttp.ClientSession() as session:

            async def one(sn: str, action: str) -> int:
                body = {**AUTH_ADMIN, "sn": sn, "operator": "bob", "action_type": action}
                body["action_message"] = "m"
                async with session.post(sb.url + ESB + "operate_ticket/", json=body) as resp:
                    code = (await resp.json())["code"]
                    assert isinstance(code, int)
                    return code

            return list(
                await asyncio.gather(
                    one("S1", "SUSPEND"),
                    one("S1", "TERMINATE"),
                    one("S2", "SUSPEND"),
                    one("S3", "SUSPEND"),
                )
            )

    codes = asyncio.run(burst())
    stats = sb.state.stats
    assert stats.concurrent_same_sn == 1
    assert stats.max_in_flight == 4
    # the server takes no lock: both S1 requests passed validation and were applied
    assert codes == [0, 0, 0, 0]
    assert sum(op.applied for op in stats.ops_for("S1")) == 2


def _outcomes(faults: Faults, n: int = 30) -> list[tuple[int, int | None, bool]]:
    """Run ``n`` SUSPENDs on fresh tickets; return (HTTP status, code, applied) each."""
    with SandboxThread(config=SandboxConfig(faults=faults)) as sb:
        sb.state.generate_tickets("D", n)
        out: list[tuple[int, int | None, bool]] = []
        for i in range(1, n + 1):
            sn = f"D{i:07d}"
            answer = operate(sb, sn, "admin", "SUSPEND")
            is_json = answer.headers["Content-Type"].startswith("application/json")
            out.append(
                (answer.status, answer.code if is_json else None, status_of(sb, sn) == "SUSPENDED")
            )
        return out


def test_error_5xx_is_plain_503_and_nothing_is_applied() -> None:
    """503s carry a plain-text body and never apply; the pattern is fixed by the seed."""
    faults = Faults(seed=7, error_5xx_rate=0.5)
    first = _outcomes(faults)
    assert first == _outcomes(faults)
    assert first != _outcomes(Faults(seed=8, error_5xx_rate=0.5))
    statuses = {status for status, _, _ in first}
    assert statuses == {200, 503}
    for status, code, applied in first:
        assert applied == (status == 200)
        assert (code is None) == (status == 503)


def test_error_5xx_body() -> None:
    """The 503 answer is the plain text 'Service Unavailable'."""
    with sandbox_with(faults=Faults(error_5xx_rate=1.0)) as sb:
        seed(sb, "S1")
        answer = operate(sb, "S1", "bob", "SUSPEND")
        assert (answer.status, answer.text) == (503, "Service Unavailable")
        assert answer.headers["Content-Type"].startswith("text/plain")
        assert sb.state.stats.faults_injected == {"error_5xx": 1}


def test_rate_limit_on_esb_is_http_200_with_header(sb: SandboxThread) -> None:
    """ESB path: HTTP 200, code 1642902 in body and X-Bkapi-Error-Code, limit headers."""
    seed(sb, "S1")
    sb.state.set_faults(Faults(rate_limit_rate=1.0))
    answer = operate(sb, "S1", "bob", "SUSPEND")
    assert (answer.status, answer.code) == (200, 1642902)
    assert "rate limit" in answer.message
    assert answer.headers["X-Bkapi-Error-Code"] == "1642902"
    for name in ("Limit", "Remaining", "Reset"):
        assert answer.headers[f"X-Bkapi-RateLimit-{name}"].isdigit()
    assert status_of(sb, "S1") == "RUNNING"


def test_rate_limit_on_gateway_is_http_429(sb: SandboxThread) -> None:
    """Gateway path: the same body with HTTP 429; nothing applied."""
    seed(sb, "S1")
    sb.state.set_faults(Faults(rate_limit_rate=1.0))
    body = {"sn": "S1", "operator": "bob", "action_type": "SUSPEND", "action_message": "m"}
    answer = operate_gw(sb, body)
    assert (answer.status, answer.code) == (429, 1642902)
    assert status_of(sb, "S1") == "RUNNING"


def test_rate_limit_is_deterministic_under_seed() -> None:
    """The same seed rate-limits the same requests."""
    faults = Faults(seed=3, rate_limit_rate=0.4)
    first = _outcomes(faults)
    assert first == _outcomes(faults)
    assert {code for _, code, _ in first} == {0, 1642902}


def test_backend_timeout_applies_by_seeded_coin() -> None:
    """ESB 1306201 (HTTP 200); whether it applied is seeded, recorded, and matches state."""
    faults = Faults(seed=11, backend_timeout_rate=1.0)
    first = _outcomes(faults)
    assert first == _outcomes(faults)
    assert {(status, code) for status, code, _ in first} == {(200, 1306201)}
    applied = [a for _, _, a in first]
    assert any(applied) and not all(applied)
    with SandboxThread(config=SandboxConfig(faults=faults)) as sb:
        sb.state.generate_tickets("D", 10)
        for i in range(1, 11):
            operate(sb, f"D{i:07d}", "admin", "SUSPEND")
        for op in sb.state.stats.operations:
            assert op.code == 1306201
            assert op.applied == (status_of(sb, op.sn) == "SUSPENDED")


def test_backend_timeout_on_gateway_is_504(sb: SandboxThread) -> None:
    """Gateway path: HTTP 504 with code 1650401."""
    seed(sb, "S1")
    sb.state.set_faults(Faults(backend_timeout_rate=1.0))
    body = {"sn": "S1", "operator": "bob", "action_type": "SUSPEND", "action_message": "m"}
    answer = operate_gw(sb, body)
    assert (answer.status, answer.code) == (504, 1650401)


def test_backend_timeout_never_applies_a_refused_action(sb: SandboxThread) -> None:
    """A request that would fail validation is not applied even when the coin says so."""
    seed(sb, "S1")
    sb.state.set_faults(Faults(backend_timeout_rate=1.0))
    for _ in range(10):
        assert operate(sb, "S1", "mallory", "TERMINATE").code == 1306201
    assert status_of(sb, "S1") == "RUNNING"
    assert not any(op.applied for op in sb.state.stats.operations)


def test_lost_answer_hang_applies_then_answers_late(sb: SandboxThread) -> None:
    """lost_mode=hang applies the action at once and answers only after lost_hang_s."""
    seed(sb, "S1")
    seed(sb, "S2")
    sb.state.set_faults(Faults(lost_rate=1.0, lost_mode="hang", lost_hang_s=0.4))
    start = time.monotonic()
    answer = operate(sb, "S1", "bob", "SUSPEND")
    assert time.monotonic() - start >= 0.35
    assert answer.code == 0
    with pytest.raises(TimeoutError):
        send(
            sb.url,
            "POST",
            ESB + "operate_ticket/",
            {
                **AUTH_ADMIN,
                "sn": "S2",
                "operator": "bob",
                "action_type": "TERMINATE",
                "action_message": "m",
            },
            timeout=0.1,
        )
    assert status_of(sb, "S2") == "TERMINATED"
    assert sb.state.stats.faults_injected["lost"] == 2


def test_lost_answer_drop_applies_then_disconnects(sb: SandboxThread) -> None:
    """lost_mode=drop applies the action and closes the connection without an answer."""
    seed(sb, "S1")
    sb.state.set_faults(Faults(lost_rate=1.0, lost_mode="drop"))
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        operate(sb, "S1", "bob", "SUSPEND")
    assert status_of(sb, "S1") == "SUSPENDED"
    (op,) = sb.state.stats.operations
    assert (op.code, op.applied) == (0, True)


def test_lost_answers_are_deterministic_under_seed() -> None:
    """Which answers get lost depends only on the seed."""

    def run(seed_value: int) -> list[bool]:
        faults = Faults(seed=seed_value, lost_rate=0.5, lost_mode="drop")
        lost: list[bool] = []
        with SandboxThread(config=SandboxConfig(faults=faults)) as sb:
            sb.state.generate_tickets("L", 20)
            for i in range(1, 21):
                try:
                    operate(sb, f"L{i:07d}", "admin", "SUSPEND")
                    lost.append(False)
                except (http.client.RemoteDisconnected, ConnectionError):
                    lost.append(True)
            assert all(t.status == "SUSPENDED" for t in sb.state.tickets.values())
        return lost

    first = run(5)
    assert first == run(5)
    assert any(first) and not all(first)


def test_hanging_answers_do_not_block_shutdown() -> None:
    """Stopping the sandbox wakes answers held back by a long hang."""
    start = time.monotonic()
    with sandbox_with(faults=Faults(lost_rate=1.0, lost_hang_s=60)) as sb:
        seed(sb, "S1")
        with pytest.raises(TimeoutError):
            operate_gw(
                sb,
                {"sn": "S1", "operator": "bob", "action_type": "SUSPEND", "action_message": "m"},
                timeout=0.2,
            )
    assert time.monotonic() - start < 5


def test_service_off_answers_html_for_every_api(sb: SandboxThread) -> None:
    """service_off: an HTML page with HTTP 200, on reads too, and nothing applied."""
    seed(sb, "S1")
    sb.state.set_faults(Faults(service_off=True))
    for answer in (operate(sb, "S1", "bob", "SUSPEND"), get_read(sb, "get_ticket_status", "S1")):
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/html")
        assert "ITSM 服务已关闭" in answer.text
    assert status_of(sb, "S1") == "RUNNING"


def test_gateway_forbidden_answers_plain_403(sb: SandboxThread) -> None:
    """gateway_forbidden: HTTP 403 plain text on every API."""
    seed(sb, "S1")
    sb.state.set_faults(Faults(gateway_forbidden=True))
    for answer in (operate(sb, "S1", "bob", "SUSPEND"), get_read(sb, "get_ticket_info", "S1")):
        assert answer.status == 403
        assert answer.headers["Content-Type"].startswith("text/plain")
    assert status_of(sb, "S1") == "RUNNING"


def test_rate_faults_spare_reads_unless_asked(sb: SandboxThread) -> None:
    """Random faults hit operate_ticket only, unless faults_on_reads is set."""
    seed(sb, "S1")
    sb.state.set_faults(Faults(error_5xx_rate=1.0))
    assert get_read(sb, "get_ticket_status", "S1").status == 200
    sb.state.set_faults(Faults(error_5xx_rate=1.0, faults_on_reads=True))
    assert get_read(sb, "get_ticket_status", "S1").status == 503


def test_faults_endpoint_changes_switches_at_run_time(sb: SandboxThread) -> None:
    """POST /_sandbox/faults merges switches, re-seeds, and refuses unknown keys."""
    seed(sb, "S1")
    changed = send(sb.url, "POST", "/_sandbox/faults", {"rate_limit_rate": 1, "seed": 9})
    assert changed.status == 200 and changed.json["rate_limit_rate"] == 1.0
    assert sb.state.faults.seed == 9
    assert operate(sb, "S1", "bob", "SUSPEND").code == 1642902
    assert send(sb.url, "GET", "/_sandbox/faults").json["rate_limit_rate"] == 1.0
    assert send(sb.url, "POST", "/_sandbox/faults", {"nope": 1}).status == 400
    assert send(sb.url, "POST", "/_sandbox/faults", {"lost_rate": "x"}).status == 400
    send(sb.url, "POST", "/_sandbox/faults", {"rate_limit_rate": 0})
    assert operate(sb, "S1", "bob", "SUSPEND").code == 0


# --------------------------------------------------------------------------- stats & seeding


def test_stats_endpoint_counts_requests_and_logs_operations(sb: SandboxThread) -> None:
    """/_sandbox/stats counts per API, logs each operate_ticket, and can be reset."""
    seed(sb, "S1")
    operate(sb, "S1", "bob", "SUSPEND")
    operate(sb, "S1", "eve", "TERMINATE")
    get_read(sb, "get_ticket_status", "S1")
    stats = send(sb.url, "GET", "/_sandbox/stats").json
    assert stats["requests"] == {"operate_ticket": 2, "get_ticket_status": 1}
    assert stats["operations_total"] == 2 and stats["applied_total"] == 1
    assert [(op["operator"], op["code"], op["applied"]) for op in stats["operations"]] == [
        ("bob", 0, True),
        ("eve", 3900004, False),
    ]
    assert sum(stats["per_second"].values()) == 2
    assert "operations" not in send(sb.url, "GET", "/_sandbox/stats?log=0").json
    assert send(sb.url, "DELETE", "/_sandbox/stats").status == 200
    assert sb.state.stats.operations_total == 0
    assert sb.state.stats.requests == {}


def test_per_second_counts_follow_the_monotonic_clock(sb: SandboxThread) -> None:
    """per_second buckets operate_ticket arrivals by whole monotonic seconds."""
    seed(sb, "S1")
    before = int(time.monotonic())
    for _ in range(3):
        operate(sb, "S1", "mallory", "SUSPEND")
    after = int(time.monotonic())
    buckets = sb.state.stats.per_second
    assert sum(buckets.values()) == 3
    assert all(before <= second <= after for second in buckets)


def test_record_log_off_keeps_counters_only() -> None:
    """record_log=False drops the per-request log but keeps every counter."""
    with sandbox_with(record_log=False) as sb:
        seed(sb, "S1")
        operate(sb, "S1", "bob", "SUSPEND")
        operate(sb, "S1", "bob", "SUSPEND")
        stats = sb.state.stats
        assert stats.operations == []
        assert (stats.operations_total, stats.applied_total, stats.double_suspends) == (2, 2, 1)


def test_tickets_endpoint_seeds_generates_and_dumps(sb: SandboxThread) -> None:
    """POST /_sandbox/tickets seeds explicit and generated tickets; GET dumps them."""
    body = {
        "tickets": [
            {
                "sn": "X1",
                "status": "NEW",
                "creator": "ann",
                "processors": ["bob"],
                "is_child": True,
                "withdraw_allowed": False,
            },
        ],
        "generate": {"prefix": "BENCH", "count": 3, "operator": "ops", "status": "SUSPENDED"},
    }
    answer = send(sb.url, "POST", "/_sandbox/tickets", body)
    assert answer.json == {"seeded": 4, "total": 4}
    dumped = {t["sn"]: t for t in send(sb.url, "GET", "/_sandbox/tickets").json["tickets"]}
    assert set(dumped) == {"X1", "BENCH0000001", "BENCH0000002", "BENCH0000003"}
    assert dumped["X1"]["is_child"] is True and dumped["X1"]["withdraw_allowed"] is False
    assert dumped["BENCH0000002"]["processors"] == ["ops"]
    assert dumped["BENCH0000002"]["status"] == "SUSPENDED"
    one = send(sb.url, "GET", "/_sandbox/tickets?sn=X1").json["tickets"]
    assert [t["sn"] for t in one] == ["X1"]
    cleared = send(sb.url, "POST", "/_sandbox/tickets", {"clear": True, "tickets": [{"sn": "Y"}]})
    assert cleared.json["total"] == 1
    assert send(sb.url, "POST", "/_sandbox/tickets", {"tickets": [{"status": "NEW"}]}).status == 400
    assert send(sb.url, "POST", "/_sandbox/tickets", b"[1]").status == 400


def test_seed_from_rows_uses_the_first_operator_per_sn() -> None:
    """Each sn gets one RUNNING ticket owned by the first operator named for it."""
    state = SandboxState()
    rows = [("A1", "ann"), ("B1", "bob"), ("A1", "zed"), ("  ", "x"), ("C1", ""), ("C1", "cat")]
    assert state.seed_from_rows(rows) == 3
    a1 = state.tickets["A1"]
    assert (a1.status, a1.creator, a1.processors, a1.withdraw_allowed) == (
        "RUNNING",
        "ann",
        ["ann"],
        True,
    )
    assert state.tickets["C1"].processors == ["cat"]


def test_seeded_rows_give_the_demo_business_failure() -> None:
    """A later row with another operator fails with 无权操作 against a seeded sandbox."""
    state = SandboxState()
    state.seed_from_rows([("A1", "ann"), ("A1", "zed")])
    with SandboxThread(state) as sb:
        assert operate(sb, "A1", "zed", "SUSPEND").message == WRAPPED.format(
            "抱歉，zed无权操作该单据"
        )
        assert operate(sb, "A1", "ann", "SUSPEND").code == 0


# --------------------------------------------------------------------------- entry points


def test_start_sandbox_serves_on_an_ephemeral_port() -> None:
    """start_sandbox binds 127.0.0.1:0 and returns a runner the caller cleans up."""
    state = SandboxState()
    state.generate_tickets("A", 1)

    async def run() -> tuple[str, int, Any]:
        runner, url = await start_sandbox(state)
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    url + GW_SHORT + "get_ticket_status/",
                    params={"sn": "A0000001"},
                    headers=auth_header(**AUTH_ADMIN),
                ) as resp,
            ):
                return url, resp.status, await resp.json()
        finally:
            await runner.cleanup()

    url, status, body = asyncio.run(run())
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
    assert (status, body["data"]["current_status"]) == (200, "RUNNING")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_module_entry_point_serves_until_stopped(stop_signal: signal.Signals) -> None:
    """``python -m batchops.sandbox`` prints its URL, serves generated tickets, stops cleanly."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "batchops.sandbox",
            "--port",
            "0",
            "--generate",
            "G:5",
            "--no-log",
            "--latency-ms",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:"), first
        rest = "".join(proc.stdout.readline() for _ in range(3))
        assert "batchops-sandbox" in rest
        tickets = send(url, "GET", "/_sandbox/tickets").json["tickets"]
        assert len(tickets) == 5
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize(
    "argv", [["--generate", "NOCOUNT"], ["--generate", ":5"], ["--error-5xx-rate", "2"]]
)
def test_sandbox_command_rejects_bad_arguments(argv: list[str]) -> None:
    """Bad --generate specs and out-of-range rates are usage errors (exit 2), not tracebacks.

    ``python -m batchops.sandbox`` is this same click command."""
    out = run_cli(["sandbox", *argv])
    assert out.exit_code == 2
    assert "Error:" in out.stderr


def test_sandbox_imports_nothing_from_batchops() -> None:
    """The stand-in must not share code (or mistakes) with the client: its modules import
    only each other (``__main__``, the ``python -m`` entry to the CLI's command, aside)."""
    package = Path(sandbox_module.__file__).parent
    for source in sorted(package.glob("*.py")):
        if source.name == "__main__.py":
            continue
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level in (0, 1), source.name
                assert not (node.module or "").startswith("batchops"), source.name
            elif isinstance(node, ast.Import):
                assert not any(alias.name.startswith("batchops") for alias in node.names)


def test_sandbox_thread_reports_a_port_in_use(sb: SandboxThread) -> None:
    """A SandboxThread that cannot bind raises in ``with`` instead of hanging."""
    port = urlsplit(sb.url).port
    assert port is not None
    with pytest.raises(OSError), SandboxThread(port=port):
        pass

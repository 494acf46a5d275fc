"""Tests of batchops.sandbox.server: the operate_ticket rules in the server's order, the
gateways' credential checks and unknown APIs, always over real loopback HTTP.

Each test starts its own sandbox (a background thread with its own event loop).
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from batchops.sandbox import SandboxThread

from ..sandbox_http import (
    APP,
    AUTH_ADMIN,
    ESB,
    GW,
    GW_SHORT,
    WRAPPED,
    auth_header,
    get_read,
    operate,
    operate_gw,
    sandbox_with,
    seed,
    send,
    status_of,
)

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

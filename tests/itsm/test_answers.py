"""Tests of batchops.itsm.answers: every code of docs/itsm.md §2, odd bodies, headers.

Pure: :func:`batchops.itsm.answers.classify_answer` fed with the bytes, the HTTP status and
the headers that the gateways really send (the expectations below are written from
docs/itsm.md, not copied from ``CODE_TABLE``). The same answers over loopback HTTP, through
:class:`batchops.itsm.client.ItsmClient`, are in ``test_client.py``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from batchops.itsm.answers import (
    CODE_TABLE,
    MAX_SERVER_MESSAGE,
    classify_answer,
    human_message,
    refused_credentials,
    refused_this_api_only,
    scrubbed,
)
from batchops.itsm.transport import Answer, Verdict
from batchops.secrets import MASK, Scrubber

S = Verdict.SUCCESS
REJ = Verdict.REJECTED
FAT = Verdict.FATAL
RET = Verdict.RETRY
AMB = Verdict.AMBIGUOUS

#: docs/itsm.md §2, row by row: code → (HTTP status the gateway uses, verdict,
#: whether it is a rate limit). ITSM and ESB codes come with HTTP 200.
SECTION_2: dict[int, tuple[int, Verdict, bool]] = {
    0: (200, S, False),
    3900022: (200, REJ, False),
    3900004: (200, REJ, False),
    3900005: (200, REJ, False),
    1306000: (200, FAT, False),
    1306401: (200, FAT, False),
    1306402: (200, FAT, False),
    1306403: (200, FAT, False),
    1306404: (200, FAT, False),
    1306405: (200, FAT, False),
    1306406: (200, FAT, False),
    1306201: (200, AMB, False),
    1306429: (200, RET, True),
    1640001: (400, FAT, False),
    1640301: (403, FAT, False),
    1640401: (404, FAT, False),
    1642901: (429, RET, True),
    1642902: (429, RET, True),
    1642903: (429, RET, True),
    1642904: (429, RET, True),
    1650200: (502, AMB, False),
    1650201: (502, AMB, False),
    1650401: (504, AMB, False),
    1650000: (500, AMB, False),
    1650001: (500, AMB, False),
    1650002: (500, AMB, False),
}
GATEWAY_CODES = [c for c in SECTION_2 if 1640000 <= c < 1660000]
NON_JSON_BODIES = [b"<html><body>502 Bad Gateway</body></html>", b"upstream error", b""]


def envelope(code: int, message: str = "", data: Any = None, **extra: Any) -> bytes:
    """A JSON envelope as ITSM, the ESB and the gateway write it."""
    body = {"result": code == 0, "code": code, "message": message, "data": data, **extra}
    return json.dumps(body, ensure_ascii=False).encode()


def wrapped(inner: str) -> str:
    """A business error as ITSM (2022 and later) words it: the reason in a DRF ErrorDetail."""
    return f"接口异常，请检查请求参数: [ErrorDetail(string={inner!r}, code='invalid')]"


# --------------------------------------------------------------------------- the table


def test_code_table_holds_every_code_of_section_2() -> None:
    """CODE_TABLE has a row for every code in docs/itsm.md §2, with its verdict."""
    missing = sorted(set(SECTION_2) - set(CODE_TABLE))
    assert not missing, f"codes of §2 without a rule: {missing}"
    wrong = {
        code: CODE_TABLE[code].verdict
        for code, (_, verdict, _) in SECTION_2.items()
        if CODE_TABLE[code].verdict is not verdict
    }
    assert not wrong


#: docs/itsm.md §2: the codes that refuse the credentials or the app's grants (what to fix
#: is a credential or a permission) ...
CREDENTIAL_CODES = {1306000, 1306401, 1306402, 1306403, 1306406, 1640001, 1640301}
#: ... and the codes that refuse only the API (component) called: granted, found and
#: switched on per API, so another API of the same gateway may still answer.
THIS_API_ONLY_CODES = {1306403, 1306404, 1306405, 1640301, 1640401}


def test_the_credential_and_this_api_columns_of_the_table() -> None:
    """The columns flag exactly those codes, and only fatal ones; the two sets differ on
    purpose (an app not granted one API is a credential problem *and* an API's)."""
    assert {c for c, rule in CODE_TABLE.items() if rule.credentials} == CREDENTIAL_CODES
    assert {c for c, rule in CODE_TABLE.items() if rule.this_api_only} == THIS_API_ONLY_CODES
    for code in CREDENTIAL_CODES | THIS_API_ONLY_CODES:
        assert CODE_TABLE[code].verdict is FAT


@pytest.mark.parametrize("code", sorted(SECTION_2))
def test_refusals_are_read_from_the_columns(code: int) -> None:
    answer = classify_answer(SECTION_2[code][0], envelope(code, "refused"))
    assert refused_credentials(answer) is (code in CREDENTIAL_CODES or answer.http_status == 403)
    assert refused_this_api_only(answer) is (code in THIS_API_ONLY_CODES)


@pytest.mark.parametrize(
    ("status", "body", "credentials"),
    [
        (401, b"Unauthorized", True),
        (403, b"Forbidden", True),
        (404, b"Not Found", False),
        (200, b"<html>ITSM is switched off</html>", False),
    ],
)
def test_a_refusal_without_a_code_is_never_of_one_api_only(
    status: int, body: bytes, credentials: bool
) -> None:
    """A bare 401/403 is a credential refusal by its status; no code-less refusal (a page,
    a bare 4xx) says it concerns one API only, so the pre-check stops on it."""
    answer = classify_answer(status, body)
    assert answer.verdict is FAT and answer.code is None
    assert refused_credentials(answer) is credentials
    assert refused_this_api_only(answer) is False


@pytest.mark.parametrize("code", sorted(SECTION_2))
def test_code_in_envelope_with_the_gateways_http_status(code: int) -> None:
    """Each §2 code, in a JSON envelope with the HTTP status the gateway really uses."""
    http_status, verdict, rate_limited = SECTION_2[code]
    headers = CIMultiDict({"X-Bkapi-Error-Code": str(code)}) if code >= 1640000 else None
    answer = classify_answer(
        http_status,
        envelope(code, "" if code == 0 else "some reason", request_id="rq-1"),
        headers,
        content_type="application/json",
    )
    assert answer.verdict is verdict
    assert answer.code == code
    assert answer.http_status == http_status
    assert answer.rate_limited is rate_limited
    assert answer.request_id == "rq-1"
    assert answer.message
    if verdict is not S:
        assert "some reason" in answer.message


@pytest.mark.parametrize("code", sorted(GATEWAY_CODES))
def test_gateway_code_on_the_esb_path_with_http_200(code: int) -> None:
    """On the ESB path gateway errors come with HTTP 200: the body code still decides."""
    _, verdict, rate_limited = SECTION_2[code]
    headers = CIMultiDict({"X-Bkapi-Error-Code": str(code)})
    answer = classify_answer(200, envelope(code, "gateway says no"), headers)
    assert (answer.verdict, answer.code, answer.rate_limited) == (verdict, code, rate_limited)


@pytest.mark.parametrize("body", NON_JSON_BODIES, ids=["html", "text", "empty"])
@pytest.mark.parametrize("code", sorted(c for c in SECTION_2 if c != 0))
def test_header_code_with_a_non_json_body(code: int, body: bytes) -> None:
    """ESB path: HTTP 200, the code only in X-Bkapi-Error-Code, a body that is not JSON."""
    _, verdict, rate_limited = SECTION_2[code]
    # Header names are case-insensitive (HTTP/2 sends them lower-case).
    headers = CIMultiDict({"x-bkapi-error-code": f" {code} "})
    answer = classify_answer(200, body, headers, content_type="text/html")
    assert (answer.verdict, answer.code, answer.rate_limited) == (verdict, code, rate_limited)
    assert answer.message


@pytest.mark.parametrize("body", NON_JSON_BODIES, ids=["html", "text", "empty"])
def test_header_code_0_never_makes_a_non_json_body_a_success(body: bytes) -> None:
    """Success needs a JSON envelope: an error-code header of 0 on an HTML page is not one."""
    answer = classify_answer(200, body, CIMultiDict({"X-Bkapi-Error-Code": "0"}))
    assert answer.verdict is FAT
    assert "HTTP 200" in answer.message


def test_unparseable_header_code_is_ignored() -> None:
    """A header code that is not a number does not hide what the body says."""
    answer = classify_answer(
        200, envelope(3900022, "没有找到对应的单据"), {"X-Bkapi-Error-Code": "x"}
    )
    assert (answer.verdict, answer.code) == (REJ, 3900022)


def test_body_code_wins_over_the_header_code() -> None:
    """When body and header disagree, the envelope's own code is the answer."""
    answer = classify_answer(200, envelope(1642902, "limit"), {"X-Bkapi-Error-Code": "1640001"})
    assert (answer.verdict, answer.code) == (RET, 1642902)


def test_code_sent_as_a_string_is_read() -> None:
    """Some gateways send the code as a JSON string: it is still a code."""
    body = json.dumps({"result": False, "code": "1306000", "message": "APP认证失败"}).encode()
    answer = classify_answer(200, body)
    assert (answer.verdict, answer.code) == (FAT, 1306000)


def test_failure_envelope_with_code_0_is_not_a_success() -> None:
    """``result: false`` with code 0 is a failure, never a success."""
    body = json.dumps({"result": False, "code": 0, "message": "出错了"}).encode()
    answer = classify_answer(200, body)
    assert answer.verdict is not S
    assert answer.message == "出错了"


def test_envelope_without_code_trusts_result_and_status() -> None:
    """No code at all: ``result: true`` with 2xx is success; the rest goes by HTTP status."""
    assert classify_answer(200, b'{"result": true, "data": []}').verdict is S
    assert classify_answer(502, b'{"result": false, "message": "bad gw"}').verdict is AMB
    assert classify_answer(503, b'{"message": "busy"}').verdict is RET
    assert classify_answer(401, b'{"message": "who?"}').verdict is FAT


def test_unknown_code_with_http_200_is_a_row_failure() -> None:
    """A code the table does not know, with HTTP 200, fails that row and shows the message."""
    answer = classify_answer(200, envelope(3900099, wrapped("抱歉，未知错误")))
    assert (answer.verdict, answer.code, answer.message) == (REJ, 3900099, "抱歉，未知错误")


@pytest.mark.parametrize("raw", ["10" + "0" * 29, "-" + "9" * 25, "1e400", "4611686018427387904"])
def test_a_code_too_big_for_any_table_is_an_unknown_code_named_in_the_message(raw: str) -> None:
    """A code no 64-bit column holds (or that JSON reads as infinity) is judged as the
    unknown code it is, never an overflow later: the row fails and the message names it;
    in a header it is ignored, like one that is no number."""
    body = b'{"result": false, "code": ' + raw.encode() + b', "message": "odd"}'
    answer = classify_answer(200, body)
    assert (answer.verdict, answer.code) == (REJ, None)
    assert answer.message.startswith("odd (code ")
    assert classify_answer(502, body).verdict is AMB
    headed = classify_answer(
        200, envelope(3900022, "没有找到对应的单据"), {"X-Bkapi-Error-Code": raw}
    )
    assert (headed.verdict, headed.code) == (REJ, 3900022)
    on_a_page = classify_answer(503, b"<html>busy</html>", {"X-Bkapi-Error-Code": "9" * 30})
    assert (on_a_page.verdict, on_a_page.code) == (RET, None)


def test_unknown_code_with_http_5xx_goes_by_status() -> None:
    """An unknown code on a 502 is as ambiguous as any 502; on a 429 it is a rate limit."""
    assert classify_answer(502, envelope(1659999, "x")).verdict is AMB
    limited = classify_answer(429, envelope(1649999, "x"))
    assert (limited.verdict, limited.rate_limited) == (RET, True)


# --------------------------------------------------------------------------- odd bodies


def test_html_page_with_http_200_is_service_off() -> None:
    """ITSM switched off answers HTML with HTTP 200: fatal, and the message says what it got."""
    page = "<!DOCTYPE html><html><body><h1>ITSM 服务已关闭</h1><p>维护中</p></body></html>"
    answer = classify_answer(200, page.encode(), content_type="text/html; charset=utf-8")
    assert answer.verdict is FAT
    assert "HTML" in answer.message
    assert "switched off" in answer.message
    assert "ITSM 服务已关闭" in answer.message
    assert "<h1>" not in answer.message


def test_plain_text_403_is_fatal_and_quoted() -> None:
    """Without the gateway's token ITSM answers 403 in plain text: fatal, text shown."""
    text = b"Forbidden: the request did not come through the API gateway (no valid JWT)"
    answer = classify_answer(403, text, content_type="text/plain")
    assert answer.verdict is FAT
    assert "403" in answer.message
    assert "did not come through the API gateway" in answer.message


def test_empty_body_with_http_200_says_it_was_empty() -> None:
    """An empty 200 answer is fatal (nothing can be learned) and says the body was empty."""
    answer = classify_answer(200, b"")
    assert answer.verdict is FAT
    assert "empty" in answer.message


@pytest.mark.parametrize(
    "body",
    [b'{"result": true, "code": 0, "mess', b'{"result": false, "code": 39000', b"[{"],
    ids=["cut-success", "cut-error", "cut-list"],
)
def test_truncated_json_is_ambiguous(body: bytes) -> None:
    """JSON cut short: the request reached the server, so the action may have run."""
    answer = classify_answer(200, body, content_type="application/json")
    assert answer.verdict is AMB
    assert "cut short" in answer.message


def test_long_non_json_body_is_shortened() -> None:
    """A long page is quoted in a short snippet, never whole."""
    answer = classify_answer(200, b"<html>" + b"x" * 10_000 + b"</html>")
    assert len(answer.message) < 400


def test_json_that_is_not_an_object_is_not_an_envelope() -> None:
    """Valid JSON that is not an object (a list, a string, null) is a wrong answer, not success."""
    for body in (b"[]", b'"ok"', b"null", b"true"):
        assert classify_answer(200, body).verdict is FAT, body


def test_undecodable_bytes_do_not_break_classification() -> None:
    """Bytes that are not UTF-8 are shown with replacement characters, not an exception."""
    answer = classify_answer(200, b"\xff\xfe<html>\x81</html>")
    assert answer.verdict is FAT


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(500, AMB), (502, AMB), (503, RET), (504, AMB), (429, RET), (401, FAT), (404, FAT)],
)
def test_non_json_error_pages_go_by_http_status(status: int, verdict: Verdict) -> None:
    """Plain error pages: 503 retry; 500 (maybe ITSM's own crash after the action ran),
    502 and 504 ambiguous, read back before any resend; 4xx fatal."""
    answer = classify_answer(status, b"<html>oops</html>", content_type="text/html")
    assert answer.verdict is verdict
    assert str(status) in answer.message


# --------------------------------------------------------------------------- messages


def test_error_detail_inner_text_is_shown() -> None:
    """The business reason is the inner text of the ErrorDetail, not the whole wrapper."""
    answer = classify_answer(200, envelope(3900004, wrapped("抱歉，单据已关闭，无法操作")))
    assert (answer.verdict, answer.message) == (REJ, "抱歉，单据已关闭，无法操作")


def test_error_detail_in_a_field_dict_and_repeated() -> None:
    """Field-keyed ErrorDetails are all shown, each once, in order."""
    message = (
        "接口异常，请检查请求参数: {'action_message': [ErrorDetail(string='该字段不能为空。', "
        "code='blank')], 'sn': [ErrorDetail(string=\"it's required\", code='required')], "
        "'x': [ErrorDetail(string='该字段不能为空。', code='blank')]}"
    )
    assert human_message(message) == "该字段不能为空。; it's required"


def test_message_without_a_wrapper_is_trimmed() -> None:
    """A plain message is kept as it is, surrounding spaces removed."""
    assert human_message("  抱歉，单据已经结束，无法撤销 \n") == "抱歉，单据已经结束，无法撤销"


def test_blank_error_detail_keeps_the_whole_message() -> None:
    """An ErrorDetail with blank text never leaves the row without a message."""
    message = wrapped("   ")
    assert human_message(message) == message


@hypothesis_settings(deadline=None)
@given(st.text(min_size=1).filter(lambda s: s.strip() != ""))
def test_error_detail_any_inner_text_round_trips(inner: str) -> None:
    """Whatever the inner text (quotes, backslashes, newlines, CJK), it comes out as it went in."""
    assert human_message(wrapped(inner)) == inner.strip()


@hypothesis_settings(deadline=None)
@given(st.text(min_size=1).filter(lambda s: s.strip() != ""))
def test_error_detail_round_trips_through_classify_answer(inner: str) -> None:
    """The same holds for a real 3900004 answer, JSON-encoded and decoded on the way."""
    answer = classify_answer(200, envelope(3900004, wrapped(inner)))
    assert answer.message == inner.strip()


def test_fatal_message_names_the_meaning_and_the_reason() -> None:
    """A fatal code's message says what it means and what the server said."""
    answer = classify_answer(200, envelope(1306000, "APP认证失败: app_code或app_secret不正确"))
    assert "authentication" in answer.message
    assert "app_secret不正确" in answer.message


# --------------------------------------------------------------------------- waiting hints


def rate_limited(headers: dict[str, str]) -> Answer:
    """A gateway 429 with the given headers."""
    return classify_answer(429, envelope(1642902, "limit"), CIMultiDict(headers))


def test_retry_after_seconds() -> None:
    """Retry-After in seconds is the wait."""
    assert rate_limited({"Retry-After": "3"}).retry_after_s == 3.0
    assert rate_limited({"retry-after": "0.5"}).retry_after_s == 0.5


def test_retry_after_http_date() -> None:
    """Retry-After may be an HTTP date: the wait is the time until then."""
    when = datetime.now(UTC) + timedelta(seconds=30)
    wait = rate_limited({"Retry-After": format_datetime(when, usegmt=True)}).retry_after_s
    assert wait is not None
    assert 25.0 <= wait <= 31.0


def test_retry_after_date_in_the_past_means_now() -> None:
    """A date already past means no wait, not a negative one."""
    when = datetime.now(UTC) - timedelta(hours=1)
    assert rate_limited({"Retry-After": format_datetime(when, usegmt=True)}).retry_after_s == 0.0


def test_ratelimit_reset_as_delay_and_as_epoch() -> None:
    """X-Bkapi-RateLimit-Reset is read as seconds to wait, or as an epoch timestamp."""
    assert rate_limited({"X-Bkapi-RateLimit-Reset": "2"}).retry_after_s == 2.0
    epoch = rate_limited({"X-Bkapi-RateLimit-Reset": str(int(time.time()) + 10)}).retry_after_s
    assert epoch is not None
    assert 8.0 <= epoch <= 11.0


def test_retry_after_wins_over_ratelimit_reset() -> None:
    """When both are given, the explicit Retry-After is used."""
    both = {"Retry-After": "4", "X-Bkapi-RateLimit-Reset": "1"}
    assert rate_limited(both).retry_after_s == 4.0


@pytest.mark.parametrize("value", ["soon", "", "nan", "inf-ish"])
def test_unusable_retry_after_falls_back(value: str) -> None:
    """An unusable Retry-After is ignored: the reset header, or no hint at all, is used."""
    assert rate_limited({"Retry-After": value}).retry_after_s is None
    hinted = rate_limited({"Retry-After": value, "X-Bkapi-RateLimit-Reset": "1"})
    assert hinted.retry_after_s == 1.0


def test_wait_hints_are_bounded() -> None:
    """Negative waits become 0; absurd ones are capped at five minutes."""
    assert rate_limited({"Retry-After": "-5"}).retry_after_s == 0.0
    assert rate_limited({"Retry-After": "86400"}).retry_after_s == 300.0
    assert rate_limited({"Retry-After": "inf"}).retry_after_s == 300.0


def test_esb_rate_limit_with_http_200_carries_the_hint() -> None:
    """ESB path: 1642902 with HTTP 200 is a rate limit and keeps the reset hint."""
    headers = CIMultiDict({"X-Bkapi-Error-Code": "1642902", "X-Bkapi-RateLimit-Reset": "1"})
    answer = classify_answer(200, envelope(1642902, "Request rate limit exceeded"), headers)
    assert (answer.verdict, answer.rate_limited, answer.retry_after_s) == (RET, True, 1.0)


def test_no_hint_without_headers() -> None:
    """No header, no hint: the caller's own backoff applies."""
    assert rate_limited({}).retry_after_s is None


def test_an_answer_is_kept_only_scrubbed_message_request_id_and_data_alike() -> None:
    """An answer whose JSON escapes spell the secret: once classified and scrubbed, none
    of what it carries holds it, and a long message is cut."""
    secret = "s3cr3t-value-0f3b8c2a"
    escaped = "".join(f"\\u{ord(c):04x}" for c in secret)
    body = (
        f'{{"result": false, "code": 3900004, "message": "no {escaped}", '
        f'"request_id": "{escaped}", "data": {{"items": [{{"title": "{escaped}"}}]}}}}'
    ).encode()
    answer = scrubbed(classify_answer(200, body), Scrubber([secret]))
    assert answer.message == f"no {MASK}" and answer.request_id == MASK
    assert answer.data == {"items": [{"title": MASK}]}
    long = scrubbed(Answer(REJ, 1, "x" * (MAX_SERVER_MESSAGE + 5)), Scrubber([]))
    assert long.message == "x" * MAX_SERVER_MESSAGE + "… (cut)"
    clean = Answer(S, 0, "success", data={"items": []})
    assert scrubbed(clean, Scrubber([secret])) is clean

"""How batchops reads an ITSM answer: the code table, the verdict, and no secret kept.

Every answer, whatever its shape (JSON envelope with HTTP 200, gateway error with a
header code, an HTML "service off" page, plain-text 403), is turned into an
:class:`~batchops.itsm.transport.Answer` whose :class:`~batchops.itsm.transport.Verdict` tells the
executor what to do:

- ``SUCCESS``   the action was applied;
- ``REJECTED``  the server refused this row for good (no such ticket, business rule);
- ``FATAL``     nothing else can succeed either (authentication, permission, wrong URL,
                service switched off): stop the run;
- ``RETRY``     the request was not applied (429/rate limit, 503): send again;
- ``AMBIGUOUS`` the request may or may not have been applied (lost answer, backend
                timeout): read the ticket back before any resend.

The table is :data:`CODE_TABLE`; the classification is :func:`classify_answer`, a pure
function so every row of docs/itsm.md §2 has a test. :func:`scrubbed` takes the
secrets out of whatever a server sent back (with :mod:`batchops.secrets`) before
anything keeps it. Sending, and the
answers that never came (network failures), are :mod:`batchops.itsm.client`'s.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from batchops.i18n import N_, _
from batchops.secrets import Scrubber

from .transport import Answer, Verdict

__all__ = [
    "CODE_TABLE",
    "MAX_SERVER_MESSAGE",
    "CodeRule",
    "classify_answer",
    "cut_message",
    "human_message",
    "refused_credentials",
    "refused_this_api_only",
    "scrubbed",
]


@dataclass(frozen=True, slots=True)
class CodeRule:
    verdict: Verdict
    #: For a person, in English (marked ``N_``): looked up with ``_`` where it is used.
    meaning: str
    rate_limited: bool = False
    #: The app's or the user's credentials or permissions were refused: what to fix is a
    #: credential or a grant, and the advice after the run says which ones were used.
    credentials: bool = False
    #: The refusal is of the API (ESB component) that was called, not of the app or the
    #: user: permissions and components are granted per API, so another API of the same
    #: gateway may still answer. The pre-check, refused ``get_tickets`` so, reads each
    #: ticket with ``get_ticket_status`` instead of stopping the run.
    this_api_only: bool = False


def _rules() -> dict[int, CodeRule]:
    table = {
        0: CodeRule(Verdict.SUCCESS, N_("success")),
        3900022: CodeRule(Verdict.REJECTED, N_("no such ticket")),
        3900004: CodeRule(Verdict.REJECTED, N_("rejected by ITSM")),
        3900005: CodeRule(Verdict.REJECTED, N_("parameter error")),
        1306000: CodeRule(
            Verdict.FATAL, N_("ESB: app or user authentication failed"), credentials=True
        ),
        1306401: CodeRule(Verdict.FATAL, N_("ESB: operator required"), credentials=True),
        1306402: CodeRule(Verdict.FATAL, N_("ESB: the user has no permission"), credentials=True),
        1306403: CodeRule(
            Verdict.FATAL,
            N_("ESB: the app has no permission for this component"),
            credentials=True,
            this_api_only=True,
        ),
        1306404: CodeRule(
            Verdict.FATAL, N_("ESB: component not found (check --base-url)"), this_api_only=True
        ),
        1306405: CodeRule(
            Verdict.FATAL, N_("ESB: the component channel is inactive"), this_api_only=True
        ),
        # The ESB's own argument check is of what it reads itself, the credentials (e.g.
        # an X-Bkapi-Authorization header that is not JSON); ITSM's are 3900004/5.
        1306406: CodeRule(Verdict.FATAL, N_("ESB: argument error"), credentials=True),
        1306201: CodeRule(Verdict.AMBIGUOUS, N_("ESB: backend failed or timed out")),
        1306429: CodeRule(Verdict.RETRY, N_("ESB: rate limited"), rate_limited=True),
        1640001: CodeRule(
            Verdict.FATAL, N_("gateway: bad app code/secret or user identity"), credentials=True
        ),
        1640301: CodeRule(
            Verdict.FATAL,
            N_("gateway: the app has no permission to this API"),
            credentials=True,
            this_api_only=True,
        ),
        1640401: CodeRule(
            Verdict.FATAL, N_("gateway: API not found (check --base-url)"), this_api_only=True
        ),
        1650200: CodeRule(Verdict.AMBIGUOUS, N_("gateway: backend unreachable")),
        1650201: CodeRule(Verdict.AMBIGUOUS, N_("gateway: backend failed")),
        1650401: CodeRule(Verdict.AMBIGUOUS, N_("gateway: backend timed out")),
    }
    for code in range(1642901, 1642905):
        table[code] = CodeRule(Verdict.RETRY, N_("gateway: rate or concurrency limit"), True)
    for code in range(1650000, 1650003):
        # A 500 from the backend after the request was delivered: it may have run.
        table[code] = CodeRule(Verdict.AMBIGUOUS, N_("gateway: backend error"))
    return table


#: Gateway codes that say ITSM itself could not be reached or failed behind the gateway.
_BACKEND_TROUBLE = frozenset({1306201, 1650000, 1650001, 1650002, 1650200, 1650201, 1650401})

#: docs/itsm.md §2 as data: body (or ``X-Bkapi-Error-Code``) code → what to do.
CODE_TABLE: Mapping[int, CodeRule] = _rules()


def refused_credentials(answer: Answer) -> bool:
    """The server refused the credentials or the app's permissions (by the code table's
    ``credentials`` column, or a bare HTTP 401/403 that names no code)."""
    rule = CODE_TABLE.get(answer.code) if answer.code is not None else None
    return (rule is not None and rule.credentials) or answer.http_status in (401, 403)


def refused_this_api_only(answer: Answer) -> bool:
    """The refusal is of the API called, not of the app or user (the ``this_api_only``
    column); a refusal without a code (a page, a bare 401/403/404, a redirect) is not."""
    rule = CODE_TABLE.get(answer.code) if answer.code is not None else None
    return rule is not None and rule.this_api_only


#: Server messages are kept to this many characters in reports and the checkpoint: an
#: answer is shown to a person, and a hostile server must not fill the disk through it.
MAX_SERVER_MESSAGE = 2000

_ERROR_DETAIL = re.compile(r"""ErrorDetail\(string=(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")""")
_SNIPPET_LEN = 120


def human_message(message: str) -> str:
    """The reason a person can act on: the inner text of DRF ``ErrorDetail`` wrappers.

    ``接口异常，请检查请求参数: [ErrorDetail(string='抱歉，单据已关闭，无法操作', code='invalid')]``
    becomes ``抱歉，单据已关闭，无法操作``. The inner text is a Python ``repr`` (quotes and
    backslashes escaped), so it is decoded back to the text the server meant. Messages
    without a wrapper, or whose wrappers hold only blanks, are returned trimmed.
    """
    inner = [_unrepr(single, double) for single, double in _ERROR_DETAIL.findall(message)]
    texts = [s.strip() for s in inner if s.strip()]
    if texts:
        return "; ".join(dict.fromkeys(texts))
    return message.strip()


def _unrepr(single: str, double: str) -> str:
    """The text of a Python string literal's body (as ``repr`` quoted it), decoded."""
    quote, raw = ("'", single) if single else ('"', double)
    if not raw:
        return ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # odd escapes in a hand-made message
            value = ast.literal_eval(quote + raw + quote)
    except (ValueError, SyntaxError):
        return raw
    return value if isinstance(value, str) else raw


def _snippet(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    text = re.sub(r"<[^>]*>", " ", text)
    text = " ".join(text.split())
    return text[:_SNIPPET_LEN] + ("…" if len(text) > _SNIPPET_LEN else "")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name in ("Retry-After", "X-Bkapi-RateLimit-Reset"):
        value = headers.get(name)
        if value is None:
            continue
        seconds = _wait_seconds(value.strip())
        if seconds is not None:
            return max(0.0, min(seconds, 300.0))
    return None


def _wait_seconds(value: str) -> float | None:
    """Seconds to wait from a header value: a delay, an epoch timestamp or an HTTP date."""
    try:
        seconds = float(value)
    except ValueError:
        # Retry-After may also be an HTTP date (RFC 9110 §10.2.3).
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return (when - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds):
        return None
    # X-Bkapi-RateLimit-Reset may be an epoch timestamp rather than a delay.
    if 1e9 < seconds < math.inf:
        seconds -= time.time()
    return seconds


#: The codes an answer may carry: ITSM's have at most 8 digits, and the outcome table and
#: the checkpoint keep a code in 64 bits (-2**62 is the outcome table's "no code").
_CODE_LIMIT = 2**62


def _fits(code: int) -> bool:
    return -_CODE_LIMIT < code < _CODE_LIMIT


def _header_code(headers: Mapping[str, str]) -> int | None:
    raw = headers.get("X-Bkapi-Error-Code")
    if raw is None:
        return None
    try:
        code = int(raw.strip())
    except ValueError:
        return None
    return code if _fits(code) else None


def classify_answer(
    http_status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    content_type: str = "",
) -> Answer:
    """Turn one HTTP answer into an :class:`Answer`, by code first and HTTP status second."""
    headers = headers or {}
    request_id = headers.get("X-Bkapi-Request-Id", "") or headers.get("X-Request-Id", "")
    retry_after = _retry_after(headers)
    header_code = _header_code(headers)
    parsed = True
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):
        # RecursionError: JSON nested deeper than the parser goes. It is still an answer
        # from the server, so it is judged like a body cut short, never a crash.
        envelope, parsed = None, False
    if not isinstance(envelope, dict):
        # Only a JSON envelope can say "success": a header code of 0 on a page is no proof.
        if header_code:
            return _by_code(header_code, "", http_status, request_id, None, retry_after)
        return _non_json(
            http_status, body, content_type, request_id, retry_after, cut_short=not parsed
        )

    request_id = str(envelope.get("request_id") or request_id)
    raw_code = envelope.get("code")
    try:
        code: int | None = int(raw_code) if raw_code is not None else None
    except (TypeError, ValueError):
        code = None
    except OverflowError:  # 1e400, which JSON reads as infinity
        code = _CODE_LIMIT
    if code is None:
        code = header_code
    elif not _fits(code):
        return _unheld_code(raw_code, envelope, http_status, request_id, retry_after)
    data = envelope.get("data")
    if code == 0 and envelope.get("result") is not False:
        # Nearly every answer of a run: success needs neither its message read nor a rule
        # looked up (CODE_TABLE[0] is success, and its text is always "success").
        return Answer(
            Verdict.SUCCESS, 0, "success", http_status, request_id, data, retry_after_s=retry_after
        )
    message = str(envelope.get("message") or "")
    if code is None:
        if envelope.get("result") is True and 200 <= http_status < 300:
            return Answer(Verdict.SUCCESS, 0, "success", http_status, request_id, data)
        return _by_status(http_status, message or _snippet(body), None, request_id, retry_after)
    if code == 0 and envelope.get("result") is False:
        # A failure envelope that forgot its code: trust "result", never report success.
        return Answer(Verdict.REJECTED, None, human_message(message), http_status, request_id)
    return _by_code(code, message, http_status, request_id, data, retry_after)


def _unheld_code(
    raw_code: object,
    envelope: Mapping[str, Any],
    http_status: int,
    request_id: str,
    retry_after: float | None,
) -> Answer:
    """A code that is no code of ITSM's, and none a report or checkpoint column could hold:
    judged as the unknown code it is, and named in the message only."""
    message = str(envelope.get("message") or "")
    odd = _by_code(_CODE_LIMIT, message, http_status, request_id, None, retry_after)
    message = _("{message} (code {code})").format(message=odd.message, code=raw_code)
    return dataclasses.replace(odd, code=None, message=message)


def _by_code(
    code: int,
    message: str,
    http_status: int,
    request_id: str,
    data: Any,
    retry_after: float | None,
) -> Answer:
    rule = CODE_TABLE.get(code)
    if rule is None:
        if http_status >= 500 or http_status == 429:
            return _by_status(http_status, message, code, request_id, retry_after)
        # An unknown non-zero code with a 2xx/4xx answer is ITSM refusing this row.
        rule = CodeRule(Verdict.REJECTED, N_("error"))
    # ITSM's own words are passed on as it sent them; batchops' explanation is translated.
    text = human_message(message) if message else _(rule.meaning)
    if rule.verdict in (Verdict.FATAL, Verdict.AMBIGUOUS, Verdict.RETRY) and message:
        text = _("{meaning}: {message}").format(
            meaning=_(rule.meaning), message=human_message(message)
        )
    if rule.verdict is Verdict.SUCCESS:
        text = "success"
    return Answer(
        rule.verdict,
        code,
        text,
        http_status,
        request_id,
        data,
        rate_limited=rule.rate_limited,
        retry_after_s=retry_after,
        # The gateway could not get an answer from ITSM: the same for every ticket while
        # ITSM is down, so it counts towards an outage (and is read back, never resent blind).
        server_error=code in _BACKEND_TROUBLE,
    )


def _by_status(
    http_status: int,
    message: str,
    code: int | None,
    request_id: str,
    retry_after: float | None,
) -> Answer:
    """An answer judged by its HTTP status alone (no code said what happened)."""
    # The server's own text, quoted after batchops' words.
    detail = _(": {message}").format(message=message) if message else ""
    if http_status == 429 or http_status >= 500:
        return _server_trouble(http_status, detail, code, request_id, retry_after)
    return _refused(http_status, detail, code, request_id)


def _server_trouble(
    http_status: int,
    detail: str,
    code: int | None,
    request_id: str,
    retry_after: float | None,
) -> Answer:
    """A 429 or a 5xx: send again, or read the ticket back when the action may have run."""
    if http_status == 429:
        return Answer(
            Verdict.RETRY,
            code,
            _("rate limited (HTTP 429){detail}").format(detail=detail),
            http_status,
            request_id,
            rate_limited=True,
            retry_after_s=retry_after,
        )
    if http_status in (500, 502, 504):
        # A bare 500 may be ITSM's own crash after the action ran (the API gateway passes
        # the backend's 500 through): read back before any resend, like a lost answer.
        text = (
            _("server error HTTP {http_status}, the action may have run{detail}")
            if http_status == 500
            else _("gateway error HTTP {http_status}, the action may have run{detail}")
        )
        return Answer(
            Verdict.AMBIGUOUS,
            code,
            text.format(http_status=http_status, detail=detail),
            http_status,
            request_id,
            server_error=True,
        )
    if http_status == 503:
        # A bare 503 is the unavailable service's (or a proxy's) refusal: not processed.
        return Answer(
            Verdict.RETRY,
            code,
            _("server unavailable (HTTP {http_status}){detail}").format(
                http_status=http_status, detail=detail
            ),
            http_status,
            request_id,
            retry_after_s=retry_after,
            server_error=True,
        )
    return Answer(
        Verdict.AMBIGUOUS,
        code,
        _("server error HTTP {http_status}{detail}").format(http_status=http_status, detail=detail),
        http_status,
        server_error=True,
    )


def _refused(http_status: int, detail: str, code: int | None, request_id: str) -> Answer:
    """Any other status without a code: nothing else will work either, so stop the run."""
    if http_status in (401, 403):
        return Answer(
            Verdict.FATAL,
            code,
            _(
                "refused with HTTP {http_status}{detail} (check the gateway credentials and "
                "that the app may call this API)"
            ).format(http_status=http_status, detail=detail),
            http_status,
            request_id,
        )
    if http_status == 404:
        return Answer(
            Verdict.FATAL,
            code,
            _("API not found (HTTP 404){detail}: check --base-url and --gateway").format(
                detail=detail
            ),
            http_status,
            request_id,
        )
    text = _("unexpected answer HTTP {http_status}{detail}").format(
        http_status=http_status, detail=detail
    )
    return Answer(Verdict.FATAL, code, text, http_status)


def _non_json(
    http_status: int,
    body: bytes,
    content_type: str,
    request_id: str,
    retry_after: float | None,
    *,
    cut_short: bool = False,
) -> Answer:
    snippet = _snippet(body)
    stripped = body.lstrip()
    looks_html = "html" in content_type.lower() or stripped[:1] == b"<"
    if 200 <= http_status < 300:
        if cut_short and stripped[:1] in (b"{", b"["):
            # JSON cut short: the request reached the server, so the action may have run.
            return Answer(
                Verdict.AMBIGUOUS,
                None,
                _(
                    "the answer was cut short (truncated JSON, HTTP {http_status}), the action "
                    "may have run: {snippet}"
                ).format(http_status=http_status, snippet=repr(snippet)),
                http_status,
                request_id,
            )
        if not stripped:
            text = _(
                "the server answered an empty body with HTTP {http_status} "
                "(check --base-url and --gateway): {snippet}"
            )
        elif looks_html:
            text = _(
                "the server answered an HTML page with HTTP {http_status} "
                "(ITSM is probably switched off by an administrator): {snippet}"
            )
        else:
            text = _(
                "the server answered a non-JSON answer with HTTP {http_status} "
                "(check --base-url and --gateway): {snippet}"
            )
        return Answer(
            Verdict.FATAL,
            None,
            text.format(http_status=http_status, snippet=repr(snippet)),
            http_status,
            request_id,
        )
    return _by_status(http_status, snippet, None, request_id, retry_after)


def scrubbed(answer: Answer, scrubber: Scrubber) -> Answer:
    """``answer`` with the secrets taken out of all it carries from the server (its
    message, request id and data), before anything keeps it; a long message is cut."""
    message = cut_message(scrubber.text(answer.message))
    request_id = scrubber.text(answer.request_id)[:_MAX_REQUEST_ID]
    data = scrubber.data(answer.data)
    if message == answer.message and request_id == answer.request_id and data is answer.data:
        return answer
    return dataclasses.replace(answer, message=message, request_id=request_id, data=data)


def cut_message(text: str) -> str:
    """A server's text as batchops keeps it: at most :data:`MAX_SERVER_MESSAGE` characters."""
    if len(text) > MAX_SERVER_MESSAGE:
        return text[:MAX_SERVER_MESSAGE] + _("… (cut)")
    return text


#: A request id is an identifier, not a message: anything longer is not one.
_MAX_REQUEST_ID = 200

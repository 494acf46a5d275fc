"""The only place that knows HTTP: gateways, URLs, credentials and the ITSM code table.

Every answer, whatever its shape (JSON envelope with HTTP 200, gateway error with a
header code, an HTML "service off" page, plain-text 403, a dropped connection), is
turned into an :class:`Answer` whose :class:`Verdict` tells the executor what to do:

- ``SUCCESS``   the action was applied;
- ``REJECTED``  the server refused this row for good (no such ticket, business rule);
- ``FATAL``     nothing else can succeed either (authentication, permission, wrong URL,
                service switched off): stop the run;
- ``RETRY``     the request was not applied (connect failure, 429/rate limit, 503): send again;
- ``AMBIGUOUS`` the request may or may not have been applied (timeout after sending,
                lost answer, backend timeout): read the ticket back before any resend.

The table is :data:`CODE_TABLE`; the classification is :func:`classify_answer`, a pure
function so every row of docs/itsm.md §2 has a test. No secret is ever put in an
URL, a message or an exception.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import errno
import json
import math
import re
import ssl
import time
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from .config import ClientSettings
from .errors import ConfigError
from .model import Row
from .trace import Tracer
from .transport import Answer, Verdict
from .version import __version__

#: How batchops names itself to the gateway, so an admin can tell its traffic apart.
USER_AGENT = f"batchops/{__version__}"


@dataclass(frozen=True, slots=True)
class CodeRule:
    verdict: Verdict
    meaning: str
    rate_limited: bool = False


def _rules() -> dict[int, CodeRule]:
    table = {
        0: CodeRule(Verdict.SUCCESS, "success"),
        3900022: CodeRule(Verdict.REJECTED, "no such ticket"),
        3900004: CodeRule(Verdict.REJECTED, "rejected by ITSM"),
        3900005: CodeRule(Verdict.REJECTED, "parameter error"),
        1306000: CodeRule(Verdict.FATAL, "ESB: app or user authentication failed"),
        1306401: CodeRule(Verdict.FATAL, "ESB: operator required"),
        1306402: CodeRule(Verdict.FATAL, "ESB: the user has no permission"),
        1306403: CodeRule(Verdict.FATAL, "ESB: the app has no permission for this component"),
        1306404: CodeRule(Verdict.FATAL, "ESB: component not found (check --base-url)"),
        1306405: CodeRule(Verdict.FATAL, "ESB: the component channel is inactive"),
        1306406: CodeRule(Verdict.FATAL, "ESB: argument error"),
        1306201: CodeRule(Verdict.AMBIGUOUS, "ESB: backend failed or timed out"),
        1306429: CodeRule(Verdict.RETRY, "ESB: rate limited", rate_limited=True),
        1640001: CodeRule(Verdict.FATAL, "gateway: bad app code/secret or user identity"),
        1640301: CodeRule(Verdict.FATAL, "gateway: the app has no permission to this API"),
        1640401: CodeRule(Verdict.FATAL, "gateway: API not found (check --base-url)"),
        1650200: CodeRule(Verdict.AMBIGUOUS, "gateway: backend unreachable"),
        1650201: CodeRule(Verdict.AMBIGUOUS, "gateway: backend failed"),
        1650401: CodeRule(Verdict.AMBIGUOUS, "gateway: backend timed out"),
    }
    for code in range(1642901, 1642905):
        table[code] = CodeRule(Verdict.RETRY, "gateway: rate or concurrency limit", True)
    for code in range(1650000, 1650003):
        # A 500 from the backend after the request was delivered: it may have run.
        table[code] = CodeRule(Verdict.AMBIGUOUS, "gateway: backend error")
    return table


#: Gateway codes that say ITSM itself could not be reached or failed behind the gateway.
_BACKEND_TROUBLE = frozenset({1306201, 1650000, 1650001, 1650002, 1650200, 1650201, 1650401})

#: docs/itsm.md §2 as data: body (or ``X-Bkapi-Error-Code``) code → what to do.
CODE_TABLE: Mapping[int, CodeRule] = _rules()


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


def _header_code(headers: Mapping[str, str]) -> int | None:
    raw = headers.get("X-Bkapi-Error-Code")
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


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
    if code is None:
        code = header_code
    message = str(envelope.get("message") or "")
    data = envelope.get("data")
    if code is None:
        if envelope.get("result") is True and 200 <= http_status < 300:
            return Answer(Verdict.SUCCESS, 0, "success", http_status, request_id, data)
        return _by_status(http_status, message or _snippet(body), None, request_id, retry_after)
    if code == 0 and envelope.get("result") is False:
        # A failure envelope that forgot its code: trust "result", never report success.
        return Answer(Verdict.REJECTED, None, human_message(message), http_status, request_id)
    return _by_code(code, message, http_status, request_id, data, retry_after)


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
        rule = CodeRule(Verdict.REJECTED, "error")
    text = human_message(message) if message else rule.meaning
    if rule.verdict in (Verdict.FATAL, Verdict.AMBIGUOUS, Verdict.RETRY) and message:
        text = f"{rule.meaning}: {human_message(message)}"
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
    detail = f": {message}" if message else ""
    if http_status == 429:
        return Answer(
            Verdict.RETRY,
            code,
            f"rate limited (HTTP 429){detail}",
            http_status,
            request_id,
            rate_limited=True,
            retry_after_s=retry_after,
        )
    if http_status in (502, 504):
        return Answer(
            Verdict.AMBIGUOUS,
            code,
            f"gateway error HTTP {http_status}, the action may have run{detail}",
            http_status,
            request_id,
            server_error=True,
        )
    if http_status in (500, 503):
        # A bare 500/503 carries no sign that ITSM saw the request (proxies answer these).
        return Answer(
            Verdict.RETRY,
            code,
            f"server unavailable (HTTP {http_status}){detail}",
            http_status,
            request_id,
            retry_after_s=retry_after,
            server_error=True,
        )
    if http_status >= 500:
        return Answer(
            Verdict.AMBIGUOUS,
            code,
            f"server error HTTP {http_status}{detail}",
            http_status,
            server_error=True,
        )
    if http_status in (401, 403):
        return Answer(
            Verdict.FATAL,
            code,
            f"refused with HTTP {http_status}{detail} (check the gateway credentials and "
            "that the app may call this API)",
            http_status,
            request_id,
        )
    if http_status == 404:
        return Answer(
            Verdict.FATAL,
            code,
            f"API not found (HTTP 404){detail}: check --base-url and --gateway",
            http_status,
            request_id,
        )
    return Answer(Verdict.FATAL, code, f"unexpected answer HTTP {http_status}{detail}", http_status)


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
                f"the answer was cut short (truncated JSON, HTTP {http_status}), the action "
                f"may have run: {snippet!r}",
                http_status,
                request_id,
            )
        if not stripped:
            what, hint = "an empty body", "check --base-url and --gateway"
        elif looks_html:
            what, hint = "an HTML page", "ITSM is probably switched off by an administrator"
        else:
            what, hint = "a non-JSON answer", "check --base-url and --gateway"
        return Answer(
            Verdict.FATAL,
            None,
            f"the server answered {what} with HTTP {http_status} ({hint}): {snippet!r}",
            http_status,
            request_id,
        )
    return _by_status(http_status, snippet, None, request_id, retry_after)


API_PATHS = {
    "esb": "/api/c/compapi/v2/itsm/",
    "apigw": "/v2/itsm/",
}


def api_url(base_url: str, gateway: str, api: str) -> str:
    """The URL of one ITSM API on the chosen gateway, trailing slash kept (the gateway needs it)."""
    return f"{base_url.rstrip('/')}{API_PATHS[gateway]}{api}/"


def proxy_for(settings: ClientSettings) -> str | None:
    """The proxy for every request of a session (credentials, if any, in its URL).

    An explicit proxy (``--proxy``, the profile) wins; ``none`` connects directly;
    otherwise HTTPS_PROXY / HTTP_PROXY / NO_PROXY decide, as the official SDK (requests)
    lets them (``urllib.request.getproxies``: the environment, and the system settings on
    Windows and macOS). A session talks to one host, so this is decided once, not per
    request: aiohttp's ``trust_env`` would also read ``~/.netrc`` in a worker thread for
    every request, which costs time and reorders requests that leave together.
    """
    chosen = (settings.proxy or "").strip()
    if chosen.lower() == "none":
        return None
    if not chosen and settings.trust_env:
        target = urllib.parse.urlsplit(settings.base_url)
        proxies = urllib.request.getproxies()
        host = target.hostname or ""
        if target.scheme in proxies and not urllib.request.proxy_bypass(host):
            chosen = proxies[target.scheme]
    if not chosen:
        return None
    if "://" not in chosen:
        chosen = f"http://{chosen}"  # HTTP_PROXY=host:3128, as requests accepts it
    return chosen


class ItsmClient:
    """One aiohttp session to one ITSM deployment. Use as ``async with``.

    ``operate`` sends one row; the ``read_*`` calls read tickets back (pre-check and
    confirmation of lost answers); ``probe`` finds out whether the target can be reached
    at all, carrying no credentials. None of them raises for a bad answer: every outcome,
    network failures included, comes back as an :class:`Answer`.

    Credentials go only where the user pointed: redirects are never followed (a 3xx is a
    stop that names the new location), and every answer is scrubbed of the secrets before
    anything else sees it, so a server that echoes the request cannot make batchops write
    them down.
    """

    def __init__(self, settings: ClientSettings, *, tracer: Tracer | None = None) -> None:
        self.settings = settings
        self._tracer = tracer
        self._session: aiohttp.ClientSession | None = None
        self._auth_header = json.dumps(settings.credentials.auth_fields(), ensure_ascii=False)
        self._body_auth = settings.credentials.auth_fields() if settings.gateway == "esb" else {}
        self._operate_url = api_url(settings.base_url, settings.gateway, "operate_ticket")
        self._scrub = Scrubber(settings.credentials.secrets)
        self.requests_sent = 0

    async def __aenter__(self) -> ItsmClient:
        ssl_arg: ssl.SSLContext | bool = True
        if self.settings.insecure:
            ssl_arg = False
        elif self.settings.ca_bundle:
            try:
                ssl_arg = ssl.create_default_context(cafile=self.settings.ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"cannot use --ca-bundle {self.settings.ca_bundle}: {exc.__class__.__name__}"
                    " (give a readable PEM file)"
                ) from None
        connector = aiohttp.TCPConnector(
            limit=connection_limit(self.settings.concurrency), ssl=ssl_arg, ttl_dns_cache=300
        )
        timeout = aiohttp.ClientTimeout(
            total=self.settings.timeout_s,
            sock_connect=min(self.settings.connect_timeout_s, self.settings.timeout_s),
        )
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        proxy = proxy_for(self.settings)
        trace = self._tracer.aiohttp_config() if self._tracer is not None else None
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            headers=headers,
            raise_for_status=False,
            proxy=proxy,
            trace_configs=[trace] if trace is not None else None,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("ItsmClient used outside 'async with'")
        return self._session

    @property
    def target(self) -> str:
        """The address as a person would check it: scheme, host and port."""
        parts = urllib.parse.urlsplit(self.settings.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    def _auth_headers(self) -> dict[str, str]:
        # Reads carry credentials in the header on both gateways (never in a query string,
        # where proxies and access logs would keep them); on the API gateway operations do
        # too. Per request, not on the session, so the probe carries none.
        return {"X-Bkapi-Authorization": self._auth_header}

    async def operate(self, row: Row) -> Answer:
        payload = {
            **self._body_auth,
            "sn": row.sn,
            "operator": row.operator,
            "action_type": row.action.value,
            "action_message": row.message,
        }
        headers = self._auth_headers() if self.settings.gateway == "apigw" else None
        return await self._call(
            "POST", self._operate_url, payload, headers=headers, sent_is_ambiguous=True
        )

    async def read_ticket_status(self, sn: str) -> Answer:
        url = api_url(self.settings.base_url, self.settings.gateway, "get_ticket_status")
        return await self._call("GET", url, None, params={"sn": sn}, headers=self._auth_headers())

    async def read_tickets(self, sns: Iterable[str]) -> Answer:
        url = api_url(self.settings.base_url, self.settings.gateway, "get_tickets")
        wanted = list(sns)
        payload = {"sns": wanted, "page": 1, "page_size": max(1, len(wanted))}
        return await self._call("POST", url, payload, headers=self._auth_headers())

    async def probe(self) -> Answer:
        """Can the target be reached at all? A bare GET of the base URL, no credentials.

        Any HTTP answer, whatever its status, proves that the host, the port, TLS and the
        proxy work; the answer's verdict is then ``SUCCESS``. Without one, the answer says
        why (``network``) and is ``RETRY``. A redirect is not followed.
        """
        if self._tracer is not None:
            traced: Answer = await self._tracer.traced(
                self._probe, "GET", self.settings.base_url, None
            )
            return traced
        return await self._probe()

    async def _probe(self, *_: object) -> Answer:
        self.requests_sent += 1
        try:
            async with self.session.get(
                self.settings.base_url, allow_redirects=False, headers={"Accept": "*/*"}
            ) as response:
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            cause = network_cause(exc, self.settings.timeout_s)
            connected = not isinstance(
                exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError
            )
            return Answer(Verdict.RETRY, None, cause, network=cause, connected=connected)
        # Whatever answered (even with a 5xx) proves host, port, TLS and proxy work.
        return Answer(Verdict.SUCCESS, None, f"reachable (HTTP {status})", status)

    async def list_tickets(self, filters: Mapping[str, Any], page: int, page_size: int) -> Answer:
        """One page of ``get_tickets`` with these filters (``batchops select``)."""
        url = api_url(self.settings.base_url, self.settings.gateway, "get_tickets")
        payload = {**filters, "page": page, "page_size": page_size}
        return await self._call("POST", url, payload, headers=self._auth_headers())

    async def _call(
        self, method: str, url: str, payload: dict[str, Any] | None, **options: Any
    ) -> Answer:
        if self._tracer is None:
            return await self._exchange(method, url, payload, **options)
        answer: Answer = await self._tracer.traced(self._exchange, method, url, payload, **options)
        return answer

    async def _exchange(
        self,
        method: str,
        url: str,
        payload: dict[str, Any] | None,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        sent_is_ambiguous: bool = False,
    ) -> Answer:
        data = None if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        self.requests_sent += 1
        try:
            async with self.session.request(
                method, url, data=data, params=params, headers=headers, allow_redirects=False
            ) as response:
                if 300 <= response.status < 400:
                    return self._redirected(response.status, response.headers.get("Location"))
                body = self._scrub.body(await response.read())
                answer = classify_answer(
                    response.status,
                    body,
                    response.headers,
                    content_type=response.headers.get("Content-Type", ""),
                )
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # Not connected: the request never left, so it is never ambiguous.
            cause = network_cause(exc, self.settings.timeout_s)
            answer = Answer(Verdict.RETRY, None, cause, network=cause, connected=False)
        except TimeoutError as exc:
            verdict = Verdict.AMBIGUOUS if sent_is_ambiguous else Verdict.RETRY
            cause = network_cause(exc, self.settings.timeout_s)
            answer = Answer(
                verdict,
                None,
                cause + (" (the action may have run)" if sent_is_ambiguous else ""),
                network=cause,
            )
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # The connection broke after it was made: the request may have reached ITSM.
            # (ValueError: aiohttp rejecting a malformed answer, e.g. a broken header.)
            verdict = Verdict.AMBIGUOUS if sent_is_ambiguous else Verdict.RETRY
            cause = network_cause(exc, self.settings.timeout_s)
            answer = Answer(
                verdict,
                None,
                cause + (" (the action may have run)" if sent_is_ambiguous else ""),
                network=cause,
            )
        return self._scrub.answer(answer)

    def _redirected(self, status: int, location: str | None) -> Answer:
        where = self._scrub.text(location or "(no Location header)")
        hint = suggested_base_url(location, self.settings.gateway) if location else None
        advice = (
            f"if that is the right server, set --base-url to {hint}"
            if hint
            else "check --base-url and --gateway"
        )
        return Answer(
            Verdict.FATAL,
            None,
            f"the server redirected the request (HTTP {status}) to {where}; batchops never "
            f"follows a redirect with credentials: {advice}",
            status,
        )


def suggested_base_url(location: str, gateway: str) -> str | None:
    """The ``--base-url`` that would reach a redirect's target directly, if it can be told."""
    parts = urllib.parse.urlsplit(location)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    path = parts.path
    marker = API_PATHS.get(gateway, "")
    at = path.find(marker) if marker else -1
    prefix = path[:at] if at >= 0 else ""
    return f"{parts.scheme}://{parts.netloc}{prefix}".rstrip("/")


def network_cause(exc: BaseException, timeout_s: float) -> str:
    """Why no answer came, in words a person can act on (never a secret: no URL query)."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "no connection could be made in time (a silent host, a firewall, a VPN down?)"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"DNS lookup failed for {exc.host}"
    if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return f"proxy error ({exc.__class__.__name__})"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate of {exc.host} not trusted (use --ca-bundle for a private CA)"
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        return "TLS handshake failed (https against an http port? a private CA?)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        errno_ = exc.os_error.errno if exc.os_error else None
        if errno_ == errno.EMFILE:
            return "too many open files (lower --concurrency or raise 'ulimit -n')"
        what = "connection refused" if errno_ == errno.ECONNREFUSED else (exc.strerror or "")
        return f"cannot connect to {exc.host}:{exc.port} ({what or exc.__class__.__name__})"
    if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError):
        return "connection lost (server disconnected)"
    return f"connection lost ({exc.__class__.__name__})"


def connection_limit(concurrency: int) -> int:
    """Connections the pool may open: the concurrency, within what the process may open.

    Each connection is a file descriptor. Asking for more than ``ulimit -n`` allows made
    every connect fail with EMFILE; the soft limit is raised towards the hard one where
    the system allows, and the pool is kept below what is left (a few dozen descriptors
    stay free for the checkpoint, the report and the interpreter).
    """
    wanted = concurrency + 4
    try:
        import resource
    except ImportError:  # Windows: no such limit to respect
        return wanted
    reserve = 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted + reserve:
        goal = wanted + reserve if hard == resource.RLIM_INFINITY else min(hard, wanted + reserve)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (goal, hard))
            soft = goal
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - reserve))


class Scrubber:
    """Removes the secrets from whatever a server sent back, before anything keeps it.

    A server (or a proxy) that echoes the request would otherwise carry the app secret
    into messages, request ids, stop reasons, reports and the checkpoint. The secret is
    looked for as sent (raw and JSON-escaped) and URL-encoded.
    """

    MASK = "***"

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            forms.update(
                {
                    secret,
                    json.dumps(secret)[1:-1],
                    json.dumps(secret, ensure_ascii=False)[1:-1],
                    urllib.parse.quote(secret, safe=""),
                    urllib.parse.quote_plus(secret),
                }
            )
        # Longest first, so a form that contains another is replaced whole.
        self._texts = sorted(forms, key=len, reverse=True)
        self._bytes = [f.encode() for f in self._texts]

    def body(self, raw: bytes) -> bytes:
        for form in self._bytes:
            if form in raw:
                raw = raw.replace(form, self.MASK.encode())
        return raw

    def text(self, value: str) -> str:
        for form in self._texts:
            if form in value:
                value = value.replace(form, self.MASK)
        if len(value) > MAX_SERVER_MESSAGE:
            value = value[:MAX_SERVER_MESSAGE] + "… (cut)"
        return value

    def answer(self, answer: Answer) -> Answer:
        message = self.text(answer.message)
        request_id = self.text(answer.request_id)[:_MAX_REQUEST_ID]
        if message == answer.message and request_id == answer.request_id:
            return answer
        return dataclasses.replace(answer, message=message, request_id=request_id)


#: A request id is an identifier, not a message: anything longer is not one.
_MAX_REQUEST_ID = 200

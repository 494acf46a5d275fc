"""The only place that knows HTTP: gateways, URLs, credentials, the session, the network.

:class:`ItsmClient` is the aiohttp implementation of :class:`batchops.itsm.transport.Transport`:
one session to one ITSM deployment, with its TLS, proxy and connection pool. Every
request comes back as an :class:`Answer`, never an exception: what the server said is
judged by :func:`batchops.itsm.answers.classify_answer` (the code table of docs/itsm.md §2),
and an answer that never came is judged here, by whether the request may have been sent
(connect failure: ``RETRY``; timeout or dropped connection after sending an operation:
``AMBIGUOUS``, read the ticket back before any resend). No secret is ever put in an URL,
a message or an exception, and every answer is scrubbed of them before anything keeps it.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import ssl
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass

import aiohttp

from batchops.errors import ConfigError
from batchops.i18n import _, blueking_language
from batchops.model import Row
from batchops.process import raise_open_files_limit
from batchops.secrets import Scrubber
from batchops.settings import ClientSettings
from batchops.version import __version__

from .answers import classify_answer, cut_message, scrubbed
from .trace import Tracer
from .transport import Answer, Verdict

__all__ = [
    "API_PATHS",
    "USER_AGENT",
    "ItsmClient",
    "api_url",
    "connection_limit",
    "likely_base_url",
    "network_cause",
    "no_proxy_excludes",
    "proxy_for",
    "suggested_base_url",
]

#: How batchops names itself to the gateway, so an admin can tell its traffic apart.
USER_AGENT = f"batchops/{__version__}"

#: A JSON object as sent in a request body.
JsonObject = Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request to ITSM, as made (and as ``--verbose`` reports it)."""

    method: str
    url: str
    payload: JsonObject | None = None
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = None
    #: An operation: a lost answer may mean it ran, so it is read back, never resent blind.
    sent_is_ambiguous: bool = False


API_PATHS = {
    "esb": "/api/c/compapi/v2/itsm/",
    "apigw": "/v2/itsm/",
}


def api_url(base_url: str, gateway: str, api: str) -> str:
    """The URL of one ITSM API on the chosen gateway, trailing slash kept (the gateway needs it)."""
    return f"{base_url.rstrip('/')}{API_PATHS[gateway]}{api}/"


#: Where the API gateway serves ITSM: the stage is part of the base URL it takes.
APIGW_STAGE_PATH = "/api/bk-itsm/prod"


def likely_base_url(base_url: str, gateway: str) -> tuple[str, str] | None:
    """The (gateway, base URL) a 404 from ``base_url`` most likely meant, or None.

    The ESB takes the host alone (``https://paas.example.com``); the API gateway takes
    its stage (``https://bkapi.example.com/api/bk-itsm/prod``). batchops adds the API
    path (:data:`API_PATHS`) to either, so an address that already holds part of it, a
    stage given with the ESB, or a bare host given with the API gateway is one of the
    other forms.
    """
    parts = urllib.parse.urlsplit(base_url.strip())
    if not parts.scheme or not parts.netloc:
        return None
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    for marker in ("/api/c/compapi", "/v2/itsm"):
        if marker in path:  # an API's own URL pasted whole: cut it at the API path
            path = path[: path.index(marker)]
            break
    staged = "/api/bk-itsm/" in path + "/" or parts.netloc.startswith("bkapi.")
    if gateway == "esb" and staged:
        guess = ("apigw", origin + (path or APIGW_STAGE_PATH))
    elif gateway == "esb" or (not path and parts.netloc.startswith("paas.")):
        guess = ("esb", origin)
    else:
        guess = ("apigw", origin + (path or APIGW_STAGE_PATH))
    return None if guess == (gateway, base_url.strip().rstrip("/")) else guess


def proxy_for(settings: ClientSettings) -> str | None:
    """The proxy for every request of a session (credentials, if any, in its URL).

    An explicit proxy (``--proxy``, the profile) wins; ``none`` connects directly;
    otherwise HTTPS_PROXY / HTTP_PROXY / NO_PROXY decide, as the official SDK (requests)
    lets them (``urllib.request.getproxies``: the environment, and the system settings on
    Windows and macOS; NO_PROXY read by :func:`no_proxy_excludes`). A session talks to one
    host, so this is decided once, not per
    request: aiohttp's ``trust_env`` would also read ``~/.netrc`` in a worker thread for
    every request, which costs time and reorders requests that leave together.
    """
    chosen = (settings.proxy or "").strip()
    if chosen.lower() == "none":
        return None
    if not chosen and settings.trust_env:
        target = urllib.parse.urlsplit(settings.base_url)
        proxies = urllib.request.getproxies()
        no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
        if target.scheme in proxies and not no_proxy_excludes(settings.base_url, no_proxy):
            chosen = proxies[target.scheme]
    if not chosen:
        return None
    if "://" not in chosen:
        chosen = f"http://{chosen}"  # HTTP_PROXY=host:3128, as requests accepts it
    return chosen


def no_proxy_excludes(url: str, no_proxy: str) -> bool:
    """Whether NO_PROXY (a comma-separated list) keeps ``url`` away from the proxy.

    Read as requests reads it (``requests.utils.should_bypass_proxies``): ``*``; a host,
    which also covers its subdomains (``example.com``, ``.example.com``); ``host:port``;
    and, for an IP address, a CIDR block (``10.0.0.0/8``). Two forms requests does not
    take are taken too, because ignoring them would send traffic, the secret with it,
    through a proxy the user excluded: ``ip:port`` and ``*`` within a list. Anything
    else is left to the system's own rules (``urllib.request.proxy_bypass``: the registry
    on Windows, the system settings on macOS), as requests does.
    """
    target = urllib.parse.urlsplit(url)
    host = (target.hostname or "").lower()
    if not host:
        return True
    port = target.port or {"http": 80, "https": 443}.get(target.scheme)
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry and _excludes(entry, host, port, address):
            return True
    try:
        return bool(urllib.request.proxy_bypass(host))
    except (TypeError, OSError):  # socket.gaierror, as requests guards it
        return False


def _excludes(
    entry: str,
    host: str,
    port: int | None,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
) -> bool:
    """Whether one NO_PROXY entry names ``host`` (at ``port``)."""
    if entry == "*":
        return True
    if address is not None and "/" in entry:
        try:
            return address in ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False
    name, colon, entry_port = entry.rpartition(":")
    if colon and entry_port.isdigit() and (address is None or "]" in name or ":" not in name):
        if int(entry_port) != port:
            return False
        entry = name
    entry = entry.strip("[]").lstrip(".")
    return host == entry or (address is None and host.endswith("." + entry))


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
                    _("cannot use --ca-bundle {path}: {error} (give a readable PEM file)").format(
                        path=self.settings.ca_bundle, error=exc.__class__.__name__
                    )
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
            # The language ITSM and the gateway answer in, as BlueKing's own clients ask
            # for it (bkapi-client-core). Read here, when the session is made: the command
            # line has chosen the language before any client exists.
            "Blueking-Language": blueking_language(),
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
            Request("POST", self._operate_url, payload, headers=headers, sent_is_ambiguous=True)
        )

    async def read_ticket_status(self, sn: str) -> Answer:
        url = api_url(self.settings.base_url, self.settings.gateway, "get_ticket_status")
        return await self._call(
            Request("GET", url, None, params={"sn": sn}, headers=self._auth_headers())
        )

    async def read_tickets(self, sns: Iterable[str]) -> Answer:
        url = api_url(self.settings.base_url, self.settings.gateway, "get_tickets")
        wanted = list(sns)
        payload: JsonObject = {"sns": wanted, "page": 1, "page_size": max(1, len(wanted))}
        return await self._call(Request("POST", url, payload, headers=self._auth_headers()))

    async def probe(self) -> Answer:
        """Can the target be reached at all? A bare GET of the base URL, no credentials.

        Any HTTP answer, whatever its status, proves that the host, the port, TLS and the
        proxy work; the answer's verdict is then ``SUCCESS``. Without one, the answer says
        why (``network``) and is ``RETRY``. A redirect is not followed.
        """
        if self._tracer is not None:
            return await self._tracer.traced(self._probe, Request("GET", self.settings.base_url))
        return await self._probe()

    async def _probe(self, _request: Request | None = None) -> Answer:
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
        text = _("reachable (HTTP {http_status})").format(http_status=status)
        return Answer(Verdict.SUCCESS, None, text, status)

    async def list_tickets(self, filters: JsonObject, page: int, page_size: int) -> Answer:
        """One page of ``get_tickets`` with these filters (``batchops select``)."""
        url = api_url(self.settings.base_url, self.settings.gateway, "get_tickets")
        payload: JsonObject = {**filters, "page": page, "page_size": page_size}
        return await self._call(Request("POST", url, payload, headers=self._auth_headers()))

    def _call(self, request: Request) -> Awaitable[Answer]:
        # Not a coroutine itself: the caller awaits the exchange, so every request (each
        # row's above all) has one frame less on its await chain.
        if self._tracer is None:
            return self._exchange(request)
        return self._tracer.traced(self._exchange, request)

    async def _exchange(self, request: Request) -> Answer:
        payload = request.payload
        data = None if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        sent_is_ambiguous = request.sent_is_ambiguous
        self.requests_sent += 1
        try:
            async with self.session.request(
                request.method,
                request.url,
                data=data,
                params=request.params,
                headers=request.headers,
                allow_redirects=False,
            ) as response:
                if 300 <= response.status < 400:
                    return self._redirected(response.status, response.headers.get("Location"))
                body = self._scrub.raw(await response.read())
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
            answer = Answer(verdict, None, _may_have_run(cause, sent_is_ambiguous), network=cause)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # The connection broke after it was made: the request may have reached ITSM.
            # (ValueError: aiohttp rejecting a malformed answer, e.g. a broken header.)
            verdict = Verdict.AMBIGUOUS if sent_is_ambiguous else Verdict.RETRY
            cause = network_cause(exc, self.settings.timeout_s)
            answer = Answer(verdict, None, _may_have_run(cause, sent_is_ambiguous), network=cause)
        return scrubbed(answer, self._scrub)

    def _redirected(self, status: int, location: str | None) -> Answer:
        # Scrubbed before use: the suggested --base-url is shown too.
        location = self._scrub.text(location) if location else None
        where = cut_message(location or _("(no Location header)"))
        hint = suggested_base_url(location, self.settings.gateway) if location else None
        advice = (
            _("if that is the right server, set --base-url to {url}").format(url=hint)
            if hint
            else _("check --base-url and --gateway")
        )
        text = _(
            "the server redirected the request (HTTP {http_status}) to {location}; batchops "
            "never follows a redirect with credentials: {advice}"
        )
        return Answer(
            Verdict.FATAL,
            None,
            text.format(http_status=status, location=where, advice=advice),
            status,
        )


def _may_have_run(cause: str, sent_is_ambiguous: bool) -> str:
    """Why no answer came, and for an operation that it may have run all the same."""
    if not sent_is_ambiguous:
        return cause
    return _("{cause} (the action may have run)").format(cause=cause)


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
        return _("no connection could be made in time (a silent host, a firewall, a VPN down?)")
    if isinstance(exc, TimeoutError):
        return _("no answer within {seconds} s").format(seconds=f"{timeout_s:g}")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return _("DNS lookup failed for {host}").format(host=exc.host)
    if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return _("proxy error ({error})").format(error=exc.__class__.__name__)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return _("TLS certificate of {host} not trusted (use --ca-bundle for a private CA)").format(
            host=exc.host
        )
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        return _("TLS handshake failed (https against an http port? a private CA?)")
    if isinstance(exc, aiohttp.ClientConnectorError):
        errno_ = exc.os_error.errno if exc.os_error else None
        if errno_ == errno.EMFILE:
            return _("too many open files (lower --concurrency or raise 'ulimit -n')")
        what = _("connection refused") if errno_ == errno.ECONNREFUSED else (exc.strerror or "")
        return _("cannot connect to {host}:{port} ({why})").format(
            host=exc.host, port=exc.port, why=what or exc.__class__.__name__
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError):
        return _("connection lost (server disconnected)")
    return _("connection lost ({error})").format(error=exc.__class__.__name__)


def connection_limit(concurrency: int) -> int:
    """Connections the pool may open: the concurrency, within what the process may open.

    Each connection is a file descriptor. Asking for more than ``ulimit -n`` allows made
    every connect fail with EMFILE; the soft limit is raised towards the hard one where
    the system allows, and the pool is kept below what is left (a few dozen descriptors
    stay free for the checkpoint, the report and the interpreter).
    """
    wanted = concurrency + 4
    reserve = 64
    soft = raise_open_files_limit(wanted + reserve)
    if soft is None:
        return wanted
    return max(1, min(wanted, soft - reserve))

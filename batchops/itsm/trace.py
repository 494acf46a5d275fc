"""``--verbose``: what went over the wire, one line per request and its answer.

``-v`` writes one stderr line per exchange with ITSM: when it left, the API, the
ticket (sn), the action, the HTTP status, the answer's code, how long it took, the
attempt (the n-th request of that API for that ticket and action in this run) and what
batchops made of it. ``-vv`` adds the request (method, URL with its query, headers,
body) and the answer's body. With ``--log-json`` each exchange is an ``http`` event
instead of a line.

Credentials never show: credential fields are masked by name wherever they appear (a
JSON body, the ``X-Bkapi-Authorization`` header, a query string), ``Authorization``-like
headers are masked whole, and then every known secret value is replaced wherever it is
left (an answer that echoes it, an escaped or encoded copy). Those rules live in
:mod:`batchops.secrets`.

The client calls :meth:`Tracer.traced` around each request; the wire detail of ``-vv``
(headers as sent, the answer's raw body) comes from aiohttp's client tracing, matched
to the request through a context variable (aiohttp runs its trace callbacks in the task
that makes the request).
"""

from __future__ import annotations

import contextvars
import json
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Protocol, TypeVar

import aiohttp

from batchops.i18n import ngettext
from batchops.secrets import Scrubber, mask_headers, mask_text, mask_url

#: Bodies longer than this are cut in ``-vv`` output (a get_tickets page can be large).
BODY_LIMIT = 4000

Events = Callable[[str, Mapping[str, object]], None]


class _Answer(Protocol):
    """What the tracer reads of a :class:`batchops.itsm.transport.Answer`."""

    @property
    def verdict(self) -> object: ...

    @property
    def code(self) -> int | None: ...

    @property
    def message(self) -> str: ...

    @property
    def http_status(self) -> int | None: ...


@dataclass
class _Wire:
    """The wire detail of one request, filled in by aiohttp's trace callbacks."""

    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)


_WIRE: contextvars.ContextVar[_Wire | None] = contextvars.ContextVar("batchops_wire", default=None)


async def _on_headers_sent(
    session: aiohttp.ClientSession,
    context: object,
    params: aiohttp.TraceRequestHeadersSentParams,
) -> None:
    wire = _WIRE.get()
    if wire is not None:
        wire.url = str(params.url)
        wire.headers = dict(params.headers)


async def _on_chunk_received(
    session: aiohttp.ClientSession,
    context: object,
    params: aiohttp.TraceResponseChunkReceivedParams,
) -> None:
    wire = _WIRE.get()
    if wire is not None:
        wire.body += params.chunk


def _cut(text: str) -> str:
    if len(text) <= BODY_LIMIT:
        return text
    return text[:BODY_LIMIT] + f"… ({len(text)} characters)"


class _Request(Protocol):
    """What the tracer reads of a :class:`batchops.itsm.client.Request`."""

    @property
    def method(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def payload(self) -> Mapping[str, object] | None: ...

    @property
    def params(self) -> Mapping[str, str] | None: ...


Req = TypeVar("Req", bound=_Request)
Ans = TypeVar("Ans", bound=_Answer)


class Tracer:
    """Writes one line (or ``http`` event) per exchange; ``level`` 2 adds the bodies."""

    def __init__(
        self,
        level: int,
        secrets: Iterable[str] = (),
        *,
        stream: IO[str] | None = None,
        events: Events | None = None,
    ) -> None:
        self.level = level
        self._secrets = tuple(s for s in secrets if s)
        self._scrubber = Scrubber(self._secrets)
        self._stream = stream
        self._events = events
        self._attempts: dict[tuple[str, str, str], int] = {}

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Also mask these values (the credentials are known only once the target is)."""
        self._secrets = tuple(dict.fromkeys((*self._secrets, *(s for s in secrets if s))))
        self._scrubber = Scrubber(self._secrets)

    def aiohttp_config(self) -> aiohttp.TraceConfig | None:
        """aiohttp tracing for ``-vv`` (headers as sent, the answer's raw body)."""
        if self.level < 2:
            return None
        config = aiohttp.TraceConfig()
        config.on_request_headers_sent.append(_on_headers_sent)
        config.on_response_chunk_received.append(_on_chunk_received)
        return config

    async def traced(self, send: Callable[[Req], Awaitable[Ans]], request: Req) -> Ans:
        """Make ``request`` through ``send`` and report it with its answer."""
        wire = _Wire()
        token = _WIRE.set(wire)
        when = datetime.now().astimezone()
        started = time.perf_counter()
        try:
            answer = await send(request)
        finally:
            _WIRE.reset(token)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        self._report(when, request, answer, elapsed_ms, wire)
        return answer

    def _report(
        self, when: datetime, request: _Request, answer: _Answer, elapsed_ms: float, wire: _Wire
    ) -> None:
        url, payload, params = request.url, request.payload, request.params
        path = urllib.parse.urlsplit(url).path.rstrip("/")
        # Every ITSM API ends its path with its name; the bare base URL is the probe that
        # checks the target can be reached at all.
        api = path.rpartition("/")[2] if "/itsm/" in f"{path}/" else "probe"
        body = payload or {}
        sns = body.get("sns")
        sn = str(body.get("sn") or (params or {}).get("sn") or "")
        if not sn and isinstance(sns, list):
            sn = ngettext("({count} ticket)", "({count} tickets)", len(sns)).format(count=len(sns))
        action = str(body.get("action_type") or "-")
        key = (api, sn, action)
        attempt = self._attempts.get(key, 0) + 1
        self._attempts[key] = attempt
        verdict = str(getattr(answer.verdict, "value", answer.verdict))
        message = "" if verdict == "success" else mask_text(answer.message, self._scrubber)
        fields: dict[str, object] = {
            "api": api,
            "sn": sn or "-",
            "action": action,
            "http_status": answer.http_status,
            "code": answer.code,
            "ms": round(elapsed_ms, 1),
            "attempt": attempt,
            "result": verdict,
        }
        if message:
            fields["message"] = message
        if self.level >= 2:
            sent = dict(wire.headers)
            full_url = wire.url or url
            if params and not wire.url:
                full_url += "?" + urllib.parse.urlencode(params)
            fields["request"] = {
                "method": request.method,
                "url": mask_url(full_url, self._scrubber),
                "headers": mask_headers(sent, self._scrubber),
                "body": mask_text(json.dumps(payload, ensure_ascii=False), self._scrubber)
                if payload is not None
                else "",
            }
            fields["response_body"] = _cut(
                mask_text(bytes(wire.body).decode("utf-8", "replace"), self._scrubber)
            )
        if self._events is not None:
            self._events("http", fields)
            return
        self._write(when, fields)

    def _write(self, when: datetime, fields: Mapping[str, object]) -> None:
        def shown(value: object) -> str:
            return "-" if value is None else str(value)

        line = (
            f"batchops: {when.isoformat(timespec='milliseconds')} {fields['api']} "
            f"sn={fields['sn']} action={fields['action']} "
            f"http={shown(fields['http_status'])} code={shown(fields['code'])} "
            f"ms={fields['ms']} attempt={fields['attempt']} {fields['result']}"
        )
        if "message" in fields:
            line += f": {fields['message']}"
        lines = [line]
        request = fields.get("request")
        if isinstance(request, dict):
            lines.append(f"  > {request['method']} {request['url']}")
            lines += [f"  > {name}: {value}" for name, value in request["headers"].items()]
            if request["body"]:
                lines.append(f"  > {request['body']}")
            lines.append(f"  < {fields['response_body']}")
        stream = self._stream or sys.stderr
        stream.write("\n".join(lines) + "\n")
        stream.flush()

"""The stand-in's request handlers: routes, the gateways' credential checks, the
``operate_ticket`` rules in the server's order (docs/itsm.md §3), fault injection, and
the ``/_sandbox`` admin API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from .answers import (
    _APIS,
    _admin_body,
    _as_int,
    _as_text,
    _Call,
    _code_of,
    _envelope,
    _error,
    _info_data,
    _json_response,
    _list_item,
    _ok,
    _status_data,
    _TicketFilter,
    _timeout_code,
    _Verdict,
)
from .state import (
    ACTIONS,
    AUTH_HEADER,
    CODE_BUSINESS,
    CODE_ESB_APP_NO_PERMISSION,
    CODE_ESB_AUTH,
    CODE_ESB_BACKEND_TIMEOUT,
    CODE_ESB_BAD_ARGUMENT,
    CODE_ESB_NO_COMPONENT,
    CODE_GW_AUTH,
    CODE_GW_BACKEND_TIMEOUT,
    CODE_GW_NO_PERMISSION,
    CODE_GW_NOT_FOUND,
    CODE_GW_RATE_LIMIT,
    CODE_LEGACY_PARAM,
    CODE_NOT_FOUND,
    CODE_OK,
    DEFAULT_PAGE_SIZE,
    ERROR_CODE_HEADER,
    ESB_PREFIX,
    FORBIDDEN_TEXT,
    MAX_ACTION_MESSAGE,
    MAX_PAGE_SIZE,
    MSG_APP_AUTH,
    MSG_NOT_FOUND,
    MSG_RATE_LIMIT,
    SERVICE_OFF_HTML,
    SYSTEM_ACCOUNT,
    UNAVAILABLE_TEXT,
    Faults,
    SandboxState,
    Ticket,
    _now_text,
)

# --------------------------------------------------------------------------- the app

_SHUTDOWN: Final = web.AppKey("sandbox_shutdown", asyncio.Event)


@dataclass(frozen=True, slots=True)
class _Operation:
    """Who asks operate_ticket to do what, as the server reads the request."""

    sn: str
    action: str
    operator: str
    message: str = ""

    @classmethod
    def of(cls, call: _Call, sn: str) -> _Operation | None:
        """The operation a call asks for; None for a read API."""
        if call.api != "operate_ticket":
            return None
        operator = _as_text(call.params.get("operator"))
        if call.gateway and "username" in call.params:
            # The trap: on the gateway path a body key "username" replaces operator.
            operator = _as_text(call.params["username"])
        message = _as_text(call.params.get("action_message"))
        return cls(sn, _as_text(call.params.get("action_type")), operator, message)


class _Server:
    """Request handlers bound to one :class:`SandboxState`."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        #: Operations a slow backend will still apply (kept referenced until they are).
        self._late: set[asyncio.Future[web.Response]] = set()

    # -- routing -------------------------------------------------------------------

    async def api(self, request: web.Request) -> web.StreamResponse:
        gateway = not request.path.startswith(ESB_PREFIX)
        api = request.match_info["api"]
        if _APIS.get(api) != request.method:
            return self._no_such_api(request, gateway)
        state = self.state
        state._count_request(api)

        if request.method == "GET":
            params: dict[str, Any] = dict(request.query)
        else:
            params = await self._read_body(request, gateway)

        sn: str | None = None
        if api == "operate_ticket":
            raw_sn = params.get("sn")
            sn = raw_sn if isinstance(raw_sn, str) else ("" if raw_sn is None else str(raw_sn))
        state._enter(sn)
        holding_sn = sn is not None

        def release_sn() -> None:
            nonlocal holding_sn
            if holding_sn and sn is not None:
                holding_sn = False
                state._leave_sn(sn)

        try:
            call = _Call(api, gateway, params, f"{request.scheme}://{request.host}")
            return await self._serve(request, call, sn or "", release_sn)
        finally:
            state.stats.in_flight -= 1
            release_sn()

    async def unknown(self, request: web.Request) -> web.StreamResponse:
        return self._no_such_api(request, not request.path.startswith("/api/c/compapi/"))

    def _no_such_api(self, request: web.Request, gateway: bool) -> web.Response:
        self.state._count_request("unknown")
        if gateway:
            return _error(
                CODE_GW_NOT_FOUND,
                f"API not found [method={request.method}, path={request.path}]",
                404,
                gateway_error=True,
            )
        return _error(
            CODE_ESB_NO_COMPONENT,
            f"组件不存在 (component not found): {request.method} {request.path}",
        )

    @staticmethod
    async def _read_body(request: web.Request, gateway: bool) -> dict[str, Any]:
        raw = await request.read()
        # The gateway only forwards a body it recognises as JSON; without the header the
        # backend sees an empty body (and operate_ticket answers "ticket not found").
        if gateway and request.content_type != "application/json":
            return {}
        if not raw:
            return {}
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    # -- credentials ---------------------------------------------------------------

    def _authenticate(self, request: web.Request, call: _Call) -> web.Response | None:
        """None when the caller may proceed, else the gateway's or ESB's refusal."""
        header = request.headers.get(AUTH_HEADER)
        creds: Any
        if header is not None:
            try:
                creds = json.loads(header)
            except ValueError:
                creds = None
            if not isinstance(creds, dict):
                return self._auth_failure(
                    call,
                    f"{AUTH_HEADER} is not a valid JSON object",
                    esb_code=CODE_ESB_BAD_ARGUMENT,
                    esb_message=f"参数错误: 请求头 {AUTH_HEADER} 不是合法的 JSON 对象",
                )
        elif call.gateway:
            return self._auth_failure(call, f"please provide the {AUTH_HEADER} header")
        else:
            creds = call.params

        config = self.state.config
        if creds.get("bk_app_code") != config.app_code or (
            creds.get("bk_app_secret") != config.app_secret
        ):
            return self._auth_failure(
                call, "bk_app_code or bk_app_secret is incorrect", esb_message=MSG_APP_AUTH
            )

        username = creds.get("bk_username")
        token = creds.get("bk_token")
        if config.whitelisted and isinstance(username, str) and username:
            return None
        if isinstance(token, str) and token:
            if token in config.bad_tokens:
                return self._auth_failure(
                    call,
                    "bk_token is invalid or expired",
                    esb_message="用户认证失败: 用户登录态无效 (bk_token is invalid)",
                )
            return None
        if isinstance(username, str) and username:
            return self._auth_failure(
                call,
                "the app is not whitelisted to skip user authentication; provide bk_token",
                esb_message="用户认证失败: 应用不在免用户认证白名单中，请提供 bk_token",
            )
        return self._auth_failure(
            call,
            "please provide a user identity (bk_token or bk_username)",
            esb_message="用户认证失败: 请提供 bk_token 或 bk_username",
        )

    def _auth_failure(
        self,
        call: _Call,
        reason: str,
        *,
        esb_code: int = CODE_ESB_AUTH,
        esb_message: str | None = None,
    ) -> web.Response:
        self.state.stats.auth_failures += 1
        if call.gateway:
            return _error(
                CODE_GW_AUTH,
                f'App or user authentication failed [reason="{reason}"]',
                400,
                gateway_error=True,
            )
        # ESB's own errors travel in the body only (no X-Bkapi-Error-Code header)
        return _error(esb_code, esb_message or f"APP认证失败: {reason}")

    # -- the common path -----------------------------------------------------------

    async def _serve(
        self, request: web.Request, call: _Call, sn: str, release_sn: Callable[[], None]
    ) -> web.StreamResponse:
        """Credentials, the injected faults in the server's order, then the API itself."""
        state = self.state
        faults = state.faults
        operation = _Operation.of(call, sn)
        refusal = self._refusal(request, call, faults)
        if refusal is not None:
            self._record(operation, _code_of(refusal), False)
            return refusal

        draw = None
        if (operation is not None or faults.faults_on_reads) and faults.any_random:
            draw = state._draw()
        injected = self._injected_failure(call, faults, draw)
        if injected is not None:
            code, failure = injected
            self._record(operation, code, False)
            return failure

        timed_out = draw is not None and draw[2] < faults.backend_timeout_rate
        lost = not timed_out and draw is not None and draw[3] < faults.lost_rate
        if operation is not None:
            coin = draw[4] if draw is not None else 0.0
            response = await self._operate(call, operation, faults, timed_out, coin)
        else:
            response = await self._answer_read(call, faults, timed_out)

        if lost:
            state._fault("lost")
            # the server's work is done; only the answer is missing
            release_sn()
            return await self._lose(request, response, faults)
        return response

    def _record(self, operation: _Operation | None, code: int, applied: bool) -> None:
        """Log an operate_ticket call (reads are counted, not logged)."""
        if operation is not None:
            self.state._record(
                operation.sn, operation.action, operation.operator, code, applied, operation.message
            )

    def _refusal(self, request: web.Request, call: _Call, faults: Faults) -> web.Response | None:
        """The gateway's or ESB's refusal of the caller or of the API, if any."""
        refusal = self._authenticate(request, call)
        if refusal is None and call.api in faults.refused_apis:
            self.state._fault("refused_api")
            refusal = self._no_permission(call)
        return refusal

    def _injected_failure(
        self, call: _Call, faults: Faults, draw: tuple[float, ...] | None
    ) -> tuple[int, web.Response] | None:
        """A failure in front of the backend (code to log, answer), or None to go on."""
        state = self.state
        if draw is not None and draw[0] < faults.rate_limit_rate:
            state._fault("rate_limit")
            return CODE_GW_RATE_LIMIT, self._rate_limited(call)
        if draw is not None and draw[1] < faults.error_5xx_rate:
            state._fault("error_5xx")
            return 503, web.Response(status=503, text=UNAVAILABLE_TEXT)
        if faults.service_off:
            state._fault("service_off")
            page = web.Response(text=SERVICE_OFF_HTML, content_type="text/html", charset="utf-8")
            return 200, page
        if faults.gateway_forbidden:
            state._fault("gateway_forbidden")
            return 403, web.Response(status=403, text=FORBIDDEN_TEXT)
        return None

    async def _operate(
        self, call: _Call, operation: _Operation, faults: Faults, timed_out: bool, coin: float
    ) -> web.Response:
        """operate_ticket: validate, wait, write (unless a timed-out backend did not)."""
        state = self.state
        if faults.backend_delay_s > 0:
            return await self._operate_late(call, operation, faults)
        ticket = state.tickets.get(operation.sn)
        verdict = self._validate(ticket, operation.action, operation.operator, call.params)
        await self._latency(faults)
        if faults.operate_latency_ms > 0:
            await asyncio.sleep(faults.operate_latency_ms / 1000.0)
        # a timed-out backend may or may not have written: a seeded coin decides
        applied = verdict.code == CODE_OK and not (timed_out and coin >= 0.5)
        if applied and ticket is not None:
            self._apply(ticket, operation.action, verdict)
        if timed_out:
            state._fault("backend_timeout")
            self._record(operation, _timeout_code(call), applied)
            return self._backend_timeout(call)
        self._record(operation, verdict.code, applied)
        return _ok([]) if verdict.code == CODE_OK else _error(verdict.code, verdict.message)

    async def _operate_late(
        self, call: _Call, operation: _Operation, faults: Faults
    ) -> web.Response:
        """A backend that gets to the request late; the gateway may give up first.

        ITSM validates and applies the operation when it gets to it, as its worker does
        after the gateway's timeout: the gateway's "backend timeout" says nothing of that.
        """
        work = asyncio.ensure_future(self._apply_later(call, operation, faults.backend_delay_s))
        self._late.add(work)
        work.add_done_callback(self._late.discard)
        if faults.backend_delay_s <= faults.gateway_timeout_s:
            return await asyncio.shield(work)
        await asyncio.sleep(faults.gateway_timeout_s)
        self.state._fault("backend_timeout")
        return self._backend_timeout(call)

    async def _apply_later(
        self, call: _Call, operation: _Operation, delay_s: float
    ) -> web.Response:
        await asyncio.sleep(delay_s)
        ticket = self.state.tickets.get(operation.sn)
        verdict = self._validate(ticket, operation.action, operation.operator, call.params)
        applied = verdict.code == CODE_OK
        if applied and ticket is not None:
            self._apply(ticket, operation.action, verdict)
        self._record(operation, verdict.code, applied)
        return _ok([]) if applied else _error(verdict.code, verdict.message)

    async def _answer_read(self, call: _Call, faults: Faults, timed_out: bool) -> web.Response:
        """A read API, after the backend's latency (or its timeout)."""
        await self._latency(faults)
        if timed_out:
            self.state._fault("backend_timeout")
            return self._backend_timeout(call)
        return self._read(call)

    @staticmethod
    async def _latency(faults: Faults) -> None:
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000.0)

    @staticmethod
    def _no_permission(call: _Call) -> web.Response:
        if call.gateway:
            return _error(
                CODE_GW_NO_PERMISSION,
                f'App has no permission to the resource [api="{call.api}"]',
                403,
                gateway_error=True,
            )
        return _error(
            CODE_ESB_APP_NO_PERMISSION, f"应用没有访问该组件的权限 (component {call.api})"
        )

    def _rate_limited(self, call: _Call) -> web.Response:
        headers = {
            ERROR_CODE_HEADER: str(CODE_GW_RATE_LIMIT),
            "X-Bkapi-RateLimit-Limit": "10",
            "X-Bkapi-RateLimit-Remaining": "0",
            "X-Bkapi-RateLimit-Reset": "1",
        }
        payload = _envelope(False, CODE_GW_RATE_LIMIT, MSG_RATE_LIMIT, None)
        return _json_response(payload, 429 if call.gateway else 200, headers)

    @staticmethod
    def _backend_timeout(call: _Call) -> web.Response:
        if call.gateway:
            return _error(
                CODE_GW_BACKEND_TIMEOUT,
                'Request backend service timeout [reason="backend timed out"]',
                504,
                gateway_error=True,
            )
        return _error(
            CODE_ESB_BACKEND_TIMEOUT,
            "请求第三方系统接口超时 (backend timed out after 30 seconds)",
        )

    async def _lose(
        self, request: web.Request, response: web.Response, faults: Faults
    ) -> web.StreamResponse:
        if faults.lost_mode == "drop":
            transport = request.transport
            if transport is not None:
                transport.abort()
            return response  # aiohttp drops it quietly: the connection is gone
        shutdown = request.app[_SHUTDOWN]
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(shutdown.wait(), faults.lost_hang_s)
        return response

    # -- operate_ticket ------------------------------------------------------------

    def _business(self, reason: str) -> _Verdict:
        if self.state.config.legacy_codes:
            return _Verdict(CODE_LEGACY_PARAM, reason)
        return _Verdict(
            CODE_BUSINESS,
            f"接口异常，请检查请求参数: [ErrorDetail(string='{reason}', code='invalid')]",
        )

    def _validate(
        self, ticket: Ticket | None, action: str, operator: str, params: Mapping[str, Any]
    ) -> _Verdict:
        """The server's checks, in the server's order (docs/itsm.md §3)."""
        if ticket is None:
            return _Verdict(CODE_NOT_FOUND, MSG_NOT_FOUND)
        if action not in ACTIONS:
            return _Verdict(CODE_BUSINESS, f"单据操作失败，不支持的操作类型: {action}")
        if action == "WITHDRAW":
            if operator != ticket.creator and operator != SYSTEM_ACCOUNT:
                return self._business("抱歉，你无权撤销单据")
            if ticket.is_final:
                return self._business("抱歉，单据已经结束，无法撤销")
            if not ticket.withdraw_allowed:
                return self._business("抱歉，当前流程配置无法撤单，请联系服务负责人")
        else:
            if ticket.is_final:
                return self._business("抱歉，单据已关闭，无法操作")
            if ticket.is_child:
                return self._business("抱歉，子单为只读状态，无法操作")
            if operator not in ticket.processors:
                return self._business(f"抱歉，{operator}无权操作该单据")
        if action == "UNSUSPEND" and ticket.status != "SUSPENDED":
            return self._business("抱歉，该单据不在挂起中，无法操作")
        if "action_message" not in params:
            return _Verdict(CODE_BUSINESS, "接口异常，请检查请求参数: 'action_message'")
        message = params["action_message"]
        if message is None or (isinstance(message, str) and not message.strip()):
            return self._business("action_message 不能为空")
        if not isinstance(message, str):
            return self._business("action_message 必须是字符串")
        if len(message) > MAX_ACTION_MESSAGE:
            return self._business(f"action_message 长度不能超过 {MAX_ACTION_MESSAGE} 个字符")
        return _Verdict(CODE_OK, "success", ticket.status, ticket.previous_status)

    def _apply(self, ticket: Ticket, action: str, verdict: _Verdict) -> None:
        """Write the action, based on the ticket as it was validated (the server's way)."""
        if action == "SUSPEND":
            # The double-suspend bug: a SUSPENDED ticket passes the "is running" check,
            # and records SUSPENDED as the status to go back to.
            if verdict.seen_status == "SUSPENDED":
                self.state.stats.double_suspends += 1
            ticket.previous_status = verdict.seen_status
            ticket.status = "SUSPENDED"
        elif action == "UNSUSPEND":
            ticket.status = verdict.seen_previous or "RUNNING"
        elif action == "WITHDRAW":
            ticket.status = "REVOKED"
            ticket.end_at = _now_text()
        else:
            ticket.status = "TERMINATED"
            ticket.end_at = _now_text()

    # -- reads ---------------------------------------------------------------------

    def _read(self, call: _Call) -> web.Response:
        if call.api == "get_tickets":
            return self._get_tickets(call.params, call.site)
        ticket = self.state.tickets.get(_as_text(call.params.get("sn")))
        if ticket is None:
            return _error(CODE_NOT_FOUND, MSG_NOT_FOUND)
        if call.api == "get_ticket_status":
            return _ok(_status_data(ticket))
        return _ok(_info_data(ticket, self.state.order_key(ticket.sn)))

    def _get_tickets(self, params: Mapping[str, Any], site: str) -> web.Response:
        """The ticket list (docs/itsm.md §5): filters, newest first, paged."""
        state = self.state
        page = _as_int(params.get("page"), 1)
        largest = min(MAX_PAGE_SIZE, state.config.max_page_size)
        page_size = min(_as_int(params.get("page_size"), DEFAULT_PAGE_SIZE), largest)
        page = max(page, 1)
        page_size = max(page_size, 1)
        try:
            keep = _TicketFilter.from_params(params).keeps
        except ValueError as exc:
            # (inferred) the ORM refuses a time it cannot parse; the view answers an error.
            return _error(CODE_BUSINESS, f"接口异常，请检查请求参数: {exc}")
        sns = params.get("sns")
        if isinstance(sns, list) and sns:
            wanted = {sn for sn in sns if isinstance(sn, str)}
            candidates: Iterable[Ticket] = (
                state.tickets[sn] for sn in wanted if sn in state.tickets
            )
        else:
            # An empty or missing sns is no filter at all: every ticket is a candidate.
            candidates = state.tickets.values()
        found = [t for t in candidates if keep(t)]
        found.sort(key=lambda t: state.order_key(t.sn), reverse=True)  # newest first (-id)
        start = (page - 1) * page_size
        items = [
            _list_item(t, state.order_key(t.sn), site) for t in found[start : start + page_size]
        ]
        return _ok(
            {
                "page": page,
                "total_page": max(1, -(-len(found) // page_size)),
                "count": len(found),
                "next": None,
                "previous": None,
                "items": items,
            }
        )

    # -- /_sandbox/ ----------------------------------------------------------------

    async def get_stats(self, request: web.Request) -> web.Response:
        include_log = request.query.get("log", "1") not in ("0", "false", "no")
        return _json_response(self.state.stats.as_dict(include_log=include_log))

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.state.reset_stats()
        return _json_response({"reset": True})

    async def get_tickets(self, request: web.Request) -> web.Response:
        tickets = self.state.tickets
        sn = request.query.get("sn")
        if sn is not None:
            chosen = [tickets[sn]] if sn in tickets else []
        else:
            chosen = list(tickets.values())
        return _json_response({"tickets": [t.to_json() for t in chosen]})

    async def post_tickets(self, request: web.Request) -> web.Response:
        body = await _admin_body(request)
        if isinstance(body, web.Response):
            return body
        state = self.state
        try:
            tickets_raw = body.get("tickets", [])
            if not isinstance(tickets_raw, list) or not all(
                isinstance(t, dict) for t in tickets_raw
            ):
                raise ValueError("'tickets' must be a list of objects")
            tickets = [Ticket.from_json(t) for t in tickets_raw]
            generate = body.get("generate")
            if generate is not None and not isinstance(generate, dict):
                raise ValueError("'generate' must be an object")
            if generate is not None:
                prefix, count = generate.get("prefix", "BENCH"), generate.get("count", 0)
                operator = generate.get("operator", SYSTEM_ACCOUNT)
                status = generate.get("status", "RUNNING")
                if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                    raise ValueError("'generate.count' must be a non-negative integer")
                if not all(isinstance(v, str) and v for v in (prefix, operator, status)):
                    raise ValueError("generate prefix/operator/status must be non-empty strings")
        except ValueError as exc:
            return _json_response({"error": str(exc)}, 400)
        seeded = state.seed_tickets(tickets, clear=bool(body.get("clear", False)))
        if generate is not None:
            seeded += state.generate_tickets(prefix, count, operator, status)
        return _json_response({"seeded": seeded, "total": len(state.tickets)})

    async def get_faults(self, request: web.Request) -> web.Response:
        return _json_response(self.state.faults.to_json())

    async def post_faults(self, request: web.Request) -> web.Response:
        body = await _admin_body(request)
        if isinstance(body, web.Response):
            return body
        try:
            faults = self.state.faults.updated(body)
        except (TypeError, ValueError) as exc:
            return _json_response({"error": str(exc)}, 400)
        self.state.set_faults(faults)
        return _json_response(faults.to_json())

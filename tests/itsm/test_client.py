"""Tests of batchops.itsm.client: :class:`~batchops.itsm.client.ItsmClient` over loopback HTTP.

It is driven against the stand-in server, so the answers of docs/itsm.md §2 arrive through
aiohttp exactly as they would from a real gateway (their reading byte by byte is tested
in ``test_answers.py``), and answers that never come are judged by what may have run.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from batchops.itsm.client import ItsmClient, api_url, likely_base_url, no_proxy_excludes
from batchops.itsm.transport import Answer, Verdict
from batchops.model import Action, Row
from batchops.sandbox import Faults, SandboxConfig, SandboxState, SandboxThread, Ticket
from batchops.settings.sources import ClientSettings, Credentials, Gateway

S = Verdict.SUCCESS
REJ = Verdict.REJECTED
FAT = Verdict.FATAL
RET = Verdict.RETRY
AMB = Verdict.AMBIGUOUS


APP_CODE = "batchops-sandbox"
SECRET = "client-test-secret"


@pytest.fixture
def server() -> Iterator[SandboxThread]:
    """A stand-in ITSM with tickets A1 (RUNNING) and S1 (SUSPENDED), processed by admin."""
    state = SandboxState(SandboxConfig(app_code=APP_CODE, app_secret=SECRET))
    state.seed_tickets(
        [
            Ticket(sn="A1", status="RUNNING", creator="admin", processors=["admin"]),
            Ticket(sn="S1", status="SUSPENDED", creator="admin", processors=["admin"]),
        ]
    )
    with SandboxThread(state) as running:
        yield running


def client_settings(
    url: str, gateway: Gateway = "esb", *, secret: str = SECRET, timeout: float = 5.0
) -> ClientSettings:
    """Client settings for the stand-in."""
    creds = Credentials(app_code=APP_CODE, app_secret=secret, username="admin")
    return ClientSettings(base_url=url, gateway=gateway, credentials=creds, timeout_s=timeout)


def suspend(sn: str = "A1") -> Row:
    """A SUSPEND row."""
    return Row(0, sn, "admin", Action.SUSPEND, "batch")


def operate(cfg: ClientSettings, row: Row) -> Answer:
    """Send one row with a fresh client and return its answer."""

    async def go() -> Answer:
        async with ItsmClient(cfg) as client:
            return await client.operate(row)

    return asyncio.run(go())


def set_faults(server: SandboxThread, **switches: Any) -> None:
    """Change the stand-in's fault switches while it runs."""
    server.call(lambda: server.state.set_faults(Faults(**switches)))


def test_api_urls_keep_the_trailing_slash() -> None:
    """Both gateways' URLs end with a slash (the gateway needs it)."""
    assert api_url("https://paas.x/", "esb", "operate_ticket") == (
        "https://paas.x/api/c/compapi/v2/itsm/operate_ticket/"
    )
    assert api_url("https://bkapi.x/api/bk-itsm/prod", "apigw", "get_tickets") == (
        "https://bkapi.x/api/bk-itsm/prod/v2/itsm/get_tickets/"
    )


@pytest.mark.parametrize(
    ("url", "no_proxy", "excluded"),
    [
        ("http://127.0.0.1:8080/", "10.0.0.0/8,127.0.0.0/8", True),
        ("http://10.1.2.3/", "10.0.0.0/8", True),
        ("http://11.1.2.3/", "10.0.0.0/8", False),
        ("http://127.0.0.1:8080/", "127.0.0.1:8080", True),
        ("http://127.0.0.1:8081/", "127.0.0.1:8080", False),
        ("http://itsm.example.com:8080/", "itsm.example.com:8080", True),
        ("http://itsm.example.com:8081/", "itsm.example.com:8080", False),
        ("https://itsm.example.com/", "itsm.example.com:443", True),
        ("http://itsm.example.com/", ".example.com", True),
        ("http://itsm.example.com/", "example.com", True),
        ("http://badexample.com/", "example.com", False),
        ("http://ITSM.Example.com/", "itsm.example.COM", True),
        ("http://[::1]:5/", "::1", True),
        ("http://[::1]:5/", "[::1]:5", True),
        ("http://[::1]:5/", "[::1]:6", False),
        ("http://[::1]:5/", "::1/128", True),
        ("http://a.example.org/", "*", True),
        ("http://a.example.org/", "example.com, *", True),
        ("http://a.example.org/", "", False),
        ("http://127.0.0.1/", "localhost", False),
    ],
)
def test_no_proxy_is_read_as_requests_reads_it(url: str, no_proxy: str, excluded: bool) -> None:
    """Hosts, domain suffixes, host:port, CIDR blocks and ``*`` exclude what requests
    excludes (plus ``ip:port`` and a ``*`` within a list); nothing else is excluded."""
    assert no_proxy_excludes(url, no_proxy) is excluded


@pytest.mark.parametrize("gateway", ["esb", "apigw"])
def test_operate_success_over_http(server: SandboxThread, gateway: Gateway) -> None:
    """A real success answer is SUCCESS on both gateways, and the ticket really changed."""
    answer = operate(client_settings(server.url, gateway), suspend())
    assert (answer.verdict, answer.code, answer.http_status) == (S, 0, 200)
    assert answer.request_id
    assert server.state.tickets["A1"].status == "SUSPENDED"
    (op,) = server.state.stats.operations
    assert op.operator == "admin"


@pytest.mark.parametrize(
    ("gateway", "code", "status"), [("esb", 1306000, 200), ("apigw", 1640001, 400)]
)
def test_wrong_secret_over_http_is_fatal(
    server: SandboxThread, gateway: Gateway, code: int, status: int
) -> None:
    """A wrong secret is FATAL with the gateway's own code and status, secret not echoed."""
    answer = operate(client_settings(server.url, gateway, secret="not-it"), suspend())
    assert (answer.verdict, answer.code, answer.http_status) == (FAT, code, status)
    assert "not-it" not in answer.message
    assert server.state.tickets["A1"].status == "RUNNING"


@pytest.mark.parametrize(
    ("gateway", "code", "status"), [("esb", 1642902, 200), ("apigw", 1642902, 429)]
)
def test_rate_limit_over_http(
    server: SandboxThread, gateway: Gateway, code: int, status: int
) -> None:
    """Rate limits: HTTP 200 + header on the ESB path, 429 on the gateway; both wait 1 s."""
    set_faults(server, rate_limit_rate=1.0)
    answer = operate(client_settings(server.url, gateway), suspend())
    assert (answer.verdict, answer.code, answer.http_status) == (RET, code, status)
    assert answer.rate_limited
    assert answer.retry_after_s == 1.0


@pytest.mark.parametrize(
    ("gateway", "code", "status"), [("esb", 1306201, 200), ("apigw", 1650401, 504)]
)
def test_backend_timeout_over_http_is_ambiguous(
    server: SandboxThread, gateway: Gateway, code: int, status: int
) -> None:
    """A backend timeout may or may not have been applied: AMBIGUOUS, never RETRY."""
    set_faults(server, backend_timeout_rate=1.0)
    answer = operate(client_settings(server.url, gateway), suspend())
    assert (answer.verdict, answer.code, answer.http_status) == (AMB, code, status)


def test_503_over_http_is_retry(server: SandboxThread) -> None:
    """A plain-text 503 is RETRY (nothing was applied)."""
    set_faults(server, error_5xx_rate=1.0)
    answer = operate(client_settings(server.url), suspend())
    assert (answer.verdict, answer.http_status) == (RET, 503)
    assert server.state.tickets["A1"].status == "RUNNING"


def test_service_off_over_http_is_fatal(server: SandboxThread) -> None:
    """The real service-off page (HTML, HTTP 200) stops the run and says so."""
    set_faults(server, service_off=True)
    answer = operate(client_settings(server.url), suspend())
    assert (answer.verdict, answer.http_status) == (FAT, 200)
    assert "HTML" in answer.message


def test_forbidden_text_over_http_is_fatal(server: SandboxThread) -> None:
    """The real plain-text 403 stops the run and quotes the text."""
    set_faults(server, gateway_forbidden=True)
    answer = operate(client_settings(server.url), suspend())
    assert (answer.verdict, answer.http_status) == (FAT, 403)
    assert "Forbidden" in answer.message


@pytest.mark.parametrize(
    ("gateway", "code", "status"), [("esb", 1306404, 200), ("apigw", 1640401, 404)]
)
def test_wrong_base_url_is_fatal(
    server: SandboxThread, gateway: Gateway, code: int, status: int
) -> None:
    """A base URL that already holds an API path reaches no component: FATAL."""
    prefix = "/api/c/compapi" if gateway == "esb" else "/api/bk-itsm/prod/v2"
    answer = operate(client_settings(server.url + prefix, gateway), suspend())
    assert (answer.verdict, answer.code, answer.http_status) == (FAT, code, status)


def test_lost_answer_hang_is_ambiguous_for_operate(server: SandboxThread) -> None:
    """An answer that never comes within --timeout is AMBIGUOUS, and it was in fact applied."""
    set_faults(server, lost_rate=1.0, lost_mode="hang", lost_hang_s=2.0)
    started = time.monotonic()
    answer = operate(client_settings(server.url, timeout=0.5), suspend())
    assert answer.verdict is AMB
    assert "may have run" in answer.message
    assert time.monotonic() - started < 1.8
    assert server.state.tickets["A1"].status == "SUSPENDED"


def test_lost_answer_drop_is_ambiguous_for_operate(server: SandboxThread) -> None:
    """A connection dropped after the action ran is AMBIGUOUS too."""
    set_faults(server, lost_rate=1.0, lost_mode="drop")
    answer = operate(client_settings(server.url), suspend())
    assert answer.verdict is AMB
    assert server.state.tickets["A1"].status == "SUSPENDED"


def test_lost_read_is_only_retried(server: SandboxThread) -> None:
    """A read whose answer is lost changed nothing: RETRY, not AMBIGUOUS."""
    set_faults(server, lost_rate=1.0, lost_mode="hang", lost_hang_s=2.0, faults_on_reads=True)

    async def go() -> Answer:
        async with ItsmClient(client_settings(server.url, timeout=0.5)) as client:
            return await client.read_ticket_status("A1")

    assert asyncio.run(go()).verdict is RET


def test_connection_refused_is_retry() -> None:
    """Nobody listening: nothing was sent, so RETRY with a message naming the address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    answer = operate(client_settings(f"http://127.0.0.1:{port}"), suspend())
    assert answer.verdict is RET
    assert str(port) in answer.message


@pytest.mark.parametrize("gateway", ["esb", "apigw"])
def test_reads_over_http(server: SandboxThread, gateway: Gateway) -> None:
    """get_ticket_status and get_tickets answer the statuses; unknown sns are absent."""

    async def go() -> tuple[Answer, Answer, Answer]:
        async with ItsmClient(client_settings(server.url, gateway)) as client:
            return (
                await client.read_ticket_status("S1"),
                await client.read_ticket_status("NOPE"),
                await client.read_tickets(["A1", "S1", "NOPE"]),
            )

    one, unknown, many = asyncio.run(go())
    assert one.verdict is S
    assert one.data["current_status"] == "SUSPENDED"
    assert (unknown.verdict, unknown.code) == (REJ, 3900022)
    assert many.verdict is S
    assert {i["sn"]: i["current_status"] for i in many.data["items"]} == {
        "A1": "RUNNING",
        "S1": "SUSPENDED",
    }


def test_business_rejection_over_http_shows_the_inner_reason(server: SandboxThread) -> None:
    """UNSUSPEND of a running ticket: 3900004 with the Chinese reason, unwrapped."""
    row = Row(0, "A1", "admin", Action.UNSUSPEND, "resume")
    answer = operate(client_settings(server.url), row)
    assert (answer.verdict, answer.code) == (REJ, 3900004)
    assert answer.message == "抱歉，该单据不在挂起中，无法操作"


def test_client_counts_every_request(server: SandboxThread) -> None:
    """requests_sent counts reads and operations alike, as the server does."""

    async def go() -> int:
        async with ItsmClient(client_settings(server.url)) as client:
            await client.read_ticket_status("A1")
            await client.read_tickets(["A1"])
            await client.operate(suspend())
            return client.requests_sent

    assert asyncio.run(go()) == 3
    assert server.state.stats.requests == {
        "get_ticket_status": 1,
        "get_tickets": 1,
        "operate_ticket": 1,
    }


@pytest.mark.parametrize(
    ("base_url", "gateway", "likely"),
    [
        # An API's own URL pasted whole: cut at the API path.
        (
            "https://paas.example.com/api/c/compapi/v2/itsm/",
            "esb",
            ("esb", "https://paas.example.com"),
        ),
        ("https://paas.example.com/api/c/compapi", "esb", ("esb", "https://paas.example.com")),
        # A stage (or the gateway's host) given with the ESB: the API gateway was meant.
        (
            "https://bkapi.example.com/api/bk-itsm/prod",
            "esb",
            ("apigw", "https://bkapi.example.com/api/bk-itsm/prod"),
        ),
        (
            "https://bkapi.example.com",
            "esb",
            ("apigw", "https://bkapi.example.com/api/bk-itsm/prod"),
        ),
        # A bare host with the API gateway: its stage, or the ESB for a paas host.
        (
            "https://bkapi.example.com",
            "apigw",
            ("apigw", "https://bkapi.example.com/api/bk-itsm/prod"),
        ),
        ("https://paas.example.com/", "apigw", ("esb", "https://paas.example.com")),
        (
            "https://bkapi.example.com/api/bk-itsm/prod/v2/itsm/get_tickets/",
            "apigw",
            ("apigw", "https://bkapi.example.com/api/bk-itsm/prod"),
        ),
        # Already the right form: nothing likelier to say.
        ("https://paas.example.com", "esb", None),
        ("https://bkapi.example.com/api/bk-itsm/prod/", "apigw", None),
    ],
)
def test_a_404s_likely_base_url_is_the_form_its_gateway_takes(
    base_url: str, gateway: str, likely: tuple[str, str] | None
) -> None:
    assert likely_base_url(base_url, gateway) == likely

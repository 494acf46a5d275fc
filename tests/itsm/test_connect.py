"""Tests of batchops.itsm.connect: the one way from the settings to a client, over loopback.

Each client is opened against the stand-in server, so what the settings mean (a proxy
used or not, the tracer masking the secret) is seen on a real connection.
"""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import Iterator

import pytest

from batchops.itsm import Target, Verdict, client_for, client_settings, configured_target
from batchops.itsm.trace import Tracer
from batchops.sandbox import SandboxConfig, SandboxState, SandboxThread, Ticket
from batchops.settings import Connection, Credentials

APP_CODE = "batchops-sandbox"
SECRET = "connect-test-secret-4b1d"
CREDENTIALS = Credentials(app_code=APP_CODE, app_secret=SECRET, username="admin")


@pytest.fixture
def server() -> Iterator[SandboxThread]:
    """A stand-in ITSM with one RUNNING ticket, C1."""
    state = SandboxState(SandboxConfig(app_code=APP_CODE, app_secret=SECRET))
    state.seed_tickets([Ticket("C1", "RUNNING", "admin", ["admin"])])
    with SandboxThread(state) as running:
        yield running


def _dead_proxy() -> str:
    """A proxy URL on a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def _connection(url: str, proxy: str | None = None) -> Connection:
    return Connection(base_url=url, gateway="esb", proxy=proxy, credentials=CREDENTIALS)


def _status(connection: Connection, target: Target | None = None) -> str:
    async def read() -> str:
        async with client_for(connection, target) as client:
            answer = await client.read_ticket_status("C1")
        assert answer.verdict is Verdict.SUCCESS, answer.message
        assert isinstance(answer.data, dict)
        return str(answer.data["current_status"])

    return asyncio.run(read())


def test_the_configured_target_goes_through_the_settings_proxy(server: SandboxThread) -> None:
    """A proxy in the settings carries the requests: a dead one fails them, and names it."""
    connection = _connection(server.url, proxy=_dead_proxy())

    async def probe() -> str:
        async with client_for(connection) as client:
            answer = await client.probe()
        assert answer.verdict is Verdict.RETRY
        return answer.network

    assert asyncio.run(probe()).startswith("proxy error")
    assert server.state.stats.requests == {}
    assert _status(_connection(server.url, proxy="none")) == "RUNNING"


def test_the_stand_in_is_reached_directly_whatever_the_proxies(
    server: SandboxThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded stand-in is on this machine: neither the settings' proxy nor the
    environment's is used to reach it."""
    dead = _dead_proxy()
    monkeypatch.setenv("HTTP_PROXY", dead)
    monkeypatch.setenv("NO_PROXY", "")
    connection = Connection(base_url="", gateway="esb", sandbox=True, proxy=dead)
    target = Target(server.url, CREDENTIALS, stand_in=True)
    assert _status(connection, target) == "RUNNING"
    settings = client_settings(connection, target, concurrency=3)
    assert (settings.proxy, settings.trust_env, settings.concurrency) == (None, False, 3)


def test_the_settings_reach_the_client_as_given() -> None:
    """Timeout, CA bundle, --insecure, gateway and proxy go to the client unchanged, and
    the environment's proxies are honoured for a configured target."""
    connection = Connection(
        base_url="https://itsm.example.com",
        gateway="apigw",
        timeout_s=7.5,
        ca_bundle="/etc/ca.pem",
        insecure=True,
        proxy="http://proxy.example.com:3128",
        credentials=CREDENTIALS,
    )
    settings = client_settings(connection, configured_target(connection), concurrency=9)
    assert settings.base_url == "https://itsm.example.com"
    assert (settings.gateway, settings.timeout_s, settings.ca_bundle) == (
        "apigw",
        7.5,
        "/etc/ca.pem",
    )
    assert (settings.insecure, settings.proxy, settings.trust_env) == (
        True,
        "http://proxy.example.com:3128",
        True,
    )
    assert settings.credentials is CREDENTIALS


def test_a_connection_without_credentials_names_no_target() -> None:
    """Only the stand-in comes without credentials in the settings, and it is started,
    not configured: asking for the configured target then is a mistake, said at once."""
    with pytest.raises(ValueError, match="start the stand-in"):
        configured_target(Connection(base_url="", gateway="esb", sandbox=True))


def test_the_tracer_learns_the_secret_it_must_mask(server: SandboxThread) -> None:
    """-vv prints request bodies; the ESB body carries the app secret, which the tracer
    was told of by client_for, so it never shows."""
    stream = io.StringIO()
    tracer = Tracer(2, stream=stream)

    async def read() -> None:
        async with client_for(_connection(server.url), tracer=tracer) as client:
            await client.read_tickets(["C1"])

    asyncio.run(read())
    assert "get_tickets" in stream.getvalue()
    assert SECRET not in stream.getvalue()

"""Tests of the stand-in's fault injection (batchops.sandbox.server): latency, rate limits,
5xx, backend timeouts, lost answers, a service that is off, switched at run time.

Random faults are seeded, so each test's outcome is the same on every run.
"""

from __future__ import annotations

import http.client
import time

import pytest

from batchops.sandbox import Faults, SandboxConfig, SandboxThread

from ..sandbox_http import (
    AUTH_ADMIN,
    ESB,
    get_read,
    operate,
    operate_gw,
    sandbox_with,
    seed,
    send,
    status_of,
)


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

"""Tests of batchops.sandbox.state: fault switches, counters, the operation log and
seeding, read back through ``/_sandbox`` or the state itself."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from batchops.sandbox import Faults, SandboxState, SandboxThread

from ..sandbox_http import AUTH_ADMIN, ESB, WRAPPED, get_read, operate, sandbox_with, seed, send

# --------------------------------------------------------------------------- switches, overlap


def test_faults_reject_bad_values() -> None:
    """Rates outside [0, 1], negative times and unknown modes are refused."""
    with pytest.raises(ValueError, match="between 0 and 1"):
        Faults(error_5xx_rate=1.5)
    with pytest.raises(ValueError, match="latency_ms"):
        Faults(latency_ms=-1)
    with pytest.raises(ValueError, match="lost_mode"):
        Faults(lost_mode="vanish")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown fault switch"):
        Faults().updated({"explode": True})


def test_concurrent_requests_for_one_sn_are_counted(sb: SandboxThread) -> None:
    """Overlapping operate_ticket requests for one sn are counted; other sns are not."""
    seed(sb, "S1")
    seed(sb, "S2")
    seed(sb, "S3")
    sb.state.set_faults(Faults(latency_ms=200))

    async def burst() -> list[int]:
        async with aiohttp.ClientSession() as session:

            async def one(sn: str, action: str) -> int:
                body = {**AUTH_ADMIN, "sn": sn, "operator": "bob", "action_type": action}
                body["action_message"] = "m"
                async with session.post(sb.url + ESB + "operate_ticket/", json=body) as resp:
                    code = (await resp.json())["code"]
                    assert isinstance(code, int)
                    return code

            return list(
                await asyncio.gather(
                    one("S1", "SUSPEND"),
                    one("S1", "TERMINATE"),
                    one("S2", "SUSPEND"),
                    one("S3", "SUSPEND"),
                )
            )

    codes = asyncio.run(burst())
    stats = sb.state.stats
    assert stats.concurrent_same_sn == 1
    assert stats.max_in_flight == 4
    # the server takes no lock: both S1 requests passed validation and were applied
    assert codes == [0, 0, 0, 0]
    assert sum(op.applied for op in stats.ops_for("S1")) == 2


# --------------------------------------------------------------------------- stats & seeding


def test_stats_endpoint_counts_requests_and_logs_operations(sb: SandboxThread) -> None:
    """/_sandbox/stats counts per API, logs each operate_ticket, and can be reset."""
    seed(sb, "S1")
    operate(sb, "S1", "bob", "SUSPEND")
    operate(sb, "S1", "eve", "TERMINATE")
    get_read(sb, "get_ticket_status", "S1")
    stats = send(sb.url, "GET", "/_sandbox/stats").json
    assert stats["requests"] == {"operate_ticket": 2, "get_ticket_status": 1}
    assert stats["operations_total"] == 2 and stats["applied_total"] == 1
    assert [(op["operator"], op["code"], op["applied"]) for op in stats["operations"]] == [
        ("bob", 0, True),
        ("eve", 3900004, False),
    ]
    assert sum(stats["per_second"].values()) == 2
    assert "operations" not in send(sb.url, "GET", "/_sandbox/stats?log=0").json
    assert send(sb.url, "DELETE", "/_sandbox/stats").status == 200
    assert sb.state.stats.operations_total == 0
    assert sb.state.stats.requests == {}


def test_stats_record_the_language_each_request_asked_for(sb: SandboxThread) -> None:
    """Blueking-Language per API and value ("" when a request carried none); a path that
    is no API counts as ``unknown``."""
    seed(sb, "S1")
    body = {**AUTH_ADMIN, "sn": "S1", "operator": "bob", "action_type": "SUSPEND"}
    send(sb.url, "POST", ESB + "operate_ticket/", body, {"Blueking-Language": "zh-cn"})
    operate(sb, "S1", "bob", "UNSUSPEND")
    send(sb.url, "GET", "/", headers={"Blueking-Language": "en"})
    stats = send(sb.url, "GET", "/_sandbox/stats?log=0").json
    assert stats["languages"] == {"operate_ticket": {"zh-cn": 1, "": 1}, "unknown": {"en": 1}}
    sb.state.reset_stats()
    assert sb.state.stats.languages == {}


def test_per_second_counts_follow_the_monotonic_clock(sb: SandboxThread) -> None:
    """per_second buckets operate_ticket arrivals by whole monotonic seconds."""
    seed(sb, "S1")
    before = int(time.monotonic())
    for _ in range(3):
        operate(sb, "S1", "mallory", "SUSPEND")
    after = int(time.monotonic())
    buckets = sb.state.stats.per_second
    assert sum(buckets.values()) == 3
    assert all(before <= second <= after for second in buckets)


def test_record_log_off_keeps_counters_only() -> None:
    """record_log=False drops the per-request log but keeps every counter."""
    with sandbox_with(record_log=False) as sb:
        seed(sb, "S1")
        operate(sb, "S1", "bob", "SUSPEND")
        operate(sb, "S1", "bob", "SUSPEND")
        stats = sb.state.stats
        assert stats.operations == []
        assert (stats.operations_total, stats.applied_total, stats.double_suspends) == (2, 2, 1)


def test_tickets_endpoint_seeds_generates_and_dumps(sb: SandboxThread) -> None:
    """POST /_sandbox/tickets seeds explicit and generated tickets; GET dumps them."""
    body = {
        "tickets": [
            {
                "sn": "X1",
                "status": "NEW",
                "creator": "ann",
                "processors": ["bob"],
                "is_child": True,
                "withdraw_allowed": False,
            },
        ],
        "generate": {"prefix": "BENCH", "count": 3, "operator": "ops", "status": "SUSPENDED"},
    }
    answer = send(sb.url, "POST", "/_sandbox/tickets", body)
    assert answer.json == {"seeded": 4, "total": 4}
    dumped = {t["sn"]: t for t in send(sb.url, "GET", "/_sandbox/tickets").json["tickets"]}
    assert set(dumped) == {"X1", "BENCH0000001", "BENCH0000002", "BENCH0000003"}
    assert dumped["X1"]["is_child"] is True and dumped["X1"]["withdraw_allowed"] is False
    assert dumped["BENCH0000002"]["processors"] == ["ops"]
    assert dumped["BENCH0000002"]["status"] == "SUSPENDED"
    one = send(sb.url, "GET", "/_sandbox/tickets?sn=X1").json["tickets"]
    assert [t["sn"] for t in one] == ["X1"]
    cleared = send(sb.url, "POST", "/_sandbox/tickets", {"clear": True, "tickets": [{"sn": "Y"}]})
    assert cleared.json["total"] == 1
    assert send(sb.url, "POST", "/_sandbox/tickets", {"tickets": [{"status": "NEW"}]}).status == 400
    assert send(sb.url, "POST", "/_sandbox/tickets", b"[1]").status == 400


def test_seed_from_rows_uses_the_first_operator_per_sn() -> None:
    """Each sn gets one RUNNING ticket owned by the first operator named for it."""
    state = SandboxState()
    rows = [("A1", "ann"), ("B1", "bob"), ("A1", "zed"), ("  ", "x"), ("C1", ""), ("C1", "cat")]
    assert state.seed_from_rows(rows) == 3
    a1 = state.tickets["A1"]
    assert (a1.status, a1.creator, a1.processors, a1.withdraw_allowed) == (
        "RUNNING",
        "ann",
        ["ann"],
        True,
    )
    assert state.tickets["C1"].processors == ["cat"]


def test_seeded_rows_give_the_demo_business_failure() -> None:
    """A later row with another operator fails with 无权操作 against a seeded sandbox."""
    state = SandboxState()
    state.seed_from_rows([("A1", "ann"), ("A1", "zed")])
    with SandboxThread(state) as sb:
        assert operate(sb, "A1", "zed", "SUSPEND").message == WRAPPED.format(
            "抱歉，zed无权操作该单据"
        )
        assert operate(sb, "A1", "ann", "SUSPEND").code == 0

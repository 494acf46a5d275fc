"""Tests of batchops.sandbox.answers: the data shapes of the read APIs, over HTTP."""

from __future__ import annotations

import pytest

from batchops.sandbox import SandboxThread

from ..sandbox_http import AUTH_ADMIN, ESB, GW, GW_SHORT, auth_header, get_read, seed, send


def test_get_ticket_status_shapes(sb: SandboxThread) -> None:
    """Status, steps with processors, and operations per state; TERMINATE never listed."""
    seed(sb, "R1", processors=("bob", "carol"))
    seed(sb, "S1", "SUSPENDED", previous_status="RUNNING")
    seed(sb, "N1", "NEW", withdraw_allowed=False)
    seed(sb, "F1", "FINISHED")
    running = get_read(sb, "get_ticket_status", "R1").json["data"]
    assert running["current_status"] == "RUNNING"
    assert "bob" in running["current_steps"][0]["processors"]
    assert "carol" in running["current_steps"][0]["processors"]
    assert [op["key"] for op in running["operations"]] == ["WITHDRAW", "SUSPEND"]
    suspended = get_read(sb, "get_ticket_status", "S1", prefix=GW).json["data"]
    assert [op["key"] for op in suspended["operations"]] == ["WITHDRAW", "UNSUSPEND"]
    new = get_read(sb, "get_ticket_status", "N1", prefix=GW_SHORT).json["data"]
    assert new["operations"] == []
    finished = get_read(sb, "get_ticket_status", "F1").json["data"]
    assert (finished["operations"], finished["current_steps"]) == ([], [])


@pytest.mark.parametrize("api", ["get_ticket_status", "get_ticket_info"])
def test_single_ticket_reads_unknown_sn(sb: SandboxThread, api: str) -> None:
    """An unknown sn answers 3900022 with data null on both gateways."""
    for prefix in (ESB, GW):
        answer = get_read(sb, api, "NOPE", prefix=prefix)
        assert (answer.status, answer.code, answer.json["data"]) == (200, 3900022, None)


def test_get_ticket_info_has_creator_and_status(sb: SandboxThread) -> None:
    """get_ticket_info carries creator and current_status."""
    seed(sb, "R1", creator="zoe")
    data = get_read(sb, "get_ticket_info", "R1").json["data"]
    assert (data["sn"], data["creator"], data["current_status"]) == ("R1", "zoe", "RUNNING")


def test_get_tickets_lists_known_sns_only(sb: SandboxThread) -> None:
    """get_tickets answers items for known sns (no processors); unknown ones are absent."""
    seed(sb, "A1", creator="ann")
    seed(sb, "B1", "SUSPENDED")
    body = {**AUTH_ADMIN, "sns": ["A1", "B1", "ZZ"], "page": 1, "page_size": 10000}
    data = send(sb.url, "POST", ESB + "get_tickets/", body).json["data"]
    assert data["count"] == 2 and data["page"] == 1
    items = {item["sn"]: item for item in data["items"]}
    assert set(items) == {"A1", "B1"}
    assert items["A1"]["creator"] == "ann"
    assert items["B1"]["current_status"] == "SUSPENDED"
    assert "processors" not in items["A1"]


def test_get_tickets_pages_and_caps_page_size(sb: SandboxThread) -> None:
    """Pages are page_size long; page_size is capped at 10,000 (over the gateway too)."""
    sb.state.generate_tickets("P", 25)
    sns = [f"P{i:07d}" for i in range(1, 26)]
    header = auth_header(**AUTH_ADMIN)
    page3 = send(
        sb.url, "POST", GW + "get_tickets/", {"sns": sns, "page": 3, "page_size": 10}, header
    )
    assert page3.json["data"]["count"] == 25
    assert len(page3.json["data"]["items"]) == 5
    seen: set[str] = set()
    for page in (1, 2, 3):
        body = {"sns": sns, "page": page, "page_size": 10}
        answer = send(sb.url, "POST", GW + "get_tickets/", body, header)
        seen |= {item["sn"] for item in answer.json["data"]["items"]}
    assert seen == set(sns)
    sb.state.generate_tickets("Q", 10001)
    big = send(sb.url, "POST", GW + "get_tickets/", {"page_size": 20000}, header)
    assert len(big.json["data"]["items"]) == 10000

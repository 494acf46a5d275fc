"""The stand-in's get_tickets filters, as docs/itsm.md §5 describes them, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from batchops.sandbox import SandboxState, SandboxThread, Ticket

from ..sandbox_http import AUTH_ADMIN, ESB, GW, auth_header, send


def ticket(sn: str, **fields: Any) -> Ticket:
    values: dict[str, Any] = {"status": "RUNNING", "creator": "ann", "processors": ["bob"]}
    values.update(fields)
    return Ticket(sn=sn, **values)


@pytest.fixture
def sb() -> Iterator[SandboxThread]:
    """Five listed tickets (T1 oldest … T5 newest), a draft and a deleted one."""
    state = SandboxState()
    state.seed_tickets(
        [
            ticket("T1", service_id=12, bk_biz_id=2, create_at="2024-01-01 08:00:00", tag="x"),
            ticket(
                "T2",
                status="SUSPENDED",
                service_id=13,
                create_at="2024-02-01 08:00:00",
                project_key="ops",
            ),
            ticket(
                "T3",
                status="FINISHED",
                creator="zoe",
                create_at="2024-03-01 08:00:00",
                end_at="2024-03-02 09:00:00",
            ),
            ticket("T4", status="REVOKED", create_at="2024-04-01 08:00:00", end_at=None),
            ticket("T5", service_id=12, bk_biz_id=3, processors=["ann", "bob"], title="disk"),
            ticket("D1", is_draft=True),
            ticket("X1", is_deleted=True),
        ]
    )
    with SandboxThread(state) as server:
        yield server


def listed(sb: SandboxThread, **filters: Any) -> list[str]:
    body = {**AUTH_ADMIN, "page": 1, "page_size": 100, **filters}
    answer = send(sb.url, "POST", ESB + "get_tickets/", body).json
    assert answer["result"] is True, answer
    return [item["sn"] for item in answer["data"]["items"]]


def test_no_filter_and_empty_sns_list_every_listed_ticket_newest_first(sb: SandboxThread) -> None:
    """Empty or missing sns is no filter at all; drafts and deleted tickets never show."""
    assert listed(sb) == ["T5", "T4", "T3", "T2", "T1"]
    assert listed(sb, sns=[]) == ["T5", "T4", "T3", "T2", "T1"]
    assert listed(sb, sns=["T1", "D1", "X1", "NOPE"]) == ["T1"]


@pytest.mark.parametrize(
    ("filters", "sns"),
    [
        ({"current_status__in": ["RUNNING", "SUSPENDED"]}, ["T5", "T2", "T1"]),
        ({"service_id__in": [12]}, ["T5", "T1"]),
        ({"service_id__in": ["13"]}, ["T2"]),
        ({"bk_biz_id__in": [3]}, ["T5"]),
        ({"creator": "zoe"}, ["T3"]),
        ({"tag": "x"}, ["T1"]),
        ({"project_key": "ops"}, ["T2"]),
        ({"create_at__gte": "2024-02-01 08:00:00", "create_at__lte": "2024-03-01"}, ["T2"]),
        ({"end_at__gte": "2024-03-02 09:00:00"}, ["T3"]),
        ({"end_at__lte": "2030-01-01 00:00:00"}, ["T3"]),
        ({"username": "ann"}, ["T5"]),
        ({"current_status__in": [], "creator": ""}, ["T5", "T4", "T3", "T2", "T1"]),
        ({"service_id__in": [12], "current_status__in": ["RUNNING"], "sns": ["T1"]}, ["T1"]),
    ],
)
def test_each_filter_applies_when_non_empty(
    sb: SandboxThread, filters: dict[str, Any], sns: list[str]
) -> None:
    """Filters combine; a ticket without end_at never matches an end_at bound."""
    assert listed(sb, **filters) == sns


def test_a_comma_separated_string_is_iterated_as_characters(sb: SandboxThread) -> None:
    """The ORM iterates a string: "RUNNING,SUSPENDED" looks for "R", "U", … and finds none."""
    assert listed(sb, current_status__in="RUNNING,SUSPENDED") == []
    assert listed(sb, current_status__in=["RUNNING,SUSPENDED"]) == []


def test_items_carry_the_list_fields_and_a_link(sb: SandboxThread) -> None:
    """Items have the documented fields (no processors) and a link on the caller's host."""
    body = {"sns": ["T3", "T5"], "page": 1, "page_size": 10}
    data = send(sb.url, "POST", GW + "get_tickets/", body, auth_header(**AUTH_ADMIN)).json["data"]
    assert (data["count"], data["total_page"], data["page"]) == (2, 1, 1)
    t5, t3 = data["items"]
    assert (t5["title"], t5["service_id"], t5["bk_biz_id"], t5["end_at"]) == ("disk", 12, 3, None)
    assert (t3["end_at"], t3["create_at"], t3["creator"]) == (
        "2024-03-02 09:00:00",
        "2024-03-01 08:00:00",
        "zoe",
    )
    assert t3["ticket_url"].startswith(sb.url + "/") and str(t3["id"]) in t3["ticket_url"]
    assert "processors" not in t3


def test_a_bad_time_filter_is_a_parameter_error(sb: SandboxThread) -> None:
    """A time the ORM cannot read is refused (inferred: 3900004 with the reason)."""
    body = {**AUTH_ADMIN, "create_at__gte": "yesterday"}
    answer = send(sb.url, "POST", ESB + "get_tickets/", body).json
    assert (answer["result"], answer["code"]) == (False, 3900004)
    assert "create_at__gte" in answer["message"]


def test_withdraw_and_terminate_set_end_at_and_seeding_sets_create_at() -> None:
    """A seeded ticket gets its creation time; ending it records when."""
    state = SandboxState()
    with SandboxThread(state) as server:
        server.call(lambda: state.seed_tickets([ticket("E1", processors=["ann"])]))
        assert state.tickets["E1"].create_at and state.tickets["E1"].end_at is None
        body = {
            **AUTH_ADMIN,
            "sn": "E1",
            "operator": "ann",
            "action_type": "TERMINATE",
            "action_message": "x",
        }
        assert send(server.url, "POST", ESB + "operate_ticket/", body).json["result"] is True
    assert state.tickets["E1"].status == "TERMINATED"
    assert state.tickets["E1"].end_at is not None


def test_seeding_endpoint_takes_the_new_fields(sb: SandboxThread) -> None:
    """POST /_sandbox/tickets accepts and checks the list fields."""
    good = {
        "tickets": [
            {
                "sn": "N1",
                "service_id": 7,
                "create_at": "2024-05-05 05:05:05",
                "end_at": None,
                "tag": "t",
                "is_draft": True,
            }
        ]
    }
    assert send(sb.url, "POST", "/_sandbox/tickets", good).status == 200
    dumped = send(sb.url, "GET", "/_sandbox/tickets?sn=N1").json["tickets"][0]
    assert (dumped["service_id"], dumped["create_at"], dumped["is_draft"]) == (
        7,
        "2024-05-05 05:05:05",
        True,
    )
    for bad in ({"service_id": "7"}, {"create_at": "2024-05-05"}, {"tag": 1}):
        answer = send(sb.url, "POST", "/_sandbox/tickets", {"tickets": [{"sn": "N2", **bad}]})
        assert answer.status == 400

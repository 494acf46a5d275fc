"""The in-package fake ITSM (:mod:`batchops.itsm.fake`): it answers as the real server
does, and the send pool over it never double-suspends a ticket."""

from __future__ import annotations

import asyncio

from batchops.itsm import Answer, FakeTicket, FakeTransport, Verdict
from batchops.model import Action, Outcome, Row, Status
from batchops.send.pool import Executor, SendPolicy


def _operate(fake: FakeTransport, row: Row) -> Answer:
    return asyncio.run(fake.operate(row))


def _row(sn: str, action: Action, operator: str = "admin", index: int = 0) -> Row:
    return Row(index, sn, operator, action, "batch")


def test_unknown_ticket_is_no_such_ticket_before_anything_else() -> None:
    """ITSM looks the ticket up first: 3900022 wins over a bad operator."""
    answer = _operate(FakeTransport(), _row("NOPE", Action.SUSPEND, operator="nobody"))
    assert (answer.verdict, answer.code) == (Verdict.REJECTED, 3900022)


def test_operator_must_be_a_processor_and_the_reason_is_the_inner_text() -> None:
    fake = FakeTransport({"T1": FakeTicket(processors=frozenset({"zhangsan"}))})
    answer = _operate(fake, _row("T1", Action.SUSPEND, operator="lisi"))
    assert (answer.verdict, answer.code) == (Verdict.REJECTED, 3900004)
    assert answer.message == "抱歉，lisi无权操作该单据"
    assert fake.tickets["T1"].status == "RUNNING"


def test_withdraw_is_the_creators_and_unsuspend_needs_a_suspended_ticket() -> None:
    fake = FakeTransport({"T1": FakeTicket(creator="wangwu")})
    assert _operate(fake, _row("T1", Action.UNSUSPEND)).code == 3900004
    assert _operate(fake, _row("T1", Action.WITHDRAW, operator="lisi")).code == 3900004
    assert _operate(fake, _row("T1", Action.WITHDRAW, operator="wangwu")).code == 0
    assert fake.tickets["T1"].status == "REVOKED"
    assert "单据已经结束" in _operate(fake, _row("T1", Action.WITHDRAW)).message


def test_the_double_suspend_bug_is_there() -> None:
    """A second SUSPEND is accepted, and after it UNSUSPEND leaves the ticket suspended."""
    fake = FakeTransport({"T1": FakeTicket()})
    for action in (Action.SUSPEND, Action.SUSPEND, Action.UNSUSPEND):
        assert _operate(fake, _row("T1", action)).verdict is Verdict.SUCCESS
    assert fake.tickets["T1"].status == "SUSPENDED"
    assert fake.operations("T1") == ["SUSPEND", "SUSPEND", "UNSUSPEND"]


def test_reads_answer_the_status_and_leave_unknown_tickets_out() -> None:
    fake = FakeTransport({"T1": FakeTicket(status="SUSPENDED")})
    one = asyncio.run(fake.read_ticket_status("T1"))
    assert one.verdict is Verdict.SUCCESS and one.data == {"current_status": "SUSPENDED"}
    many = asyncio.run(fake.read_tickets(["T1", "T2"]))
    assert isinstance(many.data, dict)
    assert [item["sn"] for item in many.data["items"]] == ["T1"]


def test_a_script_answers_first() -> None:
    lost = Answer(Verdict.AMBIGUOUS, None, "no answer (the action may have run)")
    fake = FakeTransport({"T1": FakeTicket()}, script=lambda call, what: lost)
    assert _operate(fake, _row("T1", Action.SUSPEND)) is lost
    assert fake.tickets["T1"].status == "RUNNING"


def test_the_pool_over_the_fake_never_suspends_a_suspended_ticket() -> None:
    """Rows SUSPEND, SUSPEND of one ticket: the second is skipped, ITSM sees one SUSPEND."""
    fake = FakeTransport({"T1": FakeTicket()})
    rows = [_row("T1", Action.SUSPEND, index=0), _row("T1", Action.SUSPEND, index=1)]
    outcomes: dict[int, Outcome] = {}

    def record(row: Row, outcome: Outcome) -> None:
        outcomes[row.index] = outcome

    executor = Executor(fake, SendPolicy(concurrency=2), on_outcome=record)
    asyncio.run(executor.run([[0, 1]], lambda i: rows[i]))
    assert [outcomes[i].status for i in (0, 1)] == [Status.SUCCESS, Status.SKIPPED]
    assert fake.operations("T1") == ["SUSPEND"]

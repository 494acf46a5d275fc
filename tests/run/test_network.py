"""The send step (batchops/sending.py): what happens between the canary and the rest."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from aiohttp import web

import batchops
from batchops.model import RunSummary, Status

from ..helpers import LoopbackServer, envelope, report_of, write_csv


class TicketsWhoseReadsBreak:
    """An ITSM that operates like the real one (a second SUSPEND is accepted) and whose
    status reads answer 503 once :attr:`reads_broken` is set."""

    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses
        self.reads_broken = False
        #: After the canary: get_tickets leaves "A" out; "A" read singly is refused too
        #: when ``single_reads_refused``.
        self.a_left_out = False
        self.single_reads_refused = False
        self.operations: list[tuple[str, str]] = []
        #: The status each SUSPEND found (SUSPENDED: a double suspend).
        self.suspended_from: list[str] = []

    def __call__(self, request: web.Request, body: bytes) -> web.Response:
        if "/itsm/" not in request.path:
            return web.Response(status=404)  # the reachability probe
        if "get_ticket" in request.path:
            if self.reads_broken:
                return web.Response(status=503, text="Service Unavailable")
            if "get_tickets" in request.path:
                sns = [s for s in json.loads(body)["sns"] if not (self.a_left_out and s == "A")]
                items = [{"sn": s, "current_status": self.statuses[s]} for s in sns]
                return envelope(data={"items": items})
            if self.single_reads_refused:
                return envelope(3900004, "接口异常，请检查请求参数: 系统繁忙")
            return envelope(data={"current_status": self.statuses[request.query["sn"]]})
        sent = json.loads(body)
        sn, action = sent["sn"], sent["action_type"]
        self.operations.append((sn, action))
        if action == "SUSPEND":
            self.suspended_from.append(self.statuses[sn])
            self.statuses[sn] = "SUSPENDED"  # accepted even when it already was: the trap
        elif action == "UNSUSPEND" and self.statuses[sn] == "SUSPENDED":
            self.statuses[sn] = "RUNNING"
        return envelope()


def run_with_canary(
    tmp_path: Path, itsm: TicketsWhoseReadsBreak, **after: bool
) -> tuple[Path, RunSummary]:
    """Rows A SUSPEND (the canary), B SUSPEND, A UNSUSPEND, A SUSPEND; ``after`` is set on
    the server once the canary is done."""
    rows = [
        ["A", "admin", "SUSPEND", "canary"],
        ["B", "admin", "SUSPEND", "rest"],
        ["A", "admin", "UNSUSPEND", "rest"],
        ["A", "admin", "SUSPEND", "rest"],
    ]
    src = write_csv(tmp_path / "t.csv", rows)

    def after_the_canary(report: object) -> bool:
        for name, value in after.items():
            setattr(itsm, name, value)
        return True

    with LoopbackServer(itsm) as server:
        summary = batchops.run_batch(
            src,
            batchops.RunOptions(base_url=server.url, app_code="app", username="admin"),
            choices=batchops.RunChoices(canary=1),
            hooks=batchops.Hooks(confirm_canary=after_the_canary),
            env={"BK_APP_SECRET": "s3cret-value"},
        )
    return src, summary


def test_after_the_canary_an_unreadable_ticket_gets_no_second_suspend(tmp_path: Path) -> None:
    """The canary suspends A; reading A again then fails. A's status from before the
    canary (RUNNING) would let the rest skip its UNSUSPEND and send a second SUSPEND,
    which leaves A stuck. The run stops before the rest instead (exit 3, resumable)."""
    server_side = TicketsWhoseReadsBreak({"A": "RUNNING", "B": "RUNNING"})
    src, summary = run_with_canary(tmp_path, server_side, reads_broken=True)
    assert server_side.operations == [("A", "SUSPEND")]
    assert Counter(action for _, action in server_side.operations)["SUSPEND"] == 1
    assert summary.exit_code == 3
    assert "could not be read again" in summary.stopped_reason
    statuses = [r["status"] for r in report_of(src)]
    assert statuses == [Status.SUCCESS.value] + [Status.PENDING.value] * 3


def test_a_canary_ticket_left_out_of_the_second_read_is_asked_for_singly(tmp_path: Path) -> None:
    """get_tickets leaves A out after the canary: A is read singly (SUSPENDED), so its
    UNSUSPEND goes out and the last SUSPEND finds it RUNNING, never SUSPENDED."""
    itsm = TicketsWhoseReadsBreak({"A": "RUNNING", "B": "RUNNING"})
    src, _ = run_with_canary(tmp_path, itsm, a_left_out=True)
    assert "SUSPENDED" not in itsm.suspended_from
    assert itsm.operations == [
        ("A", "SUSPEND"),
        ("B", "SUSPEND"),
        ("A", "UNSUSPEND"),
        ("A", "SUSPEND"),
    ]
    assert [r["status"] for r in report_of(src)] == [Status.SUCCESS.value] * 4


def test_a_canary_ticket_neither_listed_nor_readable_stops_the_rest(tmp_path: Path) -> None:
    itsm = TicketsWhoseReadsBreak({"A": "RUNNING", "B": "RUNNING"})
    src, _ = run_with_canary(tmp_path, itsm, a_left_out=True, single_reads_refused=True)
    assert itsm.operations == [("A", "SUSPEND")]
    assert [r["status"] for r in report_of(src)] == [Status.SUCCESS.value] + [
        Status.PENDING.value
    ] * 3

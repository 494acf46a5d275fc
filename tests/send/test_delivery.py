"""One row's life (batchops/row.py) against a loopback ITSM: a lost answer whose ticket
cannot be read back at first must not free the ticket's later rows too early."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

from aiohttp import web

import batchops
from batchops.model import Status

from ..helpers import LoopbackServer, envelope, report_of, write_csv


class SlowBackendThenBusyReads:
    """The first SUSPEND: the gateway gives up (502) while ITSM applies it ``lands_after``
    seconds later; the next ``busy_reads`` status reads answer 503. Like the real server,
    a SUSPEND of a SUSPENDED ticket is accepted, and then records SUSPENDED as the status
    to go back to."""

    def __init__(self, lands_after: float, busy_reads: int) -> None:
        self.status = "RUNNING"
        self.back_to = "RUNNING"
        self.lands_after = lands_after
        self.suspends_applied_from: list[str] = []
        self.busy = 0
        #: Set once the first SUSPEND has landed, whenever that is.
        self.landed = threading.Event()
        self.busy_reads = busy_reads
        self.first = True

    def _suspend(self) -> None:
        self.suspends_applied_from.append(self.status)
        self.back_to, self.status = self.status, "SUSPENDED"

    def _land(self) -> None:
        self._suspend()
        self.landed.set()

    def __call__(self, request: web.Request, body: bytes) -> web.Response:
        if "/itsm/" not in request.path:
            return web.Response(status=404)  # the reachability probe
        if "get_tickets" in request.path:
            return envelope(data={"items": [{"sn": "A", "current_status": self.status}]})
        if "get_ticket" in request.path:
            if self.busy > 0:
                self.busy -= 1
                return web.Response(status=503, text="busy")
            return envelope(data={"current_status": self.status})
        action = json.loads(body)["action_type"]
        if action == "SUSPEND" and self.first:
            self.first, self.busy = False, self.busy_reads
            asyncio.get_running_loop().call_later(self.lands_after, self._land)
            return web.Response(status=502, text="Bad Gateway")
        if action == "SUSPEND":
            self._suspend()
        elif self.status != "SUSPENDED":
            return envelope(3900004, "抱歉，该单据不在挂起中，无法操作")
        else:
            self.status = self.back_to
        return envelope()


def test_an_unreadable_lost_suspend_holds_the_tickets_later_rows_until_it_cannot_land(
    tmp_path: Path,
) -> None:
    """SUSPEND (answer lost; it lands 3 s later; the first reads back answer 503),
    UNSUSPEND, SUSPEND. Ending the first row unknown once its reads failed let the second
    be refused (not suspended yet) and the third read RUNNING and suspend, before the first
    landed on a SUSPENDED ticket: two SUSPENDs, the ticket stuck."""
    itsm = SlowBackendThenBusyReads(lands_after=3.0, busy_reads=3)
    src = write_csv(
        tmp_path / "t.csv",
        [
            ["A", "admin", "SUSPEND", "x"],
            ["A", "admin", "UNSUSPEND", "x"],
            ["A", "admin", "SUSPEND", "x"],
        ],
    )
    with LoopbackServer(itsm) as server:
        summary = batchops.run_batch(
            src,
            batchops.RunOptions(
                base_url=server.url,
                app_code="app",
                username="admin",
                server_timeout=5,
                readback_delay=0.1,
            ),
            env={"BK_APP_SECRET": "s3cret-value"},
        )
        # The server stays up until the slow first SUSPEND has landed, run over or not.
        assert itsm.landed.wait(10)
    assert "SUSPENDED" not in itsm.suspends_applied_from
    assert itsm.suspends_applied_from == ["RUNNING", "RUNNING"]
    assert summary.exit_code == 0
    assert [r["status"] for r in report_of(src)] == [Status.SUCCESS.value] * 3
